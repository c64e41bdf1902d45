#!/usr/bin/env bash
# Batch throughput against --jobs (files decoded at once) on a directory of many small
# real videos, with peak memory. Inputs are copies of samples/ under
# ~/.cache/framegpt-bench/jobs (never in the repo).
#
#   scripts/bench_jobs.sh [COPIES] [RUNS]      (default 8 copies of the 5 samples = 40 files, 3 runs)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COPIES=${1:-8}
RUNS=${2:-3}
BIN=$ROOT/target/release/framegpt
DIR=$HOME/.cache/framegpt-bench/jobs/in-$COPIES
if [[ ! -d $DIR ]]; then
  mkdir -p "$DIR"
  for c in $(seq "$COPIES"); do
    mkdir -p "$DIR/copy$c"
    find "$ROOT/samples" -name '*.mp4' | while read -r f; do cp "$f" "$DIR/copy$c/$(basename "$f")"; done
  done
fi
files=$(find "$DIR" -name '*.mp4' | wc -l)
echo "# --jobs scaling: $files files ($(du -sh "$DIR" | cut -f1)), --threads 2, median of $RUNS runs"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git -C "$ROOT" rev-parse --short HEAD)"
echo
echo "| --jobs | frames | wall s | frames/s | files/s | peak RSS MB |"
echo "|--:|--:|--:|--:|--:|--:|"
for jobs in 1 2 4; do
  results=()
  for r in $(seq "$RUNS"); do
    out=$(mktemp -d)
    /usr/bin/time -f '%e %M' -o "$out/time" "$BIN" --threads 2 --no-progress analyze "$DIR" -r -o "$out/o" --jobs "$jobs" 2>"$out/err" || true
    frames=$(sed -n 's/.*(\([0-9]*\) frames,.*/\1/p' "$out/err")
    read -r wall rss < "$out/time"
    results+=("$wall $frames $rss")
    rm -rf "$out"
  done
  printf '%s\n' "${results[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p" | \
    awk -v j="$jobs" -v n="$files" '{printf "| %d | %d | %.1f | %.0f | %.2f | %.0f |\n", j, $2, $1, $2/$1, n/$1, $3/1024}'
done
