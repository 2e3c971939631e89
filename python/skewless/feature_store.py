"""``FeatureStore``: a feature repo, used from Python the way Feast's ``FeatureStore`` is.

Every method runs the code the ``skewless`` command line runs for the same command (and
``get_online_features`` the code the HTTP server runs), in process, with the GIL released.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from . import _native
from ._arrow import arrow_data
from .exceptions import InvalidInput

__all__ = [
    "FeatureStore",
    "FeatureService",
    "Plan",
    "Ingested",
    "Materialized",
    "RetrievalJob",
    "OnlineResponse",
]

TimeLike = Union[_dt.datetime, _dt.date, str]


class FeatureService:
    """A feature service declared in ``skewless.toml``, by name (see
    :meth:`FeatureStore.get_feature_service`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"FeatureService({self.name!r})"


class Plan:
    """What ``apply`` changes (or would change), as ``skewless plan`` prints it, and the
    problems that stop it."""

    def __init__(self, changes: List[str], problems: List[str]) -> None:
        self.changes = changes
        self.problems = problems

    def __repr__(self) -> str:
        return f"Plan(changes={self.changes!r}, problems={self.problems!r})"


class Ingested:
    """What one ``ingest`` appended: rows, the snapshot committed, whether the table was
    created."""

    def __init__(self, rows: int, snapshot_id: int, created: bool) -> None:
        self.rows = rows
        self.snapshot_id = snapshot_id
        self.created = created

    def __repr__(self) -> str:
        return (
            f"Ingested(rows={self.rows}, snapshot_id={self.snapshot_id}, "
            f"created={self.created})"
        )


class Pushed:
    """What one ``push`` did: rows pushed, where to (Feast's spelling), and the entities
    whose online value changed over every view the push source feeds."""

    def __init__(self, rows: int, to: str, online_written: int) -> None:
        self.rows = rows
        self.to = to
        self.online_written = online_written

    def __repr__(self) -> str:
        return (
            f"Pushed(rows={self.rows}, to={self.to!r}, online_written={self.online_written})"
        )


def _push_mode(to: Any) -> str:
    """Feast's ``PushMode`` member (``PushMode.ONLINE``), or its name as text, to the
    spelling of a push body's ``to``."""
    name = getattr(to, "name", to)
    if not isinstance(name, str):
        raise InvalidInput(
            f"`to` is {to!r}; expected one of 'online', 'offline', 'online_and_offline' "
            "(or Feast's PushMode)",
            {"field": "to"},
        )
    return name.lower()


class Materialized:
    """What one view's materialization did."""

    def __init__(self, raw: tuple) -> None:
        (
            self.view,
            self.rows,
            self.dropped_rows,
            self.online_written,
            self.snapshot_id,
            self.skipped,
            self.digest,
            window,
            self.seconds,
            self.mode,
            self.source_snapshot,
        ) = raw
        #: The event-time window replaced, microseconds since the epoch: [start, end); None
        #: for an incremental run (it reads what the source appended, whatever the times).
        self.window = tuple(window) if window is not None else None
        #: ``full``, ``window`` or ``incremental`` (``none`` when skipped before deciding).
        self.mode: str
        #: The source snapshot read (None when nothing was read).
        self.source_snapshot: "int | None"

    def __repr__(self) -> str:
        if self.skipped:
            return f"Materialized({self.view}: nothing to do: {self.skipped})"
        return (
            f"Materialized({self.view}: {self.rows} rows, {self.online_written} entities "
            f"online, snapshot {self.snapshot_id}, {self.digest})"
        )


class RetrievalJob:
    """A point-in-time correct training set, built: the entity rows (in their order, with
    all their columns), then one column per feature.

    The snapshots read and the component digests used are in :attr:`metadata` and in the
    Arrow schema's metadata, as ``skewless historical`` writes them into its Parquet file.
    """

    def __init__(self, native: Any) -> None:
        self._native = native

    def to_arrow(self) -> Any:
        """The training set as a ``pyarrow.Table`` (no copy)."""
        return self._native.to_arrow()

    def to_pandas(self) -> Any:
        """The training set as a pandas ``DataFrame``."""
        return self.to_arrow().to_pandas()

    to_df = to_pandas

    def to_polars(self) -> Any:
        """The training set as a polars ``DataFrame`` (needs polars installed)."""
        try:
            import polars as pl
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("to_polars() needs polars: pip install polars") from e
        return pl.from_arrow(self.to_arrow())

    def to_parquet(self, path: Union[str, os.PathLike]) -> int:
        """Writes the training set to ``path`` exactly as ``skewless historical --out`` does;
        returns the rows written."""
        return self._native.write_parquet(os.fspath(path))

    @property
    def metadata(self) -> Dict[str, Dict[str, Any]]:
        """``{"snapshots": {view: snapshot id or None}, "digests": {view: digest}}``."""
        return {
            "snapshots": json.loads(self._native.snapshots_json),
            "digests": json.loads(self._native.digests_json),
        }

    @property
    def spilled(self) -> tuple:
        """(files, bytes) spilled to disk because the feature rows exceeded the memory
        budget; (0, 0) when they fit."""
        return self._native.spilled

    @property
    def feature_rows(self) -> int:
        """Feature rows joined, over the views read: the rows of the feature tables in the
        labels' time range whose key some entity row asks for (the others are dropped as
        they are scanned; this is what memory and spilling are spent on)."""
        return self._native.feature_rows


class OnlineResponse:
    """Online features for some entity rows: values, with each value's status and event time.

    ``to_dict()`` / ``to_df()`` / ``to_arrow()`` give the join keys and features, as Feast's
    ``OnlineResponse`` does; :attr:`statuses` (``PRESENT``, ``NULL_VALUE``, ``NOT_FOUND``,
    ``OUTSIDE_MAX_AGE``), :attr:`event_timestamps` and :attr:`digests` say where each value
    comes from.
    """

    def __init__(self, native: Any) -> None:
        # Held natively; each part crosses to pyarrow when first asked for.
        self._native = native
        self._parts: Dict[str, Any] = {}
        #: The digest of the component that computed each view's features.
        self.digests: Dict[str, str] = dict(native.digests)

    def _part(self, name: str) -> Any:
        part = self._parts.get(name)
        if part is None:
            part = self._parts[name] = getattr(self._native, name)()
        return part

    @property
    def _values(self) -> Any:
        return self._part("values")

    @property
    def _statuses(self) -> Any:
        return self._part("statuses")

    @property
    def _times(self) -> Any:
        return self._part("event_timestamps")

    def to_arrow(self) -> Any:
        """Join keys and features as a ``pyarrow.Table``."""
        import pyarrow as pa

        return pa.Table.from_batches([self._values])

    def to_dict(self) -> Dict[str, List[Any]]:
        """``{column: [one value per entity row]}``: join keys, then features (``None`` where
        no value is present)."""
        return self._values.to_pydict()

    def to_df(self) -> Any:
        """Join keys and features as a pandas ``DataFrame``."""
        return self.to_arrow().to_pandas()

    to_pandas = to_df

    def to_polars(self) -> Any:
        """Join keys and features as a polars ``DataFrame``."""
        import polars as pl

        return pl.from_arrow(self.to_arrow())

    @property
    def statuses(self) -> Dict[str, List[str]]:
        """``{feature: [status per entity row]}``."""
        return self._statuses.to_pydict()

    @property
    def event_timestamps(self) -> Dict[str, List[Optional[_dt.datetime]]]:
        """``{feature: [event time of the row each value comes from, or None]}``."""
        return self._times.to_pydict()

    def __repr__(self) -> str:
        return f"OnlineResponse({self._native.rows} rows)"


class FeatureStore:
    """A feature repo (a folder with a ``skewless.toml``) and its offline and online stores.

    Shaped like Feast's ``FeatureStore``::

        store = skewless.FeatureStore("examples/feature-repo")
        training = store.get_historical_features(
            entity_df=labels,                      # pandas, pyarrow or polars
            features=["user_transaction_features:amount_log1p"],
        ).to_df()
        online = store.get_online_features(
            features=["user_transaction_features:amount_log1p"],
            entity_rows=[{"user_id": 42}],
        ).to_dict()

    The embedded online store is locked by the process that opens it: call :meth:`close`
    (or use the store as a context manager) before another process (``skewless serve``,
    ``skewless materialize``) opens it.
    """

    def __init__(self, repo_path: Union[str, os.PathLike] = ".") -> None:
        self._native = _native.NativeStore(os.fspath(repo_path))

    @property
    def repo_path(self) -> Path:
        """The repo folder (absolute)."""
        return Path(self._native.repo_path)

    # -- the repo ----------------------------------------------------------------------

    def plan(self) -> Plan:
        """What :meth:`apply` would change, and every problem that stops it (as
        ``skewless plan``); changes nothing."""
        return Plan(*self._native.plan(False))

    def apply(self) -> Plan:
        """Checks every view against its data, creates feature tables and registers each
        view's component digest (``skewless apply``).

        Raises:
            InvalidInput: the repo has problems; the message lists every one.
        """
        changes, problems = self._native.plan(True)
        if problems:
            listed = "\n".join(f"  - {p}" for p in problems)
            raise InvalidInput(
                f"the feature repo has {len(problems)} problem(s) that stop `apply`:\n{listed}"
            )
        return Plan(changes, problems)

    def get_feature_service(self, name: str) -> FeatureService:
        """A feature service by name, for ``features=`` (checked when used)."""
        return FeatureService(name)

    # -- data --------------------------------------------------------------------------

    def ingest(self, table: str, data: Any, create: bool = False) -> Ingested:
        """Appends ``data`` to the Iceberg source table ``table`` (``namespace.table``) as one
        snapshot (``skewless ingest``).

        ``data`` is a path to a ``.parquet`` or ``.csv`` file, or Arrow data (pyarrow,
        polars, pandas). With ``create``, a missing table is created from its schema.
        """
        if isinstance(data, (str, os.PathLike)):
            return Ingested(*self._native.ingest(table, os.fspath(data), create))
        data = arrow_data(data, "data")
        # The library ingests files (streamed, any size); Arrow data goes through one in the
        # repo's state folder, removed after.
        tmp = self.repo_path / ".skewless" / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="ingest-", suffix=".parquet", dir=tmp)
        os.close(fd)
        try:
            _native.write_parquet(data, path)
            return Ingested(*self._native.ingest(table, path, create))
        finally:
            os.unlink(path)

    def push(
        self,
        push_source_name: str,
        df: Any,
        allow_registry_cache: bool = True,
        to: Any = "online",
        transform_on_write: bool = True,
    ) -> Pushed:
        """Pushes rows of a push source's table (``[[push_source]]`` in ``skewless.toml``),
        as Feast's ``FeatureStore.push`` and the server's ``POST /push`` do: each fed view's
        component runs on them, the newest row per entity is written online, and every row
        is committed to the source table (and materialized) in the next micro-batch.

        ``df`` is Arrow data (pandas, pyarrow, polars) with the source table's columns, aligned
        as :meth:`ingest` aligns (by name, lossless conversions only). ``to`` is ``"online"``
        (Feast's default: returns once the values are online and in the write-ahead log),
        ``"offline"`` or ``"online_and_offline"`` (return once committed offline), or Feast's
        ``PushMode``. ``allow_registry_cache`` and ``transform_on_write`` are accepted for
        Feast's signature and have no effect: the applied registry is always read, and the
        component always runs.

        The push sources' logs are locked by the process that opens them: pushing here and
        through a ``skewless serve`` of the same repo at once is refused; :meth:`close`
        releases them (committing what is pending).

        Raises:
            NotFound: no such push source.
            SchemaMismatch: a column the table lacks, a missing required one, a wrong type.
            Unavailable: the online store is down (nothing was pushed), or the log is open in
                another process.
        """
        for flag, value in (
            ("allow_registry_cache", allow_registry_cache),
            ("transform_on_write", transform_on_write),
        ):
            if not isinstance(value, bool):
                raise InvalidInput(
                    f"`{flag}` is {value!r}, expected True or False", {"field": flag}
                )
        mode = _push_mode(to)
        data = arrow_data(df, "df")
        rows, online_written = self._native.push(push_source_name, data, mode)
        return Pushed(rows, mode, online_written)

    def materialize(
        self,
        views: Optional[Sequence[str]] = None,
        start: Optional[TimeLike] = None,
        end: Optional[TimeLike] = None,
    ) -> List[Materialized]:
        """Computes batch and aggregate views over ``[start, end)`` of their sources' event time
        into the offline and online stores (``skewless materialize``): ``views`` (every batch and
        aggregate view by default). Without ``start`` and ``end`` a full run replaces each view's feature table;
        with them a backfill replaces the window's rows (each row stored once however often it
        runs), and a re-run of the same window from the same source snapshot is skipped."""
        return [
            Materialized(m)
            for m in self._native.materialize(
                _views(views), _micros(start, "start"), _micros(end, "end"), False
            )
        ]

    def materialize_incremental(self, views: Optional[Sequence[str]] = None) -> List[Materialized]:
        """Continues each view from the last source snapshot it processed
        (``skewless materialize --incremental``): every row appended to a source since is
        processed exactly once, however late its event time."""
        return [
            Materialized(m) for m in self._native.materialize(_views(views), None, None, True)
        ]

    # -- retrieval ---------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: Any,
        features: Union[Sequence[str], FeatureService, None] = None,
        *,
        feature_service: Union[str, FeatureService, None] = None,
        full_feature_names: bool = False,
        as_of: Union[_dt.datetime, str, int, None] = None,
        memory_budget: Optional[int] = None,
    ) -> RetrievalJob:
        """A point-in-time correct training set (``skewless historical``).

        Args:
            entity_df: the entity rows: join keys, an ``event_timestamp`` column (the label
                time of each row) and any other columns; pandas, pyarrow or polars.
            features: ``["view:feature", "view:*", ...]``, or a :class:`FeatureService`.
            feature_service: a feature service's name, instead of ``features``.
            full_feature_names: name feature columns ``view__feature``.
            as_of: pin every feature table to the snapshot current at this time (a datetime
                or an RFC 3339 string), or to a snapshot id (an int) of one of the requested
                views' tables, so the set can be rebuilt exactly later.
            memory_budget: MiB for the feature rows being joined (1024 by default); beyond
                it rows spill to the repo's ``.skewless/tmp``.

        The entity rows' label times are compared with feature event times exactly as in
        the command line; naive datetimes are UTC.
        """
        if isinstance(features, FeatureService):
            feature_service, features = features, None
        if isinstance(feature_service, FeatureService):
            feature_service = feature_service.name
        if isinstance(features, str):
            raise TypeError(
                "features must be a list of `view:feature` strings (got one string); "
                "for a feature service pass feature_service="
            )
        as_of_text: Optional[str] = None
        as_of_ms: Optional[int] = None
        if isinstance(as_of, bool):
            raise TypeError("as_of must be a datetime, an RFC 3339 string or a snapshot id")
        if isinstance(as_of, int):
            as_of_text = str(as_of)
        elif isinstance(as_of, str):
            as_of_text = as_of
        elif as_of is not None:
            as_of_us = _micros(as_of, "as_of")
            assert as_of_us is not None
            as_of_ms = as_of_us // 1000
        native = self._native.historical(
            arrow_data(entity_df, "entity_df"),
            list(features) if features is not None else None,
            feature_service,
            full_feature_names,
            as_of_text,
            as_of_ms,
            1024 if memory_budget is None else memory_budget,
        )
        return RetrievalJob(native)

    def get_online_features(
        self,
        features: Union[Sequence[str], FeatureService, None] = None,
        entity_rows: Optional[Iterable[Mapping[str, Any]]] = None,
        *,
        entities: Optional[Mapping[str, Any]] = None,
        feature_service: Union[str, FeatureService, None] = None,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """Online features, computed in this process by the code the HTTP server runs: the
        online store read, TTLs judged at the time of the call, request-time views run by
        their components.

        Args:
            features: ``["view:feature", ...]`` or a :class:`FeatureService`.
            entity_rows: one mapping per row: join keys and request data
                (``[{"user_id": 42, "amount": 12.5}]``), as in Feast; or
            entities: the same, columnar (``{"user_id": [42, 43]}``).
            feature_service: a feature service's name, instead of ``features``.
            full_feature_names: name features ``view__feature``.
        """
        if isinstance(features, FeatureService):
            feature_service, features = features, None
        if isinstance(feature_service, FeatureService):
            feature_service = feature_service.name
        if (entity_rows is None) == (entities is None):
            raise TypeError("pass exactly one of entity_rows= (a list of dicts) or entities=")
        if entity_rows is not None:
            columns = _columns(entity_rows)
        else:
            assert entities is not None
            columns = _columnar(entities)
        request: Dict[str, Any] = {"entities": columns, "full_feature_names": full_feature_names}
        if features is not None:
            if isinstance(features, str):
                raise TypeError("features must be a list of `view:feature` strings")
            request["features"] = list(features)
        if feature_service is not None:
            request["feature_service"] = feature_service
        return OnlineResponse(self._native.online(json.dumps(request)))

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Closes the online store (the embedded one is locked while open); the next call
        that needs it opens it again."""
        self._native.close()

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeatureStore({os.fspath(self.repo_path)!r})"


def _views(views: Optional[Sequence[str]]) -> Optional[List[str]]:
    if isinstance(views, str):
        return [views]
    return list(views) if views is not None else None


def _micros(value: Optional[TimeLike], what: str) -> Optional[int]:
    """Microseconds since the epoch; naive datetimes are UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        return _native.NativeStore.parse_time(what, value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        delta = value - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, _dt.date):
        return _micros(_dt.datetime(value.year, value.month, value.day), what)
    raise TypeError(f"{what} must be a datetime, a date or an RFC 3339 string, got {value!r}")


def _columns(rows: Iterable[Mapping[str, Any]]) -> Dict[str, List[Any]]:
    """Feast's ``entity_rows`` (one mapping per row) as the server's columnar ``entities``."""
    rows = list(rows)
    names: List[str] = list(rows[0].keys()) if rows else []
    columns: Dict[str, List[Any]] = {name: [] for name in names}
    for i, row in enumerate(rows):
        if set(row.keys()) != set(names):
            raise InvalidInput(
                f"entity_rows[{i}] has the keys {sorted(row.keys())}, but entity_rows[0] has "
                f"{sorted(names)}; every row needs the same join keys and request fields"
            )
        for name in names:
            columns[name].append(_json_value(row[name]))
    return columns


def _columnar(entities: Mapping[str, Any]) -> Dict[str, Any]:
    columns: Dict[str, Any] = {}
    for name, values in entities.items():
        if hasattr(values, "to_pylist"):
            values = values.to_pylist()
        elif hasattr(values, "tolist"):
            values = values.tolist()
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            # Left as is: the server's parser names the field and what was expected.
            columns[name] = _json_value(values)
        else:
            columns[name] = [_json_value(v) for v in values]
    return columns


def _json_value(value: Any) -> Any:
    """A Python value in the JSON form the server reads (the protobuf JSON mapping)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "item") and not hasattr(value, "__len__"):
        return _json_value(value.item())  # a numpy scalar
    if hasattr(value, "tolist"):
        return [_json_value(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    raise TypeError(f"cannot send {type(value).__name__} value {value!r} as an entity value")
