#!/usr/bin/env bash
# Historical retrieval of aggregate features: ENTITIES entity rows (default 1M) against an
# aggregate view's feature table of FEATURES rows (default 5M; 100k users over 90 days), with
# 10 aggregations (count, sum and mean of the amount over 1 h, 24 h and 7 d, and its max over
# 7 d), under each memory budget in BUDGETS (MiB; default "1024 256"). Reports wall time,
# CPU time and peak RSS (GNU time) of `skewless historical`.
#
#   bash benches/historical_aggregates.sh
#
# Needs a release build (`cargo build --release -p skewless-cli -p skewless-datagen`),
# GNU time, and the Python venv of the tests (`target/py-venv`, with pyarrow) to write the
# entity CSV and the feature rows. The feature table is filled by `skewless ingest` of the
# generated transactions as feature rows (keys, event and created times, the amount).
set -euo pipefail
cd "$(dirname "$0")/.."
features=${FEATURES:-5000000}
entities=${ENTITIES:-1000000}
budgets=${BUDGETS:-1024 256}
bin=target/release
python=${PYTHON:-target/py-venv/bin/python}
work=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT; echo "work dir: $work" >&2
mkdir -p "$work/repo"
cat > "$work/repo/skewless.toml" <<TOML
[project]
name = "bench"
[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]
[[aggregate_view]]
name = "user_txn"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
online = false
aggregations = [
    { name = "txn_count_1h", function = "count", window = "1h" },
    { name = "txn_count_24h", function = "count", window = "24h" },
    { name = "txn_count_7d", function = "count", window = "7d" },
    { name = "amount_sum_1h", function = "sum", column = "amount", window = "1h" },
    { name = "amount_sum_24h", function = "sum", column = "amount", window = "24h" },
    { name = "amount_sum_7d", function = "sum", column = "amount", window = "7d" },
    { name = "amount_mean_1h", function = "mean", column = "amount", window = "1h" },
    { name = "amount_mean_24h", function = "mean", column = "amount", window = "24h" },
    { name = "amount_mean_7d", function = "mean", column = "amount", window = "7d" },
    { name = "amount_max_7d", function = "max", column = "amount", window = "7d" },
]
TOML
"$bin/skewless-datagen" --rows "$features" --users 100000 --days 90 --end 2026-11-01T00:00:00Z \
    --out "$work/txns.parquet" >/dev/null
"$bin/skewless" ingest raw.transactions --repo "$work/repo" --from "$work/txns.parquet" --create >/dev/null
"$bin/skewless" apply --repo "$work/repo" >/dev/null
# The feature rows: the transactions' keys, times and amount.
"$python" - "$work/txns.parquet" "$work/feature_rows.parquet" <<'PY'
import sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1], columns=["user_id", "event_ts", "ingested_at", "amount"])
pq.write_table(t.rename_columns(["user_id", "event_ts", "created_ts", "amount"]), sys.argv[2])
PY
"$bin/skewless" ingest features.user_txn --repo "$work/repo" --from "$work/feature_rows.parquet" >/dev/null
"$python" - "$entities" > "$work/entities.csv" <<'PY'
import random, sys, datetime
random.seed(7)
end = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc).timestamp()
print("user_id,event_timestamp,amount,label")
for _ in range(int(sys.argv[1])):
    t = datetime.datetime.fromtimestamp(end - random.random() * 90 * 86400, datetime.timezone.utc)
    print(f"{random.randint(1, 100000)},{t.strftime('%Y-%m-%dT%H:%M:%S')}Z,{random.randint(1, 5000) / 10},{random.randint(0, 1)}")
PY
printf '| entity rows | feature rows | features | budget (MiB) | spilled | wall (s) | CPU user+sys (s) | peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|\n'
for budget in $budgets; do
    /usr/bin/time -f "%e %M %U %S" -o "$work/time.txt" "$bin/skewless" historical --repo "$work/repo" \
        --entities "$work/entities.csv" --features "user_txn:*" --out "$work/train.parquet" \
        --memory-budget "$budget" > "$work/summary.txt"
    read -r wall rss user sys < "$work/time.txt"
    spilled=$(grep -o 'spilled [0-9.]* MiB in [0-9]* files' "$work/summary.txt" || echo no)
    cpu=$(python3 -c "print(f'{$user + $sys:.2f}')")
    printf '| %s | %s | %s | %s | %s | %s | %s | %.0f |\n' "$entities" "$features" "user_txn:* (10)" \
        "$budget" "$spilled" "$wall" "$cpu" "$((rss / 1024))"
done
