#!/usr/bin/env bash
# Historical retrieval benchmark: for each count in ENTITIES (default "1000000"), that many
# entity rows (random users and label times) against a feature table of FEATURES rows
# (default 5M; 100k users over 90 days), with and without a request-time view, under each
# memory budget in BUDGETS (MiB; default "1024 256": the default, which holds the table, and
# one that partitions and spills). Reports wall time, CPU time and peak RSS (GNU time) of
# `skewless historical`.
#
#   bash benches/historical.sh
#   ENTITIES="10000 1000000" BUDGETS=1024 bash benches/historical.sh
#   PYTHON=python3 bash benches/historical.sh   # also from Python, beside each CLI run
#
# With PYTHON (an interpreter with the package built in release: `cd python && maturin develop
# --release`), each case runs again as `FeatureStore.get_historical_features`
# (benches/python/historical.py) under the same GNU time, on a row labelled `python`, and its
# training set must be the CLI's file byte for byte.
#
# Needs a release build (`cargo build --release -p skewless-cli -p skewless-datagen`; BIN_DIR
# names its folder if not target/release), GNU time and python3 (to write the entity CSV).
set -euo pipefail
cd "$(dirname "$0")/.."
features=${FEATURES:-5000000}
entity_counts=${ENTITIES:-1000000}
budgets=${BUDGETS:-1024 256}
bin=${BIN_DIR:-target/release}
CARGO_TARGET_DIR=target/guests cargo build --quiet --profile guest --target wasm32-wasip2 \
    -p transaction-features -p request-amount-ratio
guest=$PWD/target/guests/wasm32-wasip2/guest
work=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT; echo "work dir: $work" >&2
mkdir -p "$work/repo"
cat > "$work/repo/skewless.toml" <<TOML
[project]
name = "bench"
[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]
[[batch_view]]
name = "txn"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
transform = "$guest/transaction_features.wasm"
ttl = "30d"
online = false
[[request_view]]
name = "req"
transform = "$guest/request_amount_ratio.wasm"
entities = ["user"]
inputs.request_amount = { request = "amount" }
inputs.user_last_amount = { feature = "txn:amount_log1p" }
inputs.user_avg_amount_30d = { feature = "txn:amount_zscore" }
TOML
# The same 90 days as the label times below.
"$bin/skewless-datagen" --rows "$features" --users 100000 --days 90 --end 2026-11-01T00:00:00Z \
    --out "$work/txns.parquet" >/dev/null
"$bin/skewless" ingest raw.transactions --repo "$work/repo" --from "$work/txns.parquet" --create >/dev/null
"$bin/skewless" apply --repo "$work/repo" >/dev/null
"$bin/skewless" materialize --repo "$work/repo" txn >/dev/null
printf '| entity rows | feature rows | features | budget (MiB) | spilled | wall (s) | CPU user+sys (s) | peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|\n'
for entities in $entity_counts; do
    python3 - "$entities" > "$work/entities.csv" <<'PY'
import random, sys, datetime
random.seed(7)
end = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc).timestamp()
print("user_id,event_timestamp,amount,label")
for _ in range(int(sys.argv[1])):
    t = datetime.datetime.fromtimestamp(end - random.random() * 90 * 86400, datetime.timezone.utc)
    print(f"{random.randint(1, 100000)},{t.strftime('%Y-%m-%dT%H:%M:%S')}Z,{random.randint(1, 5000) / 10},{random.randint(0, 1)}")
PY
    for budget in $budgets; do
        for spec in "txn:*" "txn:*,req:*"; do
            # What was just generated, materialized or written as a training set goes to disk
            # first, so that its writeback does not run beside (and count against) the run.
            sync
            /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" "$bin/skewless" historical \
                --repo "$work/repo" --entities "$work/entities.csv" --features "$spec" \
                --out "$work/train.parquet" --memory-budget "$budget" > "$work/summary.txt"
            read -r wall user sys rss < "$work/time.txt"
            spilled=$(grep -o 'spilled [0-9.]* MiB in [0-9]* files' "$work/summary.txt" || echo no)
            printf '| %s | %s | %s | %s | %s | %s | %.2f | %.0f |\n' "$entities" "$features" \
                "$spec" "$budget" "$spilled" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))"
            if [ -n "${PYTHON:-}" ]; then
                sync
                /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" "$PYTHON" \
                    benches/python/historical.py "$work/repo" "$work/entities.csv" "$spec" \
                    "$work/train-python.parquet" "$budget"
                read -r wall user sys rss < "$work/time.txt"
                cmp -s "$work/train.parquet" "$work/train-python.parquet" ||
                    { echo "the Python training set differs from the CLI's" >&2; exit 1; }
                printf '| %s | %s | %s (python) | %s | | %s | %.2f | %.0f |\n' "$entities" \
                    "$features" "$spec" "$budget" "$wall" "$(echo "$user + $sys" | bc)" \
                    "$((rss / 1024))"
            fi
        done
    done
done
