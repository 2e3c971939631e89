//! Library errors as Python exceptions.
//!
//! The exception classes live in Python (`skewless/exceptions.py`), one per
//! [`ErrorKind`](skewless_runtime::ErrorKind) group; this module hands the kind's stable name,
//! the message and the context to `skewless.exceptions._from_native`, which picks the class.
//! The message is exactly what the CLI prints after `error: `, causes included, so a user
//! sees the same words whichever way they called.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use skewless_runtime::Error;

/// The Python exception for `error`.
pub(crate) fn to_py(error: &Error) -> PyErr {
    Python::attach(|py| {
        let context: Vec<(&str, &str)> = error
            .context()
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let made = py
            .import("skewless.exceptions")
            .and_then(|m| m.getattr("_from_native"))
            .and_then(|f| f.call1((error.kind().as_str(), cli_message(error), context)));
        match made {
            Ok(exception) => PyErr::from_value(exception),
            // The package is broken (the module is missing); still say what went wrong.
            Err(e) => PyRuntimeError::new_err(format!("{} ({e})", cli_message(error))),
        }
    })
}

/// `map_err` adapter: `result.map_err(py_err)?`.
pub(crate) fn py_err(error: Error) -> PyErr {
    to_py(&error)
}

/// The error as the CLI renders it: the error with its context, then each cause on a line of
/// its own (`  caused by: ...`).
fn cli_message(error: &Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    message
}
