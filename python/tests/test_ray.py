"""`skewless.ray` on a real Ray cluster (a head and two worker nodes, one CPU each, started
once per session with `ray.cluster_utils.Cluster`) over the example feature repo
(examples/feature-repo: three batch views and an aggregate view) with real Iceberg tables
and the embedded online store.

The oracle is the single-machine path: `FeatureStore.materialize` for the offline rows, the
snapshot summaries and the online values, and the `skewless historical` command for the
training set, compared byte for byte. The feature tables are read back with PyIceberg, not
through skewless.

Ray is pinned in tests/python/requirements.txt; without it these tests are skipped, unless
SKEWLESS_REQUIRE_TOOLCHAINS=1 (CI) makes that a failure.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Dict, List

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import skewless

from conftest import WORKSPACE, _required

VIEWS = ["user_transaction_features", "user_merchant_features", "user_time_features", "user_txn_aggregates"]
SERVICE = "fraud_model_v1"
USERS = 60


def need_ray() -> None:
    if importlib.util.find_spec("ray") is not None:
        return
    why = "ray is not installed (bash tests/python/setup-venv.sh)"
    if _required():
        pytest.fail(why + "; SKEWLESS_REQUIRE_TOOLCHAINS=1 makes this a failure")
    pytest.skip(why)


@pytest.fixture(scope="session")
def ray_cluster():
    """A head and two worker nodes of one CPU each, on this machine; `ray` connected to it."""
    need_ray()
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def transactions(seed: int, rows: int, now: dt.datetime) -> pa.Table:
    """Card transactions in the example's source schema, over the last 10 days (a tenth within
    the last hour, so that every aggregation window holds rows), with nulls."""
    rng = np.random.default_rng(seed)
    ts = pa.timestamp("us", tz="UTC")
    now_us = int(now.timestamp() * 1_000_000)
    # Half past the hour before now, give or take ten minutes: no row is within twenty
    # minutes of an aggregation window's edge (whole hours back from now), so the online
    # values read a few seconds apart agree.
    hours = rng.integers(0, 240, rows)
    hours[: rows // 10] = 0
    event = now_us - (hours * 3_600 + 1_800 + rng.integers(-600, 600, rows)) * 1_000_000
    amount = rng.gamma(2.0, 40.0, rows)
    merchants = np.array(["Acme Corp", "grocer #12", "  FUEL-stop ", "café", "Book Nook"])
    # The example's source schema (examples/datagen): keys and times are required.
    schema = pa.schema(
        [
            pa.field("txn_id", pa.int64(), nullable=False),
            pa.field("user_id", pa.int64(), nullable=False),
            pa.field("event_ts", ts, nullable=False),
            pa.field("ingested_at", ts, nullable=False),
            pa.field("amount", pa.float64()),
            pa.field("balance_before", pa.float64()),
            pa.field("merchant", pa.string()),
        ]
    )
    return pa.table(
        {
            "txn_id": pa.array(np.arange(rows) + seed * 1_000_000, pa.int64()),
            "user_id": pa.array(rng.integers(1, USERS + 1, rows), pa.int64()),
            "event_ts": pa.array(event, ts),
            "ingested_at": pa.array(event + 1_000_000, ts),
            "amount": pa.array([None if i % 53 == 0 else float(a) for i, a in enumerate(amount)], pa.float64()),
            "balance_before": pa.array(rng.uniform(0, 5000, rows), pa.float64()),
            "merchant": pa.array(merchants[rng.integers(0, len(merchants), rows)].tolist(), pa.string()),
        },
        schema=schema,
    )


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, guests: Path):
    """The example repo with absolute component paths, its source ingested in two appends
    (so the source has several data files), applied. Yields (repo folder, now)."""
    folder = tmp_path_factory.mktemp("example")
    text = (WORKSPACE / "examples" / "feature-repo" / "skewless.toml").read_text()
    text = text.replace("../../target/guests/wasm32-wasip2/guest/", f"{guests}/")
    (folder / "skewless.toml").write_text(text)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    with skewless.FeatureStore(folder) as store:
        store.ingest("raw.transactions", transactions(1, 3000, now), create=True)
        store.ingest("raw.transactions", transactions(2, 3000, now))
        store.apply()
    return folder, now


def catalog(folder: Path):
    from pyiceberg.catalog.sql import SqlCatalog

    state = folder / ".skewless"
    return SqlCatalog("default", uri=f"sqlite:///{state}/catalog.db", warehouse=f"file://{state}/warehouse")


def rows_of(table, snapshot_id: int) -> pa.Table:
    data = table.scan(snapshot_id=snapshot_id).to_arrow()
    return data.sort_by([(c, "ascending") for c in data.column_names])


def skewless_summary(snapshot) -> Dict[str, str]:
    return {k: v for k, v in snapshot.summary.additional_properties.items() if k.startswith("skewless.")}


def online(folder: Path) -> Dict[str, object]:
    """Every view's online values and statuses for every user (and one unknown)."""
    out = {}
    entity_rows = [{"user_id": u} for u in range(1, USERS + 2)]
    with skewless.FeatureStore(folder) as store:
        for view in VIEWS:
            answer = store.get_online_features(features=[f"{view}:*"], entity_rows=entity_rows)
            out[view] = (answer.to_dict(), answer.statuses)
    return out


def data_dir(table) -> Path:
    return Path(table.location().removeprefix("file://")) / "data"


def current_files(table) -> set:
    """The data files of the table's current snapshot, as local paths."""
    return {f.removeprefix("file://") for f in table.inspect.files()["file_path"].to_pylist()}


def job_dirs(table) -> List[str]:
    return sorted(p.name for p in data_dir(table).glob("skewless-job-*"))


def test_materialize_on_ray_equals_a_local_run(example, ray_cluster):
    import skewless.ray as sray

    folder, _ = example
    with skewless.FeatureStore(folder) as store:
        local = {m.view: m for m in store.materialize()}
    want_online = online(folder)
    tables = {v: catalog(folder).load_table(f"features.{v}") for v in VIEWS}
    before = {v: len(t.snapshots()) for v, t in tables.items()}
    # The online store starts empty, so what it holds after is what the workers wrote.
    for path in (folder / ".skewless").glob("online.lmdb*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    done = {m.view: m for m in sray.materialize(folder)}

    for view in VIEWS:
        table = catalog(folder).load_table(f"features.{view}")
        assert len(table.snapshots()) == before[view] + 1, view
        snapshot = table.current_snapshot()
        assert snapshot.snapshot_id == done[view].snapshot_id
        local_snapshot = table.snapshot_by_id(local[view].snapshot_id)
        assert skewless_summary(snapshot) == skewless_summary(local_snapshot), view
        assert rows_of(table, snapshot.snapshot_id).equals(rows_of(table, local_snapshot.snapshot_id)), view
        assert done[view].rows == local[view].rows and done[view].rows > 0
        # Every data file of the snapshot is one of this job's, nothing else is left in its
        # folder.
        job = data_dir(table) / f"skewless-job-{done[view].job}"
        assert {str(p) for p in job.rglob("*.parquet")} == current_files(table), view
    # Rows came from more than one node.
    batch = done["user_transaction_features"]
    assert len({p["node"] for p in batch.parts if p["rows"] > 0}) > 1, batch.parts
    assert online(folder) == want_online


def test_a_source_of_one_large_file_is_split_into_byte_ranges_across_parts(guests, ray_cluster, tmp_path):
    """A source ingested as one data file of several row groups (60k rows; row groups hold
    at most 16k) still spreads over the parts: each reads a byte range of the file, and the
    rows equal a local run's."""
    import skewless.ray as sray

    text = (WORKSPACE / "examples" / "feature-repo" / "skewless.toml").read_text()
    (tmp_path / "skewless.toml").write_text(text.replace("../../target/guests/wasm32-wasip2/guest/", f"{guests}/"))
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    view = "user_transaction_features"
    with skewless.FeatureStore(tmp_path) as store:
        store.ingest("raw.transactions", transactions(3, 60_000, now), create=True)
        store.apply()
        [local] = store.materialize([view])
    source = catalog(tmp_path).load_table("raw.transactions")
    assert len(source.inspect.files()) == 1

    [done] = sray.materialize(tmp_path, [view], parts=3)

    assert len(done.parts) == 3, done.parts
    assert sum(1 for p in done.parts if p["rows"] > 0) >= 2, done.parts
    assert len({p["node"] for p in done.parts if p["rows"] > 0}) > 1, done.parts
    assert done.rows == local.rows == 60_000
    table = catalog(tmp_path).load_table(f"features.{view}")
    assert rows_of(table, done.snapshot_id).equals(rows_of(table, local.snapshot_id))


def test_historical_on_ray_equals_the_cli_byte_for_byte(example, ray_cluster, run_cli, tmp_path):
    import skewless.ray as sray

    folder, now = example
    with skewless.FeatureStore(folder) as store:
        store.materialize()
    rng = np.random.default_rng(7)
    n = 500
    labels = pa.table(
        {
            # Unknown users and repeated keys too; input order is not key order.
            "user_id": pa.array(rng.integers(0, USERS + 5, n), pa.int64()),
            "event_timestamp": pa.array(
                [now - dt.timedelta(seconds=int(s)) for s in rng.integers(-3600, 9 * 86_400, n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "label": pa.array(rng.integers(0, 2, n).astype(bool)),
        }
    )
    pq.write_table(labels, tmp_path / "labels.parquet")
    cli = run_cli(
        "historical", "--repo", folder, "--entities", tmp_path / "labels.parquet",
        "--service", SERVICE, "--out", tmp_path / "cli.parquet",
    )
    assert cli.returncode == 0, cli.stderr

    # The rows as the command reads them from the file.
    entities = pq.read_table(tmp_path / "labels.parquet")
    result = sray.get_historical_features(folder, entities, feature_service=SERVICE, parts=3)
    assert len([p for p in result.partitions if p]) > 1, result.partitions
    result.to_parquet(tmp_path / "ray.parquet")
    assert (tmp_path / "ray.parquet").read_bytes() == (tmp_path / "cli.parquet").read_bytes()
    assert result.metadata["digests"].keys() >= {"user_txn_aggregates", "user_transaction_features"}


def test_a_worker_killed_mid_part_is_retried_with_no_row_lost_or_doubled(example, ray_cluster, tmp_path):
    import skewless.ray as sray

    folder, _ = example
    view = "user_transaction_features"
    with skewless.FeatureStore(folder) as store:
        (local,) = store.materialize([view])
    marker = tmp_path / "die-once"
    marker.write_text("")

    def die_once(part: int) -> None:
        # After part 0's files and online rows are written, before its result returns: the
        # worker process dies, Ray runs the part again.
        if part == 0 and os.path.exists(marker):
            os.remove(marker)
            os._exit(1)

    (done,) = sray.materialize(folder, [view], _after_part=die_once)
    assert not marker.exists(), "the part never ran"
    table = catalog(folder).load_table(f"features.{view}")
    assert rows_of(table, done.snapshot_id).equals(rows_of(table, local.snapshot_id))
    # The killed attempt's files are gone; only the committed ones are in the job's folder.
    job = data_dir(table) / f"skewless-job-{done.job}"
    assert {str(p) for p in job.rglob("*.parquet")} == current_files(table)


def test_a_failed_job_commits_nothing_and_leaves_no_files(example, ray_cluster):
    import skewless.ray as sray

    folder, _ = example
    view = "user_txn_aggregates"
    table = catalog(folder).load_table(f"features.{view}")
    snapshots, dirs = len(table.snapshots()), job_dirs(table)

    def fail(part: int) -> None:
        if part == 1:
            raise RuntimeError("part 1 failed on purpose")

    with pytest.raises(RuntimeError, match="on purpose"):
        sray.materialize(folder, [view], _after_part=fail)
    table = catalog(folder).load_table(f"features.{view}")
    assert len(table.snapshots()) == snapshots
    assert job_dirs(table) == dirs


def test_parts_and_the_commit_refuse_a_component_other_than_the_planned_one(example):
    """The stages themselves, in this process: a part refuses a plan whose digest is not the
    registry's; the commit refuses a part that ran another component, commits nothing, and
    the abort removes the parts' files."""
    from skewless import _native

    folder, _ = example
    root, view = str(folder), "user_transaction_features"
    table = catalog(folder).load_table(f"features.{view}")
    snapshots, dirs = len(table.snapshots()), job_dirs(table)
    plan_json, parts, skipped = _native.materialize_plan(root, view, 2)
    assert skipped is None and parts == 2
    forged = json.loads(plan_json)
    forged["digest"] = "sha256:" + "0" * 64
    with pytest.raises(skewless.InvalidComponent, match="planned with"):
        _native.materialize_part(root, json.dumps(forged), 0)
    done = [json.loads(_native.materialize_part(root, plan_json, i, 1)) for i in range(parts)]
    assert all(d["files"] for d in done)
    done[1]["digest"] = forged["digest"]
    with pytest.raises(skewless.InvalidComponent, match="part 1 ran component"):
        _native.materialize_commit(root, plan_json, [json.dumps(d) for d in done])
    # A part given twice, or one missing, is refused too.
    with pytest.raises(skewless.InvalidInput, match="given twice"):
        _native.materialize_commit(root, plan_json, [json.dumps(done[0])] * 2)
    with pytest.raises(skewless.InvalidInput, match="part 1 of the plan has no result"):
        _native.materialize_commit(root, plan_json, [json.dumps(done[0])])
    _native.materialize_abort(root, plan_json)
    table = catalog(folder).load_table(f"features.{view}")
    assert len(table.snapshots()) == snapshots
    assert job_dirs(table) == dirs


def test_a_commit_after_another_run_of_the_view_commits_nothing(example):
    """The local run's guard: a materialization of the view that committed after the plan
    moved the processed-snapshot marker, so the distributed commit is refused."""
    from skewless import _native

    folder, now = example
    root, view = str(folder), "user_time_features"
    with skewless.FeatureStore(folder) as store:
        store.materialize([view])
    plan_json, parts, _ = _native.materialize_plan(root, view, 2)
    done = [_native.materialize_part(root, plan_json, i, 1) for i in range(parts)]
    table = catalog(folder).load_table(f"features.{view}")
    dirs = job_dirs(table)
    # The source moves on and a local run processes it: the marker moves.
    with skewless.FeatureStore(folder) as store:
        store.ingest("raw.transactions", transactions(3, 100, now))
        store.materialize([view])
    snapshots = len(catalog(folder).load_table(f"features.{view}").snapshots())
    with pytest.raises(skewless.Unavailable, match="another materialization"):
        _native.materialize_commit(root, plan_json, done)
    _native.materialize_abort(root, plan_json)
    table = catalog(folder).load_table(f"features.{view}")
    assert len(table.snapshots()) == snapshots
    assert len(job_dirs(table)) == len(dirs) - 1
