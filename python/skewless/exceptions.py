"""The exceptions skewless raises: one class per kind of fault.

Every error of the library arrives as a subclass of :class:`SkewlessError`, chosen by the
error's kind (who is at fault), with the message the ``skewless`` command line prints for the
same error, causes included. ``error.kind`` is the kind's stable name (``"schema_mismatch"``,
...) and ``error.context`` what the error names (``{"column": "amount", "transform": ...}``).

Where a built-in exception means the same thing the class derives from it too, so
``except ValueError`` catches bad input and ``except LookupError`` a missing name.
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple

__all__ = [
    "SkewlessError",
    "InvalidInput",
    "SchemaMismatch",
    "InvalidComponent",
    "TransformFailed",
    "Trapped",
    "DeadlineExceeded",
    "MemoryLimitExceeded",
    "NotFound",
    "Unavailable",
    "IoError",
    "Unsupported",
    "Interrupted",
    "InternalError",
]


class SkewlessError(Exception):
    """Base class of every skewless error.

    Attributes:
        kind: the error kind's stable name (as in the server's JSON error bodies).
        context: what the error names: ``column``, ``transform``, ``digest``, ``file``, ...
    """

    kind: str = "internal"

    def __init__(self, message: str, context: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.message = message
        self.context: Dict[str, str] = dict(context or {})

    def __reduce__(self):  # type: ignore[override]
        # Errors cross process boundaries (multiprocessing, Spark, Ray): keep the context.
        return (type(self), (self.message, self.context))


class InvalidInput(SkewlessError, ValueError):
    """Input data or arguments that cannot be used: a malformed file, a bad value."""

    kind = "invalid_input"


class SchemaMismatch(SkewlessError, ValueError):
    """Columns that do not match what a transform or a view declares: a missing column, a
    wrong type, nulls in a non-nullable column."""

    kind = "schema_mismatch"


class InvalidComponent(SkewlessError):
    """A file that is not a usable component, or one whose bytes changed since it was
    applied (or pickled)."""

    kind = "invalid_component"


class TransformFailed(SkewlessError):
    """The transform returned an error of its own."""

    kind = "transform_failed"


class Trapped(SkewlessError):
    """The transform trapped: a panic, ``unreachable``, a stack overflow."""

    kind = "trapped"


class DeadlineExceeded(Trapped, TimeoutError):
    """The transform ran past its per-call deadline."""

    kind = "deadline_exceeded"


class MemoryLimitExceeded(Trapped):
    """The transform tried to grow its memory past the per-instance cap."""

    kind = "memory_limit_exceeded"


class NotFound(SkewlessError, LookupError):
    """A named thing does not exist: a table, a feature view, a feature, a feature service."""

    kind = "not_found"


class Unavailable(SkewlessError, ConnectionError):
    """A backend (Redis, a catalog) cannot be reached; retrying later may succeed."""

    kind = "unavailable"


class IoError(SkewlessError, OSError):
    """Reading or writing a file failed."""

    kind = "io"

    def __str__(self) -> str:
        return self.message


class Unsupported(SkewlessError):
    """An operation skewless refuses by design (one that would let online and offline values
    disagree)."""

    kind = "unsupported"


class Interrupted(SkewlessError):
    """A job stopped at a request to stop before committing anything. Ctrl-C during a call
    raises ``KeyboardInterrupt`` itself; this class is for a stop requested another way."""

    kind = "interrupted"


class InternalError(SkewlessError):
    """A bug in skewless itself."""

    kind = "internal"


_BY_KIND = {
    cls.kind: cls
    for cls in (
        InvalidInput,
        SchemaMismatch,
        InvalidComponent,
        TransformFailed,
        Trapped,
        DeadlineExceeded,
        MemoryLimitExceeded,
        NotFound,
        Unavailable,
        IoError,
        Unsupported,
        Interrupted,
        InternalError,
    )
}


def _from_native(kind: str, message: str, context: Iterable[Tuple[str, str]]) -> SkewlessError:
    """The exception for an error of the native module (called by it)."""
    cls = _BY_KIND.get(kind, SkewlessError)
    error = cls(message, dict(context))
    if cls is SkewlessError:
        error.kind = kind
    return error
