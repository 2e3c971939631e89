#!/usr/bin/env bash
# Aggregate view benchmark: materializing an aggregate view of 10 aggregations (count and sum
# over 1 h, 24 h and 7 d, mean and max over 24 h and 7 d) of ROWS synthetic transactions
# (default 1M, 100k users, 90 days ending now) into the feature table (Iceberg) and Redis,
# then serving 1 entity x the 10 aggregates from Redis with `skewless serve` under wrk (one
# thread, random users, CONNECTIONS default "1 2", DURATION default 8s).
# Prints rows/s of the full run and of an incremental run after a 1% append, and the serving
# p50 / p99 latency (µs) and requests/s, as Markdown.
#
#   bash benches/aggregate.sh
#   ROWS=5000000 bash benches/aggregate.sh
#
# Needs a release build (built here; BIN=<dir> uses the binaries in <dir> instead), wrk and
# redis-server. A/B comparisons of serving: SERVE_BINS="<dir> <dir>..." serves the one
# materialized repo with each directory's `skewless` in turn, ROUNDS times (default 1), so
# the builds alternate under the same machine state.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${ROWS:-1000000}
users=${USERS:-100000}
duration=${DURATION:-8s}
connections=${CONNECTIONS:-1 2}
bin=${BIN:-$PWD/target/release}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install -y redis-server" >&2; exit 1; }
[ -n "${BIN:-}" ] || cargo build --release --quiet -p skewless-cli -p skewless-datagen
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
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
pids+=($!)

repo=$work/repo
mkdir -p "$repo"
cat > "$repo/skewless.toml" <<TOML
[project]
name = "aggregate-bench"
[online]
type = "redis"
url = "redis://127.0.0.1:$redis_port"
[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]
[[aggregate_view]]
name = "agg"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
aggregations = [
    { name = "count_1h", function = "count", window = "1h" },
    { name = "count_24h", function = "count", window = "24h" },
    { name = "count_7d", function = "count", window = "7d" },
    { name = "sum_1h", function = "sum", column = "amount", window = "1h" },
    { name = "sum_24h", function = "sum", column = "amount", window = "24h" },
    { name = "sum_7d", function = "sum", column = "amount", window = "7d" },
    { name = "mean_24h", function = "mean", column = "amount", window = "24h" },
    { name = "mean_7d", function = "mean", column = "amount", window = "7d" },
    { name = "max_24h", function = "max", column = "amount", window = "24h" },
    { name = "max_7d", function = "max", column = "amount", window = "7d" },
]
TOML
"$bin/skewless-datagen" --rows "$rows" --users "$users" --days 90 --out "$work/txns.parquet" >/dev/null
"$bin/skewless-datagen" --rows $((rows / 100)) --users "$users" --days 90 --seed 7 --out "$work/late.parquet" >/dev/null
"$bin/skewless" ingest raw.transactions --repo "$repo" --from "$work/txns.parquet" --create >/dev/null
"$bin/skewless" apply --repo "$repo" >/dev/null

secs() { grep -o 'in [0-9.]* s' "$1" | tr -dc '0-9.'; }
printf '| run | source rows | wall (s) | rows/s | peak RSS (MiB) |\n|---|---|---|---|---|\n'
/usr/bin/time -f '%M' -o "$work/rss" "$bin/skewless" materialize --repo "$repo" agg > "$work/full.out"
s=$(secs "$work/full.out")
printf '| full | %d | %s | %.0f | %d |\n' "$rows" "$s" "$(echo "$rows / $s" | bc -l)" $(( $(cat "$work/rss") / 1024 ))
"$bin/skewless" ingest raw.transactions --repo "$repo" --from "$work/late.parquet" >/dev/null
/usr/bin/time -f '%M' -o "$work/rss" "$bin/skewless" materialize --repo "$repo" agg --incremental > "$work/inc.out"
s=$(secs "$work/inc.out")
printf '| incremental (1%% appended; reads the feature table back for the touched entities) | %d | %s | %.0f | %d |\n' \
    $((rows / 100)) "$s" "$(echo "$((rows / 100)) / $s" | bc -l)" $(( $(cat "$work/rss") / 1024 ))
echo

serve_bins=${SERVE_BINS:-$bin}
rounds=${ROUNDS:-1}
cat > "$work/wrk.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  return wrk.format(nil, nil, nil, '{"features":["agg:*"],"entities":{"user_id":[' .. math.random(1, $users) .. ']}}')
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.0f %.0f %d\n", latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
LUA
printf '| scenario | server | connections | p50 (µs) | p99 (µs) | requests/s | non-200 |\n|---|---|---|---|---|---|---|\n'
for _ in $(seq 1 "$rounds"); do
    for serve_bin in $serve_bins; do
        port=$(free_port)
        "$serve_bin/skewless" serve --repo "$repo" --addr "127.0.0.1:$port" 2>"$work/serve.log" &
        server=$!
        pids+=($server)
        wait_for "http://127.0.0.1:$port/ready"
        for c in $connections; do
            result=$(wrk -t1 -c"$c" -d"$duration" -s "$work/wrk.lua" "http://127.0.0.1:$port/get-online-features" | grep RESULT)
            read -r _ p50 p99 rps errors <<< "$result"
            printf '| 1 entity x 10 aggregates, Redis | %s | %s | %s | %s | %s | %s |\n' \
                "$serve_bin" "$c" "$p50" "$p99" "$rps" "$errors"
        done
        kill "$server"
        wait "$server" 2>/dev/null || true
    done
done
