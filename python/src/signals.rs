//! Keeps the engine's trap handlers installed when Python code replaces them.
//!
//! The engine turns a trapping component (`unreachable`, an out-of-bounds access, a division
//! by zero) into a `Trapped` error with signal handlers (SIGSEGV, SIGILL, SIGFPE) that wasmtime
//! installs when the first engine of the process is created. Python's `faulthandler.enable()`
//! — which `ray.init()` calls, as does `python -X faulthandler` — installs its own handlers
//! for the same signals on top; a trap would then reach faulthandler, which prints a
//! traceback and ends the interpreter.
//!
//! So the module installs the engine's handlers when it is imported and remembers them
//! ([`remember`]), and every call that may run a component ([`detach`]) first puts them back if something
//! replaced them: one `sigaction` query per signal, well under a microsecond. A crash that is
//! not a trap is passed on by wasmtime's handler to the handler that was installed before it,
//! as always; what is lost is faulthandler's traceback for a crash that happens after it
//! replaced the engine's handlers — the price of a trap staying an exception.
#![allow(
    unsafe_code,
    reason = "sigaction is the only way to read and set a signal's handler"
)]

use std::sync::OnceLock;

use pyo3::Python;

/// The signals wasmtime handles on this platform.
const SIGNALS: [libc::c_int; 3] = [libc::SIGSEGV, libc::SIGILL, libc::SIGFPE];

/// The engine's handlers, as installed when the module was imported.
static ENGINE_HANDLERS: OnceLock<Vec<(libc::c_int, libc::sigaction)>> = OnceLock::new();

/// Remembers the current handlers as the engine's; called once, right after the module
/// installed them.
pub(crate) fn remember() {
    ENGINE_HANDLERS.get_or_init(|| {
        SIGNALS
            .iter()
            .filter_map(|&signal| current(signal).map(|action| (signal, action)))
            .collect()
    });
}

/// Puts the engine's handlers back where another handler replaced them.
pub(crate) fn restore() {
    let Some(handlers) = ENGINE_HANDLERS.get() else {
        return;
    };
    for (signal, engine) in handlers {
        if let Some(now) = current(*signal)
            && now.sa_sigaction != engine.sa_sigaction
        {
            // SAFETY: `engine` is a handler the kernel returned for this signal, unchanged.
            unsafe {
                libc::sigaction(*signal, engine, std::ptr::null_mut());
            }
        }
    }
}

/// Runs `f` with the GIL released, after [`restore`]: every call that may run a component
/// goes through here.
pub(crate) fn detach<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
    restore();
    py.detach(f)
}

/// The handler installed for `signal` now.
fn current(signal: libc::c_int) -> Option<libc::sigaction> {
    // SAFETY: a zeroed sigaction is a valid value to be overwritten; a null new action only
    // queries.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(signal, std::ptr::null(), &mut action) == 0).then_some(action)
    }
}
