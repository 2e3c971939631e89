//! Standard output of the CLI, written so that a reader that goes away (`skewless show x |
//! head -1`) ends nothing but the output.
//!
//! `println!` panics when stdout is a closed pipe ("failed printing to stdout: Broken pipe").
//! Rust ignores SIGPIPE, so the write fails with `BrokenPipe` instead of ending the process;
//! `out!` discards the rest of the output from then on and lets the command finish its work
//! and exit with its own status, as if the output had been read. Any other write error (a
//! full disk behind a redirect) is reported once on stderr, since the output is then
//! incomplete.

use std::fmt;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout failed: later output is discarded.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to stdout (locked, so one call's text is not interleaved with another's).
pub(crate) fn write(args: fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != ErrorKind::BrokenPipe {
            eprintln!("warning: writing to standard output failed ({e}); the output is incomplete");
        }
    }
}

/// `print!` that survives a closed stdout (see the module docs).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}

/// `println!` that survives a closed stdout (see the module docs).
macro_rules! outln {
    () => {
        $crate::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};
