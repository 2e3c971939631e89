#!/usr/bin/env bash
# Materialization benchmark: N synthetic transactions through the numeric example transform
# into the offline table (Iceberg) plus the embedded online store, or plus Redis.
# Reports rows/s (from `skewless materialize`) and peak RSS (GNU time).
#
# Then, on each repo: a 1% append to the source (late rows: event times over the same 90 days)
# and `materialize --incremental`, which reads only the appended files (its time against the
# full run's); a full re-run, which replaces the feature table's rows (live size unchanged,
# the replaced files stay on disk for time travel); and `skewless expire --older-than 0s`,
# which deletes the files only expired snapshots referenced.
#
#   bash benches/materialize.sh                  # 1M and 5M rows, embedded and Redis
#   SIZES="1000000" STORES="embedded" bash benches/materialize.sh
#   VIEW=last-transaction SIZES=5000000 STORES=redis FULL_ONLY=1 bash benches/materialize.sh
#
# VIEW picks the view's component: `transaction-features` (the numeric example, default) or
# `last-transaction` (benches/guests: the amount, the merchant string and a refund flag
# passed through, with a 7-day TTL: a last-transaction view as feature stores' own benchmarks
# define it). FULL_ONLY=1 skips the incremental run, the re-run and the expiry.
#
# Needs: a release build (`cargo build --release -p skewless-cli -p skewless-datagen`),
# the example components (built here), GNU time (`apt-get install -y time`) and, for Redis,
# redis-server on PATH (started here on a free port and stopped after).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES:-"1000000 5000000"}
stores=${STORES:-"embedded redis"}
bin=${BIN:-target/release}
view=${VIEW:-transaction-features}
case "$view" in
    transaction-features) ttl="" ;;
    last-transaction) ttl='ttl = "7d"' ;;
    *) echo "VIEW is transaction-features or last-transaction, not $view" >&2; exit 1 ;;
esac
CARGO_TARGET_DIR=target/guests cargo build --quiet --profile guest --target wasm32-wasip2 -p "$view"
component=$PWD/target/guests/wasm32-wasip2/guest/${view//-/_}.wasm
work=$(mktemp -d)
trap 'kill $(cat "$work/redis.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [[ " $stores " == *" redis "* ]]; then
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
        --pidfile "$work/redis.pid" --dir "$work" >/dev/null
fi

printf '| view | rows | online store | rows/s | wall (s) | CPU user+sys (s) | peak RSS (MiB) |\n|---|---|---|---|---|---|---|\n'
# Seconds and rows of a `skewless materialize` output line.
secs() { grep -o 'in [0-9.]* s' "$1" | tr -dc '0-9.'; }
mib() { du -sm "$1" | cut -f1; }
later=""
for rows in $sizes; do
    "$bin/skewless-datagen" --rows "$rows" --users 100000 --days 90 --out "$work/txns-$rows.parquet" >/dev/null
    for store in $stores; do
        repo="$work/repo-$rows-$store"
        mkdir -p "$repo"
        online='type = "embedded"'
        [ "$store" = redis ] && online="type = \"redis\"
url = \"redis://127.0.0.1:$port\""
        [ "$store" = redis ] && redis-cli -p "$port" flushall >/dev/null
        cat > "$repo/skewless.toml" <<TOML
[project]
name = "bench"
[online]
$online
[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]
[[batch_view]]
name = "txn"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
transform = "$component"
$ttl
TOML
        "$bin/skewless" ingest raw.transactions --repo "$repo" --from "$work/txns-$rows.parquet" --create >/dev/null
        "$bin/skewless" apply --repo "$repo" >/dev/null
        # The data just generated and ingested is written back to disk first, so that the
        # kernel's writeback of it does not run beside (and count against) the job measured.
        sync
        /usr/bin/time -v -o "$work/time.txt" "$bin/skewless" materialize --repo "$repo" txn > "$work/out.txt"
        rate=$(grep -o '([0-9]* rows/s)' "$work/out.txt" | tr -dc '0-9')
        wall=$(grep -o 'in [0-9.]* s' "$work/out.txt" | tr -dc '0-9.')
        rss=$(awk '/Maximum resident set size/ {printf "%.0f", $6/1024}' "$work/time.txt")
        cpu=$(awk '/User time|System time/ {s += $NF} END {printf "%.2f", s}' "$work/time.txt")
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$view" "$rows" "$store" "$rate" "$wall" "$cpu" "$rss"
        [ -z "${FULL_ONLY:-}" ] || continue

        # 1% more rows, appended as one more source snapshot, then an incremental run.
        extra=$((rows / 100))
        "$bin/skewless-datagen" --rows "$extra" --users 100000 --days 90 --seed 7 --out "$work/extra-$rows.parquet" >/dev/null
        "$bin/skewless" ingest raw.transactions --repo "$repo" --from "$work/extra-$rows.parquet" >/dev/null
        sync
        "$bin/skewless" materialize --repo "$repo" --incremental txn > "$work/inc.txt"
        inc_rows=$(grep -o ': [0-9]* rows' "$work/inc.txt" | tr -dc '0-9')
        inc=$(secs "$work/inc.txt")
        table="$repo/.skewless/warehouse/features/txn"
        size_before=$(mib "$table")
        sync
        "$bin/skewless" materialize --repo "$repo" txn > "$work/rerun.txt"
        rerun=$(secs "$work/rerun.txt")
        size_after=$(mib "$table")
        "$bin/skewless" expire --repo "$repo" txn --older-than 0s > "$work/expire.txt"
        size_expired=$(mib "$table")
        later+=$(printf '| %s | %s | %s | %s s (%s%% of the full run) | %s s | %s | %s | %s |' \
            "$rows" "$store" "$inc_rows" "$inc" "$(awk -v a="$inc" -v b="$wall" 'BEGIN {printf "%.1f", 100*a/b}')" \
            "$rerun" "$size_before" "$size_after" "$size_expired")$'\n'
    done
done
[ -z "${FULL_ONLY:-}" ] || exit 0
printf '\n| rows | online store | incremental rows (1%% append) | incremental run | full re-run | table on disk before re-run (MiB) | after re-run | after expire |\n|---|---|---|---|---|---|---|---|\n'
printf '%s' "$later"
