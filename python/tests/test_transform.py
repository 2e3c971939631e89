"""`skewless.Transform` against the command line (`skewless inspect`, `skewless run`) on the
real compiled components."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import skewless

from conftest import copy_component


def transactions(rows: int = 20_000) -> pa.Table:
    """Amounts and balances with nulls, negatives, zeros and large values."""
    amount = [None if i % 97 == 0 else (i % 1000) * 1.37 - 50.0 for i in range(rows)]
    balance = [None if i % 89 == 0 else float((i * 7919) % 5000) for i in range(rows)]
    return pa.table({"amount": pa.array(amount, pa.float64()), "balance_before": pa.array(balance, pa.float64())})


@pytest.fixture
def txn(guests: Path, engine: skewless.Engine) -> skewless.Transform:
    return skewless.Transform(guests / "transaction_features.wasm", engine)


def test_signature_and_digest_are_what_the_cli_inspects(txn, guests, run_cli):
    shown = run_cli("inspect", guests / "transaction_features.wasm", "--json")
    assert shown.returncode == 0, shown.stderr
    inspected = json.loads(shown.stdout)
    assert txn.digest == inspected["digest"]
    assert txn.signature.name == inspected["name"] == "transaction-features"
    assert txn.signature.version == inspected["version"]
    assert [(f.name, f.type, f.nullable) for f in txn.signature.outputs] == [
        (f["name"], f["type"], f["nullable"]) for f in inspected["outputs"]
    ]
    assert [f.name for f in txn.signature.inputs] == ["amount", "balance_before"]
    assert txn.output_schema.names == [f.name for f in txn.signature.outputs]
    assert txn.input_schema.field("amount").type == pa.float64()


def test_run_equals_skewless_run_for_every_kind_of_input(txn, tmp_path, run_cli):
    data = transactions()
    pq.write_table(data, tmp_path / "in.parquet")
    done = run_cli("run", txn.path, "--input", tmp_path / "in.parquet", "--output", tmp_path / "out.parquet")
    assert done.returncode == 0, done.stderr
    expected = pq.read_table(tmp_path / "out.parquet")
    assert expected.num_rows == data.num_rows

    assert txn.run(data).equals(expected)
    assert txn.run(data.to_reader(max_chunksize=1000)).equals(expected)
    assert txn.run(pl.from_arrow(data)).equals(expected)
    assert txn.run(data.to_pandas()).equals(expected)
    batch = txn.run(data.to_batches()[0])
    assert isinstance(batch, pa.RecordBatch)
    assert pa.Table.from_batches([batch]).equals(expected.slice(0, batch.num_rows))
    # Columns are matched by name: order and extra columns do not matter.
    shuffled = data.select(["balance_before", "amount"]).append_column("other", pa.array(["x"] * data.num_rows))
    assert txn.run(shuffled, threads=1).equals(expected)


def test_a_pickled_transform_run_in_another_process_equals_skewless_run(txn, tmp_path, run_cli):
    data = transactions(5000)
    pq.write_table(data, tmp_path / "in.parquet")
    done = run_cli("run", txn.path, "--input", tmp_path / "in.parquet", "--output", tmp_path / "cli.parquet")
    assert done.returncode == 0, done.stderr
    (tmp_path / "t.pickle").write_bytes(pickle.dumps(txn))
    script = (
        "import pickle, sys, pyarrow.parquet as pq\n"
        "t = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "pq.write_table(t.run(pq.read_table(sys.argv[2])), sys.argv[3])\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, tmp_path / "t.pickle", tmp_path / "in.parquet", tmp_path / "py.parquet"],
        check=True,
    )
    assert pq.read_table(tmp_path / "py.parquet").equals(pq.read_table(tmp_path / "cli.parquet"))


def test_unpickling_refuses_a_component_whose_digest_changed(guests, tmp_path, engine):
    path = copy_component(guests / "transaction_features.wasm", tmp_path / "features.wasm")
    pickled = pickle.dumps(skewless.Transform(path, engine))
    copy_component(guests / "request_amount_ratio.wasm", path)
    with pytest.raises(skewless.InvalidComponent) as e:
        pickle.loads(pickled)
    original = skewless.Transform(guests / "transaction_features.wasm", engine).digest
    changed = skewless.Transform(guests / "request_amount_ratio.wasm", engine).digest
    assert f"expected {original}, found {changed}" in str(e.value)
    assert e.value.context["file"] == str(path)


def test_a_wrong_column_type_is_a_schema_mismatch_naming_the_column(txn):
    with pytest.raises(skewless.SchemaMismatch) as e:
        txn.run(pa.table({"amount": ["12.5"], "balance_before": [1.0]}))
    assert e.value.context["column"] == "amount"
    assert "declares it float64" in str(e.value)
    assert isinstance(e.value, ValueError)
    with pytest.raises(skewless.SchemaMismatch, match="balance_before"):
        txn.run(pa.table({"amount": [1.0]}))


def test_errors_carry_the_message_the_cli_prints(tmp_path, run_cli, engine):
    missing = tmp_path / "missing.wasm"
    with pytest.raises(skewless.IoError) as e:
        skewless.Transform(missing, engine)
    cli = run_cli("inspect", missing)
    assert cli.returncode == 1
    assert cli.stderr == f"error: {e.value}\n"
    not_a_component = tmp_path / "junk.wasm"
    not_a_component.write_bytes(b"not wasm")
    with pytest.raises(skewless.InvalidComponent) as e:
        skewless.Transform(not_a_component, engine)
    assert run_cli("inspect", not_a_component).stderr == f"error: {e.value}\n"


def test_a_failing_component_raises_by_kind_and_the_engine_keeps_running(guests):
    engine = skewless.Engine(cache_dir=False, deadline_ms=300, memory_limit_mib=64)
    hostile = skewless.Transform(guests / "hostile_guest.wasm", engine)

    def mode(m: int) -> pa.RecordBatch:
        return pa.record_batch({"mode": pa.array([m], pa.int32())})

    with pytest.raises(skewless.Trapped) as e:
        hostile.run(mode(3))
    assert e.value.context["digest"] == hostile.digest
    with pytest.raises(skewless.DeadlineExceeded):
        hostile.run(mode(1))
    with pytest.raises(skewless.MemoryLimitExceeded):
        hostile.run(mode(2))
    with pytest.raises(skewless.TransformFailed) as e:
        hostile.run(mode(8))
    assert e.value.context["column"] == "mode"
    assert hostile.run(mode(0)).column("out").to_pylist() == [1]


FAULTHANDLER_AFTER_THE_ENGINE = """
import faulthandler, sys
import pyarrow as pa
import skewless

hostile = skewless.Transform(sys.argv[1], skewless.Engine(cache_dir=False))
# What ray.init() and `python -X faulthandler` do: handlers of its own for SIGSEGV, SIGILL and
# SIGFPE, on top of the engine's.
faulthandler.enable()
for _ in range(2):
    try:
        hostile.run(pa.record_batch({"mode": pa.array([3], pa.int32())}))
    except skewless.Trapped as e:
        print("trapped:", e.context["digest"])
print(hostile.run(pa.record_batch({"mode": pa.array([0], pa.int32())})).column("out").to_pylist())
"""


def test_a_trap_stays_an_exception_after_faulthandler_is_enabled(guests):
    # In a process of its own: pytest enables faulthandler before the engine exists, which is
    # the harmless order; this is the other one.
    done = subprocess.run(
        [sys.executable, "-c", FAULTHANDLER_AFTER_THE_ENGINE, str(guests / "hostile_guest.wasm")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("trapped: sha256:") for line in lines[:2]), done.stdout
    assert lines[2] == "[1]"
    assert "Fatal Python error" not in done.stderr


def test_data_that_is_not_arrow_is_a_type_error(txn):
    with pytest.raises(TypeError, match="__arrow_c_stream__"):
        txn.run({"amount": [1.0]})
    with pytest.raises(TypeError, match="got builtins.list"):
        txn.run([1.0, 2.0])


def test_exceptions_pickle_with_their_context(txn):
    with pytest.raises(skewless.SchemaMismatch) as e:
        txn.run(pa.table({"amount": ["x"], "balance_before": [1.0]}))
    again = pickle.loads(pickle.dumps(e.value))
    assert type(again) is skewless.SchemaMismatch
    assert str(again) == str(e.value) and again.context == e.value.context
