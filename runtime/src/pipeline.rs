//! Ordered parallel map: run a function over a stream of items on several threads and
//! consume the results in the stream's order, with bounded memory.
//!
//! Used by every batch job: a reader produces record batches, workers run a transform on
//! them (one warm instance each), and a single sink writes the results in input order.
//! At most `2 * workers` items are in flight, so memory does not grow with the input.
//! The first error — from the source, a worker or the sink — stops the pipeline and is
//! returned; nothing after it reaches the sink.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use crate::error::Result;

/// The cores this process may use (1 when the system cannot tell): how many threads the jobs'
/// parallel stages run.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `work` over `source` on `workers` threads, handing results to `sink` in order.
pub fn parallel_map_ordered<I, O>(
    source: impl Iterator<Item = Result<I>> + Send,
    workers: usize,
    work: impl Fn(I) -> Result<O> + Sync,
    mut sink: impl FnMut(O) -> Result<()>,
) -> Result<()>
where
    I: Send,
    O: Send,
{
    let workers = workers.max(1);
    let in_flight = 2 * workers;
    let stop = AtomicBool::new(false);
    let (job_tx, job_rx) = sync_channel::<(u64, I)>(in_flight);
    let (result_tx, result_rx) = sync_channel::<(u64, Result<O>)>(in_flight);
    let job_rx = Arc::new(Mutex::new(job_rx));

    std::thread::scope(|scope| {
        let reader_results = result_tx.clone();
        let stop = &stop;
        scope.spawn(move || {
            for (seq, item) in (0u64..).zip(source) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let sent = match item {
                    Ok(item) => job_tx.send((seq, item)).is_ok(),
                    Err(e) => {
                        let _ = reader_results.send((seq, Err(e)));
                        false
                    }
                };
                if !sent {
                    break;
                }
            }
        });
        for _ in 0..workers {
            let jobs = job_rx.clone();
            let results = result_tx.clone();
            let work = &work;
            scope.spawn(move || {
                while let Some((seq, item)) = next_job(&jobs) {
                    if stop.load(Ordering::Relaxed) || results.send((seq, work(item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(result_tx);
        drop(job_rx);

        let outcome = drain_in_order(&result_rx, &mut sink);
        if outcome.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        // Dropping the receiver unblocks any worker waiting to send.
        drop(result_rx);
        outcome
    })
}

fn next_job<I>(jobs: &Mutex<Receiver<(u64, I)>>) -> Option<(u64, I)> {
    jobs.lock().unwrap_or_else(|p| p.into_inner()).recv().ok()
}

fn drain_in_order<O>(
    results: &Receiver<(u64, Result<O>)>,
    sink: &mut impl FnMut(O) -> Result<()>,
) -> Result<()> {
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    for (seq, result) in results {
        pending.insert(seq, result);
        while let Some(result) = pending.remove(&next) {
            sink(result?)?;
            next += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};

    #[test]
    fn results_arrive_in_source_order_whatever_the_workers_finish_order() {
        let source = (0..200u64).map(Ok);
        let mut seen = Vec::new();
        parallel_map_ordered(
            source,
            4,
            |i| {
                // Later items finish first.
                std::thread::sleep(std::time::Duration::from_micros(200 - i));
                Ok(i * 2)
            },
            |o| {
                seen.push(o);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..200).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_error_stops_the_pipeline_and_nothing_after_it_reaches_the_sink() {
        let source = (0..100u64).map(|i| {
            if i == 60 {
                Err(Error::new(ErrorKind::InvalidInput, "bad row group"))
            } else {
                Ok(i)
            }
        });
        let mut seen = Vec::new();
        let err = parallel_map_ordered(
            source,
            3,
            |i| {
                if i == 30 {
                    Err(Error::new(ErrorKind::Trapped, "boom"))
                } else {
                    Ok(i)
                }
            },
            |o| {
                seen.push(o);
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(err.message(), "boom");
        assert_eq!(seen, (0..30).collect::<Vec<_>>());
    }
}
