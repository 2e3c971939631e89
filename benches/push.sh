#!/usr/bin/env bash
# Push and stream benchmark on this machine, for the embedded store and a local redis-server:
#   - POST /push throughput: wrk, batches of ROWS (default 100) random transactions per
#     request, `to` = online (acknowledged once visible online and logged), at every
#     concurrency in CONNECTIONS (default "1 4 8") for DURATION (default 10s);
#   - push-ack -> visible online: with `to` = online the online write precedes the
#     acknowledgement, so the push's own latency bounds it; p50 / p99 at 1 connection;
#   - offline visibility: the server's skewless_push_commit_lag_seconds (arrival -> commit);
#   - stream consumer: STREAM_EVENTS (default 200000) messages XADDed to a Redis stream, then
#     `skewless stream` until the group has consumed and acknowledged all of them: events/s.
# Prints Markdown tables. STORES (default "embedded redis") picks the stores.
#
#   bash benches/push.sh
#
# Needs wrk (apt-get install wrk), redis-server, redis-cli, and a release build (built here;
# BIN=target/debug SKIP_BUILD=1 runs it against a debug build, to check the script only).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
connections=${CONNECTIONS:-1 4 8}
rows=${ROWS:-100}
users=${USERS:-5000}
stores=${STORES:-embedded redis}
events=${STREAM_EVENTS:-200000}
bin=${BIN:-$PWD/target/release}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install -y redis-server" >&2; exit 1; }
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet -p skewless-cli -p skewless-datagen
fi
CARGO_TARGET_DIR=target/guests cargo build --quiet --profile guest --target wasm32-wasip2 -p transaction-features
guest=$PWD/target/guests/wasm32-wasip2/guest
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
echo "work dir: $work" >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 1 300); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "$1 never answered" >&2; exit 1; }

redis_port=$(free_port)
redis-server --port "$redis_port" --save "" --appendonly no >/dev/null &
pids+=($!)
"$bin/skewless-datagen" --rows 1000 --users "$users" --days 1 --out "$work/seed.parquet" >/dev/null

cat > "$work/wrk.lua" <<'LUA'
-- ROWS random transactions per request, event times around now.
local rows = tonumber(os.getenv("ROWS"))
local users = tonumber(os.getenv("USERS"))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local ids, ts, amounts, balances, txns, merchants = {}, {}, {}, {}, {}, {}
  local now = os.time() * 1000000
  for i = 1, rows do
    ids[i] = math.random(1, users)
    ts[i] = string.format("%d", now - math.random(0, 3600000000))
    amounts[i] = string.format("%.2f", math.random() * 500)
    balances[i] = string.format("%.2f", 1000 + math.random() * 5000)
    txns[i] = string.format("%d", math.random(1, 2000000000))
    merchants[i] = '"BENCH"'
  end
  local df = '"user_id":[' .. table.concat(ids, ",") .. '],"event_ts":[' .. table.concat(ts, ",")
    .. '],"ingested_at":[' .. table.concat(ts, ",") .. '],"amount":[' .. table.concat(amounts, ",")
    .. '],"balance_before":[' .. table.concat(balances, ",") .. '],"txn_id":[' .. table.concat(txns, ",")
    .. '],"merchant":[' .. table.concat(merchants, ",") .. ']'
  return wrk.format(nil, nil, nil, '{"push_source_name":"txn_push","to":"online","df":{' .. df .. '}}')
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.0f %.0f %d\n", latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
LUA

repo_for() {
    local store=$1 repo=$work/${2:-$1} online
    mkdir -p "$repo"
    case $store in
        embedded) online='type = "embedded"' ;;
        redis) online=$(printf 'type = "redis"\nurl = "redis://127.0.0.1:%s"' "$redis_port") ;;
    esac
    cat > "$repo/skewless.toml" <<TOML
[project]
name = "push-bench"
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
transform = "$guest/transaction_features.wasm"
[[push_source]]
name = "txn_push"
source = "raw.transactions"
[push]
commit_interval = "1s"
max_rows = 100000
TOML
    "$bin/skewless" ingest raw.transactions --repo "$repo" --from "$work/seed.parquet" --create >/dev/null
    "$bin/skewless" apply --repo "$repo" >/dev/null
    "$bin/skewless" materialize --repo "$repo" --all >/dev/null 2>&1
}

printf '| store | connections | rows/request | p50 (µs) | p99 (µs) | requests/s | rows/s | non-200 |\n|---|---|---|---|---|---|---|---|\n'
for store in $stores; do
    repo_for "$store"
    port=$(free_port)
    "$bin/skewless" serve --repo "$work/$store" --addr "127.0.0.1:$port" 2>"$work/serve-$store.log" &
    server=$!
    pids+=($server)
    wait_for "http://127.0.0.1:$port/ready"
    for c in $connections; do
        out=$(ROWS=$rows USERS=$users wrk -t1 -c"$c" -d"$duration" -s "$work/wrk.lua" "http://127.0.0.1:$port/push")
        read -r p50 p99 rps bad <<<"$(grep '^RESULT' <<<"$out" | cut -d' ' -f2-)"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$store" "$c" "$rows" "$p50" "$p99" "$rps" \
            "$(python3 -c "print(round($rps * $rows))")" "$bad"
    done
    sleep 2
    # The lag's sum and count (its mean), and how many commits came within 1.64 s and 3.28 s
    # of their rows' arrival (the histogram's buckets around the 1 s interval + 1 s).
    curl -s "http://127.0.0.1:$port/metrics" |
        grep -E '^skewless_push_commit_lag_seconds_(sum|count)|^skewless_push_commit_lag_seconds_bucket.*le="(1\.638[0-9]*|3\.276[0-9]*)"' >&2 || true
    kill "$server"; wait "$server" 2>/dev/null || true
done

# Stream consumer: fill the stream, then consume it all.
repo_for redis stream-redis
stream=bench
python3 - "$redis_port" "$events" "$users" <<'PY' | redis-cli -p "$redis_port" --pipe >/dev/null
import json, random, sys, time
port, n, users = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time() * 1e6)
out = sys.stdout
for i in range(n):
    ts = now - random.randint(0, 3_600_000_000)
    row = json.dumps({"user_id": random.randint(1, users), "event_ts": ts, "ingested_at": ts + i,
                      "amount": round(random.random() * 500, 2), "balance_before": 2000.0,
                      "txn_id": i, "merchant": "BENCH"})
    args = ["XADD", "bench", "*", "row", row]
    out.write("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a.encode()), a) for a in args))
PY
echo "stream length: $(redis-cli -p "$redis_port" XLEN $stream)" >&2
start=$(date +%s.%N)
"$bin/skewless" stream --repo "$work/stream-redis" --push-source txn_push --redis "redis://127.0.0.1:$redis_port" \
    --stream $stream --group bench --batch 5000 2>"$work/stream.log" &
consumer=$!
pids+=($consumer)
while :; do
    lag=$(redis-cli -p "$redis_port" XINFO GROUPS $stream 2>/dev/null | awk 'f{print; exit} /^lag$/{f=1}')
    pending=$(redis-cli -p "$redis_port" XPENDING $stream bench 2>/dev/null | head -1)
    [ "${lag:-1}" = "0" ] && [ "${pending:-1}" = "0" ] && break
    sleep 0.05
done
end=$(date +%s.%N)
kill "$consumer"; wait "$consumer" 2>/dev/null || true
printf '\n| stream | events | seconds | events/s |\n|---|---|---|---|\n'
python3 -c "s=$end-$start; print('| redis -> redis | $events | %.2f | %.0f |' % (s, $events / s))"
