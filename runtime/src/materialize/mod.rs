//! `materialize`: run a batch or aggregate view's transform over its source table and store
//! the results.
//!
//! Both kinds of view take the one path below; they differ in what a source batch becomes (a
//! component's outputs, or for an aggregate view without a transform the aggregated source
//! columns as they are) and in what goes online (see [Aggregate views](#aggregate-views)).
//!
//! For one view:
//! 1. the component (if any) is loaded and its digest checked against the applied registry;
//! 2. `plan` decides what the run reads and writes: with `--incremental`, exactly the data
//!    files the source's snapshots appended since the last processed source snapshot,
//!    whatever their rows' event times (so a late row is never missed), appended to the
//!    feature table; otherwise an event-time window (everything when no window is given) of
//!    one pinned source snapshot, which **replaces** that window of the feature table;
//! 3. the source is scanned a batch at a time (memory does not grow with the table), with the
//!    window or the file list pushed down to Iceberg;
//! 4. the transform runs over each batch on every core ([`crate::pipeline`]);
//! 5. the outputs, with join keys, `event_ts` and `created_ts`, stream into one job on the
//!    view's feature table, while the newest row per entity is kept for the online store;
//! 6. the newest rows go to the online store (which never lets an older row replace a newer);
//! 7. the job commits as **one** snapshot (an append, or an overwrite of the window) whose
//!    summary records the view, the digest, the mode, the window, the source snapshot read
//!    and the processed-snapshot marker.
//!
//! The code is three stages: `prepare` (steps 1–2: what the run does, reading no row),
//! `compute` (steps 3–5 and building the online rows) and the commit (`begin_commit`, then
//! step 7), with step 6 between the last two. [`Job::run`] runs them in one process;
//! [`distributed`] runs the same stages on a driver (`prepare`, commit) and on workers
//! (`compute` and step 6, over a part of the source each).
//!
//! # Aggregate views
//!
//! An aggregate view's feature table is filled exactly as above. Online, instead of the newest
//! row, each entity the run touches gets one **record** (`aggregate::Record`: its rows after a
//! cut and the lifetime states of the older ones), built from the rows the run writes and the
//! rows the feature table keeps for that entity (`records.rs`). A record's version, in the
//! `(event_ts, created_ts)` slots the online store orders rows by, is `(commit time of the
//! source snapshot read, time of the run)`: the marker only moves forward and full and
//! incremental runs read the current source snapshot, a backfill the marker's, so a record
//! built from more of the source wins, and among runs over the same snapshot the later one.
//!
//! A failure before step 7 commits nothing to the offline table and leaves the marker where
//! it was, so a re-run reads the same rows again: none lost, none doubled. Online writes come
//! before the commit on purpose: they are monotonic and idempotent, so a job that fails after
//! them leaves the online store holding values a re-run writes again, never a regression,
//! while a commit before them could leave a "successful" offline snapshot with no online
//! values.
//!
//! # Incremental runs and backfills
//!
//! Every materialization snapshot records the **processed-snapshot marker**
//! ([`summary::PROCESSED`]): the source snapshot up to which every source row is
//! materialized. `--incremental` reads what the source appended after it (the first run,
//! with no marker, reads everything and replaces the whole feature table) and moves it; a
//! full run (no window) replaces everything and moves it; a window backfill replaces the
//! window with rows read from the source **as of the marker**, so that it and the next
//! incremental run never both write a row, and carries the marker forward. A source snapshot
//! after the marker that is not an append, or one expired, makes `--incremental` fail with an
//! error that asks for a full run.
//!
//! Re-running a window replaces its rows (one copy of each, however many re-runs; earlier
//! snapshots still time-travel to what they held). `created_ts`, when the source has no
//! created column, is the commit time of the source snapshot read, so a re-run from the same
//! snapshot produces identical rows; a window backfill whose view, digest, window and source
//! snapshot match the feature table's newest snapshot is skipped outright. A full run never
//! is: it is also how an online store that was lost or replaced is filled again.

pub mod distributed;
mod newest;
mod plan;
mod records;
mod shards;
mod values;
mod versions;

pub(crate) use values::{arrow_value, feature_value};

pub use distributed::{Bucket, PartDone, PartPlan, key_partitions};
pub(crate) use newest::NewestRows;
use records::{Keep, Records};

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType as ArrowType, SchemaRef, TimeUnit};
use futures::StreamExt;

use crate::aggregate::RecordLayout;
use crate::apply::{feature_table_schema, join_keys};
use crate::engine::Transform;
use crate::error::{Error, ErrorKind, Result};
use crate::offline::{AppendJob, CommitGuard, ScanOptions, SnapshotInfo, TableName, TimeRange};
use crate::online::{EntityKey, OnlineStore, StoredRow};
use crate::pipeline::parallel_map_ordered;
use crate::registry::{KeyType, NO_TRANSFORM, RepoContext, ViewKind};
use crate::signature::{Signature, UTC};

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
    /// The source snapshot up to which every source row is materialized: where the next
    /// `--incremental` run starts. Carried forward by runs that do not move it.
    pub const PROCESSED: &str = "skewless.source.processed";
    /// For an incremental run, the source snapshot it continued from (exclusive).
    pub const SOURCE_FROM: &str = "skewless.source.from";
    /// `incremental`, `window` or `full`.
    pub const MODE: &str = "skewless.mode";
}

/// Rows per online write call (one pipelined round trip for Redis).
const ONLINE_CHUNK: usize = 10_000;

/// How to materialize.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Window start (µs, inclusive); the beginning of time when absent.
    pub start_us: Option<i64>,
    /// Window end (µs, exclusive); the end of time when absent.
    pub end_us: Option<i64>,
    /// Process exactly the rows appended to the source since the last processed source
    /// snapshot, whatever their event times; the first such run processes the whole source
    /// (see the module docs).
    pub incremental: bool,
    /// Worker threads; the number of cores when zero.
    pub threads: usize,
    /// The job's time, µs since the epoch (the current time when absent): an aggregate view's
    /// online records answer at any `now` from about then on (see `aggregate::Record`).
    pub now_us: Option<i64>,
    /// Called at each [`Step`]; an error it returns fails the run there (fault injection in
    /// tests; `None` otherwise).
    pub hook: Option<Hook>,
}

/// A point of a run at which [`Options::hook`] is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Every source row was read and transformed; nothing was written online or committed.
    Transformed,
    /// The online store was written; the offline commit comes next.
    BeforeCommit,
}

/// A callback run at each [`Step`] of a materialization.
#[derive(Clone)]
pub struct Hook(pub Arc<dyn Fn(Step) -> Result<()> + Send + Sync>);

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook")
    }
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
    /// `incremental`, `window` or `full` (`none` when skipped before deciding).
    pub mode: &'static str,
    /// The event-time window replaced, µs (`None` for an incremental run, which appends).
    pub window: Option<(i64, i64)>,
    /// The source snapshot read.
    pub source_snapshot: Option<i64>,
    /// For an incremental run, the source snapshot it continued from.
    pub from_snapshot: Option<i64>,
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
        let Prepared {
            run,
            mut result,
            summary,
            scan,
            seen,
        } = match self.prepare(view_name, options)? {
            Prepare::Skip(result) => return Ok(*result),
            Prepare::Run(prepared) => *prepared,
        };
        let mut job = self.begin_commit(&run, result.window, seen)?;
        let online_written = self
            .compute(&run, scan, None, &mut job, options, progress, &mut result)
            // The offline files are finished in the background while the online store is
            // written; the commit waits for them.
            .and_then(|rows| rt.block_on(job.finish_writing()).map(|()| rows))
            .and_then(|rows| self.write_online(view_name, &rows))
            .and_then(|written| hook(options, Step::BeforeCommit).map(|()| written));
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
        result.snapshot = Some(rt.block_on(job.commit(summary))?);
        result.elapsed = started.elapsed();
        Ok(result)
    }

    /// Stage one of a run: decides what it reads and writes (see `plan`), or that there is
    /// nothing to do. Reads no source row.
    fn prepare(&self, view_name: &str, options: &Options) -> Result<Prepare<'_>> {
        let rt = self.context.runtime;
        let offline = self.context.offline;
        let view = self.target(view_name)?;
        let digest = view.compute.digest().to_owned();
        let source = TableName::parse(view.source)?;
        let table = self.context.repo.feature_table(view_name)?;
        let mut result = Materialized {
            view: view_name.to_owned(),
            rows: 0,
            dropped_rows: 0,
            online_written: 0,
            snapshot: None,
            skipped: None,
            digest: digest.clone(),
            mode: "none",
            window: None,
            source_snapshot: None,
            from_snapshot: None,
            elapsed: Duration::ZERO,
        };
        let source_snapshots = rt.block_on(offline.snapshots(&source))?;
        let Some(source_current) = rt.block_on(offline.current_snapshot(&source))? else {
            result.skipped = Some(format!("source table {source} has no data yet"));
            return Ok(Prepare::Skip(Box::new(result)));
        };
        let history = rt.block_on(offline.snapshots(&table))?;
        let head = rt.block_on(offline.current_snapshot(&table))?;
        let lineage = plan::lineage(&history, head.as_ref().map(|s| s.snapshot_id));
        let request = plan::Request {
            incremental: options.incremental,
            start_us: options.start_us,
            end_us: options.end_us,
        };
        let work = plan::plan(
            request,
            view_name,
            &lineage,
            source_current.snapshot_id,
            |id| source_snapshots.iter().any(|s| s.snapshot_id == id),
        )?;
        result.mode = work.mode();
        let (read, marker) = match &work {
            plan::Work::Nothing(why) => {
                result.skipped = Some(why.clone());
                return Ok(Prepare::Skip(Box::new(result)));
            }
            plan::Work::Appended { from, to } => {
                result.from_snapshot = Some(*from);
                (*to, Some(*to))
            }
            plan::Work::Replace {
                start,
                end,
                read,
                marker,
            } => {
                result.window = Some((*start, *end));
                (*read, *marker)
            }
        };
        result.source_snapshot = Some(read);
        let read_info = source_snapshots
            .iter()
            .find(|s| s.snapshot_id == read)
            .unwrap_or(&source_current);

        let mut summary = HashMap::from([
            (summary::VIEW.to_owned(), view_name.to_owned()),
            (summary::DIGEST.to_owned(), digest.clone()),
            (summary::MODE.to_owned(), work.mode().to_owned()),
            (summary::SOURCE_SNAPSHOT.to_owned(), read.to_string()),
        ]);
        if let Some(marker) = marker {
            summary.insert(summary::PROCESSED.to_owned(), marker.to_string());
        }
        if let Some(from) = result.from_snapshot {
            summary.insert(summary::SOURCE_FROM.to_owned(), from.to_string());
        }
        if let Some((start, end)) = result.window {
            summary.insert(summary::WINDOW_START.to_owned(), start.to_string());
            summary.insert(summary::WINDOW_END.to_owned(), end.to_string());
        }
        // The same window backfill already made the feature table what it is. A full run is
        // never skipped: it is also how an online store that was lost or replaced is filled
        // again (`skewless materialize --all`), which the feature table alone cannot tell.
        if let Some(head) = &head
            && work.mode() == "window"
            && [
                summary::VIEW,
                summary::DIGEST,
                summary::MODE,
                summary::SOURCE_SNAPSHOT,
                summary::WINDOW_START,
                summary::WINDOW_END,
            ]
            .iter()
            .all(|k| head.summary.get(*k) == summary.get(*k))
        {
            result.skipped = Some(format!(
                "this window was already materialized from the same source snapshot by the same component (snapshot {})",
                head.snapshot_id
            ));
            return Ok(Prepare::Skip(Box::new(result)));
        }
        // Commit only where the marker this run started from still stands: another run of the
        // view that moved it meanwhile read some of the same rows (or would be undone).
        let seen = plan::marker(&lineage, view_name)?;
        let run = Run::new(
            self.context.repo,
            view,
            table,
            work,
            head.map(|h| h.snapshot_id),
            read_info.timestamp_ms,
            options.now_us.unwrap_or_else(crate::micros::now),
        );
        let mut scan = run.scan_options();
        if let plan::Work::Appended { from, to } = &run.work {
            let appended = rt.block_on(offline.appended_since(&source, *from, *to))?;
            scan = scan.data_files(appended.files);
        }
        Ok(Prepare::Run(Box::new(Prepared {
            run,
            result,
            summary,
            scan,
            seen,
        })))
    }

    /// Stage three of a run: the job that commits its rows as one snapshot (an overwrite of
    /// the window, or an append that lands only where the marker `seen` still stands).
    fn begin_commit(
        &self,
        run: &Run<'_>,
        window: Option<(i64, i64)>,
        seen: Option<i64>,
    ) -> Result<AppendJob> {
        let rt = self.context.runtime;
        let offline = self.context.offline;
        let view_name = run.view.name;
        let guard: CommitGuard = {
            let view = view_name.to_owned();
            Arc::new(move |snapshots, current| {
                match plan::marker(&plan::lineage(snapshots, current), &view)? == seen {
                    true => Ok(()),
                    false => Err(Error::new(
                        ErrorKind::Unavailable,
                        format!(
                            "another materialization of view `{view}` committed while this one \
                             ran; nothing was committed: run `skewless materialize {view}` again"
                        ),
                    )),
                }
            })
        };
        // An incremental run replaces an empty range: it appends, but only on top of what
        // it planned for.
        let range = match window {
            Some((start, end)) => TimeRange::new(crate::apply::EVENT_TS, start, end),
            None => TimeRange::new(crate::apply::EVENT_TS, i64::MAX, i64::MAX),
        };
        match offline.can_replace() {
            true => rt.block_on(offline.begin_replace(&run.table, range, Some(guard))),
            false => {
                if window.is_some() {
                    tracing::warn!(
                        view = view_name,
                        "this catalog cannot commit overwrites: the window's rows are \
                         appended, and earlier rows of the window stay beside them"
                    );
                }
                rt.block_on(offline.begin_append(&run.table))
            }
        }
    }

    /// Stage two of a run: reads the source with `scan` (only the rows of `bucket`'s entities,
    /// when given), runs the transform, writes the feature rows into `job` and returns what
    /// goes online (nothing when the view is not online): the newest row per entity, or an
    /// aggregate view's records of the entities the rows touch. Counts rows into `result`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one stage shared by the local run and a distributed part"
    )]
    fn compute(
        &self,
        run: &Run<'_>,
        scan: ScanOptions,
        bucket: Option<Bucket>,
        job: &mut AppendJob,
        options: &Options,
        progress: &(dyn Fn(u64) + Sync),
        result: &mut Materialized,
    ) -> Result<Vec<(EntityKey, StoredRow)>> {
        let rt = self.context.runtime;
        let offline = self.context.offline;
        let view = &run.view;
        let transform = &view.compute;
        let keys = &run.keys;
        let source = TableName::parse(view.source)?;
        let mut stream = rt.block_on(offline.scan(&source, scan))?;
        let batches = std::iter::from_fn(|| rt.block_on(stream.next()));
        let source_keys: Vec<(String, KeyType)> = keys.clone();
        let batches = batches.map(|batch| match (batch, bucket) {
            (Ok(batch), Some(bucket)) => bucket.filter(&batch, &source_keys),
            (batch, _) => batch,
        });

        let layout = Layout {
            keys,
            event_ts: view.event_timestamp,
            created_ts: view.created_timestamp,
            default_created_us: run.read_ms.saturating_mul(1000),
            schema: &run.schema,
        };
        let newest = NewestRows::new();
        // Aggregate views: the records of the entities the run touches, cut at the job's time.
        let records = view.records.as_ref().map(|l| Records::new(l, run.job_now));
        let record_columns: Vec<usize> = match &view.records {
            Some(layout) => (layout.columns().iter())
                .filter_map(|c| {
                    let outputs = &transform.signature().outputs;
                    outputs.iter().position(|f| &f.name == c)
                })
                .map(|i| keys.len() + 2 + i)
                .collect(),
            None => Vec::new(),
        };
        let at = records::Columns {
            keys: keys.len(),
            values: &record_columns,
        };
        let threads = match options.threads {
            0 => crate::pipeline::cores(),
            n => n,
        };
        let (mut rows, mut dropped) = (0, 0);
        let transformed = parallel_map_ordered(
            batches,
            threads,
            |input: RecordBatch| {
                let output = transform.run(&input)?;
                let features = layout.features(&input, &output)?;
                match (&records, view.online) {
                    (_, false) => {}
                    (Some(records), true) => records.offer(&features.batch, &at)?,
                    (None, true) => newest.offer(&features.batch, keys.len())?,
                }
                Ok(features)
            },
            |features: Features| {
                rows += features.batch.num_rows() as u64;
                dropped += features.dropped;
                progress(features.batch.num_rows() as u64 + features.dropped);
                if features.batch.num_rows() > 0 {
                    rt.block_on(job.write(features.batch))?;
                }
                Ok(())
            },
        );
        result.rows += rows;
        result.dropped_rows += dropped;
        transformed?;
        hook(options, Step::Transformed)?;
        Ok(match (view.online, records) {
            (false, _) => Vec::new(),
            (true, None) => newest.into_rows(transform.digest()),
            (true, Some(records)) => {
                self.read_back(&records, run, bucket)?;
                // Newer materializations win: the source snapshot the run's rows are as
                // of, then the time of the run (see the module docs).
                let version = (run.read_ms.saturating_mul(1000), crate::micros::now());
                records.into_rows(transform.digest(), version)
            }
        })
    }
}

/// Calls the run's hook at `step`, if it has one.
fn hook(options: &Options, step: Step) -> Result<()> {
    match &options.hook {
        Some(hook) => (hook.0)(step),
        None => Ok(()),
    }
}

/// What [`Job::prepare`] decided.
enum Prepare<'j> {
    /// Nothing to do; the result says why.
    Skip(Box<Materialized>),
    /// A run to make.
    Run(Box<Prepared<'j>>),
}

/// A run, prepared: what it computes, its result so far, its snapshot summary, the scan of
/// the source and the marker it started from.
struct Prepared<'j> {
    run: Run<'j>,
    result: Materialized,
    summary: HashMap<String, String>,
    scan: ScanOptions,
    seen: Option<i64>,
}

/// What one run computes, decided: the same on the machine that plans a distributed job and
/// on each of its workers.
struct Run<'t> {
    view: Target<'t>,
    /// The feature table.
    table: TableName,
    keys: Vec<(String, KeyType)>,
    /// The feature table's Arrow schema.
    schema: SchemaRef,
    work: plan::Work,
    /// The feature table's snapshot when the run was planned.
    head: Option<i64>,
    /// Commit time of the source snapshot read, ms.
    read_ms: i64,
    /// The job's time, µs.
    job_now: i64,
}

impl<'t> Run<'t> {
    fn new(
        repo: &crate::registry::FeatureRepo,
        view: Target<'t>,
        table: TableName,
        work: plan::Work,
        head: Option<i64>,
        read_ms: i64,
        job_now: i64,
    ) -> Self {
        let keys = join_keys(repo, view.entities);
        let schema = feature_table_schema(&keys, view.compute.signature());
        Run {
            view,
            table,
            keys,
            schema,
            work,
            head,
            read_ms,
            job_now,
        }
    }

    /// The scan of the source: the snapshot read, the columns the view needs and the
    /// window (an incremental run restricts it to the appended files besides).
    fn scan_options(&self) -> ScanOptions {
        let view = &self.view;
        let mut columns: Vec<String> = self.keys.iter().map(|(k, _)| k.clone()).collect();
        columns.push(view.event_timestamp.to_owned());
        columns.extend(view.created_timestamp.map(str::to_owned));
        columns.extend(
            view.compute
                .signature()
                .inputs
                .iter()
                .map(|f| f.name.clone()),
        );
        let read = match &self.work {
            plan::Work::Appended { to, .. } => *to,
            plan::Work::Replace { read, .. } => *read,
            plan::Work::Nothing(_) => 0,
        };
        let mut scan = ScanOptions::default()
            .snapshot(read)
            .columns(unique(columns))
            .batch_size(crate::files::DEFAULT_BATCH_SIZE);
        if let plan::Work::Replace { start, end, .. } = &self.work
            && (*start, *end) != (i64::MIN, i64::MAX)
        {
            scan = scan.time_range(view.event_timestamp, *start, *end);
        }
        scan
    }
}

/// What a run of one view reads and computes: a batch view, or an aggregate view (whose
/// feature table is filled the same way, with the transform's outputs or its source columns).
struct Target<'r> {
    name: &'r str,
    entities: &'r [String],
    source: &'r str,
    event_timestamp: &'r str,
    created_timestamp: Option<&'r str>,
    online: bool,
    compute: Compute,
    /// Aggregate views: what their online records hold.
    records: Option<RecordLayout>,
}

/// How a source batch becomes the columns a feature table stores beside keys and times.
enum Compute {
    /// A component's outputs.
    Component(Transform),
    /// The source columns `signature.inputs`, as they are (an aggregate view without a
    /// transform: its applied signature is the identity over them).
    Columns(Signature),
}

impl Compute {
    fn digest(&self) -> &str {
        match self {
            Compute::Component(t) => t.digest(),
            Compute::Columns(_) => NO_TRANSFORM,
        }
    }

    fn signature(&self) -> &Signature {
        match self {
            Compute::Component(t) => t.signature(),
            Compute::Columns(s) => s,
        }
    }

    fn run(&self, input: &RecordBatch) -> Result<RecordBatch> {
        let signature = match self {
            Compute::Component(t) => return t.run(input),
            Compute::Columns(s) => s,
        };
        let columns = (signature.outputs.iter())
            .map(|f| cast(column(input, &f.name)?, &f.data_type.to_arrow(), &f.name))
            .collect::<Result<Vec<_>>>()?;
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(input.num_rows()));
        RecordBatch::try_new_with_options(signature.output_schema(), columns, &options).map_err(
            |e| {
                Error::new(
                    ErrorKind::SchemaMismatch,
                    format!("the source columns do not fit the view's applied signature: {e}; run `skewless apply`"),
                )
            },
        )
    }
}

impl Job<'_> {
    /// The batch or aggregate view `name`, its component verified against the registry.
    fn target(&self, name: &str) -> Result<Target<'_>> {
        let repo = self.context.repo;
        let spec = repo.spec();
        let verified = || repo.verified_transform(self.context.engine, self.context.registry, name);
        if let Some(view) = spec.batch_views.iter().find(|v| v.name == name) {
            return Ok(Target {
                name: &view.name,
                entities: &view.entities,
                source: &view.source,
                event_timestamp: &view.event_timestamp,
                created_timestamp: view.created_timestamp.as_deref(),
                online: view.online,
                compute: Compute::Component(verified()?),
                records: None,
            });
        }
        let Some(view) = spec.aggregate_views.iter().find(|v| v.name == name) else {
            let known: Vec<&str> = (spec.batch_views.iter().map(|v| v.name.as_str()))
                .chain(spec.aggregate_views.iter().map(|v| v.name.as_str()))
                .collect();
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "there is no batch or aggregate view `{name}` in skewless.toml (views to materialize: [{}])",
                    known.join(", ")
                ),
            ));
        };
        let applied = match self.context.registry.views.get(name) {
            Some(applied) if applied.kind == ViewKind::Aggregate => applied,
            _ => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("aggregate view `{name}` is not applied; run `skewless apply`"),
                ));
            }
        };
        let compute = match &view.transform {
            Some(_) => Compute::Component(verified()?),
            None => Compute::Columns(applied.signature.clone()),
        };
        let outputs: Vec<String> = (applied.signature.outputs.iter())
            .map(|f| f.name.clone())
            .collect();
        Ok(Target {
            name: &view.name,
            entities: &view.entities,
            source: &view.source,
            event_timestamp: &view.event_timestamp,
            created_timestamp: view.created_timestamp.as_deref(),
            online: view.online,
            compute,
            records: Some(RecordLayout::new(
                applied.resolved_aggregations()?,
                &outputs,
            )),
        })
    }

    /// Adds to `records` the rows the feature table holds and keeps after this run, for the
    /// entities the run touches (see `records.rs`): all of them for an incremental run, those
    /// outside the window for a backfill (whose replaced rows touch their entities), none for
    /// a full run.
    fn read_back(
        &self,
        records: &Records<'_>,
        run: &Run<'_>,
        bucket: Option<Bucket>,
    ) -> Result<()> {
        let (Some(head), Some(layout)) = (run.head, run.view.records.as_ref()) else {
            return Ok(());
        };
        let (table, keys) = (&run.table, &run.keys);
        let window = match &run.work {
            plan::Work::Appended { .. } => None,
            plan::Work::Replace { start, end, .. } if (*start, *end) == (i64::MIN, i64::MAX) => {
                return Ok(());
            }
            plan::Work::Replace { start, end, .. } => Some((*start, *end)),
            plan::Work::Nothing(_) => return Ok(()),
        };
        let rt = self.context.runtime;
        let offline = self.context.offline;
        let mut columns: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        columns.push(crate::apply::EVENT_TS.to_owned());
        columns.push(crate::apply::CREATED_TS.to_owned());
        columns.extend(layout.columns().iter().cloned());
        let values: Vec<usize> = (0..layout.columns().len())
            .map(|i| keys.len() + 2 + i)
            .collect();
        let at = records::Columns {
            keys: keys.len(),
            values: &values,
        };
        // One scan at a time, a batch at a time: memory holds the records, not the table.
        let scan = |range: Option<(i64, i64)>, keep: &dyn Fn(i64) -> Keep| -> Result<()> {
            let mut options = ScanOptions::default()
                .snapshot(head)
                .columns(columns.clone())
                .batch_size(crate::files::DEFAULT_BATCH_SIZE);
            if let Some((start, end)) = range {
                options = options.time_range(crate::apply::EVENT_TS, start, end);
            }
            let mut stream = rt.block_on(offline.scan(table, options))?;
            while let Some(batch) = rt.block_on(stream.next()) {
                let batch = match bucket {
                    Some(bucket) => bucket.filter(&batch?, keys)?,
                    None => batch?,
                };
                records.offer_stored(&batch, &at, keep)?;
            }
            Ok(())
        };
        if let Some((start, end)) = window {
            // The rows the window replaces touch their entities.
            scan(Some((start, end)), &|e| match (start..end).contains(&e) {
                true => Keep::TouchOnly,
                false => Keep::Skip,
            })?;
        }
        scan(None, &|e| match window {
            Some((start, end)) if (start..end).contains(&e) => Keep::Skip,
            _ => Keep::IfTouched,
        })?;
        Ok(())
    }

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

/// How source and output columns become feature-table rows (also used by `push`, so that
/// pushed rows become online rows exactly as materialized ones do).
pub(crate) struct Layout<'a> {
    pub(crate) keys: &'a [(String, KeyType)],
    pub(crate) event_ts: &'a str,
    pub(crate) created_ts: Option<&'a str>,
    pub(crate) default_created_us: i64,
    pub(crate) schema: &'a SchemaRef,
}

/// One batch's feature-table rows, and how many source rows were dropped.
pub(crate) struct Features {
    pub(crate) batch: RecordBatch,
    pub(crate) dropped: u64,
}

impl Layout<'_> {
    pub(crate) fn features(&self, input: &RecordBatch, output: &RecordBatch) -> Result<Features> {
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
