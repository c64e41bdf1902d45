#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and analyzes samples/ into out/samples/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/setup.sh"
OUT=${1:-$ROOT/out/samples}
status=0
"$ROOT/target/release/framegpt" analyze "$ROOT/samples" -r -o "$OUT" --embeddings npy || status=$?
echo
echo "CSV files written:"
(cd "$OUT" && find . -name '*.csv' | sort | sed "s|^\.|  $OUT|")
exit $status
