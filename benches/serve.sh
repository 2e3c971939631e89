#!/usr/bin/env bash
# Online serving benchmark: wrk against `skewless serve` on this machine, for the embedded
# store, a local redis-server and a local Redis Cluster of three masters (STORES picks among
# embedded, redis and redis-cluster). Scenarios (random users per request):
#   - 1 entity, 10 stored features (3 views: txn:*, merchant:*, time:hour_of_day/day_of_week)
#   - 10 entities, the same 10 features
#   - 1 entity, txn:* (5 stored features), with and without the request-time view req:*
# Each runs for DURATION (default 10s) at every concurrency in CONNECTIONS (default "1 4 8"),
# one wrk thread. Prints p50 / p99 latency (µs) and requests/s as a Markdown table. STORES
# (default "embedded redis") picks the stores, ONLY keeps the scenarios whose name contains it,
# PIN=1 pins the server and the load generator to a CPU each.
#
#   bash benches/serve.sh
#
# Needs wrk (apt-get install wrk), redis-server, and a release build (built here; BIN=<dir>
# uses the binaries in <dir> instead). A/B comparisons: SERVE_BINS="<dir> <dir>..." serves
# each store's repo with each directory's `skewless` in turn, ROUNDS times (default 1), so
# the builds alternate under the same machine state.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
connections=${CONNECTIONS:-1 4 8}
users=${USERS:-5000}
stores=${STORES:-embedded redis}
# PIN=1 runs the server on CPU 0 and wrk and redis-server on CPU 1: steadier figures (the
# threads no longer land on each other's CPU by chance), with a server of one worker.
server_cpu=() client_cpu=()
if [ -n "${PIN:-}" ]; then server_cpu=(taskset -c 0) client_cpu=(taskset -c 1); fi
only=${ONLY:-}
bin=${BIN:-$PWD/target/release}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install -y redis-server" >&2; exit 1; }
[ -n "${BIN:-}" ] || cargo build --release --quiet -p skewless-cli -p skewless-datagen
CARGO_TARGET_DIR=target/guests cargo build --quiet --profile guest --target wasm32-wasip2 \
    -p transaction-features -p merchant-category -p time-features -p request-amount-ratio
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
"${client_cpu[@]}" redis-server --port "$redis_port" --save "" --appendonly no >/dev/null &
pids+=($!)

# The cluster: three masters without replicas (a replica would only add write traffic, which
# this read benchmark does not measure), each a redis-server on a free port, on the same CPUs
# as the single redis-server.
cluster_nodes=""
if [[ " $stores " == *" redis-cluster "* ]]; then
    cluster_ports=()
    for i in 1 2 3; do
        p=$(free_port)
        mkdir -p "$work/cluster-$p"
        (cd "$work/cluster-$p" && exec "${client_cpu[@]}" redis-server --port "$p" --save "" --appendonly no \
            --cluster-enabled yes --cluster-config-file nodes.conf >/dev/null) &
        pids+=($!)
        cluster_ports+=("$p")
    done
    for p in "${cluster_ports[@]}"; do
        for _ in $(seq 1 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    redis-cli --cluster create $(printf '127.0.0.1:%s ' "${cluster_ports[@]}") --cluster-yes >/dev/null
    for _ in $(seq 1 100); do
        redis-cli -p "${cluster_ports[0]}" cluster info | grep -q 'cluster_state:ok' && break
        sleep 0.1
    done
    cluster_nodes=$(printf '"redis://127.0.0.1:%s",' "${cluster_ports[@]}")
    cluster_nodes="[${cluster_nodes%,}]"
fi

"$bin/skewless-datagen" --rows 200000 --users "$users" --days 90 --out "$work/txns.parquet" >/dev/null

cat > "$work/wrk.lua" <<'LUA'
-- Random users per request; FEATURES is a JSON array, ENTITIES the rows per request, and
-- AMOUNT=1 adds the request field of the request-time view.
local features = os.getenv("FEATURES")
local n = tonumber(os.getenv("ENTITIES"))
local users = tonumber(os.getenv("USERS"))
local with_amount = os.getenv("AMOUNT") == "1"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local ids, amounts = {}, {}
  for i = 1, n do
    ids[i] = math.random(1, users)
    amounts[i] = string.format("%.2f", math.random() * 500)
  end
  local entities = '"user_id":[' .. table.concat(ids, ",") .. ']'
  if with_amount then entities = entities .. ',"amount":[' .. table.concat(amounts, ",") .. ']' end
  return wrk.format(nil, nil, nil, '{"features":' .. features .. ',"entities":{' .. entities .. '}}')
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.0f %.0f %d\n", latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
LUA

ten='["txn:*","merchant:*","time:hour_of_day","time:day_of_week"]'
five='["txn:*"]'
with_req='["txn:*","req:*"]'

printf '| store | scenario | connections | p50 (µs) | p99 (µs) | requests/s | non-200 |\n|---|---|---|---|---|---|---|\n'
for store in $stores; do
    repo=$work/$store
    mkdir -p "$repo"
    case $store in
        embedded) online='type = "embedded"' ;;
        redis) online=$(printf 'type = "redis"\nurl = "redis://127.0.0.1:%s"' "$redis_port") ;;
        redis-cluster) online=$(printf 'type = "redis-cluster"\nnodes = %s' "$cluster_nodes") ;;
    esac
    cat > "$repo/skewless.toml" <<TOML
[project]
name = "serve-bench"
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
[[batch_view]]
name = "merchant"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
transform = "$guest/merchant_category.wasm"
[[batch_view]]
name = "time"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
transform = "$guest/time_features.wasm"
[[request_view]]
name = "req"
transform = "$guest/request_amount_ratio.wasm"
entities = ["user"]
inputs.request_amount = { request = "amount" }
inputs.user_last_amount = { feature = "txn:amount_log1p" }
inputs.user_avg_amount_30d = { feature = "txn:amount_to_balance_ratio" }
TOML
    "$bin/skewless" ingest raw.transactions --repo "$repo" --from "$work/txns.parquet" --create >/dev/null
    "$bin/skewless" apply --repo "$repo" >/dev/null
    "$bin/skewless" materialize --repo "$repo" --all >/dev/null 2>&1
    for _ in $(seq 1 "${ROUNDS:-1}"); do
    for serve_bin in ${SERVE_BINS:-$bin}; do
    port=$(free_port)
    "${server_cpu[@]}" "$serve_bin/skewless" serve --repo "$repo" --addr "127.0.0.1:$port" 2>"$work/serve-$store.log" &
    pids+=($!)
    wait_for "http://127.0.0.1:$port/ready"
    label=$store
    [ -z "${SERVE_BINS:-}" ] || label="$store ($serve_bin)"
    for scenario in "1 entity, 10 features|$ten|1|0" "10 entities, 10 features|$ten|10|0" \
        "1 entity, 5 features|$five|1|0" "1 entity, 5 features + request view|$with_req|1|1"; do
        IFS='|' read -r name features entities amount <<<"$scenario"
        [[ "$name" == *"$only"* ]] || continue
        for c in $connections; do
            out=$(FEATURES=$features ENTITIES=$entities AMOUNT=$amount USERS=$users \
                "${client_cpu[@]}" wrk -t1 -c"$c" -d"$duration" -s "$work/wrk.lua" "http://127.0.0.1:$port/get-online-features")
            read -r p50 p99 rps bad <<<"$(grep '^RESULT' <<<"$out" | cut -d' ' -f2-)"
            printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$name" "$c" "$p50" "$p99" "$rps" "$bad"
        done
    done
    kill "${pids[-1]}"
    wait "${pids[-1]}" 2>/dev/null || true
    done
    done
done
