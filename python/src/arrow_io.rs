//! Arrow in and out of Python through the Arrow C data interface.
//!
//! Input is anything that exports `__arrow_c_array__` (a record batch: pyarrow's
//! `RecordBatch`, a struct array) or `__arrow_c_stream__` (a table or a stream: pyarrow's
//! `Table` and `RecordBatchReader`, polars' `DataFrame`, pandas' `DataFrame` from 2.2, ...).
//! The buffers are shared, not copied. Output goes to pyarrow through the same interface.

use std::path::PathBuf;

use arrow_array::ffi_stream::ArrowArrayStreamReader;
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_pyarrow::{FromPyArrow, IntoPyArrow, Table, ToPyArrow};
use arrow_schema::SchemaRef;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use skewless_runtime::files::ParquetSink;
use skewless_runtime::{Error, ErrorKind};

use crate::errors::py_err;

/// Arrow data received from Python.
#[derive(Debug)]
pub(crate) enum Input {
    /// One record batch (the caller gets one back).
    Batch(RecordBatch),
    /// A table or a stream, read whole (the caller gets a table back).
    Stream(SchemaRef, Vec<RecordBatch>),
}

impl Input {
    /// Reads `data`: a record batch when it exports `__arrow_c_array__`, else a stream when it
    /// exports `__arrow_c_stream__`; a `TypeError` naming both otherwise.
    pub(crate) fn read(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        if data.hasattr("__arrow_c_array__")? {
            return Ok(Input::Batch(RecordBatch::from_pyarrow_bound(data)?));
        }
        if data.hasattr("__arrow_c_stream__")? {
            let reader = ArrowArrayStreamReader::from_pyarrow_bound(data)?;
            let schema = reader.schema();
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("could not read the Arrow stream: {e}"),
                    )
                })
                .map_err(py_err)?;
            return Ok(Input::Stream(schema, batches));
        }
        Err(PyTypeError::new_err(format!(
            "expected Arrow data (an object with `__arrow_c_array__` or `__arrow_c_stream__`: a \
             pyarrow RecordBatch, Table or RecordBatchReader, a polars DataFrame, ...), got {}",
            data.get_type().name()?
        )))
    }

    /// The data as one record batch (a stream's batches concatenated).
    pub(crate) fn into_batch(self) -> Result<RecordBatch, Error> {
        match self {
            Input::Batch(batch) => Ok(batch),
            Input::Stream(schema, batches) => {
                arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("could not assemble the Arrow data into one batch: {e}"),
                    )
                })
            }
        }
    }
}

/// A record batch as a `pyarrow.RecordBatch`.
pub(crate) fn batch_to_py(py: Python<'_>, batch: &RecordBatch) -> PyResult<Py<PyAny>> {
    Ok(batch.to_pyarrow(py)?.unbind())
}

/// Record batches as a `pyarrow.Table`.
pub(crate) fn table_to_py(
    py: Python<'_>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> PyResult<Py<PyAny>> {
    let table = Table::try_new(batches, schema).map_err(|e| {
        py_err(Error::new(
            ErrorKind::Internal,
            format!("could not assemble the output table: {e}"),
        ))
    })?;
    Ok(table.into_pyarrow(py)?.unbind())
}

/// Writes Arrow `data` to a Parquet file as the CLI writes its outputs (zstd, one row group
/// per batch); returns the rows written.
#[pyfunction]
pub(crate) fn write_parquet(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    path: PathBuf,
) -> PyResult<usize> {
    let (schema, batches) = match Input::read(data)? {
        Input::Batch(batch) => (batch.schema(), vec![batch]),
        Input::Stream(schema, batches) => (schema, batches),
    };
    py.detach(|| write_batches(&path, schema, &batches))
        .map_err(py_err)
}

/// Writes `batches` to `path` with the runtime's Parquet writer.
pub(crate) fn write_batches(
    path: &std::path::Path,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<usize, Error> {
    let mut sink = ParquetSink::create(path, schema)?;
    for batch in batches {
        sink.write(batch)?;
    }
    sink.finish()
}
