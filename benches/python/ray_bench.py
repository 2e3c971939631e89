"""`skewless.ray` on a Ray cluster of NODES nodes of one CPU each on this machine, timed beside
the single-process CLI by `benches/ray.sh`. Three commands, each printing one JSON line:

    python benches/python/ray_bench.py materialize REPO VIEW NODES
    python benches/python/ray_bench.py phases REPO VIEW NODES PARTS [PARTS ...]
    python benches/python/ray_bench.py historical REPO LABELS.parquet FEATURES OUT.parquet NODES

- `materialize`: `skewless.ray.materialize(REPO, [VIEW])` as a user calls it; its wall time
  (the cluster started before the clock starts), rows and parts.
- `phases`: the same job, step by step through the functions `skewless.ray.materialize` calls
  (plan on the driver, one Ray task per part, commit on the driver), for each PARTS: what
  stays on the driver (plan, commit) and what each worker does (rows, seconds) — the inputs of
  the scale-out model in benches/README.md. Each run re-materializes the same window, so the
  commit replaces what the previous run wrote.
- `historical`: `skewless.ray.get_historical_features` over the label file, written as
  Parquet to OUT (compared with the CLI's file by the shell script).

Needs the package built in release into this Python (`cd python && maturin build --release`)
and Ray (`pip install ray`).
"""

from __future__ import annotations

import json
import sys
import time

import pyarrow.parquet as pq
import ray
from ray.cluster_utils import Cluster

import skewless
import skewless.ray as sray
from skewless import _native


def start_cluster(nodes: int) -> tuple:
    began = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    return cluster, time.perf_counter() - began


def timed_part(repo: str, plan_json: str, part: int) -> tuple:
    """One part on a worker, as `skewless.ray` runs it, with its own wall time."""
    began = time.perf_counter()
    done = _native.materialize_part(repo, plan_json, part, 1)
    return done, time.perf_counter() - began, ray.get_runtime_context().get_node_id()


def materialize(repo: str, view: str) -> dict:
    began = time.perf_counter()
    [done] = sray.materialize(repo, [view])
    wall = time.perf_counter() - began
    return {
        "wall_s": wall,
        "rows": sum(p["rows"] for p in done.parts),
        "parts": len(done.parts),
        "nodes": len({p["node"] for p in done.parts}),
    }


def phases(repo: str, view: str, counts: list) -> list:
    task = ray.remote(timed_part)
    runs = []
    for count in counts:
        began = time.perf_counter()
        plan_json, n, skipped = _native.materialize_plan(repo, view, count, None, None, False)
        planned = time.perf_counter()
        assert skipped is None and n, (skipped, n)
        refs = [
            task.options(num_cpus=1, scheduling_strategy=sray._spread(ray, i, 1)).remote(repo, plan_json, i)
            for i in range(n)
        ]
        outs = ray.get(refs)
        computed = time.perf_counter()
        _native.materialize_commit(repo, plan_json, [o[0] for o in outs])
        committed = time.perf_counter()
        parts = [
            {"rows": json.loads(done)["rows"], "files": len(json.loads(done).get("files", [])), "seconds": s}
            for done, s, _ in outs
        ]
        runs.append(
            {
                "parts": n,
                "plan_s": planned - began,
                "tasks_s": computed - planned,
                "commit_s": committed - computed,
                "wall_s": committed - began,
                "rows": sum(p["rows"] for p in parts),
                "files": sum(p["files"] for p in parts),
                "worker_rows_per_s": sum(p["rows"] for p in parts) / sum(p["seconds"] for p in parts),
                "nodes": len({node for _, _, node in outs}),
            }
        )
    return runs


def historical(repo: str, labels: str, features: str, out: str) -> dict:
    entities = pq.read_table(labels)
    began = time.perf_counter()
    result = sray.get_historical_features(repo, entities, features.split(","))
    rows = result.to_parquet(out)
    return {"wall_s": time.perf_counter() - began, "rows": rows, "parts": len(result.partitions)}


def main() -> None:
    command, args = sys.argv[1], sys.argv[2:]
    nodes = int(args[2] if command != "historical" else args[4])
    cluster, startup = start_cluster(nodes)
    try:
        if command == "materialize":
            result = materialize(args[0], args[1])
        elif command == "phases":
            result = {"runs": phases(args[0], args[1], [int(c) for c in args[3:]])}
        elif command == "historical":
            result = historical(*args[:4])
        else:
            raise SystemExit(f"unknown command {command!r}: materialize, phases or historical")
        result["cluster_start_s"] = startup
        print(json.dumps(result))
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
