//! [`Lanes`]: a partitioned append's Parquet encoding spread over a few writer threads.
//!
//! Encoding and compressing Parquet is most of what an append costs, and one writer does it
//! on the thread that calls [`AppendJob::write`](super::AppendJob::write): in a
//! materialization that thread was the busiest of the job (the components run on all cores,
//! the writes on one). Here each partition is owned by one *lane*, a thread with a fan-out
//! writer of its own, so the partitions of a table (days, usually) are encoded in parallel.
//!
//! What stays as it was: a partition's rows reach its writer in the order they were written,
//! so each data file holds the same rows in the same order as with one writer, and files
//! roll and flush row groups as before; every lane's writers share the job's file name
//! counter, so names stay unique. What a job holds in memory is unchanged too (one open
//! writer per partition written, whichever lane holds it), plus a few parts in flight per
//! lane.
//!
//! A partition goes to the lane that has been sent the fewest rows when the partition is
//! first seen, which spreads the rows evenly whatever the number of partitions. A lane whose
//! write fails stops; the next write sent to it, or the close, returns that error (the job is
//! then poisoned and commits nothing, as with one writer). Lanes dropped without
//! [`Lanes::close`] (a dropped or poisoned job) stop without finishing their files, as one
//! writer dropped would: the files are orphans no snapshot references.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use iceberg::spec::{DataFile, PartitionKey, Struct};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use tokio::sync::{mpsc, oneshot};

use super::append::RollingBuilder;

/// Parts of batches queued per lane before a write waits for it.
const QUEUED_PARTS: usize = 64;

/// A partitioned append's writer threads. See the [module docs](self).
pub(super) struct Lanes {
    lanes: Vec<Lane>,
    /// The lane of each partition seen.
    assigned: HashMap<Struct, usize>,
}

/// What a lane is sent.
enum Message {
    /// Rows of one partition to write.
    Part(PartitionKey, RecordBatch),
    /// No more rows: finish the files.
    Close,
}

struct Lane {
    /// `None` once closed.
    parts: Option<mpsc::Sender<Message>>,
    /// The lane's data files, or its error, when its thread ends.
    done: Option<oneshot::Receiver<iceberg::Result<Vec<DataFile>>>>,
    /// Rows sent so far.
    rows: u64,
}

impl Lanes {
    /// `lanes` writer threads (at least one), each writing with a fan-out writer of its own
    /// whose files `files` builds. Must be called on a tokio runtime, which the lanes'
    /// writers use.
    pub(super) fn new(files: &RollingBuilder, lanes: usize) -> iceberg::Result<Self> {
        let runtime = tokio::runtime::Handle::current();
        let lanes = (0..lanes.max(1))
            .map(|i| {
                let (parts, mut receive) = mpsc::channel(QUEUED_PARTS);
                let (finish, done) = oneshot::channel();
                let mut writer = FanoutWriter::new(DataFileWriterBuilder::new(files.clone()));
                let runtime = runtime.clone();
                std::thread::Builder::new()
                    .name(format!("skewless-write-{i}"))
                    .spawn(move || {
                        let written = (|| loop {
                            match receive.blocking_recv() {
                                Some(Message::Part(key, part)) => {
                                    runtime.block_on(writer.write(key, part))?;
                                }
                                Some(Message::Close) => return runtime.block_on(writer.close()),
                                // The job was dropped: leave the files unfinished.
                                None => return Err(stopped()),
                            }
                        })();
                        // The job may be gone (dropped without closing): nothing to tell.
                        let _ = finish.send(written);
                    })
                    .map_err(|e| {
                        iceberg::Error::new(
                            iceberg::ErrorKind::Unexpected,
                            format!("could not start a writer thread: {e}"),
                        )
                    })?;
                Ok(Lane {
                    parts: Some(parts),
                    done: Some(done),
                    rows: 0,
                })
            })
            .collect::<iceberg::Result<Vec<_>>>()?;
        Ok(Lanes {
            lanes,
            assigned: HashMap::new(),
        })
    }

    /// Sends `part` (rows of partition `key`) to its partition's lane; waits while that lane's
    /// queue is full. The error of a lane that stopped.
    pub(super) async fn write(
        &mut self,
        key: PartitionKey,
        part: RecordBatch,
    ) -> iceberg::Result<()> {
        let lane = match self.assigned.get(key.data()) {
            Some(&lane) => lane,
            None => {
                let lane = (0..self.lanes.len())
                    .min_by_key(|&i| self.lanes[i].rows)
                    .unwrap_or(0);
                self.assigned.insert(key.data().clone(), lane);
                lane
            }
        };
        let lane = &mut self.lanes[lane];
        lane.rows += part.num_rows() as u64;
        let sent = match &lane.parts {
            Some(parts) => parts.send(Message::Part(key, part)).await.is_ok(),
            None => false,
        };
        match sent {
            true => Ok(()),
            // The lane's thread ended, so its write failed: that error.
            false => Err(lane.finish().await.err().unwrap_or_else(stopped)),
        }
    }

    /// Tells every lane that no more rows come, so that each finishes its files (the last row
    /// group of every open partition) in the background while the caller does other work;
    /// [`close`](Self::close) then waits for them. No write may follow (the job refuses it).
    pub(super) async fn finish_writing(&mut self) {
        for lane in &mut self.lanes {
            if let Some(parts) = lane.parts.take() {
                // A lane that stopped has its error waiting for `close`.
                let _ = parts.send(Message::Close).await;
            }
        }
    }

    /// Closes every lane's files; all their data files.
    pub(super) async fn close(mut self) -> iceberg::Result<Vec<DataFile>> {
        self.finish_writing().await;
        let mut files = Vec::new();
        for lane in &mut self.lanes {
            files.extend(lane.finish().await?);
        }
        Ok(files)
    }
}

impl Lane {
    /// Waits for the lane's thread to end (its sender must be gone, or the thread failed):
    /// its files or its error.
    async fn finish(&mut self) -> iceberg::Result<Vec<DataFile>> {
        self.parts = None;
        match self.done.take() {
            Some(done) => done.await.unwrap_or_else(|_| Err(stopped())),
            None => Err(stopped()),
        }
    }
}

/// A lane whose thread ended without saying why (a panic), or that was already finished.
fn stopped() -> iceberg::Error {
    iceberg::Error::new(
        iceberg::ErrorKind::Unexpected,
        "a writer thread of the append stopped unexpectedly",
    )
}
