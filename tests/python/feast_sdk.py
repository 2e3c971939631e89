"""Feast's own SDK against `skewless serve`, unchanged: a Feast feature repo whose online store
is `type: remote` pointing at the server under test.

    python feast_sdk.py http://127.0.0.1:PORT WORK_DIR

The server serves the test repo of tests/all/server.rs: batch views `txn` and `txn_copy`
(transaction-features), request-time view `req` (request-amount-ratio, request field `amount`)
and feature service `fraud` (`txn:amount_log1p`, `req:*`). Users 1 and 4 have a row from
yesterday (user 4 with a null amount), user 2 one from 2020 (outside `txn`'s 30-day TTL),
user 3 one in ten days (not visible yet); user 5 has none.

Every answer of the SDK is compared, value and status, with what the server's native endpoint
(`/v1/online-features`) says for the same request; errors must reach the caller as an
exception carrying the server's message. Prints "feast sdk: all checks passed" at the end.
"""

import math
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import requests
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from feast.types import Bool, Float64, Int32

URL, WORK = sys.argv[1], Path(sys.argv[2])

TXN_FEATURES = [
    ("amount_log1p", Float64),
    ("amount_zscore", Float64),
    ("amount_bucket", Int32),
    ("amount_to_balance_ratio", Float64),
    ("is_high_value", Bool),
]


def feast_repo() -> FeatureStore:
    """A Feast repo declaring the server's views, with the server as its online store."""
    (WORK / "feature_store.yaml").write_text(
        f"""project: skewless_compat
registry: {WORK / "registry.db"}
provider: local
online_store:
  type: remote
  path: {URL}
entity_key_serialization_version: 3
"""
    )
    # Feast's objects need a batch source; nothing is read from it (the server answers).
    source_path = WORK / "txn.parquet"
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([1], pa.int64()),
                "event_ts": pa.array([0], pa.timestamp("us", tz="UTC")),
                **{name: pa.array([None], pa.float64()) for name, _ in TXN_FEATURES},
            }
        ),
        source_path,
    )
    store = FeatureStore(repo_path=str(WORK))
    user = Entity(name="user", join_keys=["user_id"])
    source = FileSource(path=str(source_path), timestamp_field="event_ts")
    views = [
        FeatureView(
            name=name,
            entities=[user],
            ttl=timedelta(days=30),
            schema=[Field(name=f, dtype=t) for f, t in TXN_FEATURES],
            source=source,
            online=True,
        )
        for name in ("txn", "txn_copy")
    ]
    # The server's definition of a service is the one served; Feast sends only its name.
    fraud = FeatureService(name="fraud", features=[views[0][["amount_log1p"]]])
    store.apply([user, *views, fraud])
    return store


def native(body: dict) -> dict:
    """The server's own answer: {feature name: (values, statuses)}."""
    response = requests.post(f"{URL}/v1/online-features", json=body, timeout=10)
    assert response.status_code == 200, response.text
    out = response.json()
    return {f["name"]: (f["values"], f["statuses"]) for f in out["features"]}


def same_value(got, want) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return got == want or (math.isnan(got) and math.isnan(want))
    return got == want


def check_against_native(response, body: dict, what: str) -> None:
    """The SDK's values and statuses equal the native endpoint's, feature by feature."""
    expected = native(body)
    got = response.to_dict()
    proto = response.proto
    names = list(proto.metadata.feature_names.val)
    for name, (values, statuses) in expected.items():
        assert name in got, f"{what}: {name} missing from {sorted(got)}"
        assert len(got[name]) == len(values), f"{what}: {name}: {got[name]} vs {values}"
        for row, (g, w) in enumerate(zip(got[name], values)):
            assert same_value(g, w), f"{what}: {name}[{row}] is {g!r}, the server says {w!r}"
        index = names.index(name)
        sdk_statuses = [
            proto.results[index].statuses[row] for row in range(len(values))
        ]
        status_names = [
            ["INVALID", "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"][s]
            for s in sdk_statuses
        ]
        assert status_names == statuses, f"{what}: {name} statuses {status_names} vs {statuses}"
    print(f"ok: {what}")


def expect_error(call, status: int, message: str, what: str) -> None:
    """`call` raises, and the exception carries the server's status and message."""
    try:
        call()
    except Exception as e:  # the SDK raises RuntimeError (or a FeastError)
        text = str(e)
        assert message in text, f"{what}: the SDK's error lacks {message!r}: {text}"
        assert str(status) in text, f"{what}: the SDK's error lacks the status {status}: {text}"
        print(f"ok: {what} -> {type(e).__name__}")
        return
    raise AssertionError(f"{what}: no error raised")


def main() -> None:
    store = feast_repo()
    users = [1, 2, 3, 4, 5]

    features = [f"txn:{name}" for name, _ in TXN_FEATURES]
    response = store.get_online_features(
        features=features, entity_rows=[{"user_id": u} for u in users]
    )
    check_against_native(
        response, {"features": features, "entities": {"user_id": users}}, "features by name"
    )
    got = response.to_dict()
    assert got["user_id"] == users, got["user_id"]
    assert got["amount_log1p"][0] == math.log1p(120.5), got["amount_log1p"]
    assert got["amount_log1p"][4] is None, "user 5 has no row"

    # Columnar entities, as Feast also accepts, and full feature names.
    response = store.get_online_features(
        features=["txn:amount_log1p", "txn_copy:amount_log1p"],
        entity_rows={"user_id": users},
        full_feature_names=True,
    )
    check_against_native(
        response,
        {
            "features": ["txn:amount_log1p", "txn_copy:amount_log1p"],
            "entities": {"user_id": users},
            "full_feature_names": True,
        },
        "full feature names",
    )
    assert set(response.to_dict()) == {"user_id", "txn__amount_log1p", "txn_copy__amount_log1p"}

    # A feature service, with request data for its request-time view.
    service = store.get_feature_service("fraud")
    rows = [{"user_id": 1, "amount": 241.0}, {"user_id": 5, "amount": 3.0}]
    response = store.get_online_features(features=service, entity_rows=rows)
    check_against_native(
        response,
        {"feature_service": "fraud", "entities": {"user_id": [1, 5], "amount": [241.0, 3.0]}},
        "feature service",
    )
    ratio = response.to_dict()["amount_to_last_ratio"]
    assert ratio[1] is None, f"no stored amount for user 5: {ratio}"

    # Version metadata: the views that served, named.
    response = store.get_online_features(
        features=["txn:amount_log1p"],
        entity_rows=[{"user_id": 1}],
        include_feature_view_version_metadata=True,
    )
    names = [m.name for m in response.proto.metadata.feature_view_metadata]
    assert names == ["txn"], names
    print("ok: feature view metadata")

    # Errors reach the caller with the server's message, not a crash in the client.
    expect_error(
        lambda: store.get_online_features(
            features=["txn:no_such_feature"], entity_rows=[{"user_id": 1}]
        ),
        404,
        "view `txn` has no feature `no_such_feature`",
        "unknown feature",
    )
    expect_error(
        lambda: store.get_online_features(
            features=["txn:amount_log1p"], entity_rows=[{"user_id": u} for u in range(51)]
        ),
        400,
        "the limit is 50 per request",
        "over the row limit",
    )
    expect_error(
        lambda: store.get_online_features(
            features=["txn:amount_log1p"], entity_rows=[{"user_id": "one"}]
        ),
        400,
        "entities.user_id[0]",
        "a join key of the wrong type",
    )
    import pandas as pd

    expect_error(
        lambda: store.write_to_online_store(
            "txn",
            pd.DataFrame(
                {
                    "user_id": [1],
                    "event_ts": [pd.Timestamp.now(tz="UTC")],
                    "amount_log1p": [0.5],
                    "amount_zscore": [0.0],
                    "amount_bucket": [3],
                    "amount_to_balance_ratio": [0.1],
                    "is_high_value": [False],
                }
            ),
        ),
        403,
        "skewless materialize txn",
        "write of precomputed values",
    )
    print("feast sdk: all checks passed")


if __name__ == "__main__":
    main()
