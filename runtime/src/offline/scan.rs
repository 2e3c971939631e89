//! Scanning a table: [`ScanOptions`], [`TimeRange`] and the resulting [`RecordBatchStream`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow_array::RecordBatch;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use iceberg::expr::Reference;
use iceberg::spec::{Datum, PrimitiveType, Type};
use iceberg::table::Table;

use super::{TableName, convert_error};
use crate::error::{Error, ErrorKind, Result};

/// A stream of record batches read from a table. Batches are decoded as the stream is polled,
/// a bounded number of files at a time, so memory does not depend on the table's size.
pub type RecordBatchStream = BoxStream<'static, Result<RecordBatch>>;

/// Rows whose `column` lies in `[start_us, end_us)`, microseconds since the Unix epoch.
///
/// The range is pushed down to Iceberg: partitions (days) and files whose statistics lie
/// outside it are not read, and rows outside it are filtered out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeRange {
    /// A timestamp column (`timestamptz`, `timestamp`, or a `long` of microseconds).
    pub column: String,
    /// Inclusive start, microseconds since the Unix epoch.
    pub start_us: i64,
    /// Exclusive end, microseconds since the Unix epoch.
    pub end_us: i64,
}

impl TimeRange {
    /// `column` in `[start_us, end_us)`.
    pub fn new(column: impl Into<String>, start_us: i64, end_us: i64) -> Self {
        TimeRange {
            column: column.into(),
            start_us,
            end_us,
        }
    }
}

/// What to read from a table. The default reads every column of the current snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Read this snapshot instead of the current one (time travel).
    pub snapshot_id: Option<i64>,
    /// Read only these columns, in this order.
    pub columns: Option<Vec<String>>,
    /// Read only rows in this time range.
    pub time_range: Option<TimeRange>,
    /// The maximum number of rows per batch (iceberg-rust's default when `None`).
    pub batch_size: Option<usize>,
    /// Read only these data files (full paths, as the table's manifests name them): the
    /// files some snapshots added, for an incremental read, or the files an overwrite
    /// replaces. Files of the snapshot not in the set are not opened.
    pub data_files: Option<Arc<BTreeSet<String>>>,
    /// With `data_files`: of the files named here, read only these byte ranges `(start,
    /// length)`, each as its own scan task. A range holds the row groups whose midpoint lies
    /// in it (iceberg-rust's rule), so ranges that tile a file from 0 to its end read each
    /// row group exactly once, without opening the file to find them.
    pub byte_ranges: Option<Arc<ByteRanges>>,
    /// Decode the files on this many tasks of the runtime (its worker threads) at once,
    /// giving batches in no particular order, instead of decoding them in the scan's order as
    /// the stream is polled (0 or 1). For readers whose answer does not depend on the order
    /// of rows, on machines where decoding would otherwise run on the one polling thread.
    /// Ignored with `data_files`.
    pub decoders: usize,
}

/// Batches each parallel decoder may have decoded ahead of the reader.
const DECODED_AHEAD: usize = 2;

/// Byte ranges `(start, length)` to read, per data file.
pub type ByteRanges = BTreeMap<String, Vec<(u64, u64)>>;

impl ScanOptions {
    /// Pins the scan to a snapshot.
    pub fn snapshot(mut self, snapshot_id: i64) -> Self {
        self.snapshot_id = Some(snapshot_id);
        self
    }

    /// Reads only these columns.
    pub fn columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Reads only rows whose `column` is in `[start_us, end_us)`.
    pub fn time_range(mut self, column: impl Into<String>, start_us: i64, end_us: i64) -> Self {
        self.time_range = Some(TimeRange::new(column, start_us, end_us));
        self
    }

    /// Sets the maximum number of rows per batch.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size);
        self
    }

    /// Reads only these data files of the snapshot.
    pub fn data_files(mut self, files: Arc<BTreeSet<String>>) -> Self {
        self.data_files = Some(files);
        self
    }

    /// Of the files named, reads only these byte ranges (see [`ScanOptions::byte_ranges`]).
    pub fn byte_ranges(mut self, ranges: Arc<ByteRanges>) -> Self {
        self.byte_ranges = Some(ranges);
        self
    }

    /// Decodes files on `decoders` tasks at once, batches in no particular order (see
    /// [`ScanOptions::decoders`]).
    pub fn decoders(mut self, decoders: usize) -> Self {
        self.decoders = decoders;
        self
    }
}

pub(super) async fn scan(
    name: &TableName,
    table: &Table,
    options: ScanOptions,
) -> Result<RecordBatchStream> {
    let (scan, reorder) = build(name, table, &options)?;
    let stream = match options.data_files {
        None if options.decoders > 1 => {
            decode_in_parallel(scan, table, options.batch_size, options.decoders).await
        }
        None => scan.to_arrow().await,
        // The same planning (pruning, filters, projection), reading only the chosen files.
        Some(files) => match scan.plan_files().await {
            Ok(tasks) => {
                let ranges = options.byte_ranges.unwrap_or_default();
                let tasks = tasks
                    .try_filter(move |task| {
                        std::future::ready(files.contains(task.data_file_path()))
                    })
                    .map_ok(move |task| {
                        let tasks: Vec<_> = match ranges.get(task.data_file_path()) {
                            None => vec![task],
                            Some(ranges) => ranges
                                .iter()
                                .map(|&(start, length)| {
                                    let mut part = task.clone();
                                    part.start = start;
                                    part.length = length;
                                    part
                                })
                                .collect(),
                        };
                        futures::stream::iter(tasks.into_iter().map(Ok))
                    })
                    .try_flatten();
                let mut reader = table.reader_builder();
                if let Some(size) = options.batch_size {
                    reader = reader.with_batch_size(size);
                }
                reader
                    .build()
                    .read(Box::pin(tasks))
                    .map(|result| result.stream())
            }
            Err(e) => Err(e),
        },
    }
    .map_err(|e| convert_error(e, name, "starting the scan"))?;
    let name = name.clone();
    let stream = stream.map_err(move |e| convert_error(e, &name, "reading the table"));
    Ok(match reorder {
        None => Box::pin(stream),
        Some(columns) => Box::pin(
            stream.and_then(move |batch| std::future::ready(in_requested_order(&batch, &columns))),
        ),
    })
}

/// `scan`'s files dealt out to `decoders` tasks spawned on the runtime, each reading its
/// files into a channel; the batches of all of them as they come.
async fn decode_in_parallel(
    scan: iceberg::scan::TableScan,
    table: &Table,
    batch_size: Option<usize>,
    decoders: usize,
) -> iceberg::Result<iceberg::scan::ArrowRecordBatchStream> {
    let tasks: Vec<_> = scan.plan_files().await?.try_collect().await?;
    let mut shares = vec![Vec::new(); decoders.min(tasks.len()).max(1)];
    let count = shares.len();
    for (i, task) in tasks.into_iter().enumerate() {
        shares[i % count].push(task);
    }
    let (sender, receiver) = tokio::sync::mpsc::channel(DECODED_AHEAD * count);
    for share in shares {
        let mut reader = table.reader_builder();
        if let Some(size) = batch_size {
            reader = reader.with_batch_size(size);
        }
        let reader = reader.build();
        let sender = sender.clone();
        tokio::spawn(async move {
            let tasks = Box::pin(futures::stream::iter(share.into_iter().map(Ok)));
            let mut batches = match reader.read(tasks).map(|result| result.stream()) {
                Ok(batches) => batches,
                Err(e) => {
                    let _ = sender.send(Err(e)).await;
                    return;
                }
            };
            while let Some(batch) = batches.next().await {
                let failed = batch.is_err();
                // The reader is gone (done, or dropped the stream): stop decoding.
                if sender.send(batch).await.is_err() || failed {
                    return;
                }
            }
        });
    }
    drop(sender);
    let batches = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|batch| (batch, receiver))
    });
    Ok(Box::pin(batches))
}

/// The data files a scan with `options` reads (after pruning by the time range and
/// `data_files`), with their sizes in bytes, in the scan's planning order: what a distributed
/// job splits among its workers, each then scanning with the same options and its share as
/// `data_files`.
pub(super) async fn files(
    name: &TableName,
    table: &Table,
    options: &ScanOptions,
) -> Result<Vec<(String, u64)>> {
    let (scan, _) = build(name, table, options)?;
    let tasks: Vec<_> = scan
        .plan_files()
        .await
        .map_err(|e| convert_error(e, name, "planning the scan"))?
        .try_collect()
        .await
        .map_err(|e| convert_error(e, name, "planning the scan"))?;
    Ok(tasks
        .into_iter()
        .filter(|task| match &options.data_files {
            Some(files) => files.contains(task.data_file_path()),
            None => true,
        })
        .map(|task| (task.data_file_path().to_owned(), task.file_size_in_bytes))
        .collect())
}

/// The iceberg scan for `options`, and how to put its columns in the requested order.
fn build(
    name: &TableName,
    table: &Table,
    options: &ScanOptions,
) -> Result<(iceberg::scan::TableScan, Option<Vec<usize>>)> {
    let metadata = table.metadata();
    let schema = match options.snapshot_id {
        Some(id) => {
            let snapshot = metadata.snapshot_by_id(id).ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    "the table has no snapshot with this id (never had, or it was expired)",
                )
                .with_context("snapshot", id)
                .with_context("table", name)
            })?;
            snapshot
                .schema(metadata)
                .map_err(|e| convert_error(e, name, "reading the snapshot's schema"))?
        }
        None => metadata.current_schema().clone(),
    };
    let missing_column = |column: &str| {
        Error::new(
            ErrorKind::NotFound,
            "the table has no column with this name",
        )
        .with_context("column", column)
        .with_context("table", name)
    };

    let mut builder = table.scan().with_batch_size(options.batch_size);
    if let Some(id) = options.snapshot_id {
        builder = builder.snapshot_id(id);
    }
    // The columns asked for, and the same columns in the table's field order, which is the
    // order the scan is asked for: iceberg-rust 0.10 relabels rather than reorders a
    // projection whose columns are out of field order but of equal types (two float64 columns
    // asked for as `[b, a]` come back as `b` holding `a`'s values). The batches are put in
    // the requested order below: `reorder[i]` is where requested column `i` comes back.
    let mut reorder: Option<Vec<usize>> = None;
    if let Some(columns) = &options.columns {
        if let Some(column) = columns.iter().find(|c| schema.field_by_name(c).is_none()) {
            return Err(missing_column(column));
        }
        let mut in_field_order = columns.clone();
        in_field_order.sort_by_key(|c| schema.field_by_name(c).map(|f| f.id));
        if in_field_order != *columns {
            let position = |c: &String| in_field_order.iter().position(|x| x == c);
            reorder = columns.iter().map(position).collect();
        }
        builder = builder.select(in_field_order.iter());
    }
    if let Some(range) = &options.time_range {
        let field = schema
            .field_by_name(&range.column)
            .ok_or_else(|| missing_column(&range.column))?;
        let datum = |us: i64| -> Option<Datum> {
            match field.field_type.as_ref() {
                Type::Primitive(PrimitiveType::Timestamptz) => Some(Datum::timestamptz_micros(us)),
                Type::Primitive(PrimitiveType::Timestamp) => Some(Datum::timestamp_micros(us)),
                Type::Primitive(PrimitiveType::TimestamptzNs) => {
                    Some(Datum::timestamptz_nanos(us.saturating_mul(1000)))
                }
                Type::Primitive(PrimitiveType::TimestampNs) => {
                    Some(Datum::timestamp_nanos(us.saturating_mul(1000)))
                }
                Type::Primitive(PrimitiveType::Long) => Some(Datum::long(us)),
                _ => None,
            }
        };
        let (Some(start), Some(end)) = (datum(range.start_us), datum(range.end_us)) else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a time range needs a timestamp column (or a long of microseconds), \
                     found {}",
                    field.field_type
                ),
            )
            .with_context("column", &range.column)
            .with_context("table", name));
        };
        let predicate = Reference::new(range.column.as_str())
            .greater_than_or_equal_to(start)
            .and(Reference::new(range.column.as_str()).less_than(end));
        builder = builder.with_filter(predicate);
    }
    let scan = builder
        .build()
        .map_err(|e| convert_error(e, name, "planning the scan"))?;
    Ok((scan, reorder))
}

/// `batch`'s columns in the order `indices` gives.
fn in_requested_order(batch: &RecordBatch, indices: &[usize]) -> Result<RecordBatch> {
    batch.project(indices).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("reordering scanned columns: {e}"),
        )
    })
}
