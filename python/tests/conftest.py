"""Fixtures: the workspace's compiled components and `skewless` binary, and feature repos in
temporary folders with real Iceberg tables and a real online store.

The components are built by the Rust tests (`cargo test --workspace`) into
`target/guests/wasm32-wasip2/guest/`, and the binary into `target/debug/skewless`;
`SKEWLESS_GUESTS` and `SKEWLESS_BIN` point elsewhere. When they are missing the tests that
need them are skipped with the reason, unless `SKEWLESS_REQUIRE_TOOLCHAINS=1` (as in CI),
which makes that a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Dict

import pyarrow as pa
import pytest

import skewless

WORKSPACE = Path(__file__).resolve().parents[2]

# The repo of the server's tests (tests/all/server.rs): two batch views over one source, a
# request-time view reading one of them, a hostile view and a feature service.
REPO_TOML = """
[project]
name = "python"

[[entity]]
name = "user"
join_keys = [{{ name = "user_id", type = "int64" }}]

[[batch_view]]
name = "txn"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
transform = "{transaction_features}"
ttl = "30d"

[[batch_view]]
name = "txn_copy"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
transform = "{transaction_features}"

[[request_view]]
name = "req"
transform = "{request_amount_ratio}"
entities = ["user"]
inputs.request_amount = {{ request = "amount" }}
inputs.user_last_amount = {{ feature = "txn:amount_log1p" }}
inputs.user_avg_amount_30d = {{ feature = "txn:amount_to_balance_ratio" }}

[[feature_service]]
name = "fraud"
features = ["txn:amount_log1p", "req:*"]
"""

DAY = dt.timedelta(days=1)


def _required() -> bool:
    return os.environ.get("SKEWLESS_REQUIRE_TOOLCHAINS") == "1"


def _need(path: Path, what: str, how: str) -> Path:
    if path.exists():
        return path
    why = f"{what} not found at {path} ({how})"
    if _required():
        pytest.fail(why + "; SKEWLESS_REQUIRE_TOOLCHAINS=1 makes this a failure")
    pytest.skip(why + "; set SKEWLESS_REQUIRE_TOOLCHAINS=1 to make this a failure")


@pytest.fixture(scope="session")
def guests() -> Path:
    """The folder of the compiled test and example components."""
    default = WORKSPACE / "target" / "guests" / "wasm32-wasip2" / "guest"
    folder = Path(os.environ.get("SKEWLESS_GUESTS", default))
    _need(folder / "transaction_features.wasm", "the compiled components", "built by `cargo test --workspace`")
    return folder


@pytest.fixture(scope="session")
def cli() -> Path:
    """The `skewless` binary."""
    default = WORKSPACE / "target" / "debug" / "skewless"
    return _need(Path(os.environ.get("SKEWLESS_BIN", default)), "the skewless binary", "built by `cargo build -p skewless-cli`")


@pytest.fixture(scope="session")
def run_cli(cli: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Runs `skewless ARGS...`; returns the completed process (not checked)."""

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True, cwd=cwd)

    return run


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> skewless.Engine:
    """An engine caching compiled components for the whole session."""
    return skewless.Engine(cache_dir=tmp_path_factory.mktemp("compiled"))


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def source_table(t0: dt.datetime) -> pa.Table:
    """Users 1..=4, one transaction each, relative to `t0` (the server tests' data):
    1: a day ago (present); 2: in 2020 (outside `txn`'s 30-day TTL, present in `txn_copy`);
    3: in ten days (not visible yet); 4: a day ago with a null amount. User 5 has no row."""
    ts = pa.timestamp("us", tz="UTC")
    events = [t0 - DAY, dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), t0 + 10 * DAY, t0 - DAY]
    return pa.table(
        {
            "user_id": pa.array([1, 2, 3, 4], pa.int64()),
            "event_ts": pa.array(events, ts),
            "ingested_at": pa.array(events, ts),
            "amount": pa.array([120.5, 80.0, 9.0, None], pa.float64()),
            "balance_before": pa.array([1000.0, 400.0, 50.0, 10.0], pa.float64()),
        }
    )


def write_repo(folder: Path, guests: Path, components: Dict[str, Path] | None = None) -> Path:
    """Writes `skewless.toml` into `folder`; `components` overrides the component paths."""
    paths = {
        "transaction_features": guests / "transaction_features.wasm",
        "request_amount_ratio": guests / "request_amount_ratio.wasm",
    }
    paths.update(components or {})
    (folder / "skewless.toml").write_text(REPO_TOML.format(**{k: str(v) for k, v in paths.items()}))
    return folder


@pytest.fixture
def empty_repo(tmp_path: Path, guests: Path) -> Path:
    """A repo declared but not applied, with no data."""
    return write_repo(tmp_path, guests)


@pytest.fixture(scope="module")
def materialized(tmp_path_factory: pytest.TempPathFactory, guests: Path):
    """A repo whose source is ingested, applied and materialized (both batch views), shared by
    the tests of a module that only read it. Yields (store, t0)."""
    folder = write_repo(tmp_path_factory.mktemp("repo"), guests)
    t0 = now()
    store = skewless.FeatureStore(folder)
    store.ingest("raw.transactions", source_table(t0), create=True)
    store.apply()
    store.materialize()
    yield store, t0
    store.close()


def copy_component(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst
