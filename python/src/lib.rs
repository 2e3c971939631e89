//! `skewless._native`: the skewless library, callable from Python.
//!
//! This crate is the thin Rust half of the `skewless` Python package (`python/skewless` is the
//! Pythonic half: names, defaults, docstrings, pandas and polars conveniences). It exposes the
//! library's jobs as they are, with no Python policy of its own:
//!
//! - `transform`: `Engine` and `NativeTransform`, the same engine and sandbox as every other
//!   path (`Transform::run` on Arrow record batches);
//! - `store`: `NativeStore`, a feature repo with its stores: `plan` / `apply`, `ingest`,
//!   `materialize`, historical retrieval and in-process online serving (`OnlineServing`, the
//!   code the HTTP server runs);
//! - `online`: online features as Arrow columns;
//! - `distributed`: the stages of distributed jobs (`skewless.ray`): a materialization
//!   planned, run in parts on workers and committed once; entity rows partitioned by key;
//! - `arrow_io`: Arrow in and out through the Arrow C data interface (PyCapsules), so
//!   pyarrow, polars and anything else that speaks it cross without a copy;
//! - `errors`: library errors as the Python exception that names their kind, with the
//!   message the CLI prints.
//!
//! Every call that runs a component or touches a store releases the GIL.

// pyo3 hands every argument over as an owned value extracted from a Python object, and
// `map_err` hands its error by value: borrowing is not an option the caller has.
#![allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 extracts arguments by value"
)]

mod arrow_io;
mod distributed;
mod errors;
mod interruptible;
mod online;
mod signals;
mod store;
mod transform;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    // The engine's trap handlers, installed now and remembered, so that every later call can
    // put them back if Python's faulthandler replaced them (see `signals`).
    skewless_runtime::engine::install_trap_handlers().map_err(errors::py_err)?;
    signals::remember();
    module.add_class::<transform::PyEngine>()?;
    module.add_class::<transform::PyTransform>()?;
    module.add_class::<store::PyStore>()?;
    module.add_class::<store::PyTrainingSet>()?;
    module.add_class::<store::PyOnlineAnswer>()?;
    module.add_function(wrap_pyfunction!(arrow_io::write_parquet, module)?)?;
    module.add_function(wrap_pyfunction!(distributed::materialize_views, module)?)?;
    module.add_function(wrap_pyfunction!(distributed::materialize_plan, module)?)?;
    module.add_function(wrap_pyfunction!(distributed::materialize_part, module)?)?;
    module.add_function(wrap_pyfunction!(distributed::materialize_commit, module)?)?;
    module.add_function(wrap_pyfunction!(distributed::materialize_abort, module)?)?;
    module.add_function(wrap_pyfunction!(distributed::entity_partitions, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
