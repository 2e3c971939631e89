//! [`Interrupt`]: a caller's request that a running job stop, checked where stopping is safe.
//!
//! A long job (a materialization, a historical retrieval) runs on the caller's thread with
//! nothing else watching it. A caller that can be interrupted — the Python package, where
//! Ctrl-C must stop `materialize` or `get_historical_features` — hands the job an
//! [`Interrupt`] and requests it from another thread. The job then fails with
//! [`ErrorKind::Interrupted`] at its next check, through the same path as any other failure,
//! so what a failure guarantees holds: a materialization commits nothing and removes the data
//! files it wrote, a retrieval removes its spill files.
//!
//! Checks sit where a job waits for data anyway: before each batch of an offline scan (the
//! offline store carries the interrupt, see
//! [`OfflineStore::with_interrupt`](crate::offline::OfflineStore::with_interrupt)), and at a
//! materialization's steps before its online write and its commit. A check is one atomic load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, ErrorKind, Result};

/// A request to stop, shared between the job and whoever may ask for it. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A request not made yet.
    pub fn new() -> Self {
        Interrupt::default()
    }

    /// Asks every job holding this interrupt to stop at its next check.
    pub fn request(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`request`](Self::request) was called.
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// `Err` ([`ErrorKind::Interrupted`]) once a stop was requested; `what` names the work
    /// stopped, for the message.
    pub fn check(&self, what: &str) -> Result<()> {
        match self.is_requested() {
            false => Ok(()),
            true => Err(Error::new(
                ErrorKind::Interrupted,
                format!("interrupted while {what}; nothing of this job was committed"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_seen_by_every_clone() {
        let interrupt = Interrupt::new();
        let job = interrupt.clone();
        assert!(job.check("scanning").is_ok());
        interrupt.request();
        let error = job.check("scanning raw.transactions").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Interrupted);
        assert!(
            error.message().contains("scanning raw.transactions"),
            "{error}"
        );
    }
}
