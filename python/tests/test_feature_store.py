"""`skewless.FeatureStore` on a real repo: Iceberg tables on a SQLite catalog, the embedded
online store and compiled components; training sets compared with `skewless historical`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import skewless

from conftest import DAY, copy_component, now, source_table, write_repo

TXN = ["amount_log1p", "amount_zscore", "amount_bucket", "amount_to_balance_ratio", "is_high_value"]


def labels(t0: dt.datetime) -> pa.Table:
    """Entity rows: each user at `t0`, user 1 also before its transaction, user 5 unknown."""
    return pa.table(
        {
            "user_id": pa.array([1, 2, 3, 4, 5, 1], pa.int64()),
            "event_timestamp": pa.array([t0] * 5 + [t0 - 3 * DAY], pa.timestamp("us", tz="UTC")),
            "label": pa.array([True, False, True, False, True, False]),
            # Request data of the request-time view `req`.
            "amount": pa.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0]),
        }
    )


def test_plan_apply_ingest_and_materialize(empty_repo):
    store = skewless.FeatureStore(empty_repo)
    t0 = now()
    data = source_table(t0)
    ingested = store.ingest("raw.transactions", data, create=True)
    assert (ingested.rows, ingested.created) == (4, True)
    # A file, pandas and polars append too (one snapshot each).
    pq.write_table(data.slice(0, 1), empty_repo / "one.parquet")
    assert store.ingest("raw.transactions", empty_repo / "one.parquet").rows == 1
    assert store.ingest("raw.transactions", data.slice(1, 1).to_pandas()).rows == 1
    assert store.ingest("raw.transactions", pl.from_arrow(data.slice(2, 1))).rows == 1
    assert not list((empty_repo / ".skewless" / "tmp").iterdir())

    plan = store.plan()
    assert plan.problems == []
    assert any(c.startswith("+ view txn (sha256:") for c in plan.changes)
    assert "+ table features.txn" in plan.changes
    applied = store.apply()
    assert applied.changes == plan.changes
    assert store.plan().changes == []

    done = {m.view: m for m in store.materialize(["txn"], end=t0)}
    # 7 rows ingested: users 1, 2, 3, 4 and 1, 2, 3 again; user 3's rows are after `end`.
    assert (done["txn"].rows, done["txn"].online_written) == (5, 3)
    assert done["txn"].digest == applied_digest(applied, "txn")
    again = store.materialize(["txn"], end=t0)
    assert again[0].skipped and again[0].rows == 0, again
    # Every batch view, by default; `txn` continues from the source snapshot it read.
    assert {m.view for m in store.materialize_incremental()} == {"txn", "txn_copy"}
    store.close()


def applied_digest(plan: skewless.Plan, view: str) -> str:
    (change,) = [c for c in plan.changes if c.startswith(f"+ view {view} (")]
    return change.split("(", 1)[1].rstrip(")")


def test_apply_refuses_a_repo_with_problems_listing_them(tmp_path, guests):
    write_repo(tmp_path, guests)
    store = skewless.FeatureStore(tmp_path)
    # No source table: every batch view has a problem.
    with pytest.raises(skewless.InvalidInput) as e:
        store.apply()
    assert "raw.transactions" in str(e.value)
    assert store.plan().problems


def test_materialize_reads_times_as_the_cli_does(materialized):
    store, t0 = materialized
    with pytest.raises(skewless.InvalidInput, match="start `yesterday` is not a timestamp"):
        store.materialize(["txn"], start="yesterday")
    with pytest.raises(skewless.NotFound, match="no batch or aggregate view `nope`"):
        store.materialize(["nope"])
    # A window as RFC 3339 text and as a naive datetime (UTC) are the same window.
    by_text = store.materialize(["txn_copy"], start="2019-12-31T00:00:00Z", end="2020-01-02")
    by_datetime = store.materialize(["txn_copy"], start=dt.datetime(2019, 12, 31), end=dt.date(2020, 1, 2))
    assert by_text[0].window == by_datetime[0].window
    assert by_text[0].rows == 1  # user 2's transaction of 2020-01-01
    assert by_datetime[0].skipped  # the same window again


def test_a_missing_repo_is_an_error_at_construction(tmp_path):
    with pytest.raises(skewless.SkewlessError, match="skewless.toml"):
        skewless.FeatureStore(tmp_path / "nowhere")


def test_training_set_equals_the_cli_byte_for_byte(materialized, tmp_path, run_cli):
    store, t0 = materialized
    entities = labels(t0)
    pq.write_table(entities, tmp_path / "labels.parquet")
    features = ["txn:*", "txn_copy:amount_log1p", "req:amount_to_last_ratio"]
    store.close()  # the CLI opens the stores itself
    done = run_cli(
        "historical", "--repo", store.repo_path, "--entities", tmp_path / "labels.parquet",
        "--features", ",".join(features), "--full-feature-names", "--out", tmp_path / "cli.parquet",
    )
    assert done.returncode == 0, done.stderr
    job = store.get_historical_features(
        pq.read_table(tmp_path / "labels.parquet"), features, full_feature_names=True
    )
    job.to_parquet(tmp_path / "py.parquet")
    assert (tmp_path / "py.parquet").read_bytes() == (tmp_path / "cli.parquet").read_bytes()
    cli = pq.read_table(tmp_path / "cli.parquet")
    assert job.to_arrow().equals(cli)
    assert job.metadata["digests"]["txn"].startswith("sha256:")
    assert set(job.metadata["snapshots"]) == {"txn", "txn_copy"}

    # What the join found: user 1 present at t0 and absent before its transaction; user 2
    # outside txn's TTL but present in txn_copy (no TTL); users 3 and 5 have nothing.
    rows = job.to_arrow().to_pylist()
    assert rows[0]["txn__amount_log1p"] is not None
    assert rows[5]["txn__amount_log1p"] is None
    assert rows[1]["txn__amount_log1p"] is None and rows[1]["txn_copy__amount_log1p"] is not None
    assert rows[2]["txn__amount_log1p"] is None and rows[4]["txn__amount_log1p"] is None


def test_pandas_pyarrow_and_polars_entity_rows_give_the_same_training_set(materialized):
    store, t0 = materialized
    entities = labels(t0)
    by_arrow = store.get_historical_features(entities, ["txn:*"]).to_arrow()
    assert by_arrow.column_names == ["user_id", "event_timestamp", "label", "amount", *TXN]
    polars_df = pl.from_arrow(entities)
    assert store.get_historical_features(polars_df, ["txn:*"]).to_arrow().equals(by_arrow)
    # pandas holds nanoseconds and drops the zone's name: same values after the join.
    pandas_df = entities.to_pandas()
    from_pandas = store.get_historical_features(pandas_df, ["txn:*"]).to_df()
    assert from_pandas[TXN].equals(by_arrow.to_pandas()[TXN])
    assert store.get_historical_features(entities, ["txn:*"]).to_polars().equals(pl.from_arrow(by_arrow))
    # A naive pandas datetime column is UTC, as in Feast.
    naive = pandas_df.assign(event_timestamp=pandas_df["event_timestamp"].dt.tz_localize(None))
    assert store.get_historical_features(naive, ["txn:*"]).to_df()[TXN].equals(from_pandas[TXN])


def test_feature_services_and_as_of(materialized):
    store, t0 = materialized
    entities = labels(t0)
    by_service = store.get_historical_features(entities, feature_service="fraud").to_arrow()
    by_object = store.get_historical_features(entities, store.get_feature_service("fraud")).to_arrow()
    assert by_service.equals(by_object)
    assert by_service.column_names[4:] == [
        "amount_log1p", "amount_to_last_ratio", "amount_to_avg_ratio", "amount_minus_avg", "is_amount_spike",
    ]
    snapshot = store.get_historical_features(entities, ["txn:*"]).metadata["snapshots"]["txn"]
    pinned = store.get_historical_features(entities, ["txn:*"], as_of=snapshot)
    assert pinned.to_arrow().equals(store.get_historical_features(entities, ["txn:*"]).to_arrow())
    before = store.get_historical_features(entities, ["txn:*"], as_of=dt.datetime(2000, 1, 1))
    assert before.metadata["snapshots"]["txn"] is None
    assert before.to_arrow().column("amount_log1p").null_count == entities.num_rows


def test_historical_errors(materialized):
    store, t0 = materialized
    entities = labels(t0)
    with pytest.raises(skewless.NotFound, match="nope"):
        store.get_historical_features(entities, ["txn:nope"])
    with pytest.raises(skewless.NotFound):
        store.get_historical_features(entities, ["nope:*"])
    with pytest.raises(skewless.SchemaMismatch, match="event_timestamp") as e:
        store.get_historical_features(entities.drop_columns(["event_timestamp"]), ["txn:*"])
    assert e.value.context["column"] == "event_timestamp"
    with pytest.raises(skewless.SchemaMismatch, match="join key `user_id` is List") as e:
        store.get_historical_features(
            entities.set_column(0, "user_id", pa.array([[1]] * entities.num_rows)), ["txn:*"]
        )
    assert e.value.context["column"] == "user_id"
    with pytest.raises(skewless.InvalidInput, match="as_of"):
        store.get_historical_features(entities, ["txn:*"], as_of="yesterday")
    with pytest.raises(skewless.NotFound, match="snapshot 42"):
        store.get_historical_features(entities, ["txn:*"], as_of=42)
    with pytest.raises(TypeError, match="entity_df"):
        store.get_historical_features({"user_id": [1]}, ["txn:*"])


def test_a_component_changed_since_apply_is_refused(tmp_path, guests):
    component = copy_component(guests / "transaction_features.wasm", tmp_path / "txn.wasm")
    write_repo(tmp_path, guests, {"transaction_features": component})
    store = skewless.FeatureStore(tmp_path)
    store.ingest("raw.transactions", source_table(now()), create=True)
    store.apply()
    copy_component(guests / "request_amount_ratio.wasm", component)
    with pytest.raises(skewless.InvalidComponent, match="changed since the last `skewless apply`"):
        store.materialize(["txn"])
    with pytest.raises(skewless.InvalidComponent, match="changed since the last `skewless apply`"):
        store.get_online_features(["txn:amount_log1p"], [{"user_id": 1}])
    store.close()


def test_a_memory_budget_spills_and_gives_the_same_training_set(tmp_path, guests):
    write_repo(tmp_path, guests)
    t0 = now()
    n = 60_000
    ts = pa.timestamp("us", tz="UTC")
    events = pa.array([t0 - dt.timedelta(minutes=i) for i in range(n)], ts)
    source = pa.table(
        {
            "user_id": pa.array([i % 5000 for i in range(n)], pa.int64()),
            "event_ts": events,
            "ingested_at": events,
            "amount": pa.array([float(i % 977) for i in range(n)]),
            "balance_before": pa.array([float(i % 5003) for i in range(n)]),
        }
    )
    with skewless.FeatureStore(tmp_path) as store:
        store.ingest("raw.transactions", source, create=True)
        store.apply()
        store.materialize(["txn"])
        entities = pa.table(
            {
                "user_id": pa.array(range(5000), pa.int64()),
                "event_timestamp": pa.array([t0 - dt.timedelta(days=2)] * 5000, ts),
            }
        )
        whole = store.get_historical_features(entities, ["txn:*"])
        spilled = store.get_historical_features(entities, ["txn:*"], memory_budget=1)
        assert whole.spilled == (0, 0)
        assert spilled.spilled[0] > 0 and spilled.spilled[1] > 0
        assert spilled.to_arrow().equals(whole.to_arrow())
        assert whole.to_arrow().column("amount_log1p").null_count < 5000
        # Feature rows joined follow the labels' keys: half the users, fewer rows.
        half = store.get_historical_features(entities.slice(0, 2500), ["txn:*"])
        assert 0 < half.feature_rows < whole.feature_rows <= n
        assert spilled.feature_rows == whole.feature_rows
        with pytest.raises(skewless.InvalidInput, match="memory_budget"):
            store.get_historical_features(entities, ["txn:*"], memory_budget=0)
