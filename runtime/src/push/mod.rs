//! `push`: rows pushed by producers (`POST /push`, `skewless stream`) run through the same
//! components as materialization, become visible online at once, and land in the offline
//! store through the same incremental path batch rows take.
//!
//! A push names a **push source** (`[[push_source]]` in `skewless.toml`), which is bound to a
//! source table; the views fed are the views whose `source` is that table (`fed.rs`). One push:
//!
//! 1. the rows (`{"column": [values...]}`) are checked against the source table's schema
//!    (`rows.rs`): an unknown or missing column, a value of the wrong type or ragged columns
//!    fail the push (4xx) before anything is written;
//! 2. when the push goes online, every fed view's component runs on the rows (the same
//!    [`Transform::run`](crate::engine::Transform::run) batch jobs call; a component that
//!    rejects them fails the push before anything is written);
//! 3. the rows are appended to the source's **write-ahead log** (`wal.rs`) and fsynced
//!    (pushes waiting for the fsync at the same time share one: `group_sync.rs`);
//! 4. when the push goes online, the newest row per entity is written to the online store
//!    (the monotonic write materialization does); if that fails, the log records the push as
//!    cancelled and the push fails (503 for a store that is down): nothing was acknowledged
//!    and nothing will be committed;
//! 5. the rows join the source's next **micro-batch**: a committer thread appends each
//!    micro-batch to the source table as one Iceberg snapshot, every `commit_interval` or as
//!    soon as it holds `max_rows` rows (`[push]`), recording in the snapshot summary the
//!    highest log sequence number committed ([`summary::WAL`]); then it runs each fed
//!    view's incremental materialization ([`crate::materialize`]), which computes the
//!    feature rows from exactly the appended source rows, with the same component, and moves
//!    the processed-snapshot marker;
//! 6. the push is acknowledged: at once after step 4 for `to = "online"`, after step 5 for
//!    `"offline"` and `"online_and_offline"`.
//!
//! Every push is committed offline, whatever its `to` (`"online"` only decides what the
//! acknowledgement waits for): a value served online that the offline store never holds is
//! the skew this crate exists to prevent. `"offline"` skips step 4; the values reach the
//! online store through the materialization of step 5.
//!
//! # Crashes
//!
//! Sequence numbers are committed in order: a micro-batch is the longest run of pushes,
//! from the oldest not committed, that finished step 4 (or were cancelled), so "every push
//! at or below the recorded sequence number is committed or cancelled" holds. At start, the
//! log is replayed: pushes above the number the source table records, not cancelled, are
//! committed again through the same path (and materialized, which writes them online);
//! those at or below it are skipped, so a crash between the commit and the log's clean-up
//! appends nothing twice. A torn record at the end of the log (a crash while it was
//! written) was never acknowledged and is dropped.

pub(crate) mod fed;
mod group_sync;
pub(crate) mod rows;
pub(crate) mod wal;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde_json::Value;

use fed::{AggregateFed, BatchFed, FedView};
use group_sync::GroupSync;
use wal::{Record, Wal};

use crate::engine::TransformEngine;
use crate::error::{Error, ErrorKind, Result};
use crate::materialize::{Job, Options as MaterializeOptions};
use crate::offline::TableName;
use crate::online::OnlineStore;
use crate::registry::{AppliedRegistry, FeatureRepo, OpenedRepo};

/// Summary keys of the source snapshots the committer writes.
pub mod summary {
    /// The push source whose rows the snapshot appends.
    pub const SOURCE: &str = "skewless.push.source";
    /// Every push of that source with a sequence number at or below this one is committed
    /// (or was cancelled).
    pub const WAL: &str = "skewless.push.wal";
}

/// How long a push waits for the offline commit its `to` asks for before it fails
/// ([`not_committed`]); the server's `POST /push` and Python's `push` alike.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// The error of a push whose rows are in the write-ahead log but whose offline commit did not
/// come (`why`): they will be committed, so the caller must not push them again.
pub fn not_committed(why: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "the pushed rows are in the write-ahead log but {why}; they will be committed when \
             the offline store answers, or when the push source is next opened: do not push \
             them again"
        ),
    )
}

/// Where a push's rows go, Feast's `to`; what the acknowledgement waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum To {
    /// Acknowledged once visible online and in the write-ahead log (committed offline soon
    /// after). Feast's default.
    Online,
    /// Acknowledged once committed offline (and materialized, which writes the online store).
    Offline,
    /// Written online, acknowledged once committed offline.
    OnlineAndOffline,
}

impl To {
    /// Parses Feast's spelling: `online`, `offline` or `online_and_offline`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "online" => Ok(To::Online),
            "offline" => Ok(To::Offline),
            "online_and_offline" => Ok(To::OnlineAndOffline),
            other => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "`to` is `{other}`; expected one of `online`, `offline`, `online_and_offline`"
                ),
            )
            .with_context("field", "to")),
        }
    }

    /// Feast's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            To::Online => "online",
            To::Offline => "offline",
            To::OnlineAndOffline => "online_and_offline",
        }
    }

    fn writes_online(self) -> bool {
        self != To::Offline
    }

    fn waits_for_commit(self) -> bool {
        self != To::Online
    }

    fn code(self) -> u8 {
        match self {
            To::Online => 1,
            To::Offline => 2,
            To::OnlineAndOffline => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        [To::Online, To::Offline, To::OnlineAndOffline]
            .into_iter()
            .find(|t| t.code() == code)
    }
}

/// A point of a push or of a commit at which [`PushOptions::hook`] is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushStep {
    /// A push's rows are in the fsynced log; nothing written online yet. An error from the
    /// hook here stops the push as a crash would: no online write, no cancellation.
    Logged,
    /// The committer is about to append a micro-batch. An error stops the committer as a
    /// crash would.
    Committing,
    /// A micro-batch is committed; the log is not cleaned up and nothing is materialized
    /// yet. An error stops the committer as a crash would.
    Committed,
}

/// A callback at each [`PushStep`] (fault injection in tests).
#[derive(Clone)]
pub struct PushHook(pub Arc<dyn Fn(PushStep) -> Result<()> + Send + Sync>);

impl fmt::Debug for PushHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PushHook")
    }
}

/// What a [`PushService`] observes, for metrics.
pub trait PushObserver: Send + Sync + fmt::Debug {
    /// A micro-batch of `source` was committed: `rows` rows, the oldest waited `lag`.
    fn committed(&self, source: &str, rows: usize, lag: Duration);
    /// A commit or a materialization of `source` failed (it is retried).
    fn commit_failed(&self, source: &str);
}

/// How pushes are committed.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// The longest a pushed row waits for its micro-batch's commit.
    pub commit_interval: Duration,
    /// A micro-batch is committed as soon as it holds this many rows.
    pub max_rows: usize,
    /// Fault injection; `None` otherwise.
    pub hook: Option<PushHook>,
    /// Told of commits; `None` for none.
    pub observer: Option<Arc<dyn PushObserver>>,
}

impl PushOptions {
    /// The options `[push]` of the repo's `skewless.toml` sets.
    pub fn from_repo(repo: &FeatureRepo) -> Result<Self> {
        let spec = &repo.spec().push;
        Ok(PushOptions {
            commit_interval: spec.commit_interval()?,
            max_rows: spec.max_rows.unwrap_or(100_000),
            hook: None,
            observer: None,
        })
    }
}

/// A Feast push body, its shape checked.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The push source named.
    pub push_source_name: String,
    /// The columns, `{column: [values...]}`, not checked yet.
    pub df: serde_json::Map<String, Value>,
    /// Where the rows go.
    pub to: To,
}

impl PushRequest {
    /// Parses and checks the shape of a Feast push body (not its rows: they are checked
    /// against the push source's table).
    pub fn parse(body: &[u8]) -> Result<Self> {
        let invalid = |field: &str, message: String| {
            Error::new(ErrorKind::InvalidInput, message).with_context("field", field)
        };
        let shape = "{\"push_source_name\": \"name\", \"df\": {\"column\": [values...]}, \"to\": \"online\"}";
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            invalid(
                "body",
                format!("the request body is not valid JSON: {e}; expected {shape}"),
            )
        })?;
        let Value::Object(value) = value else {
            return Err(invalid(
                "body",
                format!(
                    "the request body is {}, expected an object: {shape}",
                    crate::serving::json_kind(&value)
                ),
            ));
        };
        let name = match value.get("push_source_name") {
            Some(Value::String(name)) => name.clone(),
            other => {
                return Err(invalid(
                    "push_source_name",
                    format!(
                        "`push_source_name` is {}, expected the name of a push source",
                        other.map_or("missing", crate::serving::json_kind)
                    ),
                ));
            }
        };
        let to = match value.get("to") {
            None | Some(Value::Null) => To::Online,
            Some(Value::String(to)) => To::parse(to)?,
            Some(other) => {
                return Err(invalid(
                    "to",
                    format!(
                        "`to` is {}, expected `online`, `offline` or `online_and_offline`",
                        crate::serving::json_kind(other)
                    ),
                ));
            }
        };
        crate::serving::check_feast_write_flags(&value)?;
        let Some(Value::Object(df)) = value.get("df").cloned() else {
            return Err(invalid(
                "df",
                "`df` must be an object of columns: {\"column\": [values...], ...}".to_owned(),
            ));
        };
        Ok(PushRequest {
            push_source_name: name,
            df,
            to,
        })
    }
}

/// What a push did; `committed` resolves when its rows are committed (pushes whose `to`
/// waits for it).
#[derive(Debug)]
pub struct Receipt {
    /// Rows pushed.
    pub rows: usize,
    /// Where they were pushed.
    pub to: To,
    /// Entities whose online value changed, over all fed views.
    pub online_written: usize,
    /// The smallest event time among the rows (µs), for freshness.
    pub oldest_event_us: Option<i64>,
    /// Resolves once the rows are committed offline and materialized (`None` unless `to`
    /// waits for it).
    pub committed: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// One pushed request that has not been committed yet.
enum Entry {
    /// Logged; its online write is under way.
    InFlight,
    /// Ready for the next micro-batch.
    Ready {
        batch: RecordBatch,
        arrived: Instant,
        waiter: Option<tokio::sync::oneshot::Sender<()>>,
    },
    /// Failed before it was acknowledged: never committed.
    Cancelled,
}

/// The log and the pushes not committed yet of one push source.
struct Ledger {
    wal: Wal,
    next_seq: u64,
    entries: BTreeMap<u64, Entry>,
    ready_rows: usize,
}

/// One push source: its table, the views it feeds, its ledger.
struct Source {
    name: String,
    table: TableName,
    schema: SchemaRef,
    event_ts: Vec<String>,
    fed: Vec<Box<dyn FedView>>,
    ledger: Mutex<Ledger>,
    /// Pushes waiting for their record's fsync at the same time share one.
    durability: GroupSync,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("table", &self.table.to_string())
            .field("fed", &self.fed)
            .finish_non_exhaustive()
    }
}

impl Source {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The push sources of a repo, their logs and the committer. See the [module docs](self).
pub struct PushService {
    sources: Arc<BTreeMap<String, Arc<Source>>>,
    store: Arc<dyn OnlineStore>,
    options: PushOptions,
    stop: Arc<AtomicBool>,
    committer: Option<JoinHandle<()>>,
}

impl fmt::Debug for PushService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushService")
            .field("sources", &self.sources.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl PushService {
    /// Opens every push source of the repo: checks its table, loads the components of the
    /// views it feeds (digests checked against `registry`), replays its log, and starts the
    /// committer (which first catches the fed views' materialization up).
    pub fn open(
        repo: &FeatureRepo,
        registry: &AppliedRegistry,
        engine: &TransformEngine,
        store: Arc<dyn OnlineStore>,
        options: PushOptions,
    ) -> Result<Self> {
        let opened = OpenedRepo::open(repo.dir())?;
        let mut sources = BTreeMap::new();
        {
            let context = opened.context();
            for push in &repo.spec().push_sources {
                let at = |e: Error| e.with_context("push_source", &push.name);
                let table = TableName::parse(&push.source).map_err(at)?;
                let schema = context
                    .runtime
                    .block_on(context.offline.arrow_schema(&table))
                    .map_err(at)?;
                let (fed, event_ts) =
                    fed_views(repo, registry, engine, &push.source).map_err(at)?;
                let watermark = committed_watermark(&opened, &table, &push.name).map_err(at)?;
                let dir = repo.state_dir().join("push").join(&push.name);
                let (wal, records) = Wal::open(&dir).map_err(at)?;
                let ledger = replay(wal, records, watermark);
                sources.insert(
                    push.name.clone(),
                    Arc::new(Source {
                        name: push.name.clone(),
                        table,
                        schema,
                        event_ts,
                        fed,
                        ledger: Mutex::new(ledger),
                        durability: GroupSync::default(),
                    }),
                );
            }
        }
        let sources = Arc::new(sources);
        let stop = Arc::new(AtomicBool::new(false));
        let committer = Committer {
            opened,
            sources: sources.clone(),
            store: store.clone(),
            options: options.clone(),
            stop: stop.clone(),
            materialize_pending: true,
        };
        let committer = std::thread::Builder::new()
            .name("skewless-push-commit".into())
            .spawn(move || committer.run())
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("could not start the push committer: {e}"),
                )
            })?;
        Ok(PushService {
            sources,
            store,
            options,
            stop,
            committer: Some(committer),
        })
    }

    /// The push sources, by name.
    pub fn source_names(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// Pushes a Feast push body (`{"push_source_name", "df", "to"}`); blocking (component
    /// calls, the log's fsync, the online write). See the [module docs](self).
    pub fn push_json(&self, body: &[u8]) -> Result<Receipt> {
        self.push_request(&PushRequest::parse(body)?)
    }

    /// Pushes a parsed Feast push body: its rows checked against the source table, then as
    /// [`PushService::push`].
    pub fn push_request(&self, request: &PushRequest) -> Result<Receipt> {
        let name = &request.push_source_name;
        let source = self.source(name)?;
        let batch = rows::to_batch(&request.df, &source.schema, &source.table.to_string())
            .map_err(|e| e.with_context("push_source", name))?;
        self.push(name, batch, request.to)
    }

    /// Pushes Arrow `rows` under push source `name` after aligning them to the source table's
    /// schema as an ingest does (columns by name, lossless casts only, a missing nullable
    /// column as nulls; an unknown column, a missing required one or a lossy cast fail the
    /// push, naming the column).
    pub fn push_arrow(&self, name: &str, rows: &RecordBatch, to: To) -> Result<Receipt> {
        let source = self.source(name)?;
        let rows = crate::offline::align_batch(&source.table, &source.schema, rows)
            .map_err(|e| e.with_context("push_source", name))?;
        self.push(name, rows, to)
    }

    /// Pushes `rows` (in the source table's schema) under push source `name`.
    pub fn push(&self, name: &str, rows: RecordBatch, to: To) -> Result<Receipt> {
        let source = self.source(name)?;
        if rows.schema() != source.schema {
            return Err(Error::new(
                ErrorKind::SchemaMismatch,
                format!(
                    "the rows pushed to `{name}` do not have the schema of source table {}",
                    source.table
                ),
            ));
        }
        let n = rows.num_rows();
        let oldest_event_us = oldest_event(&rows, &source.event_ts);
        if n == 0 {
            return Ok(Receipt {
                rows: 0,
                to,
                online_written: 0,
                oldest_event_us,
                committed: None,
            });
        }
        let arrival = crate::micros::now();
        let updates = match to.writes_online() {
            true => source
                .fed
                .iter()
                .map(|f| {
                    f.prepare(&rows, arrival)
                        .map_err(|e| e.with_context("view", f.name()))
                })
                .collect::<Result<Vec<_>>>()?,
            false => Vec::new(),
        };
        let seq = self.log(source, &rows, to)?;
        // Until the rows are handed to the committer, any way out of here (an error, a panic)
        // cancels the push: an entry left in flight would hold back every later commit.
        let mut in_flight = InFlight {
            service: self,
            source,
            seq,
            armed: true,
        };
        if let Some(hook) = &self.options.hook
            && let Err(e) = hook.0(PushStep::Logged)
        {
            // A "crash" here: the push stays in flight, as a dead process leaves it.
            in_flight.armed = false;
            return Err(e);
        }
        let mut online_written = 0;
        for (fed, update) in source.fed.iter().zip(&updates) {
            online_written += fed
                .write(update, self.store.as_ref())
                .map_err(|e| e.with_context("view", fed.name()))?;
        }
        in_flight.armed = false;
        let (sender, receiver) = match to.waits_for_commit() {
            true => {
                let (s, r) = tokio::sync::oneshot::channel();
                (Some(s), Some(r))
            }
            false => (None, None),
        };
        let full = {
            let mut ledger = source.ledger();
            ledger.entries.insert(
                seq,
                Entry::Ready {
                    batch: rows,
                    arrived: Instant::now(),
                    waiter: sender,
                },
            );
            ledger.ready_rows += n;
            ledger.ready_rows >= self.options.max_rows
        };
        if full && let Some(committer) = &self.committer {
            committer.thread().unpark();
        }
        Ok(Receipt {
            rows: n,
            to,
            online_written,
            oldest_event_us,
            committed: receiver,
        })
    }

    fn source(&self, name: &str) -> Result<&Arc<Source>> {
        self.sources.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.source_names().collect();
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "there is no push source `{name}` (push sources: [{}]); declare it as \
                     [[push_source]] in skewless.toml",
                    known.join(", ")
                ),
            )
            .with_context("field", "push_source_name")
        })
    }

    /// Appends the rows to the log, fsynced (with the pushes that wait at the same time:
    /// `group_sync.rs`); their sequence number.
    fn log(&self, source: &Source, rows: &RecordBatch, to: To) -> Result<u64> {
        let seq = {
            let mut ledger = source.ledger();
            let seq = ledger.next_seq;
            ledger.next_seq += 1;
            let record = Record::Rows {
                seq,
                to,
                batch: rows.clone(),
            };
            match ledger.wal.append(&record) {
                Ok(()) => {
                    ledger.entries.insert(seq, Entry::InFlight);
                    seq
                }
                Err(e) => {
                    // Keep the sequence without a gap: the committer commits in order.
                    ledger.entries.insert(seq, Entry::Cancelled);
                    return Err(e);
                }
            }
        };
        // Records in earlier segments were synced when the log rolled past them, so syncing
        // the current segment makes every record appended so far durable.
        let synced = source.durability.wait_durable(seq, || {
            let (appended, file) = {
                let ledger = source.ledger();
                (ledger.next_seq - 1, ledger.wal.file())
            };
            file.sync_data().map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("could not sync the push write-ahead log: {e}"),
                )
                .with_source(e)
            })?;
            Ok(appended)
        });
        if let Err(e) = synced {
            self.cancel(source, seq);
            return Err(e);
        }
        Ok(seq)
    }

    /// Marks push `seq` cancelled, in the log and in memory.
    fn cancel(&self, source: &Source, seq: u64) {
        let mut ledger = source.ledger();
        let logged =
            ledger.wal.append(&Record::Cancel { seq }).and_then(|()| {
                ledger.wal.file().sync_data().map_err(|e| {
                    Error::new(ErrorKind::Io, format!("syncing the write-ahead log: {e}"))
                })
            });
        if let Err(e) = logged {
            tracing::warn!(error = %e, seq, "could not log a failed push as cancelled; a restart would commit its rows");
        }
        ledger.entries.insert(seq, Entry::Cancelled);
    }
}

/// A logged push not yet handed to the committer: cancelled when dropped.
struct InFlight<'a> {
    service: &'a PushService,
    source: &'a Source,
    seq: u64,
    /// Cleared once the push is handed over (or "crashed" by the test hook).
    armed: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.service.cancel(self.source, self.seq);
        }
    }
}

impl Drop for PushService {
    /// Stops the committer after it commits what was pushed.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(committer) = self.committer.take() {
            committer.thread().unpark();
            let _ = committer.join();
        }
    }
}

/// The highest sequence number of push source `name` committed to `table`.
fn committed_watermark(opened: &OpenedRepo, table: &TableName, name: &str) -> Result<u64> {
    let context = opened.context();
    let snapshots = context.runtime.block_on(context.offline.snapshots(table))?;
    Ok(snapshots
        .iter()
        .filter(|s| s.summary.get(summary::SOURCE).map(String::as_str) == Some(name))
        .filter_map(|s| s.summary.get(summary::WAL)?.parse::<u64>().ok())
        .max()
        .unwrap_or(0))
}

/// The ledger after a restart: pushes above `watermark` that were not cancelled are ready to
/// be committed again; sequence numbers with no record (never logged whole) are cancelled.
fn replay(wal: Wal, records: Vec<Record>, watermark: u64) -> Ledger {
    let mut entries = BTreeMap::new();
    let mut highest = watermark;
    let mut ready_rows = 0;
    for record in records {
        let seq = record.seq();
        highest = highest.max(seq);
        if seq <= watermark {
            continue;
        }
        match record {
            Record::Rows { batch, .. } => {
                if !matches!(entries.get(&seq), Some(Entry::Cancelled)) {
                    ready_rows += batch.num_rows();
                    entries.insert(
                        seq,
                        Entry::Ready {
                            batch,
                            arrived: Instant::now(),
                            waiter: None,
                        },
                    );
                }
            }
            Record::Cancel { seq } => {
                if let Some(Entry::Ready { batch, .. }) = entries.get(&seq) {
                    ready_rows -= batch.num_rows();
                }
                entries.insert(seq, Entry::Cancelled);
            }
        }
    }
    for seq in watermark + 1..=highest {
        entries.entry(seq).or_insert(Entry::Cancelled);
    }
    if ready_rows > 0 {
        tracing::info!(
            rows = ready_rows,
            "replaying pushed rows the write-ahead log holds"
        );
    }
    Ledger {
        wal,
        next_seq: highest + 1,
        entries,
        ready_rows,
    }
}

/// The thread that commits micro-batches and materializes the fed views.
struct Committer {
    opened: OpenedRepo,
    sources: Arc<BTreeMap<String, Arc<Source>>>,
    store: Arc<dyn OnlineStore>,
    options: PushOptions,
    stop: Arc<AtomicBool>,
    materialize_pending: bool,
}

/// The committer stopped as a crash would (fault injection).
struct Crashed;

impl Committer {
    fn run(mut self) {
        loop {
            let deadline = Instant::now() + self.options.commit_interval;
            while !self.stop.load(Ordering::Acquire) && !self.any_full() {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                std::thread::park_timeout(deadline - now);
            }
            let stopping = self.stop.load(Ordering::Acquire);
            let sources: Vec<Arc<Source>> = self.sources.values().cloned().collect();
            let mut materialize = std::mem::take(&mut self.materialize_pending);
            let mut waiters = Vec::new();
            for source in &sources {
                match self.commit(source) {
                    Ok(Some(committed)) => {
                        materialize = true;
                        waiters.extend(committed);
                    }
                    Ok(None) => {}
                    Err(Crashed) => return,
                }
            }
            if materialize {
                self.materialize_pending = !self.materialize(&sources);
            }
            for waiter in waiters {
                let _ = waiter.send(());
            }
            if stopping {
                return;
            }
        }
    }

    fn any_full(&self) -> bool {
        self.sources
            .values()
            .any(|s| s.ledger().ready_rows >= self.options.max_rows)
    }

    fn hook(&self, step: PushStep) -> std::result::Result<(), Crashed> {
        match &self.options.hook {
            Some(hook) => hook.0(step).map_err(|_| Crashed),
            None => Ok(()),
        }
    }

    /// Commits `source`'s next micro-batch; the waiters of its pushes (`None` when there was
    /// nothing to commit, or the commit failed and will be tried again).
    #[allow(clippy::type_complexity, reason = "one use")]
    fn commit(
        &self,
        source: &Source,
    ) -> std::result::Result<Option<Vec<tokio::sync::oneshot::Sender<()>>>, Crashed> {
        let (batches, watermark, oldest) = {
            let mut ledger = source.ledger();
            let mut batches = Vec::new();
            let mut watermark = None;
            let mut oldest: Option<Instant> = None;
            for (seq, entry) in &ledger.entries {
                match entry {
                    Entry::InFlight => break,
                    Entry::Ready { batch, arrived, .. } => {
                        batches.push(batch.clone());
                        oldest = Some(oldest.map_or(*arrived, |o| o.min(*arrived)));
                    }
                    Entry::Cancelled => {}
                }
                watermark = Some(*seq);
                if batches.iter().map(RecordBatch::num_rows).sum::<usize>() >= self.options.max_rows
                {
                    break;
                }
            }
            let Some(watermark) = watermark else {
                return Ok(None);
            };
            if let Err(e) = ledger.wal.roll() {
                tracing::warn!(error = %e, "could not roll the push write-ahead log");
            }
            (batches, watermark, oldest)
        };
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows > 0 {
            self.hook(PushStep::Committing)?;
            let summary = HashMap::from([
                (summary::SOURCE.to_owned(), source.name.clone()),
                (summary::WAL.to_owned(), watermark.to_string()),
            ]);
            let committed = append(&self.opened, &source.table, batches, summary);
            if let Err(e) = committed {
                tracing::warn!(push_source = %source.name, error = %e, "committing pushed rows failed; trying again at the next interval");
                if let Some(observer) = &self.options.observer {
                    observer.commit_failed(&source.name);
                }
                return Ok(None);
            }
            self.hook(PushStep::Committed)?;
            if let Some(observer) = &self.options.observer {
                observer.committed(
                    &source.name,
                    rows,
                    oldest.map_or(Duration::ZERO, |o| o.elapsed()),
                );
            }
        }
        let mut ledger = source.ledger();
        let done: Vec<u64> = ledger
            .entries
            .range(..=watermark)
            .map(|(s, _)| *s)
            .collect();
        let mut waiters = Vec::new();
        for seq in done {
            if let Some(Entry::Ready { batch, waiter, .. }) = ledger.entries.remove(&seq) {
                ledger.ready_rows -= batch.num_rows();
                waiters.extend(waiter);
            }
        }
        ledger.wal.release(watermark);
        Ok(Some(waiters))
    }

    /// Runs the incremental materialization of every view fed by a push source; whether all
    /// succeeded.
    fn materialize(&self, sources: &[Arc<Source>]) -> bool {
        let mut ok = true;
        for source in sources {
            if !materialize(&self.opened, self.store.as_ref(), &source.fed) {
                ok = false;
                if let Some(observer) = &self.options.observer {
                    observer.commit_failed(&source.name);
                }
            }
        }
        ok
    }
}

/// The views fed by a source table, and their event-time columns.
pub(crate) type FedViews = (Vec<Box<dyn FedView>>, Vec<String>);

/// The views fed by source table `table`, their components loaded and checked against the
/// applied registry, and their event-time columns.
pub(crate) fn fed_views(
    repo: &FeatureRepo,
    registry: &AppliedRegistry,
    engine: &TransformEngine,
    table: &str,
) -> Result<FedViews> {
    let spec = repo.spec();
    let mut fed: Vec<Box<dyn FedView>> = Vec::new();
    let mut event_ts: Vec<String> = Vec::new();
    for view in spec.batch_views.iter().filter(|v| v.source == table) {
        fed.push(Box::new(BatchFed::load(repo, registry, engine, view)?));
        event_ts.push(view.event_timestamp.clone());
    }
    for view in spec.aggregate_views.iter().filter(|v| v.source == table) {
        fed.push(Box::new(AggregateFed::load(repo, registry, engine, view)?));
        event_ts.push(view.event_timestamp.clone());
    }
    event_ts.sort();
    event_ts.dedup();
    Ok((fed, event_ts))
}

/// Appends `batches` to `table` as one snapshot with `summary`.
pub(crate) fn append(
    opened: &OpenedRepo,
    table: &TableName,
    batches: Vec<RecordBatch>,
    summary: HashMap<String, String>,
) -> Result<()> {
    let context = opened.context();
    context.runtime.block_on(async {
        let mut job = context.offline.begin_append(table).await?;
        for batch in batches {
            job.write(batch).await?;
        }
        job.commit(summary).await.map(|_| ())
    })
}

/// Runs the incremental materialization of each of `fed`; whether all succeeded (failures
/// are logged: the next run picks the rows up, the processed marker not having moved).
pub(crate) fn materialize(
    opened: &OpenedRepo,
    store: &dyn OnlineStore,
    fed: &[Box<dyn FedView>],
) -> bool {
    let job = Job {
        context: opened.context(),
        online: store,
    };
    let options = MaterializeOptions {
        incremental: true,
        threads: 1,
        ..MaterializeOptions::default()
    };
    let mut ok = true;
    for view in fed {
        if let Err(e) = job.run(view.name(), &options, &|_| {}) {
            ok = false;
            tracing::warn!(view = view.name(), error = %e, "materializing pushed rows failed; trying again later");
        }
    }
    ok
}

/// The smallest event time among `rows`, over the fed views' event columns.
pub(crate) fn oldest_event(rows: &RecordBatch, columns: &[String]) -> Option<i64> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampMicrosecondType;
    columns
        .iter()
        .filter_map(|c| rows.column_by_name(c))
        .filter_map(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
        .filter_map(|c| c.iter().flatten().min())
        .min()
}
