#!/usr/bin/env bash
# Distribution on Ray against the single-process CLI, on the same cores: materialize ROWS
# (default 5M) generated transactions (100k users, 90 days; ingested as FILES appends, default
# 10, so that the source has files to share out) through `transaction-features`
# into the feature table and the embedded online store, and retrieve LABELS (default 1M) label
# rows against the result; once with `skewless`, once with `skewless.ray` on a cluster of
# NODES (default 2) nodes of one CPU each started on this machine. Then the scale-out model's
# inputs: the same job step by step for each part count in PARTS (default "2 8 32"): driver
# plan and commit times and each worker's rows/s (benches/python/ray_bench.py).
#
#   PYTHON=/path/to/venv/bin/python bash benches/ray.sh
#
# Needs a release build (`cargo build --release -p skewless-cli -p skewless-datagen`), GNU
# time, and a Python with Ray and the package built in release (`cd python && maturin build
# --release`, then pip install the wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${ROWS:-5000000}
labels=${LABELS:-1000000}
nodes=${NODES:-2}
parts=${PARTS:-2 8 32}
python=${PYTHON:-python3}
bin=${BIN_DIR:-target/release}
CARGO_TARGET_DIR=target/guests cargo build --quiet --profile guest --target wasm32-wasip2 -p transaction-features
guest=$PWD/target/guests/wasm32-wasip2/guest
work=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT; echo "work dir: $work" >&2

files=${FILES:-10}
for i in $(seq 1 "$files"); do
    "$bin/skewless-datagen" --rows $((rows / files)) --users 100000 --days 90 --seed "$i" \
        --end 2026-11-01T00:00:00Z --out "$work/txns-$i.parquet" >/dev/null
done
"$python" - "$labels" "$work/labels.parquet" <<'PY'
import sys, datetime
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
n, out = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(7)
end = int(datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc).timestamp() * 1_000_000)
pq.write_table(pa.table({
    "user_id": pa.array(rng.integers(1, 100_001, n), pa.int64()),
    "event_timestamp": pa.array(end - rng.integers(0, 90 * 86_400_000_000, n), pa.timestamp("us", tz="UTC")),
    "label": pa.array(rng.integers(0, 2, n).astype(bool)),
}), out)
PY

# One repo per run, each ingested and applied the same way.
make_repo() {
    mkdir -p "$1"
    cat > "$1/skewless.toml" <<TOML
[project]
name = "ray-bench"
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
TOML
    "$bin/skewless" ingest raw.transactions --repo "$1" --from "$work/txns-1.parquet" --create >/dev/null
    for i in $(seq 2 "$files"); do
        "$bin/skewless" ingest raw.transactions --repo "$1" --from "$work/txns-$i.parquet" >/dev/null
    done
    "$bin/skewless" apply --repo "$1" >/dev/null
}
for repo in cli ray phases; do make_repo "$work/$repo"; done

field() { "$python" -c 'import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]])' "$1" "$2"; }

printf '| job | engine | wall (s) | rows/s | peak RSS of the driver (MiB) | note |\n|---|---|---|---|---|---|\n'
/usr/bin/time -f "%e %M" -o "$work/time.txt" "$bin/skewless" materialize --repo "$work/cli" txn >/dev/null
read -r wall rss < "$work/time.txt"
printf '| materialize %s rows | CLI | %s | %.0f | %s | |\n' "$rows" "$wall" "$(echo "$rows / $wall" | bc -l)" "$((rss / 1024))"

/usr/bin/time -f "%e %M" -o "$work/time.txt" "$python" benches/python/ray_bench.py materialize "$work/ray" txn "$nodes" > "$work/ray.json"
read -r _ rss < "$work/time.txt"
wall=$(field "$(cat "$work/ray.json")" wall_s)
printf '| materialize %s rows | Ray, %s nodes | %.2f | %.0f | %s | %s parts on %s nodes; cluster start %.1f s not counted |\n' \
    "$rows" "$nodes" "$wall" "$(echo "$rows / $wall" | bc -l)" "$((rss / 1024))" \
    "$(field "$(cat "$work/ray.json")" parts)" "$(field "$(cat "$work/ray.json")" nodes)" \
    "$(field "$(cat "$work/ray.json")" cluster_start_s)"

/usr/bin/time -f "%e %M" -o "$work/time.txt" "$bin/skewless" historical --repo "$work/cli" \
    --entities "$work/labels.parquet" --features "txn:*" --out "$work/cli.parquet" >/dev/null
read -r wall rss < "$work/time.txt"
printf '| historical %s x %s | CLI | %s | %.0f | %s | |\n' "$labels" "$rows" "$wall" "$(echo "$labels / $wall" | bc -l)" "$((rss / 1024))"

# On the CLI's repo: the same snapshots, so the two training sets can be the same bytes.
/usr/bin/time -f "%e %M" -o "$work/time.txt" "$python" benches/python/ray_bench.py historical "$work/cli" \
    "$work/labels.parquet" "txn:*" "$work/ray.parquet" "$nodes" > "$work/ray.json"
read -r _ rss < "$work/time.txt"
wall=$(field "$(cat "$work/ray.json")" wall_s)
same=$(cmp -s "$work/cli.parquet" "$work/ray.parquet" && echo "same bytes as the CLI's" || echo "DIFFERS from the CLI's")
printf '| historical %s x %s | Ray, %s nodes | %.2f | %.0f | %s | %s partitions; %s |\n' "$labels" "$rows" "$nodes" \
    "$wall" "$(echo "$labels / $wall" | bc -l)" "$((rss / 1024))" "$(field "$(cat "$work/ray.json")" parts)" "$same"

echo
printf '| parts | data files | plan (s) | tasks (s) | commit (s) | wall (s) | rows/s of one worker | nodes |\n|---|---|---|---|---|---|---|---|\n'
# shellcheck disable=SC2086
"$python" benches/python/ray_bench.py phases "$work/phases" txn "$nodes" $parts > "$work/phases.json"
"$python" - "$work/phases.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["runs"]:
    print(f"| {r['parts']} | {r['files']} | {r['plan_s']:.2f} | {r['tasks_s']:.2f} | {r['commit_s']:.2f} "
          f"| {r['wall_s']:.2f} | {r['worker_rows_per_s']:.0f} | {r['nodes']} |")
PY
