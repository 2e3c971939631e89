//! Group commit for the push log: one fsync makes durable every record appended before it
//! began, so pushes that wait for their fsync at the same time share one instead of queueing
//! for one each.
//!
//! A waiter whose record is not durable yet either starts a sync (when none is running) or
//! waits for the running one to finish and looks again: the running sync covers the records
//! appended before it began, and the next one covers the rest. Under concurrent pushes the
//! number of fsyncs follows the disk's sync latency, not the number of pushes.

use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::Result;

/// The durability of one log's records, by sequence number.
#[derive(Debug, Default)]
pub(crate) struct GroupSync {
    state: Mutex<State>,
    finished: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Every record at or below this sequence number is durable.
    durable: u64,
    /// A sync is running.
    syncing: bool,
}

impl GroupSync {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns once the record `seq` is durable. `sync` syncs the log and returns the highest
    /// sequence number appended before it began (read under the log's lock). A failed sync
    /// fails the caller that ran it; the others waiting try one of their own.
    pub(crate) fn wait_durable(&self, seq: u64, sync: impl Fn() -> Result<u64>) -> Result<()> {
        let mut state = self.state();
        loop {
            if state.durable >= seq {
                return Ok(());
            }
            if state.syncing {
                state = self.finished.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.syncing = true;
            drop(state);
            let synced = sync();
            state = self.state();
            state.syncing = false;
            if let Ok(upto) = synced {
                state.durable = state.durable.max(upto);
            }
            self.finished.notify_all();
            synced?;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Barrier};

    use super::*;
    use crate::error::{Error, ErrorKind};

    #[test]
    fn waiters_during_a_sync_share_the_next_one() {
        let group = Arc::new(GroupSync::default());
        let appended = Arc::new(AtomicU64::new(1));
        let syncs = Arc::new(AtomicU64::new(0));
        // The first sync blocks until four more records were appended and their pushes wait.
        let (started, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let sync = {
            let (appended, syncs) = (appended.clone(), syncs.clone());
            let (started, release) = (started.clone(), release.clone());
            move || {
                let upto = appended.load(Ordering::SeqCst);
                if syncs.fetch_add(1, Ordering::SeqCst) == 0 {
                    started.wait();
                    release.wait();
                }
                Ok(upto)
            }
        };
        let first = {
            let (group, sync) = (group.clone(), sync.clone());
            std::thread::spawn(move || group.wait_durable(1, sync))
        };
        started.wait();
        let waiters: Vec<_> = (2..=5)
            .map(|seq| {
                appended.store(seq, Ordering::SeqCst);
                let (group, sync) = (group.clone(), sync.clone());
                std::thread::spawn(move || group.wait_durable(seq, sync))
            })
            .collect();
        // Whenever each of the four reaches the wait, record 1's sync is running or done, and
        // the next sync starts after all four were appended: it covers them all (without
        // group commit each would sync for itself: 5 syncs).
        release.wait();
        first.join().unwrap().unwrap();
        for waiter in waiters {
            waiter.join().unwrap().unwrap();
        }
        assert_eq!(
            syncs.load(Ordering::SeqCst),
            2,
            "one for record 1, one shared by 2..=5"
        );
    }

    #[test]
    fn a_failed_sync_fails_its_caller_and_the_next_caller_tries_again() {
        let group = GroupSync::default();
        let error = group
            .wait_durable(1, || Err(Error::new(ErrorKind::Io, "disk full")))
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Io);
        group.wait_durable(1, || Ok(1)).unwrap();
        // Durable now: no sync at all.
        group
            .wait_durable(1, || panic!("record 1 is durable already"))
            .unwrap();
    }
}
