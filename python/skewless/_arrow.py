"""Arrow data from what Python users hold: pyarrow, polars, pandas, or anything that
exports the Arrow PyCapsule interface."""

from __future__ import annotations

from typing import Any


def arrow_data(data: Any, what: str) -> Any:
    """An object the native module reads through the Arrow C data interface.

    Objects exporting ``__arrow_c_stream__`` or ``__arrow_c_array__`` (pyarrow, polars, ...)
    pass as they are, without a copy. A pandas DataFrame goes through
    ``pyarrow.Table.from_pandas`` (its index dropped), as Feast does with ``entity_df``.
    """
    if hasattr(data, "__arrow_c_stream__") and not _is_pandas(data):
        return data
    if hasattr(data, "__arrow_c_array__"):
        return data
    if _is_pandas(data):
        import pyarrow as pa

        return pa.Table.from_pandas(data, preserve_index=False)
    raise TypeError(
        f"{what} must be Arrow data (a pyarrow Table, RecordBatch or RecordBatchReader, a "
        f"polars DataFrame, a pandas DataFrame, or any object with __arrow_c_stream__), "
        f"got {type(data).__module__}.{type(data).__qualname__}"
    )


def _is_pandas(data: Any) -> bool:
    # pandas >= 2.2 exports __arrow_c_stream__ too, but with its index as a column and
    # datetime64[ns]; from_pandas(preserve_index=False) is what users expect.
    return type(data).__module__.startswith("pandas.") and type(data).__name__ == "DataFrame"
