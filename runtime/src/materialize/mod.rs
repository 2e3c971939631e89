//! `materialize`: run a batch view's transform over its source table and store the results.
//!
//! For one view and a time window `[start, end)` of event timestamps:
//! 1. the component is loaded and its digest checked against the applied registry;
//! 2. the source table is scanned at its current snapshot (pinned, so the job reads one
//!    consistent version), with the window pushed down to Iceberg (partition and file
//!    pruning), a batch at a time: memory does not grow with the table;
//! 3. the transform runs over each batch on every core ([`crate::pipeline`]);
//! 4. the outputs, with join keys, `event_ts` and `created_ts`, stream into one append job on
//!    the view's feature table, while the newest row per entity is kept for the online store;
//! 5. the newest rows go to the online store (which never lets an older row replace a newer);
//! 6. the append commits as **one** snapshot whose summary records the view, the digest, the
//!    window and the source snapshot.
//!
//! A failure before step 6 commits nothing to the offline table. Online writes come before
//! the commit on purpose: they are monotonic and idempotent, so a job that fails after them
//! leaves the online store holding values a re-run writes again, never a regression, while
//! a commit before them could leave a "successful" offline snapshot with no online values.
//!
//! Re-running a window must not change what retrieval answers. Iceberg 0.10 appends only
//! (no overwrite), so idempotency rests on two things: `created_ts`, when the source has no
//! created column, is the source snapshot's commit time, so a re-run produces byte-identical
//! rows that retrieval (which takes one row per key and `(event_ts, created_ts)`) resolves as
//! one; and a run whose (view, digest, window, source snapshot) matches an earlier snapshot's
//! summary is skipped outright.

mod newest;
mod values;

pub(crate) use values::feature_value;

use newest::NewestRows;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType as ArrowType, SchemaRef, TimeUnit};
use futures::StreamExt;

use crate::apply::{feature_table_schema, join_keys};
use crate::error::{Error, ErrorKind, Result};
use crate::offline::{ScanOptions, SnapshotInfo, TableName};
use crate::online::{EntityKey, OnlineStore, StoredRow};
use crate::pipeline::parallel_map_ordered;
use crate::registry::{KeyType, RepoContext};
use crate::signature::UTC;

/// Summary keys written on every materialization snapshot.
pub mod summary {
    /// The view materialized.
    pub const VIEW: &str = "skewless.view";
    /// The component digest that computed the features.
    pub const DIGEST: &str = "skewless.digest";
    /// Window start, µs since the epoch (inclusive).
    pub const WINDOW_START: &str = "skewless.window.start";
    /// Window end, µs since the epoch (exclusive).
    pub const WINDOW_END: &str = "skewless.window.end";
    /// The source table snapshot read.
    pub const SOURCE_SNAPSHOT: &str = "skewless.source.snapshot";
}

/// Rows per online write call (one pipelined round trip for Redis).
const ONLINE_CHUNK: usize = 10_000;

/// How to materialize.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Window start (µs, inclusive); the beginning of time when absent.
    pub start_us: Option<i64>,
    /// Window end (µs, exclusive); now when absent.
    pub end_us: Option<i64>,
    /// Start where the last materialization of the view ended.
    pub incremental: bool,
    /// Worker threads; the number of cores when zero.
    pub threads: usize,
}

/// What one view's materialization did.
#[derive(Clone, Debug)]
pub struct Materialized {
    /// The view.
    pub view: String,
    /// Source rows transformed and appended.
    pub rows: u64,
    /// Source rows dropped because a join key or the event timestamp was null.
    pub dropped_rows: u64,
    /// Entities written to the online store (newest rows), when the view is online.
    pub online_written: usize,
    /// The snapshot committed; `None` when there was nothing to do.
    pub snapshot: Option<SnapshotInfo>,
    /// Why nothing was done, when nothing was.
    pub skipped: Option<String>,
    /// The component digest.
    pub digest: String,
    /// The window, µs.
    pub window: (i64, i64),
    /// Wall time.
    pub elapsed: Duration,
}

/// Everything a materialization job needs, opened once.
#[derive(Debug)]
pub struct Job<'a> {
    /// The repo and its stores.
    pub context: RepoContext<'a>,
    /// The online store.
    pub online: &'a dyn OnlineStore,
}

impl Job<'_> {
    /// Materializes one batch view; `progress` is called with each batch's row count.
    pub fn run(
        &self,
        view_name: &str,
        options: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Materialized> {
        self.run_inner(view_name, options, progress)
            .map_err(|e| e.with_context("view", view_name))
    }

    fn run_inner(
        &self,
        view_name: &str,
        options: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Materialized> {
        let started = Instant::now();
        let rt = self.context.runtime;
        let view = self.context.repo.batch_view(view_name)?;
        let transform = self.context.repo.verified_transform(
            self.context.engine,
            self.context.registry,
            view_name,
        )?;
        let digest = transform.digest().to_owned();
        let source = TableName::parse(&view.source)?;
        let table = self.context.repo.feature_table(view_name)?;
        let history = rt.block_on(self.context.offline.snapshots(&table))?;

        let end = options.end_us.unwrap_or_else(crate::micros::now);
        let start = match (options.incremental, options.start_us) {
            (true, Some(_)) => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "--incremental starts where the last run ended; it cannot be combined with --start",
                ));
            }
            (true, None) => last_window_end(&history, view_name).unwrap_or(i64::MIN),
            (false, start) => start.unwrap_or(i64::MIN),
        };
        let mut result = Materialized {
            view: view_name.to_owned(),
            rows: 0,
            dropped_rows: 0,
            online_written: 0,
            snapshot: None,
            skipped: None,
            digest: digest.clone(),
            window: (start, end),
            elapsed: Duration::ZERO,
        };
        if start >= end {
            result.skipped = Some("the window is empty (nothing new since the last run)".into());
            return Ok(result);
        }
        let Some(source_snapshot) = rt.block_on(self.context.offline.current_snapshot(&source))?
        else {
            result.skipped = Some(format!("source table {source} has no data yet"));
            return Ok(result);
        };
        if let Some(done) = history.iter().find(|s| {
            s.summary.get(summary::VIEW).map(String::as_str) == Some(view_name)
                && s.summary.get(summary::DIGEST) == Some(&digest)
                && s.summary.get(summary::WINDOW_START) == Some(&start.to_string())
                && s.summary.get(summary::WINDOW_END) == Some(&end.to_string())
                && s.summary.get(summary::SOURCE_SNAPSHOT)
                    == Some(&source_snapshot.snapshot_id.to_string())
        }) {
            result.skipped = Some(format!(
                "this window was already materialized from the same source snapshot by the same component (snapshot {})",
                done.snapshot_id
            ));
            return Ok(result);
        }

        let keys = join_keys(self.context.repo, &view.entities);
        let schema = feature_table_schema(&keys, transform.signature());
        let mut columns: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        columns.push(view.event_timestamp.clone());
        columns.extend(view.created_timestamp.clone());
        columns.extend(transform.signature().inputs.iter().map(|f| f.name.clone()));
        let mut scan = ScanOptions::default()
            .snapshot(source_snapshot.snapshot_id)
            .columns(unique(columns))
            .batch_size(crate::files::DEFAULT_BATCH_SIZE);
        if start != i64::MIN || end != i64::MAX {
            scan = scan.time_range(&view.event_timestamp, start, end);
        }
        let mut stream = rt.block_on(self.context.offline.scan(&source, scan))?;
        let batches = std::iter::from_fn(|| rt.block_on(stream.next()));

        let layout = Layout {
            keys: &keys,
            event_ts: &view.event_timestamp,
            created_ts: view.created_timestamp.as_deref(),
            default_created_us: source_snapshot.timestamp_ms.saturating_mul(1000),
            schema: &schema,
        };
        let mut job = rt.block_on(self.context.offline.begin_append(&table))?;
        let newest = NewestRows::new();
        let threads = match options.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let transformed = parallel_map_ordered(
            batches,
            threads,
            |input: RecordBatch| {
                let output = transform.run(&input)?;
                let features = layout.features(&input, &output)?;
                if view.online {
                    newest.offer(&features.batch, keys.len())?;
                }
                Ok(features)
            },
            |features: Features| {
                result.rows += features.batch.num_rows() as u64;
                result.dropped_rows += features.dropped;
                progress(features.batch.num_rows() as u64 + features.dropped);
                if features.batch.num_rows() > 0 {
                    rt.block_on(job.write(features.batch))?;
                }
                Ok(())
            },
        );
        let online_written = transformed.and_then(|()| match view.online {
            true => self.write_online(view_name, &newest.into_rows(&digest)),
            false => Ok(0),
        });
        match online_written {
            Ok(written) => result.online_written = written,
            Err(e) => {
                // Nothing was committed; remove the data files the job wrote, so a failed run
                // leaves no orphans behind.
                if let Err(cleanup) = rt.block_on(job.abort()) {
                    tracing::warn!(error = %cleanup, "could not remove the files of the failed job");
                }
                return Err(e);
            }
        }
        let summary = HashMap::from([
            (summary::VIEW.to_owned(), view_name.to_owned()),
            (summary::DIGEST.to_owned(), digest),
            (summary::WINDOW_START.to_owned(), start.to_string()),
            (summary::WINDOW_END.to_owned(), end.to_string()),
            (
                summary::SOURCE_SNAPSHOT.to_owned(),
                source_snapshot.snapshot_id.to_string(),
            ),
        ]);
        result.snapshot = Some(rt.block_on(job.commit(summary))?);
        result.elapsed = started.elapsed();
        Ok(result)
    }
}

impl Job<'_> {
    /// Writes the newest row per entity, a pipelined chunk at a time.
    fn write_online(&self, view: &str, rows: &[(EntityKey, StoredRow)]) -> Result<usize> {
        let mut written = 0;
        for chunk in rows.chunks(ONLINE_CHUNK) {
            written += self.online.write(view, chunk)?.written;
        }
        Ok(written)
    }
}

fn unique(columns: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    columns
        .into_iter()
        .filter(|c| seen.insert(c.clone()))
        .collect()
}

/// The end of the last window materialized for `view`, from the feature table's history.
fn last_window_end(history: &[SnapshotInfo], view: &str) -> Option<i64> {
    history
        .iter()
        .filter(|s| s.summary.get(summary::VIEW).map(String::as_str) == Some(view))
        .filter_map(|s| s.summary.get(summary::WINDOW_END)?.parse().ok())
        .max()
}

/// How source and output columns become feature-table rows.
struct Layout<'a> {
    keys: &'a [(String, KeyType)],
    event_ts: &'a str,
    created_ts: Option<&'a str>,
    default_created_us: i64,
    schema: &'a SchemaRef,
}

/// One batch's feature-table rows, and how many source rows were dropped.
struct Features {
    batch: RecordBatch,
    dropped: u64,
}

impl Layout<'_> {
    fn features(&self, input: &RecordBatch, output: &RecordBatch) -> Result<Features> {
        let n = input.num_rows();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for (i, (name, _)) in self.keys.iter().enumerate() {
            columns.push(cast(
                column(input, name)?,
                self.schema.field(i).data_type(),
                name,
            )?);
        }
        let ts_type = ArrowType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()));
        let event = cast(column(input, self.event_ts)?, &ts_type, self.event_ts)?;
        let created = match self.created_ts {
            Some(c) => cast(column(input, c)?, &ts_type, c)?,
            None => Arc::new(
                TimestampMicrosecondArray::from(vec![self.default_created_us; n])
                    .with_timezone(UTC),
            ),
        };
        columns.push(event);
        columns.push(created);
        columns.extend(output.columns().iter().cloned());

        // Rows without a key or event time have no place in a feature table.
        let required = &columns[..self.keys.len() + 2];
        let (columns, dropped) = match required.iter().any(|c| c.null_count() > 0) {
            false => (columns, 0),
            true => {
                let keep: arrow_array::BooleanArray = (0..n)
                    .map(|row| Some(required.iter().all(|c| c.is_valid(row))))
                    .collect();
                let dropped = (n - keep.true_count()) as u64;
                let kept = columns
                    .iter()
                    .map(|c| arrow_select::filter::filter(c.as_ref(), &keep))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| Error::new(ErrorKind::Internal, format!("filtering rows: {e}")))?;
                (kept, dropped)
            }
        };
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("building the feature batch: {e}"),
            )
            .with_source(e)
        })?;
        Ok(Features { batch, dropped })
    }
}

fn column<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| {
        Error::new(
            ErrorKind::SchemaMismatch,
            format!("the source has no column `{name}`; run `skewless apply` to re-check the view"),
        )
        .with_context("column", name)
    })
}

fn cast(array: &ArrayRef, to: &ArrowType, name: &str) -> Result<ArrayRef> {
    if array.data_type() == to {
        return Ok(array.clone());
    }
    arrow_cast::cast(array, to).map_err(|e| {
        Error::new(
            ErrorKind::SchemaMismatch,
            format!(
                "column `{name}` could not be converted from {} to {to}: {e}",
                array.data_type()
            ),
        )
        .with_context("column", name)
    })
}
