#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test (unit,
# integration on real videos with real FFmpeg and ONNX Runtime).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/setup.sh"
cd "$ROOT"
cargo test --release --locked
