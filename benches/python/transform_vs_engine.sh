#!/usr/bin/env bash
# `Transform.run` from Python against the engine from Rust on the same 8192-row batch, side by
# side in one run (issue 15's target: Python at >= 90% of the engine's rows/s). Alternates the
# two ROUNDS times (default 2), so a change of machine load shows as a spread.
#
#   bash benches/python/transform_vs_engine.sh
#
# Needs the package built in release into the active Python (`cd python && maturin develop
# --release`), and builds the datagen and the criterion bench in release.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CARGO_TARGET_DIR=target/guests cargo build --quiet --profile guest --target wasm32-wasip2 -p transaction-features
cargo build --quiet --release -p skewless-datagen
# The batch criterion's `batch_8192` runs: `data::transactions(8192, 2)`.
target/release/skewless-datagen --rows 8192 --seed 2 --out "$work/inputs.parquet" >/dev/null
for round in $(seq "$rounds"); do
    echo "== round $round"
    python benches/python/bench.py --inputs "$work/inputs.parquet" --only-transform --iterations 4000 |
        grep 8192
    cargo bench --quiet -p skewless-benches --bench transform -- --warm-up-time 1 --measurement-time 5 \
        'batch_8192/transaction_features/wasm' 2>/dev/null | grep -E '^batch_8192|time:|thrpt:'
done
