#!/usr/bin/env bash
# The whole test suite: installs what is missing, checks formatting and lints (rustfmt,
# clippy with warnings as errors), builds, runs every test: unit tests, integration tests
# on real videos with real FFmpeg and ONNX Runtime (tests/cli.rs), and the scale-out test
# on a real single-node Slurm cluster (tests/slurm/run.sh, as root).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/setup.sh"
eval "$("$ROOT/scripts/test-deps.sh")"
cd "$ROOT"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
python3 scripts/fn_lengths.py --max 100 --top 3 src
cargo test --release --locked
bash tests/slurm/run.sh
