//! `stream`: a consumer that feeds a push source from a log (Redis Streams; [`StreamSource`]
//! is the seam for another, such as Kafka), with at-least-once delivery and an idempotent
//! effect.
//!
//! Each message carries one row of the push source's table as a JSON object in its field
//! `row` (`{"user_id": 7, "event_ts": "2024-01-01T00:00:00Z", "amount": 12.5}`, the values
//! spelled as in a push's `df`). The [`Consumer`] loop:
//!
//! 1. reads a bounded batch ([`StreamOptions::batch`]; this consumer's pending messages
//!    first, so what a crash left unacknowledged comes back);
//! 2. skips messages at or below the **committed position** (the last message id whose row
//!    is in the source table, recorded in the snapshot summary: [`summary::POSITION`]),
//!    acknowledging them: they were committed before a crash took the acknowledgement;
//! 3. checks each message's row against the source schema; a malformed one (not JSON, a
//!    missing or mistyped column, a row the component rejects) goes to the dead-letter
//!    stream with its error and does not stop the stream;
//! 4. runs the fed views' components and writes the online store (monotonic, so a message
//!    applied twice changes nothing);
//! 5. every `commit_interval` or `max_rows` rows (`[push]`), appends the buffered rows to the
//!    source table as one snapshot recording the position, materializes the fed views
//!    incrementally (the same path pushes take), and only then acknowledges the messages.
//!
//! Three threads share the work, so that waiting on the log, on the online store and on the
//! offline commit overlap: a reader ([`StreamSource::reader`], its own connection) reads the
//! next batch while the current one is applied; the consumer's thread checks rows, runs the
//! components and commits; an online writer writes what the consumer prepared (updates that
//! arrive while it writes are merged into its next write, which the store's monotonic write
//! makes the same as writing them in turn). A commit first waits for the online writes of
//! its rows, so what was served is committed, and acknowledgements still follow the commit.
//!
//! Back-pressure: the reader holds at most one batch ahead (it waits with it until it is
//! taken) and reads nothing while a micro-batch is committed beyond that, and a batch is
//! bounded, so a slow store holds messages in the log, not in memory. A crash anywhere
//! re-delivers what was not acknowledged: rows not committed are applied again (no change
//! online, committed once), rows committed are skipped by step 2; a batch read ahead and not
//! applied when the consumer stops is unacknowledged too, and is read again at the next
//! start.
//!
//! Positions are per consumer: messages are delivered to one consumer in increasing id
//! order, so "every message delivered to consumer C up to position P is committed" is what
//! one number says. **Taking over a dead consumer** keeps that rule rather than mixing two
//! consumers' messages under one position: a consumer that finds another one with
//! unacknowledged messages and no read for [`StreamOptions::claim_idle`] claims it (one
//! claimer at a time; [`StreamSource::claim_dead`]), reads that consumer's unacknowledged
//! messages in id order *as that consumer* (exactly what the consumer itself would re-read
//! at its restart), and applies them through the same path with that consumer's committed
//! position, read afresh from the snapshots: messages at or below it were committed and are
//! only acknowledged; the others are committed once, in micro-batches of their own whose
//! snapshots record that consumer's key and position. A claimer that crashes leaves them
//! unacknowledged under the dead consumer, where the next claimer finds them. (Moving them
//! into the claimer's own pending list, as `XAUTOCLAIM` does, would lose who delivered them
//! first, and with it the position that says whether they are committed, once the claimer
//! itself restarts.) The assumption: a consumer idle for `claim_idle` is dead. A consumer
//! that restarts while it is taken over waits for the claim to go; one merely stalled
//! longer than `claim_idle` with rows buffered (a commit slower than that) and then resuming
//! would commit them a second time, so keep `claim_idle` well above the longest commit.

mod redis;
mod resp;
mod wire;

pub use self::redis::RedisStreams;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::offline::TableName;
use crate::online::OnlineStore;
use crate::push::fed::{FedView, Update};
use crate::registry::{FeatureRepo, OpenedRepo};

/// Summary keys of the source snapshots a consumer commits.
pub mod summary {
    /// The consumer (`redis:<stream>/<group>/<consumer>`).
    pub const CONSUMER: &str = "skewless.stream.consumer";
    /// The id of the last message whose row the snapshot (or an earlier one) holds.
    pub const POSITION: &str = "skewless.stream.position";
}

/// A message id, ordered as the log orders them (Redis: `<ms>-<seq>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64, pub u64);

impl MessageId {
    /// Parses `<ms>-<seq>`.
    pub fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-')?;
        Some(MessageId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// One message: its id and its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub id: MessageId,
    /// Its fields, in order.
    pub fields: Vec<(String, Vec<u8>)>,
}

/// A log read by one consumer. See the [module docs](self).
pub trait StreamSource: Send + fmt::Debug {
    /// Names this consumer's committed position in snapshot summaries.
    fn position_key(&self) -> String;
    /// Another handle on this consumer, with its own connection, that starts again at this
    /// consumer's unacknowledged messages: the [`Consumer`] reads ahead with it on a thread
    /// of its own while this one acknowledges and dead-letters.
    fn reader(&self) -> Result<Box<dyn StreamSource>>;
    /// Up to `max` messages: this consumer's unacknowledged ones first, then new ones,
    /// waiting up to `wait` for them. Ids increase within what one consumer is given.
    fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>>;
    /// Other consumers of the log that look dead (unacknowledged messages, and no read for
    /// `idle`), each claimed so that no other consumer takes it over too: a source that
    /// reads only that consumer's unacknowledged messages, in id order, as that consumer
    /// ([`position_key`](Self::position_key) is that consumer's), and holds the claim until
    /// dropped. Empty for a log whose broker hands a dead consumer's work to the others
    /// itself (Kafka's partition reassignment).
    fn claim_dead(&mut self, idle: Duration) -> Result<Vec<Box<dyn StreamSource>>>;
    /// Acknowledges messages: they are never delivered again.
    fn ack(&mut self, ids: &[MessageId]) -> Result<()>;
    /// Stores a message that cannot be applied, with the reason, where a person can look.
    fn dead_letter(&mut self, message: &Message, error: &str) -> Result<()>;
}

/// A point of the loop at which [`StreamOptions::hook`] is called; an error stops the
/// consumer there, as a crash would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamStep {
    /// A batch was handed to the online writer; nothing committed or acknowledged.
    Applied,
    /// A micro-batch was committed; nothing acknowledged.
    Committed,
}

/// A callback at each [`StreamStep`] (fault injection in tests).
#[derive(Clone)]
pub struct StreamHook(pub Arc<dyn Fn(StreamStep) -> Result<()> + Send + Sync>);

impl fmt::Debug for StreamHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamHook")
    }
}

/// How a consumer reads and commits.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// The most messages read at once.
    pub batch: usize,
    /// How long a read waits for new messages.
    pub wait: Duration,
    /// The longest a row waits for its commit.
    pub commit_interval: Duration,
    /// A micro-batch is committed as soon as it holds this many rows.
    pub max_rows: usize,
    /// Take over the unacknowledged messages of another consumer of the group that has not
    /// read for this long (checked at start, then at most this often); zero never does.
    pub claim_idle: Duration,
    /// Fault injection; `None` otherwise.
    pub hook: Option<StreamHook>,
}

/// What a consumer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Messages read (re-deliveries included).
    pub read: u64,
    /// Rows applied online and committed.
    pub committed: u64,
    /// Messages skipped as already committed (re-deliveries after a crash).
    pub duplicates: u64,
    /// Messages dead-lettered.
    pub dead_letters: u64,
    /// Reads that returned nothing.
    pub idle_reads: u64,
    /// Messages of dead consumers taken over (also counted in `read`).
    pub claimed: u64,
}

/// Feeds a push source from a [`StreamSource`]. See the [module docs](self).
#[derive(Debug)]
pub struct Consumer {
    opened: OpenedRepo,
    push_source: String,
    table: TableName,
    schema: SchemaRef,
    fed: Arc<[Box<dyn FedView>]>,
    store: Arc<dyn OnlineStore>,
    source: Box<dyn StreamSource>,
    options: StreamOptions,
    position: Option<MessageId>,
}

/// Messages read but not acknowledged, and the rows among them not committed.
#[derive(Default)]
struct Buffer {
    rows: Vec<RecordBatch>,
    row_count: usize,
    ids: Vec<MessageId>,
    since: Option<Instant>,
}

impl Consumer {
    /// A consumer of `source` into push source `push_source` of the repo in `dir` (applied),
    /// writing online to `store`; it continues from the position the source table records.
    pub fn open(
        dir: &std::path::Path,
        push_source: &str,
        store: Arc<dyn OnlineStore>,
        source: Box<dyn StreamSource>,
        options: StreamOptions,
    ) -> Result<Self> {
        let repo = FeatureRepo::open(dir)?;
        let opened = OpenedRepo::open(dir)?;
        let push = repo
            .spec()
            .push_sources
            .iter()
            .find(|p| p.name == push_source)
            .ok_or_else(|| {
                let known: Vec<&str> = repo
                    .spec()
                    .push_sources
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect();
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "there is no push source `{push_source}` (push sources: [{}]); declare \
                         it as [[push_source]] in skewless.toml",
                        known.join(", ")
                    ),
                )
            })?;
        let table = TableName::parse(&push.source)?;
        let context = opened.context();
        let schema = context
            .runtime
            .block_on(context.offline.arrow_schema(&table))?;
        let (fed, _) =
            crate::push::fed_views(&repo, context.registry, context.engine, &push.source)?;
        let position = committed_position(&opened, &table, &source.position_key())?;
        Ok(Consumer {
            opened,
            push_source: push_source.to_owned(),
            table,
            schema,
            fed: fed.into(),
            store,
            source,
            options,
            position,
        })
    }

    /// The position committed so far.
    pub fn position(&self) -> Option<MessageId> {
        self.position
    }

    /// Consumes until `done` says so (checked after each read, with what was done so far);
    /// what is buffered then is committed before this returns. Messages read ahead and not
    /// applied by then stay unacknowledged: they come back at the next start.
    pub fn run(&mut self, done: &dyn Fn(&StreamStats) -> bool) -> Result<StreamStats> {
        let mut reader =
            ReadAhead::start(self.source.reader()?, self.options.batch, self.options.wait)?;
        let writer = WriteBehind::start(self.fed.clone(), self.store.clone())?;
        let mut stats = StreamStats::default();
        let mut buffer = Buffer::default();
        let mut claimed_at: Option<Instant> = None;
        loop {
            // Between micro-batches, so that a taken-over consumer's rows are committed in
            // micro-batches of their own, under its position.
            let claim_due = !self.options.claim_idle.is_zero()
                && buffer.ids.is_empty()
                && claimed_at.is_none_or(|at| at.elapsed() >= self.options.claim_idle);
            if claim_due {
                self.take_over(&writer, &mut stats)?;
                claimed_at = Some(Instant::now());
            }
            let messages = reader.next()?;
            stats.read += messages.len() as u64;
            if messages.is_empty() {
                stats.idle_reads += 1;
            }
            self.apply(messages, &writer, &mut buffer, &mut stats)?;
            let due = buffer.row_count >= self.options.max_rows
                || buffer
                    .since
                    .is_some_and(|s| s.elapsed() >= self.options.commit_interval);
            let stop = done(&stats);
            if due || (stop && !buffer.ids.is_empty()) {
                self.commit(&writer, &mut buffer, &mut stats)?;
            }
            if stop {
                return Ok(stats);
            }
        }
    }

    /// Takes over the dead consumers [`StreamSource::claim_dead`] finds: reads each one's
    /// unacknowledged messages as that consumer would at its restart, and applies them
    /// through the same path, with that consumer's committed position and under its
    /// position key: what it committed is acknowledged, the rest committed once.
    fn take_over(&mut self, writer: &WriteBehind, stats: &mut StreamStats) -> Result<()> {
        for dead in self.source.claim_dead(self.options.claim_idle)? {
            let position = committed_position(&self.opened, &self.table, &dead.position_key())?;
            let own = std::mem::replace(&mut self.source, dead);
            let own_position = std::mem::replace(&mut self.position, position);
            let drained = self.drain(writer, stats);
            let dead = std::mem::replace(&mut self.source, own);
            self.position = own_position;
            tracing::info!(
                consumer = dead.position_key(),
                "took over a dead consumer's messages"
            );
            drop(dead);
            drained?;
        }
        Ok(())
    }

    /// Applies and commits everything [`Self::source`] reads, until it reads nothing.
    fn drain(&mut self, writer: &WriteBehind, stats: &mut StreamStats) -> Result<()> {
        let mut buffer = Buffer::default();
        loop {
            let messages = self
                .source
                .next_batch(self.options.batch, self.options.wait)?;
            if messages.is_empty() {
                return self.commit(writer, &mut buffer, stats);
            }
            stats.read += messages.len() as u64;
            stats.claimed += messages.len() as u64;
            self.apply(messages, writer, &mut buffer, stats)?;
            if buffer.row_count >= self.options.max_rows {
                self.commit(writer, &mut buffer, stats)?;
            }
        }
    }

    fn hook(&self, step: StreamStep) -> Result<()> {
        match &self.options.hook {
            Some(hook) => hook.0(step),
            None => Ok(()),
        }
    }

    /// Steps 2-4 of the module docs for one read.
    fn apply(
        &mut self,
        messages: Vec<Message>,
        writer: &WriteBehind,
        buffer: &mut Buffer,
        stats: &mut StreamStats,
    ) -> Result<()> {
        let (done, fresh): (Vec<Message>, Vec<Message>) = messages
            .into_iter()
            .partition(|m| self.position.is_some_and(|p| m.id <= p));
        if !done.is_empty() {
            stats.duplicates += done.len() as u64;
            let ids: Vec<MessageId> = done.iter().map(|m| m.id).collect();
            self.source.ack(&ids)?;
        }
        if fresh.is_empty() {
            return Ok(());
        }
        for message in &fresh {
            buffer.ids.push(message.id);
        }
        // The rows that parse, as one batch with one row per kept message, in order; the
        // other messages are dead-lettered.
        let (kept, batch) = self.rows(fresh, stats)?;
        if kept.is_empty() {
            buffer.since.get_or_insert_with(Instant::now);
            return Ok(());
        }
        let arrival = crate::micros::now();
        let (batch, updates) = match self.prepare(&batch, arrival) {
            Ok(updates) => (batch, updates),
            // A row some component rejects: find it, one row at a time.
            Err(e) if e.kind() == ErrorKind::TransformFailed => {
                let mut good = Vec::new();
                for (i, message) in kept.iter().enumerate() {
                    let row = batch.slice(i, 1);
                    match self.prepare(&row, arrival) {
                        Ok(_) => good.push(row),
                        Err(e) => {
                            self.source.dead_letter(message, e.message())?;
                            stats.dead_letters += 1;
                        }
                    }
                }
                let batch = concat(&self.schema, good.iter())?;
                let updates = self.prepare(&batch, arrival)?;
                (batch, updates)
            }
            Err(e) => return Err(e),
        };
        writer.submit(updates)?;
        self.hook(StreamStep::Applied)?;
        buffer.row_count += batch.num_rows();
        buffer.rows.push(batch);
        buffer.since.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn prepare(&self, batch: &RecordBatch, arrival: i64) -> Result<Vec<Update>> {
        self.fed
            .iter()
            .map(|f| {
                f.prepare(batch, arrival)
                    .map_err(|e| e.with_context("view", f.name()))
            })
            .collect()
    }

    /// The rows of `messages` that are well formed, as one batch of the source schema, with
    /// the messages they came from; the others are dead-lettered.
    ///
    /// Checking a whole read as one batch costs one schema check and one set of column
    /// builders for thousands of messages; only when that fails (some message is malformed)
    /// is each message checked alone, which finds every culprit and gives it the same error
    /// a push of that one row gets.
    fn rows(
        &mut self,
        messages: Vec<Message>,
        stats: &mut StreamStats,
    ) -> Result<(Vec<Message>, RecordBatch)> {
        let mut kept: Vec<Message> = Vec::with_capacity(messages.len());
        let mut rows: Vec<Map<String, Value>> = Vec::with_capacity(messages.len());
        for message in messages {
            match parse_row(&message) {
                Ok(row) => {
                    kept.push(message);
                    rows.push(row);
                }
                Err(e) => {
                    self.source.dead_letter(&message, e.message())?;
                    stats.dead_letters += 1;
                }
            }
        }
        if kept.is_empty() {
            return Ok((kept, RecordBatch::new_empty(self.schema.clone())));
        }
        if let Ok(batch) = self.to_batch(rows) {
            return Ok((kept, batch));
        }
        let mut good = Vec::with_capacity(kept.len());
        let mut batches = Vec::with_capacity(kept.len());
        for message in kept {
            // Parsed again: the whole read's rows were taken apart into columns.
            match parse_row(&message).and_then(|row| self.to_batch(vec![row])) {
                Ok(batch) => {
                    good.push(message);
                    batches.push(batch);
                }
                Err(e) => {
                    self.source.dead_letter(&message, e.message())?;
                    stats.dead_letters += 1;
                }
            }
        }
        let batch = concat(&self.schema, batches.iter())?;
        Ok((good, batch))
    }

    /// Rows (JSON objects of columns) as a batch of the source schema, checked as a push's
    /// `df` is: a column missing from some rows is null in them (so a required column missing
    /// from one row fails the batch). The values are moved into the columns, not copied.
    fn to_batch(&self, mut rows: Vec<Map<String, Value>>) -> Result<RecordBatch> {
        let mut names: Vec<String> = Vec::new();
        for row in &rows {
            for name in row.keys() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        let mut columns: Map<String, Value> = Map::new();
        for name in names {
            let values: Vec<Value> = rows
                .iter_mut()
                .map(|row| row.remove(&name).unwrap_or(Value::Null))
                .collect();
            columns.insert(name, Value::Array(values));
        }
        crate::push::rows::to_batch(&columns, &self.schema, &self.table.to_string())
    }

    /// Step 5 of the module docs.
    fn commit(
        &mut self,
        writer: &WriteBehind,
        buffer: &mut Buffer,
        stats: &mut StreamStats,
    ) -> Result<()> {
        let Some(last) = buffer.ids.iter().max().copied() else {
            return Ok(());
        };
        // What was served is committed: the online writes of the micro-batch are done
        // (or failed, and nothing is committed) before its rows are appended.
        writer.flush()?;
        let summary = HashMap::from([
            (summary::CONSUMER.to_owned(), self.source.position_key()),
            (summary::POSITION.to_owned(), last.to_string()),
        ]);
        let rows = std::mem::take(&mut buffer.rows);
        crate::push::append(&self.opened, &self.table, rows, summary)
            .map_err(|e| e.with_context("push_source", &self.push_source))?;
        self.position = Some(last);
        stats.committed += buffer.row_count as u64;
        self.hook(StreamStep::Committed)?;
        crate::push::materialize(&self.opened, self.store.as_ref(), &self.fed);
        self.source.ack(&buffer.ids)?;
        *buffer = Buffer::default();
        Ok(())
    }
}

/// The last message id that the snapshots of `table` record as committed under position key
/// `key`: every message delivered to that consumer up to it is committed.
fn committed_position(
    opened: &OpenedRepo,
    table: &TableName,
    key: &str,
) -> Result<Option<MessageId>> {
    let context = opened.context();
    let snapshots = context.runtime.block_on(context.offline.snapshots(table))?;
    Ok(snapshots
        .iter()
        .filter(|s| s.summary.get(summary::CONSUMER).map(String::as_str) == Some(key))
        .filter_map(|s| MessageId::parse(s.summary.get(summary::POSITION)?))
        .max())
}

/// A message's row: its field `row`, a JSON object of the row's columns.
fn parse_row(message: &Message) -> Result<Map<String, Value>> {
    let invalid = |m: String| Error::new(ErrorKind::InvalidInput, m);
    let (_, text) = message
        .fields
        .iter()
        .find(|(f, _)| f == "row")
        .ok_or_else(|| {
            invalid("the message has no field `row` (a JSON object of the row's columns)".into())
        })?;
    serde_json::from_slice(text)
        .map_err(|e| invalid(format!("field `row` is not a JSON object: {e}")))
}

fn concat<'a>(
    schema: &SchemaRef,
    batches: impl Iterator<Item = &'a RecordBatch>,
) -> Result<RecordBatch> {
    arrow_select::concat::concat_batches(schema, batches)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("joining rows: {e}")))
}

/// Reads the next batch on a thread of its own while the current one is applied and
/// committed: at most one batch ahead (the channel has no room, so the thread waits with
/// the batch it read until it is taken), so a slow store still holds messages in the log.
struct ReadAhead {
    batches: Option<std::sync::mpsc::Receiver<Result<Vec<Message>>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReadAhead {
    fn start(mut source: Box<dyn StreamSource>, max: usize, wait: Duration) -> Result<Self> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (send, batches) = std::sync::mpsc::sync_channel(0);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("stream-reader".to_owned())
            .spawn(move || {
                while !stopped.load(Ordering::Acquire) {
                    let batch = source.next_batch(max, wait);
                    let failed = batch.is_err();
                    if send.send(batch).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("could not start the stream's reader thread: {e}"),
                )
            })?;
        Ok(ReadAhead {
            batches: Some(batches),
            stop,
            thread: Some(thread),
        })
    }

    fn next(&mut self) -> Result<Vec<Message>> {
        let gone = || {
            Error::new(
                ErrorKind::Internal,
                "the stream's reader thread stopped".to_owned(),
            )
        };
        let batches = self.batches.as_ref().ok_or_else(gone)?;
        batches.recv().map_err(|_| gone())?
    }
}

impl Drop for ReadAhead {
    /// Stops the thread and waits for it (at most its current read), so that nothing reads
    /// as this consumer once the consumer stopped.
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.batches = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes the online store on a thread of its own, so that the next read is checked and
/// transformed while the last one is written. Updates handed to it while it writes are
/// merged into its next write (the store keeps the greatest row per key, so writing them
/// together writes the same as one after the other): when the store is the slower side, it
/// writes each entity once for many reads instead of once per read. An online value is
/// then visible one write later, never later than the commit, which waits for it
/// ([`flush`](Self::flush)).
struct WriteBehind {
    shared: Arc<(std::sync::Mutex<Writes>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Writes {
    /// Per fed view, what the next write writes; `None` when nothing is waiting.
    waiting: Option<Vec<Update>>,
    writing: bool,
    failed: Option<Error>,
    stop: bool,
}

impl WriteBehind {
    fn start(fed: Arc<[Box<dyn FedView>]>, store: Arc<dyn OnlineStore>) -> Result<Self> {
        let shared = Arc::new((
            std::sync::Mutex::new(Writes::default()),
            std::sync::Condvar::new(),
        ));
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("stream-online".to_owned())
            .spawn(move || {
                let (lock, changed) = &*state;
                let mut writes = lock.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if writes.stop {
                        return;
                    }
                    let Some(updates) = writes.waiting.take() else {
                        writes = changed.wait(writes).unwrap_or_else(|e| e.into_inner());
                        continue;
                    };
                    writes.writing = true;
                    drop(writes);
                    let mut failed = None;
                    for (view, update) in fed.iter().zip(&updates) {
                        if let Err(e) = view.write(update, store.as_ref()) {
                            failed = Some(e.with_context("view", view.name()));
                            break;
                        }
                    }
                    writes = lock.lock().unwrap_or_else(|e| e.into_inner());
                    writes.writing = false;
                    if failed.is_some() && writes.failed.is_none() {
                        writes.failed = failed;
                    }
                    changed.notify_all();
                }
            })
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("could not start the stream's online writer thread: {e}"),
                )
            })?;
        Ok(WriteBehind {
            shared,
            thread: Some(thread),
        })
    }

    /// Hands over one prepared update per fed view; the error of an earlier write, if any.
    fn submit(&self, updates: Vec<Update>) -> Result<()> {
        let (lock, changed) = &*self.shared;
        let mut writes = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = writes.failed.take() {
            return Err(e);
        }
        match &mut writes.waiting {
            Some(waiting) => {
                for (waiting, update) in waiting.iter_mut().zip(updates) {
                    waiting.extend(update);
                }
            }
            None => writes.waiting = Some(updates),
        }
        changed.notify_all();
        Ok(())
    }

    /// Waits until everything handed over is written; the error of a write, if any.
    fn flush(&self) -> Result<()> {
        let (lock, changed) = &*self.shared;
        let mut writes = lock.lock().unwrap_or_else(|e| e.into_inner());
        while writes.failed.is_none() && (writes.writing || writes.waiting.is_some()) {
            writes = changed.wait(writes).unwrap_or_else(|e| e.into_inner());
        }
        match writes.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for WriteBehind {
    /// Stops the thread after its current write; what waits is not written (it is not
    /// committed either, so it is read and applied again).
    fn drop(&mut self) {
        let (lock, changed) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
