"""Materialization and historical retrieval on a Ray cluster, with the same components and the
same code as on one machine.

``skewless.ray.materialize`` runs one materialization per view as Ray tasks and commits it as
one Iceberg snapshot; ``skewless.ray.get_historical_features`` splits the entity rows by key
across Ray tasks and puts the training set back together in input order. Ray is imported when
one of them is called (``pip install ray``); the repo folder, its components and its stores
must be reachable at the same paths on every node (a shared folder, or S3 and Redis).

**Materialization** (:func:`materialize`), per view:

1. the driver plans the run exactly as ``FeatureStore.materialize`` would (mode, window,
   source snapshot, the processed-snapshot marker) and splits the data files its source scan
   reads into parts (an online aggregate view: into entity buckets, each reading every file
   and keeping its entities' rows, since an entity's record needs all its rows);
2. one Ray task per part (round robin over the nodes, one CPU each by default) loads the
   view's component, refuses it unless its digest is the registry's and the plan's, runs it
   over the part's Arrow batches, writes Parquet data files into the feature table's
   location (not committed) and writes its entities' newest rows straight to the online
   store (monotonic: an older row never replaces a newer, so parts may write in any order);
3. the driver checks every part's digest and commits all their files as **one** snapshot
   with the summary a local run writes (view, digest, mode, window, source snapshot, marker),
   under the local run's conflict check.

A task whose worker dies is retried by Ray (``max_retries``); a retry first deletes what the
dead attempt wrote, and only the files of the results the driver received are committed, so
no row is lost or doubled. A job that fails or is interrupted cancels its other tasks,
commits nothing and deletes every file its tasks wrote. Online writes already made stay, as
after a failed local run: they are values a re-run writes again.

**Historical retrieval** (:func:`get_historical_features`): the driver assigns each entity
row to a partition by a stable hash of its join keys; each Ray task runs the single-machine
retrieval (``FeatureStore.get_historical_features``: the same point-in-time join,
aggregates and request-time views) over its partition's rows; the driver puts the rows back
in input order. What moves: the entity rows out (through Ray's object store) and the
training set back. What each task scans: the time range of each feature table its own entity
rows need, keeping only the rows of its partition's keys as it reads them (the key filter of
a single-machine run), so what a task holds follows its partition; every task still reads
that range of the files.
The result equals the single-machine one byte for byte, provided the feature tables do not
change while the tasks run; parts that read different snapshots are an error that says to
pin them with ``as_of``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from . import _native
from ._arrow import arrow_data
from .exceptions import Unavailable
from .feature_store import FeatureService, FeatureStore, Materialized, _micros, _views

__all__ = ["materialize", "get_historical_features", "DistributedRetrieval"]

RepoLike = Union[str, "os.PathLike[str]", FeatureStore]
TimeLike = Union[_dt.datetime, _dt.date, str]


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            "skewless.ray needs Ray on the driver and the workers: pip install ray"
        ) from e
    return ray


def _repo(repo: RepoLike) -> str:
    if isinstance(repo, FeatureStore):
        return os.fspath(repo.repo_path)
    return os.path.abspath(os.fspath(repo))


def _cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


# -- materialize -------------------------------------------------------------------------


def _materialize_part(
    repo: str, plan_json: str, part: int, threads: int, after_part: Optional[Callable[[int], None]]
) -> tuple:
    """One part, on a worker: its files (uncommitted) and online rows written."""
    import ray

    done = _native.materialize_part(repo, plan_json, part, threads)
    if after_part is not None:
        after_part(part)
    return done, ray.get_runtime_context().get_node_id()


def _spread(ray: Any, index: int, cpus: float) -> Any:
    """Where task `index` runs: the nodes that can run it, round robin (soft: elsewhere when
    that node is gone, as for a retry after it died). Ray's own SPREAD is a preference that
    a quick first task can undo, putting every part on one node."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = sorted(
        n["NodeID"] for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= cpus
    )
    if not nodes:
        return "SPREAD"
    return NodeAffinitySchedulingStrategy(node_id=nodes[index % len(nodes)], soft=True)


def _gather(ray: Any, refs: List[Any]) -> List[Any]:
    """Every task's result, in order; the first failure (or an interrupt) cancels the others
    and waits until none runs any more, so that nothing writes after the caller cleans up."""
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            ray.get(ready)  # raises the task's error
        return ray.get(refs)
    except BaseException:
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # pragma: no cover - already finished or gone
                pass
        try:
            ray.wait(list(refs), num_returns=len(refs), timeout=120)
        except BaseException:  # pragma: no cover - interrupted again
            pass
        raise


def materialize(
    repo: RepoLike,
    views: Optional[Sequence[str]] = None,
    start: Optional[TimeLike] = None,
    end: Optional[TimeLike] = None,
    *,
    incremental: bool = False,
    parts: Optional[int] = None,
    cpus_per_part: int = 1,
    max_retries: int = 3,
    _after_part: Optional[Callable[[int], None]] = None,
) -> List[Materialized]:
    """Materializes ``views`` (every batch and aggregate view by default) on the Ray cluster
    ``ray.init()`` connected to: what ``FeatureStore.materialize`` (or, with ``incremental``,
    ``materialize_incremental``) does, run in ``parts`` Ray tasks per view (the cluster's
    CPUs by default), committed as one snapshot per view.

    Each result is a :class:`~skewless.Materialized`, with ``parts``: one
    ``{"node": node id, "rows": rows}`` per task. ``_after_part`` (tests) is called on the
    worker after a part's files and online rows are written, before its result returns.
    """
    ray = _ray()
    root = _repo(repo)
    names = _views(views) if views is not None else _native.materialize_views(root)
    start_us, end_us = _micros(start, "start"), _micros(end, "end")
    count = parts if parts is not None else _cluster_cpus(ray)
    task = ray.remote(_materialize_part)
    results = []
    for view in names:
        plan_json, count_parts, skipped = _native.materialize_plan(
            root, view, count, start_us, end_us, incremental
        )
        outs: List[Any] = []
        try:
            if skipped is None and count_parts:
                refs = [
                    task.options(
                        num_cpus=cpus_per_part,
                        max_retries=max_retries,
                        scheduling_strategy=_spread(ray, i, cpus_per_part),
                    ).remote(root, plan_json, i, cpus_per_part, _after_part)
                    for i in range(count_parts)
                ]
                outs = _gather(ray, refs)
            done = Materialized(_native.materialize_commit(root, plan_json, [o[0] for o in outs]))
        except BaseException:
            _native.materialize_abort(root, plan_json)
            raise
        #: The job's id: its data files are under the feature table's
        #: ``data/skewless-job-<job>/``.
        done.job = json.loads(plan_json)["job"]
        done.parts = [
            {"node": node, "rows": json.loads(out)["rows"]} for out, node in outs
        ]
        results.append(done)
    return results


# -- historical retrieval ------------------------------------------------------------------


def _historical_part(repo: str, entities: Any, kwargs: Dict[str, Any]) -> Any:
    """One partition's training set, on a worker: the single-machine retrieval."""
    with FeatureStore(repo) as store:
        return store.get_historical_features(entity_df=entities, **kwargs).to_arrow()


class DistributedRetrieval:
    """A training set built on a Ray cluster: the entity rows in input order, then one column
    per feature, with the snapshots and digests used in its Arrow schema's metadata — the
    table ``FeatureStore.get_historical_features`` gives for the same rows."""

    def __init__(self, table: Any, partitions: List[int]) -> None:
        self._table = table
        #: Entity rows per partition (a Ray task each; empty partitions ran no task).
        self.partitions = partitions

    def to_arrow(self) -> Any:
        """The training set as a ``pyarrow.Table``."""
        return self._table

    def to_pandas(self) -> Any:
        return self._table.to_pandas()

    to_df = to_pandas

    def to_ray_dataset(self) -> Any:
        """The training set as a Ray Dataset (from the driver's copy)."""
        return _ray().data.from_arrow(self._table)

    def to_parquet(self, path: Union[str, "os.PathLike[str]"]) -> int:
        """Writes the training set as ``skewless historical --out`` writes it (the same bytes
        for the same rows); returns the rows written."""
        batches = self._table.combine_chunks().to_batches()
        data = batches[0] if len(batches) == 1 else self._table
        return _native.write_parquet(data, os.fspath(path))

    @property
    def metadata(self) -> Dict[str, Dict[str, Any]]:
        """``{"snapshots": {view: snapshot id or None}, "digests": {view: digest}}``."""
        meta = self._table.schema.metadata or {}
        return {
            "snapshots": json.loads(meta.get(b"skewless.snapshots", b"{}")),
            "digests": json.loads(meta.get(b"skewless.digests", b"{}")),
        }


def get_historical_features(
    repo: RepoLike,
    entity_df: Any,
    features: Union[Sequence[str], FeatureService, None] = None,
    *,
    feature_service: Union[str, FeatureService, None] = None,
    full_feature_names: bool = False,
    as_of: Union[_dt.datetime, str, int, None] = None,
    memory_budget: Optional[int] = None,
    parts: Optional[int] = None,
) -> DistributedRetrieval:
    """A point-in-time correct training set built by ``parts`` Ray tasks (the cluster's CPUs
    by default), each over the entity rows whose join keys hash to it; arguments as
    ``FeatureStore.get_historical_features``. See the module docs for what moves where."""
    import numpy as np
    import pyarrow as pa

    ray = _ray()
    root = _repo(repo)
    if isinstance(features, FeatureService):
        feature_service, features = features, None
    if isinstance(feature_service, FeatureService):
        feature_service = feature_service.name
    if isinstance(features, str):
        raise TypeError("features must be a list of `view:feature` strings (got one string)")
    table = pa.table(arrow_data(entity_df, "entity_df"))
    count = parts if parts is not None else _cluster_cpus(ray)
    of_row = np.asarray(
        _native.entity_partitions(
            root,
            table,
            count,
            list(features) if features is not None else None,
            feature_service,
        ),
        dtype=np.int64,
    )
    kwargs: Dict[str, Any] = {
        "features": list(features) if features is not None else None,
        "feature_service": feature_service,
        "full_feature_names": full_feature_names,
        "as_of": as_of,
        "memory_budget": memory_budget,
    }
    rows = [np.flatnonzero(of_row == p) for p in range(count)]
    used = [p for p in range(count) if len(rows[p])] or [0]
    task = ray.remote(_historical_part)
    refs = [
        task.options(num_cpus=1, scheduling_strategy=_spread(ray, i, 1)).remote(
            root, table.take(pa.array(rows[p])), kwargs
        )
        for i, p in enumerate(used)
    ]
    # A task's skewless error is raised here as its own class (Ray's `as_instanceof_cause`).
    outs = _gather(ray, refs)
    # Every part must have read the same snapshots with the same components.
    metadata = outs[0].schema.metadata
    for p, out in zip(used, outs):
        if out.schema.metadata != metadata:
            raise Unavailable(
                "the partitions of this retrieval read different feature table snapshots "
                "(a materialization committed while it ran): "
                f"{(metadata or {}).get(b'skewless.snapshots')!r} and "
                f"{(out.schema.metadata or {}).get(b'skewless.snapshots')!r}; pass as_of= to "
                "pin every partition to the same snapshots, or run it again"
            )
    combined = pa.concat_tables(outs)
    order = np.argsort(np.concatenate([rows[p] for p in used]), kind="stable")
    result = combined.take(pa.array(order)).combine_chunks().replace_schema_metadata(metadata)
    return DistributedRetrieval(result, [len(r) for r in rows])
