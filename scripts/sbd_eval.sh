#!/usr/bin/env bash
# Runs framegpt on the development shot-boundary set (../shared/bench, real footage) and
# scores it with the shared scorer, next to the baselines.
#
#   scripts/sbd_eval.sh [extra analyze args...]
# Needs the set built once by ../shared/bench/run_baselines.sh (videos under
# ~/.cache/framegpt-bench/sbd). Writes predictions to ~/.cache/framegpt-bench/sbd/runs/dev/framegpt/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=${SBD_BENCH:-$ROOT/../shared/bench}
DATA=${SBD_DATA:-$HOME/.cache/framegpt-bench/sbd}
PY=${SBD_PY:-$HOME/.cache/framegpt-bench/sbd-venv/bin/python}
SET=$DATA/bench/dev
[[ -f $SET/index.json ]] || { echo "no dev set at $SET: run $BENCH/run_baselines.sh first" >&2; exit 2; }
PRED=$DATA/runs/dev/framegpt
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$ROOT/target/release/framegpt" analyze "$SET"/dev_*.mp4 -o "$OUT" --scenes-format pyscenedetect -q "$@"
rm -rf "$PRED"; mkdir -p "$PRED"
for d in "$OUT"/dev_*.mp4; do
  n=$(basename "$d" .mp4)
  cp "$d/scenes.csv" "$PRED/$n.csv"
done
"$PY" "$BENCH/score.py" "$SET/index.json" "$PRED"
