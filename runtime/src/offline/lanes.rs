//! [`Lanes`]: a partitioned append's Parquet encoding spread over a few writer threads.
//!
//! Encoding and compressing Parquet is most of what an append costs, and one writer does it
//! on the thread that calls [`AppendJob::write`](super::AppendJob::write): in a
//! materialization that thread was the busiest of the job (the components run on all cores,
//! the writes on one). Here each partition is owned by one *lane*, a thread with a fan-out
//! writer of its own, so the partitions of a table (days, usually) are encoded in parallel.
//!
//! A lane hands its writer a partition's rows a row group at a time: a materialization's
//! batch spreads over every day of its window, about 90 rows per partition per batch, and the
//! Parquet writer's costs per call (levels, the statistics visitors, buffers grown by
//! doubling) were a tenth of the job. Each lane is sent every batch whole with its
//! partitions' row numbers, and copies those rows into the partition's [`Gather`] before it
//! takes the next message, so no batch outlives the few messages queued.
//!
//! What stays as it was: a partition's rows reach its writer in the order they were written,
//! so each data file holds the same rows in the same order as with one writer, and files
//! roll and cut row groups as before; every lane's writers share the job's file name
//! counter, so names stay unique. What a job holds in memory is about the same: at most a
//! row group of rows per partition written, held by its lane until they make one rather
//! than by its open writer, plus a few batches in flight per lane.
//!
//! A partition goes to the lane that has been sent the fewest rows when the partition is
//! first seen, which spreads the rows evenly whatever the number of partitions. A lane whose
//! write fails stops; the next write sent to it, or the close, returns that error (the job is
//! then poisoned and commits nothing, as with one writer). Lanes dropped without
//! [`Lanes::close`] (a dropped or poisoned job) stop without finishing their files, as one
//! writer dropped would: the files are orphans no snapshot references.

use arrow_array::RecordBatch;
use iceberg::spec::{DataFile, PartitionKey};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use tokio::sync::{mpsc, oneshot};

use super::append::{FileWriterBuilder, RollingBuilder};
use super::gather::Gather;
use super::split::{Part, PartitionSplitter};

/// Batches queued per lane before a write waits for it.
const QUEUED_BATCHES: usize = 4;

/// A partitioned append's writer threads. See the [module docs](self).
pub(super) struct Lanes {
    lanes: Vec<Lane>,
    /// The lane of each partition seen, by the splitter's partition index.
    assigned: Vec<usize>,
}

/// The size at which a partition's pending rows go to its writer: the writer's row group.
#[derive(Clone, Copy, Debug)]
pub(super) struct RowGroup {
    pub(super) rows: usize,
    pub(super) bytes: usize,
}

/// What a lane is sent.
enum Message {
    /// A batch and the rows of it that go to each of the lane's partitions; the key of a
    /// partition the lane has not been sent before.
    Rows(RecordBatch, Vec<(Part, Option<PartitionKey>)>),
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
    /// whose files `files` builds, a partition's rows handed over once they make a
    /// `row_group`. Must be called on a tokio runtime, which the lanes' writers use.
    pub(super) fn new(
        files: &RollingBuilder,
        lanes: usize,
        row_group: RowGroup,
    ) -> iceberg::Result<Self> {
        let runtime = tokio::runtime::Handle::current();
        let lanes = (0..lanes.max(1))
            .map(|i| {
                let (parts, mut receive) = mpsc::channel(QUEUED_BATCHES);
                let (finish, done) = oneshot::channel();
                let mut writer = LaneWriter {
                    files: FanoutWriter::new(DataFileWriterBuilder::new(files.clone())),
                    pending: Vec::new(),
                    row_group,
                    runtime: runtime.clone(),
                };
                std::thread::Builder::new()
                    .name(format!("skewless-write-{i}"))
                    .spawn(move || {
                        let written = (|| loop {
                            match receive.blocking_recv() {
                                Some(Message::Rows(batch, parts)) => writer.write(&batch, parts)?,
                                Some(Message::Close) => return writer.close(),
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
            assigned: Vec::new(),
        })
    }

    /// Sends `batch` to the lanes of the partitions `parts` (the splitter's, which knows
    /// their keys) put its rows in, each with the rows of its partitions; waits while a
    /// lane's queue is full. The error of a lane that stopped.
    pub(super) async fn write(
        &mut self,
        batch: RecordBatch,
        parts: Vec<Part>,
        splitter: &PartitionSplitter,
    ) -> iceberg::Result<()> {
        let mut sends: Vec<Vec<(Part, Option<PartitionKey>)>> =
            (0..self.lanes.len()).map(|_| Vec::new()).collect();
        for part in parts {
            let index = part.partition;
            let (lane, key) = match self.assigned.get(index) {
                Some(&lane) => (lane, None),
                None => {
                    // The splitter numbers partitions from 0 as it first sees them.
                    debug_assert_eq!(index, self.assigned.len());
                    let lane = (0..self.lanes.len())
                        .min_by_key(|&i| self.lanes[i].rows)
                        .unwrap_or(0);
                    self.assigned.push(lane);
                    (lane, Some(splitter.key(index).clone()))
                }
            };
            self.lanes[lane].rows += part.rows.len() as u64;
            sends[lane].push((part, key));
        }
        for (lane, parts) in self.lanes.iter_mut().zip(sends) {
            if parts.is_empty() {
                continue;
            }
            let sent = match &lane.parts {
                Some(queue) => queue
                    .send(Message::Rows(batch.clone(), parts))
                    .await
                    .is_ok(),
                None => false,
            };
            if !sent {
                // The lane's thread ended, so its write failed: that error.
                return Err(lane.finish().await.err().unwrap_or_else(stopped));
            }
        }
        Ok(())
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

/// What a lane's thread owns: the fan-out writer of its partitions' files and their pending
/// rows.
struct LaneWriter {
    files: FanoutWriter<FileWriterBuilder>,
    /// The pending rows of each partition, by partition index (`None` for the other lanes'
    /// partitions).
    pending: Vec<Option<(PartitionKey, Gather)>>,
    row_group: RowGroup,
    runtime: tokio::runtime::Handle,
}

impl LaneWriter {
    /// Gathers the rows of `batch` that `parts` give to the lane's partitions, and writes
    /// those of a partition once they make a row group.
    fn write(
        &mut self,
        batch: &RecordBatch,
        parts: Vec<(Part, Option<PartitionKey>)>,
    ) -> iceberg::Result<()> {
        for (part, key) in parts {
            let index = part.partition;
            if self.pending.len() <= index {
                self.pending.resize_with(index + 1, || None);
            }
            let (key, rows) = match (&mut self.pending[index], key) {
                (Some(held), _) => held,
                (slot, Some(key)) => slot.insert((key, Gather::new(batch.schema()))),
                (None, None) => return Err(unknown(index)),
            };
            rows.extend(batch, &part.rows).map_err(arrow)?;
            if rows.rows() >= self.row_group.rows || rows.bytes() >= self.row_group.bytes {
                let group = rows.take().map_err(arrow)?;
                // The writer encodes the group as it writes it; its buffers then gather the
                // partition's next rows.
                (self.runtime).block_on(self.files.write(key.clone(), group.clone()))?;
                rows.recycle(group);
            }
        }
        Ok(())
    }

    /// Writes every partition's pending rows as its last row group and closes the files: the
    /// lane's data files.
    fn close(mut self) -> iceberg::Result<Vec<DataFile>> {
        for (key, rows) in self.pending.iter_mut().flatten() {
            if rows.rows() > 0 {
                let rows = rows.take().map_err(arrow)?;
                self.runtime.block_on(self.files.write(key.clone(), rows))?;
            }
        }
        self.runtime.block_on(self.files.close())
    }
}

/// A part for a partition whose key the lane was never sent (a bug: the key goes with its
/// first rows).
fn unknown(partition: usize) -> iceberg::Error {
    iceberg::Error::new(
        iceberg::ErrorKind::Unexpected,
        format!("a writer lane was sent rows of partition {partition} without its key"),
    )
}

/// Rows that could not be gathered into a row group.
fn arrow(e: arrow_schema::ArrowError) -> iceberg::Error {
    iceberg::Error::new(
        iceberg::ErrorKind::Unexpected,
        "could not gather a partition's rows",
    )
    .with_source(e)
}

/// A lane whose thread ended without saying why (a panic), or that was already finished.
fn stopped() -> iceberg::Error {
    iceberg::Error::new(
        iceberg::ErrorKind::Unexpected,
        "a writer thread of the append stopped unexpectedly",
    )
}
