//! Ctrl-C for the long calls (`materialize`, `get_historical_features`).
//!
//! Python runs signal handlers only on its main thread, between bytecodes: while a call sits
//! in Rust with the GIL released, Ctrl-C only sets a flag, and the `KeyboardInterrupt` would
//! come after the job finished (and committed). So [`run`] moves the job to a thread of its
//! own and keeps the calling thread watching: every [`POLL`] it takes the GIL for a moment and
//! runs the pending signal handlers. When one raises (Ctrl-C's `KeyboardInterrupt`), the
//! watcher requests the job's [`Interrupt`]; the job stops at its next check (before the next
//! scanned batch, or before a materialization's online write and commit), fails as any failed
//! job does — nothing committed, its files removed — and the watcher then raises the
//! handler's exception, not the job's error.
//!
//! The extra thread costs tens of microseconds, nothing next to the jobs that use it; online
//! reads do not.

use std::time::Duration;

use pyo3::prelude::*;
use skewless_runtime::Result;
use skewless_runtime::interrupt::Interrupt;

use crate::errors::py_err;
use crate::signals;

/// How often the calling thread looks for a pending signal.
const POLL: Duration = Duration::from_millis(50);

/// Runs `job` with the GIL released, on a thread of its own, stopping it at Ctrl-C (see the
/// module docs). The job gets the [`Interrupt`] to hand to what it opens.
pub(crate) fn run<T: Send>(
    py: Python<'_>,
    job: impl FnOnce(&Interrupt) -> Result<T> + Send,
) -> PyResult<T> {
    let interrupt = Interrupt::new();
    let (outcome, signal) = signals::detach(py, || {
        let watcher = std::thread::current();
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                let outcome = job(&interrupt);
                watcher.unpark();
                outcome
            });
            let mut signal: Option<PyErr> = None;
            while !worker.is_finished() {
                std::thread::park_timeout(POLL);
                if signal.is_none()
                    && let Err(raised) = Python::attach(|py| py.check_signals())
                {
                    interrupt.request();
                    signal = Some(raised);
                }
            }
            (worker.join(), signal)
        })
    });
    if let Some(signal) = signal {
        // The user's Ctrl-C wins over whatever the job returned: an interrupted job's error
        // says only that it was interrupted, and a job that finished first has committed,
        // which the user learns by looking, as after any Ctrl-C.
        return Err(signal);
    }
    match outcome {
        Ok(outcome) => outcome.map_err(py_err),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
