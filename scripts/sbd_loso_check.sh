#!/usr/bin/env bash
# Runs `framegpt analyze` (the shipped model, its own rule) on the per-source test videos that
# `models/boundary.py data` composed ($FRAMEGPT_BOUNDARY_WORK/test, default
# ~/.cache/framegpt-boundary/test) and scores them with the shared scorer: the Rust pipeline
# on the same videos as the leave-source-out validation.
# (The model's head saw every group in training, so this checks the implementation, not
# generalisation; models/README.md has the cross-validated numbers.)
#
#   scripts/sbd_loso_check.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SET=${BOUNDARY_TEST:-${FRAMEGPT_BOUNDARY_WORK:-$HOME/.cache/framegpt-boundary}/test}
PY=${SBD_PY:-$HOME/.cache/framegpt-bench/sbd-venv/bin/python}
[[ -f $SET/index.json ]] || { echo "no test videos at $SET: run models/boundary.py data first" >&2; exit 2; }
OUT=$(mktemp -d); PRED=$(mktemp -d)
trap 'rm -rf "$OUT" "$PRED"' EXIT
"$ROOT/target/release/framegpt" analyze "$SET"/*.mp4 -o "$OUT" -q "$@"
for d in "$OUT"/*.mp4; do
  n=$(basename "$d" .mp4)
  cp "$d/shots.csv" "$PRED/$n.shots.csv"
  # first frame of every shot but the first
  awk -F, 'NR>2{print $3}' "$d/shots.csv" > "$PRED/$n.csv"
done
"$PY" "$ROOT/../shared/bench/score.py" "$SET/index.json" "$PRED"
