"""A pickled `Transform` in the engines teams run: Spark (`mapInArrow`, local mode) and Ray
(`map_batches`), each compared bit for bit with `skewless run` on the same rows.

pyspark and ray are pinned in tests/python/requirements.txt; Spark also needs Java 17
(`apt-get install -y openjdk-17-jre-headless`). Where one is missing its test is skipped with
the reason, unless SKEWLESS_REQUIRE_TOOLCHAINS=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

import importlib.util
import os
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import skewless

from conftest import _required


def need(ok: bool, why: str) -> None:
    if ok:
        return
    if _required():
        pytest.fail(why + "; SKEWLESS_REQUIRE_TOOLCHAINS=1 makes this a failure")
    pytest.skip(why)


def rows(n: int = 10_000) -> pa.Table:
    amount = [None if i % 97 == 0 else (i % 1000) * 1.37 - 50.0 for i in range(n)]
    balance = [None if i % 89 == 0 else float((i * 7919) % 5000) for i in range(n)]
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "amount": pa.array(amount, pa.float64()),
            "balance_before": pa.array(balance, pa.float64()),
        }
    )


def bits(table: pa.Table) -> dict:
    """Each column's validity and the bits of its valid values (floats compared as integers,
    so -0.0 and 0.0, or two NaNs, are told apart)."""
    out = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        valid = np.asarray(column.is_valid())
        if pa.types.is_floating(column.type):
            values = column.fill_null(0).to_numpy().view(np.uint64)
        else:
            values = np.asarray(column.fill_null(False if pa.types.is_boolean(column.type) else 0))
        out[name] = (valid.tolist(), values[valid].tolist())
    return out


@pytest.fixture
def expected(guests: Path, tmp_path: Path, run_cli) -> pa.Table:
    data = rows()
    pq.write_table(data, tmp_path / "in.parquet")
    done = run_cli(
        "run", guests / "transaction_features.wasm", "--input", tmp_path / "in.parquet",
        "--output", tmp_path / "out.parquet", "--keep-input",
    )
    assert done.returncode == 0, done.stderr
    return pq.read_table(tmp_path / "out.parquet").drop_columns(["amount", "balance_before"])


def mapper(transform: skewless.Transform):
    """A function of a batch: the transform's outputs after the row's id (so the engine's row
    order does not matter). Nested, so the engines pickle it by value with the Transform in
    it (a module-level function is pickled by name, and this test module is not importable
    on their workers)."""

    def with_id(batch):
        out = transform.run(batch)  # a Table for a Table (Ray), a RecordBatch for one (Spark)
        if isinstance(out, pa.Table):
            return out.add_column(0, "id", batch.column("id"))
        return pa.RecordBatch.from_arrays([batch.column("id"), *out.columns], names=["id", *out.schema.names])

    return with_id


def test_spark_map_in_arrow_equals_skewless_run(guests, expected, monkeypatch):
    need(importlib.util.find_spec("pyspark") is not None, "pyspark is not installed (bash tests/python/setup-venv.sh)")
    need(shutil.which("java") is not None, "Spark needs Java 17 (apt-get install -y openjdk-17-jre-headless)")
    from pyspark.sql import SparkSession

    # Spark's Python workers run this interpreter (its environment has skewless), not the
    # first `python3` on the PATH.
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)

    transform = skewless.Transform(guests / "transaction_features.wasm")
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    try:
        df = spark.createDataFrame(rows().to_pandas()).repartition(3)
        schema = (
            "id long, amount_log1p double, amount_zscore double, amount_bucket int, "
            "amount_to_balance_ratio double, is_high_value boolean"
        )
        # The function (and the Transform in it) is pickled to Spark's Python workers.
        with_id = mapper(transform)
        out = df.mapInArrow(lambda batches: (with_id(b) for b in batches), schema).toArrow()
    finally:
        spark.stop()
    assert out.num_rows == expected.num_rows
    # The same columns (Spark and Ray make every column nullable), the same bits.
    got = out.sort_by("id").cast(expected.schema)
    assert expected.column_names[0] == "id"
    assert bits(got) == bits(expected)


RAY_DRIVER = """
import sys
import pyarrow as pa, pyarrow.parquet as pq
import ray, ray.data
import skewless
from test_engines import mapper, rows

# The transform before ray.init(), which enables Python's faulthandler on top of the engine's
# trap handlers: the package puts them back before each call, so the order does not matter.
transform = skewless.Transform(sys.argv[1])
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
ds = ray.data.from_arrow(rows()).map_batches(mapper(transform), batch_format="pyarrow", batch_size=1000)
pq.write_table(pa.concat_tables(ray.get(ds.to_arrow_refs())), sys.argv[2])
ray.shutdown()
"""


def test_ray_map_batches_equals_skewless_run(guests, expected, tmp_path):
    need(importlib.util.find_spec("ray") is not None, "ray is not installed (bash tests/python/setup-venv.sh)")
    # A driver of its own (see RAY_DRIVER), so this test process's handlers stay as they are.
    subprocess.run(
        [sys.executable, "-c", RAY_DRIVER, str(guests / "transaction_features.wasm"), str(tmp_path / "ray.parquet")],
        check=True,
        cwd=Path(__file__).parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    out = pq.read_table(tmp_path / "ray.parquet")
    assert out.num_rows == expected.num_rows
    got = out.sort_by("id").cast(expected.schema)
    assert bits(got) == bits(expected)
