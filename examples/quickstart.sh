#!/usr/bin/env bash
# Quickstart: build the `skewless` binary and the example transforms, inspect one, run three
# over a sample of 1,000 card transactions, and print a few feature rows.
#
#   bash examples/quickstart.sh
#
# Needs only Rust (the wasm32-wasip2 target is added if missing). Outputs go to
# target/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

echo "== building skewless and the example transforms"
cargo build --quiet -p skewless-cli
CARGO_TARGET_DIR=target/guests cargo build --quiet --profile guest --target wasm32-wasip2 \
    -p transaction-features -p merchant-category -p time-features
skewless=target/debug/skewless
wasm=target/guests/wasm32-wasip2/guest
out=target/quickstart
mkdir -p "$out"
data=examples/data/transactions.csv

echo "== the numeric transform's signature"
"$skewless" inspect "$wasm/transaction_features.wasm"

echo "== running three transforms over $data"
"$skewless" run "$wasm/transaction_features.wasm" --input "$data" --output "$out/transaction_features.parquet" --keep-input
"$skewless" run "$wasm/merchant_category.wasm" --input "$data" --output "$out/merchant_category.parquet"
"$skewless" run "$wasm/time_features.wasm" --input "$data" --output "$out/time_features.parquet"

echo "== a few computed features"
"$skewless" show "$out/transaction_features.parquet" -n 5
"$skewless" show "$out/merchant_category.parquet" -n 5
"$skewless" show "$out/time_features.parquet" -n 5
