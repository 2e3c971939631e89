"""`FeatureStore.get_online_features` in process, against the HTTP server's native endpoint
(`skewless serve`, a separate process on a real socket) on the same repo."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import urllib.request
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import skewless

FEATURES = ["txn:amount_log1p", "txn:amount_bucket", "txn_copy:amount_log1p", "req:amount_to_last_ratio"]
ROWS = [{"user_id": u, "amount": a} for u, a in [(1, 50.0), (2, 60.0), (3, 70.0), (4, 80.0), (5, 90.0)]]


def micros(t: dt.datetime | None) -> int | None:
    if t is None:
        return None
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def test_values_statuses_and_event_times(materialized):
    store, t0 = materialized
    response = store.get_online_features(["txn:amount_log1p", "txn:is_high_value"], [{"user_id": u} for u in range(1, 6)])
    values = response.to_dict()
    assert values["user_id"] == [1, 2, 3, 4, 5]
    assert values["amount_log1p"][0] == pytest.approx(math.log1p(120.5), rel=1e-12)
    assert values["amount_log1p"][1:] == [None] * 4
    # 1: present; 2: older than txn's 30-day TTL; 3: in the future, not materialized;
    # 4: a null amount; 5: no row.
    assert response.statuses["amount_log1p"] == ["PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND", "NULL_VALUE", "NOT_FOUND"]
    assert response.statuses["is_high_value"][3] == "PRESENT"
    times = response.event_timestamps["amount_log1p"]
    assert times[0] == t0 - dt.timedelta(days=1)
    assert times[2] is None and times[4] is None
    assert response.digests["txn"].startswith("sha256:")
    assert isinstance(response.to_df(), pd.DataFrame)
    assert response.to_arrow().column_names == ["user_id", "amount_log1p", "is_high_value"]
    assert response.to_polars().shape == (5, 3)


def test_entity_rows_and_columnar_entities_agree(materialized):
    store, _ = materialized
    by_rows = store.get_online_features(FEATURES, ROWS, full_feature_names=True)
    by_columns = store.get_online_features(
        FEATURES,
        entities={"user_id": pa.array([r["user_id"] for r in ROWS]), "amount": pd.Series([r["amount"] for r in ROWS])},
        full_feature_names=True,
    )
    assert by_rows.to_arrow().equals(by_columns.to_arrow())
    assert by_rows.statuses == by_columns.statuses
    assert list(by_rows.to_dict()) == ["user_id", "txn__amount_log1p", "txn__amount_bucket", "txn_copy__amount_log1p", "req__amount_to_last_ratio"]
    service = store.get_online_features(feature_service="fraud", entity_rows=ROWS)
    assert list(service.to_dict())[:2] == ["user_id", "amount_log1p"]


def test_online_errors_name_the_field(materialized):
    store, _ = materialized
    with pytest.raises(skewless.NotFound, match="view `txn` has no feature `amount`") as e:
        store.get_online_features(["txn:amount"], [{"user_id": 1}])
    assert e.value.context["field"] == "features[0]"
    with pytest.raises(skewless.InvalidInput, match="expected an integer") as e:
        store.get_online_features(["txn:amount_log1p"], entities={"user_id": [1, "2"]})
    assert e.value.context["field"] == "entities.user_id[1]"
    with pytest.raises(skewless.InvalidInput, match="lacks request field `amount`"):
        store.get_online_features(["req:amount_to_last_ratio"], [{"user_id": 1}])
    with pytest.raises(skewless.InvalidInput, match=r"entity_rows\[1\] has the keys"):
        store.get_online_features(["txn:amount_log1p"], [{"user_id": 1}, {"user": 2}])
    with pytest.raises(TypeError, match="exactly one"):
        store.get_online_features(["txn:amount_log1p"])


class Server:
    """`skewless serve` on a free loopback port, stopped by the test."""

    def __init__(self, cli: Path, repo: Path) -> None:
        self.process = subprocess.Popen(
            [str(cli), "serve", "--repo", str(repo), "--addr", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines = []
        for line in self.process.stderr:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("serving on http://"):
                self.url = line.split()[2]
                return
        self.process.wait()
        raise AssertionError("the server did not start:\n" + "".join(lines))

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def test_online_values_equal_the_servers(materialized, cli):
    store, _ = materialized
    in_process = store.get_online_features(FEATURES, ROWS, full_feature_names=True)
    store.close()  # the embedded store is locked by the process that opens it
    server = Server(cli, store.repo_path)
    try:
        served = server.post(
            "/v1/online-features",
            {"features": FEATURES, "entities": {"user_id": [r["user_id"] for r in ROWS], "amount": [r["amount"] for r in ROWS]}, "full_feature_names": True},
        )
    finally:
        server.stop()
    values = in_process.to_dict()
    # Something to compare: present values of a batch view and of the request-time view.
    assert values["txn__amount_log1p"][0] is not None
    assert values["req__amount_to_last_ratio"][0] is not None
    assert served["join_keys"]["user_id"] == values["user_id"]
    assert [f["name"] for f in served["features"]] == list(values)[1:]
    for feature in served["features"]:
        name = feature["name"]
        # Floats: the server prints the shortest representation that parses back to the
        # same bits, so equality here is bit equality.
        assert feature["values"] == values[name], name
        assert feature["statuses"] == in_process.statuses[name], name
        if feature["view"] != "req":
            # A request-time feature's event time is the time of its request: not compared.
            assert feature["event_timestamps"] == [micros(t) for t in in_process.event_timestamps[name]], name
        assert {d for d in feature["digests"] if d} <= {in_process.digests[feature["view"]]}, name
    # The store opens again after the server let go of it.
    assert store.get_online_features(FEATURES, ROWS, full_feature_names=True).to_arrow().equals(in_process.to_arrow())
