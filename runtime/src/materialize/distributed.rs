//! A materialization split across machines: planned once, run in parts by workers, committed
//! once — the same run as [`Job::run`], in three stages that may run in different processes.
//!
//! 1. **Plan** ([`Job::plan_parts`], on the driver): the local run's first stage decides what
//!    the run reads and writes (mode, window, source snapshot, marker, snapshot summary); the
//!    data files its source scan would read are then split into parts. The plan is plain data
//!    ([`PartPlan`], serde) that travels to the workers.
//! 2. **Run a part** ([`Job::run_part`], on a worker): the view's component is loaded and
//!    verified against the registry, and its digest must be the plan's; the part's files are
//!    scanned with the plan's snapshot, columns and window, transformed by the local run's
//!    stage two (the same code: `Layout`, the newest-row and record
//!    builders) and written as Parquet data files into the feature table's location, under
//!    `skewless-job-<job>/part-<n>/<attempt>/`, **not committed**; the part's online rows go
//!    straight to the online store, whose writes are monotonic (an older row never replaces a
//!    newer), so parts may write in any order. The part returns its files' descriptions
//!    ([`PartDone`]).
//! 3. **Commit** ([`Job::commit_parts`], on the driver): the view's digest is checked against
//!    the registry again and every part's against the plan; every part must be there exactly
//!    once. All the parts' files are committed as **one** snapshot with the local run's
//!    summary, by the local run's commit (an overwrite of the window, or an append), under the
//!    same guard: the processed-snapshot marker the plan started from must still stand, so a
//!    run of the view that committed in between fails this one with nothing committed.
//!
//! # Parts
//!
//! A batch view's parts split the scan's data files (balanced by bytes; a file larger than a
//! part's share is cut into byte ranges that tile it, each range reading the row groups whose
//! midpoint lies in it): each source row is in exactly one row group, so in exactly one
//! part; the newest row per entity of each part goes online, and the online store keeps the
//! newest of all. An aggregate view that is online needs every row of an entity in one place
//! (its record describes all of them), so its parts are **entity buckets** instead: every
//! part scans all the files and keeps the rows whose key hashes to its bucket
//! ([`key_partitions`]); it reads the source once per part, the price of exact records.
//!
//! # Failure
//!
//! A part that fails removes its own files. A retried part (its worker died) first deletes
//! its folder `part-<n>/`, so a killed attempt's files never outlive the next attempt, and
//! only the files of the attempt whose result the driver got are committed. A job that fails
//! (or whose commit fails) commits nothing, and [`Job::abort_parts`] deletes its whole folder
//! `skewless-job-<job>/`. Online writes made by parts of a failed job stay, as those of a
//! failed local run do (see the [module docs](super)): they are values a re-run writes again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::DataType as ArrowType;
use serde::{Deserialize, Serialize};

use super::values::key_value;
use super::{Job, Materialized, Options, Prepare, Run, plan};
use crate::error::{Error, ErrorKind, Result};
use crate::offline::TableName;
use crate::online::KeyValue;
use crate::registry::KeyType;

/// A distributed materialization of one view, planned: what every part needs, and what the
/// commit records. Serializable, to travel from the driver to the workers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartPlan {
    /// The job's id: names its folder of data files.
    pub job: String,
    /// The view.
    pub view: String,
    /// The component digest the plan was made with; every part must run exactly it.
    pub digest: String,
    /// The parts (none when there is nothing to read: the commit records the run alone).
    pub parts: Vec<Part>,
    /// Why there is nothing to do, when there is not (then nothing runs or commits).
    pub skipped: Option<String>,
    /// `full`, `window`, `incremental` or `none`.
    pub mode: String,
    /// The window replaced, µs.
    pub window: Option<(i64, i64)>,
    /// The source snapshot read.
    pub source_snapshot: Option<i64>,
    /// For an incremental run, the snapshot it continues from.
    pub from_snapshot: Option<i64>,
    work: Option<plan::Work>,
    head: Option<i64>,
    read_ms: i64,
    job_now: i64,
    seen: Option<i64>,
    summary: HashMap<String, String>,
}

/// One part of a [`PartPlan`]: source data files to read, and the entity bucket to keep.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part {
    /// The source's data files this part reads whole.
    pub files: Vec<String>,
    /// Byte ranges `(file, start, length)` of larger source files this part reads: the row
    /// groups whose midpoint lies in the range (other parts read the rest of the file).
    #[serde(default)]
    pub ranges: Vec<(String, u64, u64)>,
    /// When set, only rows whose entity is in this bucket.
    pub bucket: Option<Bucket>,
}

/// Entity bucket `index` of `count`: the entities whose key [`key_partitions`] puts there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Which bucket.
    pub index: u32,
    /// Of how many.
    pub count: u32,
}

/// What one part did: its uncommitted data files, and counts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartDone {
    /// The part's index in the plan.
    pub part: usize,
    /// The digest of the component that ran.
    pub digest: String,
    /// The data files written, as Iceberg's JSON description of a data file.
    pub files: Vec<String>,
    /// Feature rows written.
    pub rows: u64,
    /// Source rows dropped (a null join key or event time).
    pub dropped_rows: u64,
    /// Entities written online.
    pub online_written: usize,
}

impl Bucket {
    /// The rows of `batch` whose key (the columns `keys`) falls in this bucket.
    pub(crate) fn filter(
        &self,
        batch: &RecordBatch,
        keys: &[(String, KeyType)],
    ) -> Result<RecordBatch> {
        let buckets = key_partitions(batch, keys, self.count)?;
        let keep: BooleanArray = buckets.iter().map(|b| Some(*b == self.index)).collect();
        arrow_select::filter::filter_record_batch(batch, &keep).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("selecting a bucket's rows: {e}"),
            )
        })
    }
}

/// The partition (of `count`) of each row of `batch` by its entity key, the columns `keys`:
/// a stable hash (FNV-1a over the key's values, integers widened to 64 bits as in an
/// [`EntityKey`](crate::online::EntityKey)), the same in every process and on every machine.
/// Rows with a null key component go to partition 0 (they match or make no feature row).
pub fn key_partitions(
    batch: &RecordBatch,
    keys: &[(String, KeyType)],
    count: u32,
) -> Result<Vec<u32>> {
    if count == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the number of partitions must be at least 1",
        ));
    }
    let columns = keys
        .iter()
        .map(|(name, key_type)| {
            let column = batch.column_by_name(name).ok_or_else(|| {
                Error::new(
                    ErrorKind::SchemaMismatch,
                    format!("the rows have no join key column `{name}`"),
                )
                .with_context("column", name)
            })?;
            let to = match key_type {
                KeyType::Int32 | KeyType::Int64 => ArrowType::Int64,
                KeyType::Utf8 => ArrowType::Utf8,
            };
            arrow_cast::cast(column, &to).map_err(|e| {
                Error::new(
                    ErrorKind::SchemaMismatch,
                    format!(
                        "join key column `{name}` ({}) is not a {to} key: {e}",
                        column.data_type()
                    ),
                )
                .with_context("column", name)
            })
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok((0..batch.num_rows())
        .map(|row| {
            let mut hash = Fnv::default();
            for column in &columns {
                match key_value(column, row) {
                    None => return 0,
                    Some(KeyValue::Int64(v)) => {
                        hash.write(&[0]);
                        hash.write(&v.to_le_bytes());
                    }
                    Some(KeyValue::Utf8(s)) => {
                        hash.write(&[1]);
                        hash.write(&(s.len() as u64).to_le_bytes());
                        hash.write(s.as_bytes());
                    }
                }
            }
            (hash.0 % u64::from(count)) as u32
        })
        .collect())
}

/// FNV-1a, 64 bits: defined by its constants, so stable across processes, builds and
/// machines (unlike the std and ahash hashers, which are free to change or are seeded).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// What one part reads: whole files, and byte ranges `(file, start, length)` of others.
type Share = (Vec<String>, Vec<(String, u64, u64)>);

/// Splits `files` (path, bytes) into at most `parts` shares of about equal bytes. A file
/// larger than a part's share of the total is cut into byte ranges of about that share, which
/// tile it from 0 to its end (so each row group is read by exactly one range), so that a
/// source of few large files still spreads over every part. Pieces go largest first, each to
/// the lightest share; no share is empty.
fn split(files: Vec<(String, u64)>, parts: usize) -> Vec<Share> {
    let parts = parts.max(1) as u64;
    let total: u64 = files.iter().map(|(_, bytes)| *bytes).sum();
    let share = total.div_ceil(parts).max(1);
    // (bytes, path, range), a whole file without a range.
    type Piece = (u64, String, Option<(u64, u64)>);
    let mut pieces: Vec<Piece> = Vec::new();
    for (path, bytes) in files {
        let cuts = bytes.div_ceil(share).max(1);
        if cuts == 1 {
            pieces.push((bytes, path, None));
            continue;
        }
        for k in 0..cuts {
            // Every range is at least one byte (`bytes >= cuts`): a length of 0 would mean
            // the whole file to the reader.
            let (start, end) = (k * bytes / cuts, (k + 1) * bytes / cuts);
            pieces.push((end - start, path.clone(), Some((start, end - start))));
        }
    }
    pieces.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.cmp(&b.1))
            .then_with(|| a.2.cmp(&b.2))
    });
    let count = (parts as usize).min(pieces.len());
    let mut shares: Vec<(u64, Share)> = vec![(0, (Vec::new(), Vec::new())); count];
    for (bytes, path, range) in pieces {
        if let Some((total, (files, ranges))) = shares.iter_mut().min_by_key(|(total, _)| *total) {
            *total += bytes.max(1);
            match range {
                None => files.push(path),
                Some((start, length)) => ranges.push((path, start, length)),
            }
        }
    }
    shares.into_iter().map(|(_, share)| share).collect()
}

/// The folder of a job's data files, under the feature table's data location.
fn job_dir(job: &str) -> String {
    format!("skewless-job-{job}")
}

impl Job<'_> {
    /// Stage one of a distributed run of `view` (see the module docs): what the local run
    /// would do, with its source files split into at most `parts` parts.
    pub fn plan_parts(&self, view: &str, options: &Options, parts: usize) -> Result<PartPlan> {
        self.plan_parts_inner(view, options, parts)
            .map_err(|e| e.with_context("view", view))
    }

    fn plan_parts_inner(&self, view: &str, options: &Options, parts: usize) -> Result<PartPlan> {
        if parts == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a distributed materialization needs at least 1 part",
            ));
        }
        let prepared = match self.prepare(view, options)? {
            Prepare::Skip(result) => {
                let result = *result;
                return Ok(PartPlan {
                    job: uuid::Uuid::new_v4().to_string(),
                    view: view.to_owned(),
                    digest: result.digest,
                    parts: Vec::new(),
                    skipped: result.skipped,
                    mode: result.mode.to_owned(),
                    window: result.window,
                    source_snapshot: result.source_snapshot,
                    from_snapshot: result.from_snapshot,
                    work: None,
                    head: None,
                    read_ms: 0,
                    job_now: 0,
                    seen: None,
                    summary: HashMap::new(),
                });
            }
            Prepare::Run(prepared) => *prepared,
        };
        let run = &prepared.run;
        let source = TableName::parse(run.view.source)?;
        let files = self
            .context
            .runtime
            .block_on(self.context.offline.scan_files(&source, &prepared.scan))?;
        let parts = match (&run.view.records, run.view.online) {
            // Records need all of an entity's rows in one part (see the module docs).
            (Some(_), true) if !files.is_empty() => {
                let all: Vec<String> = files.into_iter().map(|(path, _)| path).collect();
                let count = parts as u32;
                (0..count)
                    .map(|index| Part {
                        files: all.clone(),
                        ranges: Vec::new(),
                        bucket: Some(Bucket { index, count }),
                    })
                    .collect()
            }
            _ => split(files, parts)
                .into_iter()
                .map(|(files, ranges)| Part {
                    files,
                    ranges,
                    bucket: None,
                })
                .collect(),
        };
        let result = &prepared.result;
        Ok(PartPlan {
            job: uuid::Uuid::new_v4().to_string(),
            view: view.to_owned(),
            digest: result.digest.clone(),
            parts,
            skipped: None,
            mode: result.mode.to_owned(),
            window: result.window,
            source_snapshot: result.source_snapshot,
            from_snapshot: result.from_snapshot,
            work: Some(run.work.clone()),
            head: run.head,
            read_ms: run.read_ms,
            job_now: run.job_now,
            seen: prepared.seen,
            summary: prepared.summary,
        })
    }

    /// The plan's run, rebuilt here: the view's component verified against the registry and
    /// required to be the one the plan was made with.
    fn run_of(&self, plan: &PartPlan) -> Result<Run<'_>> {
        let Some(work) = plan.work.clone() else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the plan has nothing to run: {}",
                    plan.skipped.as_deref().unwrap_or("no work")
                ),
            ));
        };
        let view = self.target(&plan.view)?;
        if view.compute.digest() != plan.digest {
            return Err(Error::new(
                ErrorKind::InvalidComponent,
                format!(
                    "view `{}` was planned with component {} but the registry now has {}: \
                     it was applied again while the job ran; nothing was committed, run the \
                     job again",
                    plan.view,
                    plan.digest,
                    view.compute.digest()
                ),
            )
            .with_context("digest", view.compute.digest()));
        }
        let table = self.context.repo.feature_table(&plan.view)?;
        Ok(Run::new(
            self.context.repo,
            view,
            table,
            work,
            plan.head,
            plan.read_ms,
            plan.job_now,
        ))
    }

    /// Stage two of a distributed run: part `part` of `plan` (see the module docs). Its data
    /// files are written but not committed; its online rows are written.
    pub fn run_part(&self, plan: &PartPlan, part: usize, options: &Options) -> Result<PartDone> {
        self.run_part_inner(plan, part, options)
            .map_err(|e| e.with_context("view", &plan.view))
    }

    fn run_part_inner(&self, plan: &PartPlan, index: usize, options: &Options) -> Result<PartDone> {
        let rt = self.context.runtime;
        let offline = self.context.offline;
        let part = plan.parts.get(index).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the plan has {} parts, not a part {index}",
                    plan.parts.len()
                ),
            )
        })?;
        let run = self.run_of(plan)?;
        let mut files: BTreeSet<String> = part.files.iter().cloned().collect();
        let mut ranges: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
        for (file, start, length) in &part.ranges {
            files.insert(file.clone());
            ranges
                .entry(file.clone())
                .or_default()
                .push((*start, *length));
        }
        let mut scan = run.scan_options().data_files(Arc::new(files));
        if !ranges.is_empty() {
            scan = scan.byte_ranges(Arc::new(ranges));
        }
        // An earlier attempt of this part (its worker died) left files nobody will commit.
        let dir = format!("{}/part-{index}", job_dir(&plan.job));
        rt.block_on(offline.delete_dir(&run.table, &dir))?;
        let attempt = uuid::Uuid::new_v4();
        let mut job =
            rt.block_on(offline.begin_append_in(&run.table, &format!("{dir}/{attempt}")))?;
        let mut result = Materialized {
            view: plan.view.clone(),
            rows: 0,
            dropped_rows: 0,
            online_written: 0,
            snapshot: None,
            skipped: None,
            digest: plan.digest.clone(),
            mode: "none",
            window: None,
            source_snapshot: None,
            from_snapshot: None,
            elapsed: std::time::Duration::ZERO,
        };
        let written = self
            .compute(
                &run,
                scan,
                part.bucket,
                &mut job,
                options,
                &|_| {},
                &mut result,
            )
            .and_then(|rows| self.write_online(&plan.view, &rows));
        let online_written = match written {
            Ok(written) => written,
            Err(e) => {
                if let Err(cleanup) = rt.block_on(job.abort()) {
                    tracing::warn!(error = %cleanup, "could not remove the files of the failed part");
                }
                return Err(e);
            }
        };
        Ok(PartDone {
            part: index,
            digest: run.view.compute.digest().to_owned(),
            files: rt.block_on(job.finish())?,
            rows: result.rows,
            dropped_rows: result.dropped_rows,
            online_written,
        })
    }

    /// Stage three of a distributed run: commits the files of every part of `plan` as one
    /// snapshot with the local run's summary (see the module docs). On failure nothing is
    /// committed and the parts' files are deleted.
    pub fn commit_parts(&self, plan: &PartPlan, done: &[PartDone]) -> Result<Materialized> {
        self.commit_parts_inner(plan, done)
            .map_err(|e| e.with_context("view", &plan.view))
    }

    fn commit_parts_inner(&self, plan: &PartPlan, done: &[PartDone]) -> Result<Materialized> {
        let started = std::time::Instant::now();
        let rt = self.context.runtime;
        let mut result = Materialized {
            view: plan.view.clone(),
            rows: 0,
            dropped_rows: 0,
            online_written: 0,
            snapshot: None,
            skipped: plan.skipped.clone(),
            digest: plan.digest.clone(),
            mode: mode(&plan.mode),
            window: plan.window,
            source_snapshot: plan.source_snapshot,
            from_snapshot: plan.from_snapshot,
            elapsed: std::time::Duration::ZERO,
        };
        if plan.skipped.is_some() {
            return Ok(result);
        }
        let run = self.run_of(plan)?;
        let mut seen = vec![false; plan.parts.len()];
        for part in done {
            if part.digest != plan.digest {
                return Err(Error::new(
                    ErrorKind::InvalidComponent,
                    format!(
                        "part {} ran component {} but the job was planned with {}; nothing was \
                         committed",
                        part.part, part.digest, plan.digest
                    ),
                )
                .with_context("digest", &part.digest));
            }
            match seen.get_mut(part.part) {
                Some(slot) if !*slot => *slot = true,
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "part {} is not a part of the plan or was given twice; nothing was \
                             committed",
                            part.part
                        ),
                    ));
                }
            }
            result.rows += part.rows;
            result.dropped_rows += part.dropped_rows;
            result.online_written += part.online_written;
        }
        if let Some(missing) = seen.iter().position(|s| !s) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("part {missing} of the plan has no result; nothing was committed"),
            ));
        }
        let mut job = self.begin_commit(&run, plan.window, plan.seen)?;
        let files: Vec<String> = done.iter().flat_map(|d| d.files.iter().cloned()).collect();
        if let Err(e) = job.adopt(&files) {
            let _ = rt.block_on(job.abort());
            return Err(e);
        }
        result.snapshot = Some(rt.block_on(job.commit(plan.summary.clone()))?);
        result.elapsed = started.elapsed();
        Ok(result)
    }

    /// Deletes every data file the job's parts wrote (all attempts): for a job that
    /// committed nothing.
    pub fn abort_parts(&self, plan: &PartPlan) -> Result<()> {
        let table = self.context.repo.feature_table(&plan.view)?;
        self.context
            .runtime
            .block_on(self.context.offline.delete_dir(&table, &job_dir(&plan.job)))
    }
}

fn mode(text: &str) -> &'static str {
    match text {
        "full" => "full",
        "window" => "window",
        "incremental" => "incremental",
        _ => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_partitions_are_stable_and_widen_integers() {
        let batch = |column: ArrayRef| RecordBatch::try_from_iter([("user_id", column)]).unwrap();
        let keys = [("user_id".to_owned(), KeyType::Int64)];
        let wide = batch(Arc::new(arrow_array::Int64Array::from(vec![1, 2, 3, 4, 5])));
        let narrow = batch(Arc::new(arrow_array::Int32Array::from(vec![1, 2, 3, 4, 5])));
        let a = key_partitions(&wide, &keys, 7).unwrap();
        assert_eq!(a, key_partitions(&narrow, &keys, 7).unwrap());
        // FNV-1a of [0, 1i64 LE]: fixed by its definition, so by this number.
        let mut fnv = Fnv::default();
        fnv.write(&[0]);
        fnv.write(&1i64.to_le_bytes());
        assert_eq!(u64::from(a[0]), fnv.0 % 7);
        assert!(a.iter().any(|p| *p != a[0]), "{a:?}");
        let nulls = batch(Arc::new(arrow_array::Int64Array::from(vec![None, Some(1)])));
        assert_eq!(key_partitions(&nulls, &keys, 7).unwrap()[0], 0);
        assert!(key_partitions(&wide, &keys, 0).is_err());
    }

    #[test]
    fn split_balances_bytes_and_leaves_no_part_empty() {
        let files = |sizes: &[u64]| {
            sizes
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("f{i}"), *s))
                .collect::<Vec<_>>()
        };
        let whole = |shares: Vec<Share>| -> Vec<Vec<String>> {
            shares
                .into_iter()
                .map(|(files, ranges)| {
                    assert!(ranges.is_empty(), "{ranges:?}");
                    files
                })
                .collect()
        };
        let groups = whole(split(files(&[10, 9, 1, 1]), 2));
        // Largest first into the lightest group (the first of equals); no file is larger
        // than a share (11 bytes), so none is cut.
        assert_eq!(
            groups,
            vec![
                vec!["f0".to_owned(), "f3".into()],
                vec!["f1".into(), "f2".into()]
            ]
        );
        assert!(split(Vec::new(), 3).is_empty());
    }

    #[test]
    fn a_file_larger_than_a_share_is_cut_into_ranges_that_tile_it() {
        for (bytes, parts) in [(100u64, 3usize), (5, 3), (3, 3), (7, 2), (1_000_003, 16)] {
            let shares = split(vec![("big".to_owned(), bytes)], parts);
            assert_eq!(shares.len(), parts, "{bytes} bytes into {parts}");
            let mut ranges: Vec<(u64, u64)> = shares
                .iter()
                .flat_map(|(files, ranges)| {
                    assert!(files.is_empty());
                    ranges.iter().map(|(f, s, l)| {
                        assert_eq!(f, "big");
                        (*s, *l)
                    })
                })
                .collect();
            ranges.sort();
            // From 0 to the end, no gap, no overlap, no empty range.
            let mut next = 0;
            for (start, length) in ranges {
                assert_eq!(start, next);
                assert!(length > 0);
                next = start + length;
            }
            assert_eq!(next, bytes);
        }
        // A file of 2 bytes cannot be cut into 3 ranges of at least a byte: 2 parts.
        assert_eq!(split(vec![("tiny".to_owned(), 2)], 3).len(), 2);
        // Mixed: the large file is cut, the small ones stay whole.
        let shares = split(
            vec![("big".into(), 90), ("a".into(), 5), ("b".into(), 5)],
            4,
        );
        assert_eq!(shares.len(), 4);
        let whole: Vec<&String> = shares.iter().flat_map(|(files, _)| files).collect();
        assert_eq!(whole.len(), 2);
    }
}
