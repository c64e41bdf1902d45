#!/usr/bin/env bash
# Anomaly ranking when the adaptation footage never shows a source frame of the test videos.
#
#   scripts/bench_anomaly_split.sh               # SET=tune and SET=dev, normal-only adapt
#   SETS=tune ADAPT_ARGS="" scripts/bench_anomaly_split.sh   # the default (trained) adapt
#   KNN=1 scripts/bench_anomaly_split.sh         # + the nearest-neighbour probe (not shipped)
#
# The anomaly sets of scripts/bench_anomaly.sh loop short source clips (120-280 frames), so
# the adaptation footage (other videos of the same scene) shows every source frame that the
# test videos' normal stretches show, re-encoded: a method that memorizes the footage wins
# there without telling anything about a camera's new footage. Here each scene's source clip
# is cut in two halves (scripts/make_anomaly_tune.py --part): the test videos (seed 0) are
# made from the second half, the adaptation footage (the normal stretches of seed-1 videos,
# scripts/anomaly_split.py) from the first. Same generator, events and scorer; SET=dev is the
# shared development scenes (carphone, bikes), evaluation only, SET=tune the Debian footage of
# make_anomaly_tune.py. Everything goes under $ANOM_SPLIT (default
# ~/.cache/framegpt-bench/anomaly/split); results in $ANOM_SPLIT/results/<set>.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=${ANOM_BENCH:-$ROOT/../shared/bench/anomaly}
OUT=${ANOM_SPLIT:-$HOME/.cache/framegpt-bench/anomaly/split}
CACHE=${ANOM_CACHE:-$HOME/.cache/framegpt-bench/anomaly/cache}
PY=${PY:-$HOME/.cache/framegpt-bench/sbd-venv/bin/python}
FG=${FRAMEGPT:-$ROOT/target/release/framegpt}
ADAPT_ARGS=${ADAPT_ARGS---normal-only}
export PY PATH="$(dirname "$PY"):$PATH"
mkdir -p "$OUT/results"
for set in ${SETS:-tune dev}; do
  extra=(); [[ $set == dev ]] && extra=(--set dev)
  for side in adapt:1:first test:0:second; do
    IFS=: read -r name seed part <<<"$side"
    dir=$OUT/$set-$name
    if [[ ! -f $dir/index.json ]]; then
      rm -rf "$dir"
      ANOM_BENCH=$BENCH "$PY" "$ROOT/scripts/make_anomaly_tune.py" --seed "$seed" --out "$dir" \
        --part "$part" --cache "$CACHE" "${extra[@]}" 2>&1 | grep -v "non-intra slice" | tail -1
    fi
  done
  "$PY" "$ROOT/scripts/anomaly_split.py" "$OUT/$set-adapt" "$OUT/$set-test" "$OUT/$set-csv" >/dev/null
  pred=$OUT/pred-$set
  [[ -d $pred/framediff64 ]] || "$PY" "$BENCH/baselines.py" "$OUT/$set-test" "$pred" >/dev/null
  [[ -d $pred/framegpt_surprise ]] || FRAMEGPT=$FG "$BENCH/run_framegpt.sh" "$OUT/$set-test" "$pred" >/dev/null
  mkdir -p "$OUT/models-$set"
  emb=(); [[ ${KNN:-0} == 1 ]] && emb=(--embeddings npy)
  for csv in "$OUT/$set-csv"/*.csv; do
    scene=$(basename "$csv" .csv) model=$OUT/models-$set/$scene.onnx
    # shellcheck disable=SC2086
    /usr/bin/time -f "adapt $scene: %e s wall, peak RSS %M KB" \
      "$FG" adapt --data "$csv" -o "$model" --no-progress -q $ADAPT_ARGS
    videos=$("$PY" -c "import json,sys; print(' '.join('$OUT/$set-test/'+v['video'] for v in json.load(open('$OUT/$set-test/index_$scene.json'))['videos']))")
    # shellcheck disable=SC2086
    "$FG" analyze $videos -o "$OUT/test/$scene" --model "$model" "${emb[@]}" --no-progress -q --force
    if [[ ${KNN:-0} == 1 ]]; then
      # shellcheck disable=SC2046
      "$FG" analyze $(tail -n +2 "$csv" | cut -d, -f1 | sort -u) -o "$OUT/calib/$scene" --model "$model" \
        --embeddings npy --no-progress -q --force
    fi
  done
  "$PY" - "$OUT/$set-test" "$OUT/test" "$pred" <<'PYEOF'
import csv, glob, json, os, sys
test, raw, pred = sys.argv[1:]
os.makedirs(os.path.join(pred, "adapted_anomaly"), exist_ok=True)
for idx in glob.glob(os.path.join(test, "index_*.json")):
    scene = os.path.basename(idx)[len("index_"):-len(".json")]
    for v in json.load(open(idx))["videos"]:
        rows = list(csv.DictReader(open(os.path.join(raw, scene, v["video"], "frames.csv"), newline="")))
        with open(os.path.join(pred, "adapted_anomaly", os.path.splitext(v["video"])[0] + ".csv"), "w") as f:
            f.write("frame,score\n")
            f.writelines(f"{r['frame']},{r['anomaly'] or 0}\n" for r in rows)
PYEOF
  [[ ${KNN:-0} == 1 ]] && "$PY" "$ROOT/scripts/anomaly_knn_probe.py" "$OUT/$set-csv" "$OUT/$set-test" "$OUT/calib" "$OUT/test" "$pred/knn"
  {
    echo "$set, disjoint halves: test seed 0 (second half), adaptation seed 1 (first half); $(date -u +%F); adapt ${ADAPT_ARGS:-(defaults)}"
    for idx in "$OUT/$set-test"/index*.json; do
      echo; echo "$(basename "$idx")"
      echo "| method | pooled AUC | min-max pooled AUC | speedup | reverse | object | brightness | shake | freeze |"
      echo "|---|---|---|---|---|---|---|---|---|"
      for m in framediff64 framegpt_surprise adapted_anomaly $([[ ${KNN:-0} == 1 ]] && echo knn/knn1 knn/knn5); do
        "$PY" "$BENCH/score_anomaly.py" "$idx" "$pred/$m" --row "$m" 2>/dev/null
      done
    done
  } | tee "$OUT/results/$set.md"
done
