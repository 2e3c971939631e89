#!/usr/bin/env bash
# The main job end to end on the embedded defaults (no server to install):
# build -> generate synthetic card transactions -> ingest into Iceberg -> apply -> materialize
# -> print a few online values.
#
#   bash examples/feature-repo/run.sh            # 200k transactions, 5k users, 90 days
#   ROWS=3000000 USERS=100000 bash examples/feature-repo/run.sh
#
# State (the Iceberg catalog and warehouse, the online store, the compiled cache) goes to
# examples/feature-repo/.skewless/; delete it to start over.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=examples/feature-repo
rows=${ROWS:-200000}
users=${USERS:-5000}
profile=${PROFILE:-dev}

rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

echo "== building skewless, the data generator and the example transforms ($profile)"
cargo build --quiet --profile "$profile" -p skewless-cli -p skewless-datagen
CARGO_TARGET_DIR=target/guests cargo build --quiet --profile guest --target wasm32-wasip2 \
    -p transaction-features -p merchant-category -p time-features
dir=target/$([ "$profile" = dev ] && echo debug || echo "$profile")
skewless="$dir/skewless"

rm -rf "$repo/.skewless"
mkdir -p "$repo/.skewless"
echo "== generating $rows transactions for $users users"
"$dir/skewless-datagen" --rows "$rows" --users "$users" --days 90 --out "$repo/.skewless/transactions.parquet"

echo "== ingesting into the Iceberg source table raw.transactions"
"$skewless" ingest raw.transactions --repo "$repo" --from "$repo/.skewless/transactions.parquet" --create

echo "== apply: check every view against the data, create feature tables, register digests"
"$skewless" apply --repo "$repo"

echo "== materialize every view into the offline (Iceberg) and online (embedded) stores"
"$skewless" materialize --repo "$repo" --all

echo "== online values of three users"
"$skewless" get --repo "$repo" user_transaction_features 1 2 3
"$skewless" get --repo "$repo" user_merchant_features 1
