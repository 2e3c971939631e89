//! `Engine` and `NativeTransform`: load a component and run it over Arrow data.
//!
//! The engine is the runtime's [`TransformEngine`] (the same sandbox, limits and compiled
//! cache as the CLI, the jobs and the server); a transform is its [`Transform`], and `run` is
//! [`Transform::run`], the one call path into a component. A stream runs on all cores in
//! order, as `skewless run` does, with the GIL released; Ctrl-C is noticed between batches.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow_pyarrow::ToPyArrow;
use pyo3::prelude::*;
use skewless_runtime::pipeline::parallel_map_ordered;
use skewless_runtime::{Error, ErrorKind, Transform, TransformEngine};

use crate::arrow_io::{Input, batch_to_py, table_to_py};
use crate::errors::py_err;
use crate::signals;

/// A transform engine: sandbox settings and the compiled cache.
#[pyclass(module = "skewless._native", name = "Engine", frozen)]
#[derive(Debug)]
pub(crate) struct PyEngine {
    engine: Arc<TransformEngine>,
}

#[pymethods]
impl PyEngine {
    /// An engine caching compiled components in `cache_dir` (none: compile in memory each
    /// time), capping each instance's memory and each call's time.
    #[new]
    #[pyo3(signature = (cache_dir=None, memory_limit_mib=512, deadline_ms=10_000))]
    fn new(
        py: Python<'_>,
        cache_dir: Option<PathBuf>,
        memory_limit_mib: usize,
        deadline_ms: u64,
    ) -> PyResult<Self> {
        let mut builder = TransformEngine::builder()
            .memory_limit(memory_limit_mib.saturating_mul(1 << 20))
            .deadline(Duration::from_millis(deadline_ms));
        if let Some(dir) = cache_dir {
            builder = builder.cache_dir(dir);
        }
        let engine = py.detach(|| builder.build()).map_err(py_err)?;
        Ok(PyEngine {
            engine: Arc::new(engine),
        })
    }

    /// Loads the component at `path`. With `expected_digest`, a component whose digest differs
    /// is refused (`InvalidComponent`), naming both digests.
    #[pyo3(signature = (path, expected_digest=None))]
    fn load(
        &self,
        py: Python<'_>,
        path: PathBuf,
        expected_digest: Option<String>,
    ) -> PyResult<PyTransform> {
        let transform = py.detach(|| self.engine.load_file(&path)).map_err(py_err)?;
        if let Some(expected) = expected_digest
            && expected != transform.digest()
        {
            return Err(py_err(
                Error::new(
                    ErrorKind::InvalidComponent,
                    format!(
                        "the component changed since this transform was pickled (expected {expected}, \
                         found {}); ship the same file, or load the new one as a new Transform",
                        transform.digest()
                    ),
                )
                .with_context("file", path.display()),
            ));
        }
        Ok(PyTransform {
            engine: self.engine.clone(),
            transform,
            path,
        })
    }
}

/// A loaded component.
#[pyclass(module = "skewless._native", name = "NativeTransform", frozen)]
#[derive(Debug)]
pub(crate) struct PyTransform {
    /// Kept alive with the transform: the engine's epoch ticker enforces the deadlines.
    #[expect(dead_code, reason = "held for its lifetime, never read")]
    engine: Arc<TransformEngine>,
    transform: Transform,
    path: PathBuf,
}

#[pymethods]
impl PyTransform {
    /// `sha256:<hex>` of the component's bytes.
    #[getter]
    fn digest(&self) -> &str {
        self.transform.digest()
    }

    /// The file it was loaded from.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The signature as JSON (name, version, description, inputs, outputs).
    fn signature_json(&self) -> PyResult<String> {
        serde_json_string(self.transform.signature())
    }

    /// The Arrow schema of the declared inputs, as a `pyarrow.Schema`.
    fn input_schema(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self
            .transform
            .signature()
            .input_schema()
            .to_pyarrow(py)?
            .unbind())
    }

    /// The Arrow schema of the outputs, as a `pyarrow.Schema`.
    fn output_schema(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.transform.output_schema().to_pyarrow(py)?.unbind())
    }

    /// Runs the transform over `data`: a record batch gives a `pyarrow.RecordBatch`, a table
    /// or stream a `pyarrow.Table` (batch by batch, in order, on `threads` threads).
    #[pyo3(signature = (data, threads=None))]
    fn run(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        match Input::read(data)? {
            Input::Batch(batch) => {
                let output = signals::detach(py, || self.transform.run(&batch)).map_err(py_err)?;
                batch_to_py(py, &output)
            }
            Input::Stream(_, batches) => {
                let threads = threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
                let outputs = signals::detach(py, || self.run_all(batches, threads))?;
                table_to_py(py, self.transform.output_schema().clone(), outputs)
            }
        }
    }
}

impl PyTransform {
    /// Runs every batch through the pipeline `skewless run` uses; stops at the first error
    /// or at a pending signal (Ctrl-C), checked as each output arrives.
    fn run_all(
        &self,
        batches: Vec<arrow_array::RecordBatch>,
        threads: usize,
    ) -> PyResult<Vec<arrow_array::RecordBatch>> {
        let mut outputs = Vec::with_capacity(batches.len());
        let mut interrupted: Option<PyErr> = None;
        let outcome = parallel_map_ordered(
            batches.into_iter().map(Ok),
            threads,
            |batch| self.transform.run(&batch),
            |output| {
                outputs.push(output);
                if let Err(signal) = Python::attach(|py| py.check_signals()) {
                    interrupted = Some(signal);
                    return Err(Error::new(ErrorKind::Interrupted, "interrupted"));
                }
                Ok(())
            },
        );
        if let Some(signal) = interrupted {
            return Err(signal);
        }
        outcome.map_err(py_err)?;
        Ok(outputs)
    }
}

/// Serializes a value for the Python side, which parses it with `json.loads`.
pub(crate) fn serde_json_string(value: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| {
        py_err(Error::new(
            ErrorKind::Internal,
            format!("could not serialize: {e}"),
        ))
    })
}
