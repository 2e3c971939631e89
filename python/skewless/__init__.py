"""skewless: a feature store whose transforms are sandboxed WebAssembly components.

The same component bytes (the same sha256 digest) compute a feature in batch jobs, in
training sets and online, so training and serving cannot disagree. This package is the
skewless library, in process:

- :class:`Transform`: a component, run over Arrow data in the same sandbox as everywhere;
  picklable, for Spark executors and Ray workers.
- :class:`FeatureStore`: a feature repo, shaped like Feast's: ``get_historical_features``,
  ``get_online_features``, ``materialize``, ``apply``, ``ingest``.
- :mod:`skewless.exceptions`: one exception class per kind of fault.
"""

from . import exceptions
from ._native import __version__
from .exceptions import (
    DeadlineExceeded,
    InternalError,
    InvalidComponent,
    InvalidInput,
    IoError,
    MemoryLimitExceeded,
    NotFound,
    SchemaMismatch,
    SkewlessError,
    TransformFailed,
    Trapped,
    Interrupted,
    Unavailable,
    Unsupported,
)
from .feature_store import (
    FeatureService,
    FeatureStore,
    Ingested,
    Materialized,
    Pushed,
    OnlineResponse,
    Plan,
    RetrievalJob,
)
from .transform import Engine, Field, Signature, Transform, default_engine

__all__ = [
    "__version__",
    "exceptions",
    "Transform",
    "Engine",
    "Signature",
    "Field",
    "default_engine",
    "FeatureStore",
    "FeatureService",
    "Plan",
    "Ingested",
    "Materialized",
    "Pushed",
    "RetrievalJob",
    "OnlineResponse",
    *exceptions.__all__,
]
