#!/usr/bin/env bash
# Fuzzes the parsers of outside input (issue 12) by running the property tests of
# tests/cli/props.rs for a bounded time each, round after round with a fresh seed
# (PROPTEST_RNG_SEED) and many cases a round (PROPTEST_CASES). The `mutated_*` properties
# start from real files (models/framegpt-base.onnx, the test models, a labels CSV) and edit
# their bytes; the others generate input. Not coverage-guided: no nightly toolchain (cargo
# fuzz) here, see README "Fuzzing".
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh mutated_models_never_panic
#
# A failure stops the script (exit 1) and prints proptest's minimal failing input and the
# seed that found it; rerun that round with the printed PROPTEST_RNG_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
cases=${FUZZ_CASES:-2000}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(
        metadata_parser_never_panics
        declared_context_must_match_static_dims
        onnx_reader_never_panics
        attach_head_round_trips_metadata
        replace_initializers_round_trips_by_name
        mutated_models_never_panic
        labels_csv_parser_never_panics
        mutated_labels_csv_never_panics
    )
fi

cargo test --release --locked --test cli --no-run
export PROPTEST_DISABLE_FAILURE_PERSISTENCE=1
for target in "${targets[@]}"; do
    start=$(date +%s)
    rounds=0
    while [ $(($(date +%s) - start)) -lt "$seconds" ]; do
        seed=$(( (start * 1000 + rounds) % 4294967296 ))
        if ! out=$(PROPTEST_CASES=$cases PROPTEST_RNG_SEED=$seed \
            cargo test --release --locked --test cli -q "props::$target" -- --exact 2>&1); then
            echo "$out"
            echo "fuzz: $target FAILED (PROPTEST_RNG_SEED=$seed PROPTEST_CASES=$cases)"
            exit 1
        fi
        if ! grep -q "1 passed" <<<"$out"; then
            echo "$out"
            echo "fuzz: no test named props::$target"
            exit 1
        fi
        rounds=$((rounds + 1))
    done
    echo "fuzz: $target: $((rounds * cases)) cases in $rounds rounds, $(($(date +%s) - start)) s, no failure"
done
