"""Benchmarks of the Python package (issue 15): `Transform.run` on 8192-row pyarrow batches,
and in-process `get_online_features` for 1 entity x 10 features.

    python benches/python/bench.py [--guests target/guests/wasm32-wasip2/guest] [--inputs F]

`--inputs` takes the `amount` and `balance_before` of the first 8192 rows of a Parquet file
(`skewless-datagen --rows 8192 --seed 2` writes the batch criterion's `batch_8192` runs:
`benches/python/transform_vs_engine.sh` runs both side by side).

Needs a release build of the package (`pip install ./python`, or `maturin develop --release`
in python/). Prints medians; figures go in benches/README.md. Never run in CI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa

import skewless

ROOT = Path(__file__).resolve().parents[2]

REPO = """
[project]
name = "bench"

[[entity]]
name = "user"
join_keys = [{{ name = "user_id", type = "int64" }}]

[[batch_view]]
name = "txn"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
transform = "{component}"

[[batch_view]]
name = "txn_copy"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
transform = "{component}"
"""


def batch(rows: int) -> pa.RecordBatch:
    amount = [(i * 7919 % 100_000) / 100.0 for i in range(rows)]
    balance = [float(i * 104_729 % 5_000_000) / 100.0 for i in range(rows)]
    return pa.record_batch({"amount": amount, "balance_before": balance})


def median_seconds(call, iterations: int) -> float:
    for _ in range(min(50, iterations)):
        call()
    times = []
    for _ in range(iterations):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--guests", type=Path, default=ROOT / "target" / "guests" / "wasm32-wasip2" / "guest")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--inputs", type=Path, help="a Parquet file whose first 8192 rows are the inputs")
    parser.add_argument("--only-transform", action="store_true", help="skip the online benchmark")
    args = parser.parse_args()
    component = args.guests / "transaction_features.wasm"

    transform = skewless.Transform(component)
    if args.inputs:
        import pyarrow.parquet as pq

        table = pq.read_table(args.inputs, columns=["amount", "balance_before"]).slice(0, 8192)
        data = table.combine_chunks().to_batches()[0]
        assert data.num_rows == 8192, data.num_rows
    else:
        data = batch(8192)
    per_batch = median_seconds(lambda: transform.run(data), args.iterations // 4)
    print(f"Transform.run, 8192-row pyarrow batch: {per_batch * 1e6:.1f} µs = {8192 / per_batch / 1e6:.1f}M rows/s")
    one = batch(1)
    print(f"Transform.run, 1-row batch: {median_seconds(lambda: transform.run(one), args.iterations) * 1e6:.2f} µs")
    if args.only_transform:
        return

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "skewless.toml").write_text(REPO.format(component=component))
        store = skewless.FeatureStore(folder)
        now = dt.datetime.now(dt.timezone.utc)
        store.ingest(
            "raw.transactions",
            pa.table(
                {
                    "user_id": pa.array(range(1000), pa.int64()),
                    "event_ts": pa.array([now - dt.timedelta(hours=1)] * 1000, pa.timestamp("us", tz="UTC")),
                    "amount": [float(i) for i in range(1000)],
                    "balance_before": [1000.0] * 1000,
                }
            ),
            create=True,
        )
        store.apply()
        store.materialize()
        features = ["txn:*", "txn_copy:*"]
        rows = [{"user_id": 42}]
        assert len(store.get_online_features(features, rows, full_feature_names=True).statuses) == 10
        p50 = median_seconds(lambda: store.get_online_features(features, rows, full_feature_names=True), args.iterations)
        print(f"get_online_features, 1 entity x 10 features: p50 {p50 * 1e6:.1f} µs")
        p50 = median_seconds(
            lambda: store.get_online_features(features, rows, full_feature_names=True).to_dict(), args.iterations
        )
        print(f"  ... and .to_dict(): p50 {p50 * 1e6:.1f} µs")
        store.close()


if __name__ == "__main__":
    main()
