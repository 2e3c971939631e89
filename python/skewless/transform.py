"""``Transform``: a feature transform (a WebAssembly component) run from Python."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from . import _native
from ._arrow import arrow_data

__all__ = ["Engine", "Transform", "Signature", "Field", "default_engine"]


class Field:
    """One input or output column of a transform: name, type and whether it may be null."""

    __slots__ = ("name", "type", "nullable")

    def __init__(self, name: str, type: str, nullable: bool) -> None:
        self.name = name
        self.type = type
        self.nullable = nullable

    def __repr__(self) -> str:
        null = "" if self.nullable else " not null"
        return f"Field({self.name}: {self.type}{null})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and (self.name, self.type, self.nullable) == (
            other.name,
            other.type,
            other.nullable,
        )


class Signature:
    """What a transform is (name, version, description) and what it reads and writes."""

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.name: str = raw["name"]
        self.version: str = raw["version"]
        self.description: str = raw["description"]
        self.inputs: List[Field] = [_field(f) for f in raw["inputs"]]
        self.outputs: List[Field] = [_field(f) for f in raw["outputs"]]

    @property
    def id(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def __repr__(self) -> str:
        return f"Signature({self.id}, inputs={self.inputs}, outputs={self.outputs})"


def _field(raw: Dict[str, Any]) -> Field:
    return Field(raw["name"], str(raw["type"]), bool(raw["nullable"]))


def _default_cache_dir() -> Optional[Path]:
    # The CLI's default, so Python and the CLI share compiled code.
    if os.environ.get("SKEWLESS_CACHE_DIR"):
        return Path(os.environ["SKEWLESS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.path.join(os.environ["HOME"], ".cache") if os.environ.get("HOME") else None
    )
    return Path(base) / "skewless" / "compiled" if base else None


class Engine:
    """The sandbox transforms run in: memory cap per instance, deadline per call, and the
    cache of compiled components (the command line's default: ``$SKEWLESS_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/skewless/compiled``, else ``~/.cache/skewless/compiled``).

    ``Engine(cache_dir=None)`` caches there; pass ``cache_dir=False`` to compile in memory.
    """

    def __init__(
        self,
        cache_dir: Union[str, os.PathLike, None, bool] = None,
        memory_limit_mib: int = 512,
        deadline_ms: int = 10_000,
    ) -> None:
        if cache_dir is True:
            raise TypeError("cache_dir must be a folder, None (the default folder) or False (no cache)")
        if cache_dir is None:
            cache_dir = _default_cache_dir()
        elif cache_dir is False:
            cache_dir = None
        self.memory_limit_mib = memory_limit_mib
        self.deadline_ms = deadline_ms
        self._native = _native.Engine(
            os.fspath(cache_dir) if cache_dir is not None else None, memory_limit_mib, deadline_ms
        )

    def __repr__(self) -> str:
        return f"Engine(memory_limit_mib={self.memory_limit_mib}, deadline_ms={self.deadline_ms})"


_default: Optional[Engine] = None
_default_lock = threading.Lock()


def default_engine() -> Engine:
    """The engine transforms use unless given one: created on first use, with the
    command line's defaults (512 MiB per instance, 10 s per call)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Engine()
        return _default


class Transform:
    """A feature transform compiled to a WebAssembly component.

    It runs in the same engine and sandbox as ``skewless run``, materialization, historical
    retrieval and online serving, so the same input gives the same bits::

        t = skewless.Transform("transaction_features.wasm")
        t.signature.outputs        # [Field(amount_log1p: float64), ...]
        t.digest                   # 'sha256:3c15e2b9...'
        out = t.run(table)         # pyarrow.Table (a RecordBatch for a RecordBatch)

    A ``Transform`` pickles as its path and digest: unpickled on another process or machine
    (a Spark executor, a Ray worker), it loads the file at the same path and refuses it
    (:class:`~skewless.InvalidComponent`) when its digest differs.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike],
        engine: Optional[Engine] = None,
        *,
        expected_digest: Optional[str] = None,
    ) -> None:
        self._engine = engine or default_engine()
        self._native = self._engine._native.load(os.fspath(path), expected_digest)
        self._signature: Optional[Signature] = None

    @property
    def path(self) -> Path:
        """The component file."""
        return Path(self._native.path)

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the component's bytes: what it is, wherever it runs."""
        return self._native.digest

    @property
    def signature(self) -> Signature:
        """Name, version, description, inputs and outputs, as the component declares them."""
        if self._signature is None:
            self._signature = Signature(json.loads(self._native.signature_json()))
        return self._signature

    @property
    def input_schema(self) -> Any:
        """The declared inputs as a ``pyarrow.Schema``."""
        return self._native.input_schema()

    @property
    def output_schema(self) -> Any:
        """The outputs as a ``pyarrow.Schema``."""
        return self._native.output_schema()

    def run(self, data: Any, *, threads: Optional[int] = None) -> Any:
        """Runs the transform over ``data`` and returns its outputs.

        ``data`` is a ``pyarrow.RecordBatch`` (gives a ``RecordBatch``), or a table or stream:
        a ``pyarrow.Table`` or ``RecordBatchReader``, a polars or pandas ``DataFrame``,
        anything with ``__arrow_c_stream__`` (gives a ``pyarrow.Table``, batch by batch in
        order, on ``threads`` threads: all cores by default). Columns are matched by name;
        columns the transform does not read are ignored. The GIL is released while it runs,
        and Ctrl-C stops a table between batches.

        Raises:
            SchemaMismatch: a declared input is missing or of the wrong type.
            TransformFailed, Trapped, DeadlineExceeded, MemoryLimitExceeded: the component
                failed; the message names it and its digest.
        """
        return self._native.run(arrow_data(data, "data"), threads)

    __call__ = run

    def __reduce__(self):  # type: ignore[override]
        return (_restore, (os.fspath(self.path), self.digest))

    def __repr__(self) -> str:
        return f"Transform({self.signature.id}, {self.digest}, path={os.fspath(self.path)!r})"


def _restore(path: str, digest: str) -> Transform:
    """Unpickles a :class:`Transform`: the file at ``path``, refused if its digest differs."""
    return Transform(path, expected_digest=digest)
