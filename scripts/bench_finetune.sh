#!/usr/bin/env bash
# Measures `framegpt finetune` on the classification sets of
# scripts/make_classification_sets.sh: test accuracy per frame and per clip (mean logits),
# next to a baseline that needs no model (the same Rust trainer on 16x16 raw pixels of
# single frames, hidden flag `--features pixels`), with wall time and peak RSS from
# /usr/bin/time -v. Prints a Markdown table for docs/BENCHMARKS.md ("## Finetuning").
#
#   scripts/make_classification_sets.sh && scripts/bench_finetune.sh
#
# The `--unfreeze` rows need the backbone's weights by name (an export with
# do_constant_folding=False); for a constant-folded base model make a named copy first:
#   ~/.cache/framegpt-train-venv/bin/python models/name_initializers.py \
#       models/framegpt-base.onnx /tmp/base-named.onnx
#   FINETUNE_BENCH_MODEL=/tmp/base-named.onnx scripts/bench_finetune.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SETS="${FRAMEGPT_BENCH_DIR:-$HOME/.cache/framegpt-bench}/cls"
WORK="${FINETUNE_BENCH_WORK:-$(mktemp -d)}"
mkdir -p "$WORK"
BIN=target/release/framegpt
MODEL="${FINETUNE_BENCH_MODEL:-models/framegpt-base.onnx}"
[[ -x $BIN ]] || cargo build --release --locked
[[ -d $SETS/motion ]] || { echo "error: no sets in \`$SETS\`" >&2
    echo "hint: run scripts/make_classification_sets.sh first" >&2; exit 2; }

echo "| set | features / head | cache | test acc. (frames) | test acc. (clips) | chance | wall | peak RSS |"
echo "|---|---|---|---|---|---|---|---|"
# run SET NAME CACHE_NOTE ARGS...
run() {
    local set=$1 name=$2 note=$3
    shift 3
    local out="$WORK/$set-${name// /_}.onnx" log="$WORK/$set-${name// /_}.log"
    /usr/bin/time -v "$BIN" finetune -q --data "$SETS/$set/train" --test "$SETS/$set/test" \
        -o "$out" --cache "$WORK/cache" --model "$MODEL" "$@" 2>"$log"
    local classes wall rss
    classes=$(find "$SETS/$set/train" -mindepth 1 -maxdepth 1 -type d | wc -l)
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f MB", $2 / 1024}' "$log")
    python3 - "$out.report/summary.json" "$set" "$name" "$note" "$classes" "$wall" "$rss" <<'EOF'
import json, sys
path, set_, name, note, classes, wall, rss = sys.argv[1:]
t = json.load(open(path))["results"]["test"]
print(f"| {set_} | {name} | {note} | {100 * t['frame_accuracy']:.1f} % | "
      f"{100 * t['clip_accuracy']:.1f} % ({t['clips']}) | {100 / int(classes):.0f} % | {wall} | {rss} |")
EOF
}

for set in content motion direction; do
    # motion/direction render the same segment into every class under one file name:
    # the validation split keeps those together, so early stopping does not reward
    # recognizing footage seen in another class.
    group=file
    [[ $set == content ]] || group=name
    run "$set" "pixels 16x16, softmax (baseline)" "-" --features pixels --head softmax --temporal-lag 0 --group-by $group
    run "$set" "embeddings, softmax" "cold" --head-inputs embeddings --head softmax --temporal-lag 0 --group-by $group
    run "$set" "embeddings + delta (lag 4), mlp (default before motion)" "warm" --head-inputs embeddings --group-by $group
    run "$set" "defaults (--head-inputs auto, lag 4, mlp)" "cold" --group-by $group
    run "$set" "defaults (--head-inputs auto, lag 4, mlp)" "warm" --group-by $group
    run "$set" "motion only (--head-inputs motion)" "warm" --head-inputs motion --group-by $group
    run "$set" "embeddings + motion (--head-inputs both)" "warm" --head-inputs both --group-by $group
    run "$set" "defaults + last temporal block trained (--unfreeze 1)" "cold" --unfreeze 1 --group-by $group
done
echo
echo "logs and reports: \`$WORK\`"
