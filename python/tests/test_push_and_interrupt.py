"""`FeatureStore.push` (in process, as `POST /push`) and Ctrl-C during long calls, on a real
repo: Iceberg tables on a SQLite catalog, the embedded online store, compiled components."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from feast.data_source import PushMode

import skewless

from conftest import DAY, now, source_table, write_repo

TXN = ["amount_log1p", "amount_zscore", "amount_bucket", "amount_to_balance_ratio", "is_high_value"]
TS = pa.timestamp("us", tz="UTC")

PUSH_SOURCE = """
[[push_source]]
name = "txn_push"
source = "raw.transactions"

[push]
commit_interval = "100ms"
"""


@pytest.fixture
def push_repo(tmp_path: Path, guests: Path):
    """An applied repo with a push source on `raw.transactions`; yields (store, folder, t0)."""
    folder = write_repo(tmp_path, guests)
    with open(folder / "skewless.toml", "a") as toml:
        toml.write(PUSH_SOURCE)
    t0 = now()
    store = skewless.FeatureStore(folder)
    store.ingest("raw.transactions", source_table(t0), create=True)
    store.apply()
    store.materialize()
    yield store, folder, t0
    store.close()


def rows(t0: dt.datetime, users, amounts) -> pd.DataFrame:
    """Source rows (pandas, naive-free UTC times) for `users`, an hour before `t0`."""
    at = pd.Timestamp(t0 - dt.timedelta(hours=1))
    return pd.DataFrame(
        {
            "user_id": pd.array(users, dtype="int64"),
            "event_ts": [at] * len(users),
            "ingested_at": [at] * len(users),
            "amount": amounts,
            "balance_before": [500.0] * len(users),
        }
    )


def test_a_push_is_served_at_once_and_committed_so_training_sees_it(push_repo, guests):
    store, _, t0 = push_repo
    pushed = rows(t0, [7, 8], [33.0, 1e6])
    done = store.push("txn_push", pushed)
    assert (done.rows, done.to) == (2, "online")
    # Both views fed by the source table changed for both new users.
    assert done.online_written == 4

    # What is served is what the view's component computes from the pushed rows.
    expected = skewless.Transform(guests / "transaction_features.wasm").run(
        pa.Table.from_pandas(pushed, preserve_index=False)
    )
    online = store.get_online_features([f"txn:{f}" for f in TXN], entities={"user_id": [7, 8]})
    values = online.to_arrow()
    for feature in TXN:
        assert values.column(feature).to_pylist() == expected.column(feature).to_pylist(), feature
    assert online.statuses["amount_log1p"] == ["PRESENT", "PRESENT"]

    # A push that waits for the offline commit: afterwards the training set at the label time
    # holds the same values the online store serves.
    late = store.push("txn_push", rows(t0, [9], [12.5]), to=PushMode.ONLINE_AND_OFFLINE)
    assert (late.rows, late.to) == (1, "online_and_offline")
    entities = pa.table(
        {"user_id": pa.array([7, 8, 9], pa.int64()), "event_timestamp": pa.array([t0] * 3, TS)}
    )
    training = store.get_historical_features(entities, [f"txn:{f}" for f in TXN]).to_arrow()
    served = store.get_online_features(
        [f"txn:{f}" for f in TXN], entities={"user_id": [7, 8, 9]}
    ).to_arrow()
    for feature in TXN:
        assert training.column(feature).to_pylist() == served.column(feature).to_pylist(), feature


def test_push_errors_name_what_was_wrong(push_repo):
    store, _, t0 = push_repo
    with pytest.raises(skewless.NotFound, match=r"no push source `nope` \(push sources: \[txn_push\]\)"):
        store.push("nope", rows(t0, [7], [1.0]))
    wrong_type = rows(t0, [7], [1.0]).assign(amount=["a lot"])
    with pytest.raises(skewless.SchemaMismatch, match="expected type") as error:
        store.push("txn_push", wrong_type)
    assert error.value.context["column"] == "amount"
    extra = rows(t0, [7], [1.0]).assign(colour=["red"])
    with pytest.raises(skewless.SchemaMismatch, match="a column the table does not have") as error:
        store.push("txn_push", extra)
    assert error.value.context["column"] == "colour"
    with pytest.raises(skewless.InvalidInput, match="`to` is `sideways`"):
        store.push("txn_push", rows(t0, [7], [1.0]), to="sideways")
    with pytest.raises(skewless.InvalidInput, match="transform_on_write"):
        store.push("txn_push", rows(t0, [7], [1.0]), transform_on_write="yes")
    with pytest.raises(TypeError, match="must be Arrow data"):
        store.push("txn_push", {"user_id": [7]})
    # Nothing of the refused pushes reached the online store.
    online = store.get_online_features(["txn:amount_log1p"], entities={"user_id": [7]})
    assert online.statuses["amount_log1p"] == ["NOT_FOUND"]


def test_a_repo_without_push_sources_says_so(tmp_path, guests):
    folder = write_repo(tmp_path, guests)
    with skewless.FeatureStore(folder) as store:
        store.ingest("raw.transactions", source_table(now()), create=True)
        store.apply()
        with pytest.raises(skewless.NotFound, match=r"no push source; declare one as \[\[push_source\]\]"):
            store.push("txn_push", rows(now(), [7], [1.0]))


def test_one_process_at_a_time_holds_a_push_log(push_repo, run_cli, cli):
    store, folder, t0 = push_repo
    store.push("txn_push", rows(t0, [7], [1.0]))
    # `skewless serve` of the same repo would accept pushes to the same log: it refuses to start.
    served = run_cli("serve", "--repo", folder, "--addr", "127.0.0.1:0")
    assert served.returncode != 0
    assert "is open in another process" in served.stderr, served.stderr
    # Closing the store commits what was pending and releases the log.
    store.close()
    server = subprocess.Popen(
        [str(cli), "serve", "--repo", str(folder), "--addr", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "accepting pushes to txn_push" in read_until(server, "accepting pushes")
    finally:
        server.terminate()
        server.wait(timeout=60)


def read_until(process: subprocess.Popen, needle: str) -> str:
    """stderr lines of `process` until one holds `needle` (or the process ends)."""
    seen = ""
    for line in process.stderr:
        seen += line
        if needle in line:
            break
    return seen


def big_source(t0: dt.datetime, n: int) -> pa.Table:
    """`n` transactions of 10k users over the last `n` seconds before `t0`."""
    i = np.arange(n)
    events = pa.array((np.datetime64(t0.replace(tzinfo=None), "us") - i * 1_000_000), TS)
    return pa.table(
        {
            "user_id": pa.array(i % 10_000, pa.int64()),
            "event_ts": events,
            "ingested_at": events,
            "amount": pa.array((i % 977).astype(np.float64)),
            "balance_before": pa.array((i % 5003).astype(np.float64)),
        }
    )


def interrupt_when(appears: Callable[[], bool]) -> threading.Thread:
    """Sends this process SIGINT (Ctrl-C) as soon as `appears()` holds (polled)."""

    def watch() -> None:
        deadline = time.monotonic() + 600
        while not appears() and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


@pytest.fixture
def ctrl_c_raises():
    """Python's own SIGINT handler (KeyboardInterrupt) for the test: an earlier test's library
    (pyspark's SparkContext) may have left its own installed."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_stops_materialize_and_historical_which_commit_nothing(tmp_path, guests, ctrl_c_raises):
    folder = write_repo(tmp_path, guests)
    t0 = now()
    feature_files = lambda: list((folder / ".skewless" / "warehouse").glob("features/txn/**/*.parquet"))
    with skewless.FeatureStore(folder) as store:
        store.ingest("raw.transactions", big_source(t0, 400_000), create=True)
        store.apply()

        # Interrupted once it has written its first data file: no snapshot, no files left.
        watcher = interrupt_when(lambda: bool(feature_files()))
        with pytest.raises(KeyboardInterrupt):
            store.materialize(["txn"])
        watcher.join()
        assert feature_files() == []
        entities = pa.table(
            {"user_id": pa.array(range(10_000), pa.int64()), "event_timestamp": pa.array([t0] * 10_000, TS)}
        )
        empty = store.get_historical_features(entities, ["txn:amount_log1p"])
        assert empty.metadata["snapshots"] == {"txn": None}

        # The same job runs to the end afterwards.
        (done,) = store.materialize(["txn"])
        assert done.rows == 400_000 and done.snapshot_id is not None

        # Historical retrieval interrupted while it spills: its spill folder is removed.
        tmp = folder / ".skewless" / "tmp"
        spilling = lambda: tmp.exists() and any(tmp.glob("historical-*/**/*"))
        watcher = interrupt_when(spilling)
        with pytest.raises(KeyboardInterrupt):
            store.get_historical_features(entities, ["txn:*"], memory_budget=1)
        watcher.join()
        assert not any(tmp.glob("historical-*")), list(tmp.iterdir())
        whole = store.get_historical_features(entities, ["txn:amount_log1p"]).to_arrow()
        assert whole.column("amount_log1p").null_count == 0
