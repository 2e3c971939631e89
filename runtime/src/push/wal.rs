//! The write-ahead log of pushed rows: what a push with offline durability was promised, on
//! disk (fsynced) before it is acknowledged, until the source table's snapshot holds it.
//!
//! A log is a folder of segments (`00000000000000000001.wal`, ...), each a sequence of
//! records framed as `[len: u32][check: u64][body]`, where `check` is the first 8 bytes of
//! the SHA-256 of `body` and `body` is `[kind: u8][seq: u64][to: u8][Arrow IPC stream]`
//! (little endian). A crash can tear the last record of the last segment; reading stops at
//! the first record whose length or check does not hold, and writing always goes to a new
//! segment, so a torn tail is never followed by good records.
//!
//! Sequence numbers are given by the caller; a segment is deleted once every sequence number
//! it holds is at or below the watermark the source table's snapshots record.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use sha2::{Digest, Sha256};

use super::To;
use crate::error::{Error, ErrorKind, Result};

const ROWS: u8 = 1;
const CANCEL: u8 = 2;
/// Frames longer than this are not ours (a torn length).
const MAX_RECORD: u32 = 1 << 30;

/// One record of the log.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    /// Rows pushed under `seq`, with where they were to go.
    Rows {
        /// The push's sequence number.
        seq: u64,
        /// Where the push asked the rows to go.
        to: To,
        /// The rows, in the source table's schema.
        batch: RecordBatch,
    },
    /// The push `seq` failed before it was acknowledged: its rows must never be committed.
    Cancel {
        /// The push's sequence number.
        seq: u64,
    },
}

impl Record {
    pub(crate) fn seq(&self) -> u64 {
        match self {
            Record::Rows { seq, .. } | Record::Cancel { seq } => *seq,
        }
    }
}

/// An open log: appends go to the current segment.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    current: Arc<File>,
    current_number: u64,
    /// The highest sequence number in the current segment (0 when none).
    current_max: u64,
    /// Earlier segments and the highest sequence number each holds.
    closed: Vec<(PathBuf, u64)>,
    /// `LOCK` in the folder, locked while the log is open: two processes appending to one
    /// log would hand out the same sequence numbers and commit each other's rows.
    _lock: File,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("{what} the push write-ahead log {}: {e}", path.display()),
    )
    .with_source(e)
}

/// Locks the log in `dir` for this process, or says who holds it.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io("opening the lock of", dir, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "the push write-ahead log {} is open in another process (a `skewless serve` \
                 of this repo, or a Python FeatureStore that pushed to it): push through that \
                 process, or stop it first",
                dir.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(io("locking", dir, e)),
    }
}

impl Wal {
    /// Opens the log in `dir` (created if missing): every record it holds, in order, and the
    /// log, writing to a new segment. One process at a time: [`ErrorKind::Unavailable`] while
    /// another has it open.
    pub(crate) fn open(dir: &Path) -> Result<(Wal, Vec<Record>)> {
        std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
        let lock = lock(dir)?;
        let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
            .map_err(|e| io("reading", dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter_map(|path| {
                let number = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".wal")?
                    .parse()
                    .ok()?;
                Some((number, path))
            })
            .collect();
        segments.sort();
        let mut records = Vec::new();
        let mut closed = Vec::new();
        for (_, path) in &segments {
            let held = read_segment(path)?;
            let max = held.iter().map(Record::seq).max().unwrap_or(0);
            records.extend(held);
            closed.push((path.clone(), max));
        }
        let number = segments.last().map_or(1, |(n, _)| n + 1);
        let (current, _) = create_segment(dir, number)?;
        Ok((
            Wal {
                dir: dir.to_owned(),
                current: Arc::new(current),
                current_number: number,
                current_max: 0,
                closed,
                _lock: lock,
            },
            records,
        ))
    }

    /// Appends `record` to the current segment (not yet synced: see [`Wal::file`]).
    pub(crate) fn append(&mut self, record: &Record) -> Result<()> {
        let frame = encode(record)?;
        (&*self.current)
            .write_all(&frame)
            .map_err(|e| io("writing", &self.dir, e))?;
        self.current_max = self.current_max.max(record.seq());
        Ok(())
    }

    /// The current segment, to sync outside the caller's lock.
    pub(crate) fn file(&self) -> Arc<File> {
        self.current.clone()
    }

    /// Syncs the current segment and starts a new one, so that the segments before it can be
    /// released once their records are committed.
    pub(crate) fn roll(&mut self) -> Result<()> {
        if self.current_max == 0 {
            return Ok(());
        }
        self.current
            .sync_data()
            .map_err(|e| io("syncing", &self.dir, e))?;
        let number = self.current_number + 1;
        let (file, _) = create_segment(&self.dir, number)?;
        let old = segment_path(&self.dir, self.current_number);
        self.closed.push((old, self.current_max));
        self.current = Arc::new(file);
        self.current_number = number;
        self.current_max = 0;
        Ok(())
    }

    /// Deletes the closed segments whose records are all at or below `watermark`.
    pub(crate) fn release(&mut self, watermark: u64) {
        self.closed.retain(|(path, max)| {
            if *max > watermark {
                return true;
            }
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove a committed write-ahead log segment");
            }
            false
        });
    }
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.wal"))
}

fn create_segment(dir: &Path, number: u64) -> Result<(File, PathBuf)> {
    let path = segment_path(dir, number);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| io("creating", &path, e))?;
    // The new segment's name must survive a crash too.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok((file, path))
}

fn check(body: &[u8]) -> u64 {
    let digest = Sha256::digest(body);
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn encode(record: &Record) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    match record {
        Record::Rows { seq, to, batch } => {
            body.push(ROWS);
            body.extend_from_slice(&seq.to_le_bytes());
            body.push(to.code());
            let failed = |e: arrow_schema::ArrowError| {
                Error::new(
                    ErrorKind::Internal,
                    format!("encoding pushed rows for the write-ahead log: {e}"),
                )
            };
            let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut body, &batch.schema())
                .map_err(failed)?;
            writer.write(batch).map_err(failed)?;
            writer.finish().map_err(failed)?;
        }
        Record::Cancel { seq } => {
            body.push(CANCEL);
            body.extend_from_slice(&seq.to_le_bytes());
            body.push(0);
        }
    }
    let mut frame = Vec::with_capacity(body.len() + 12);
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&check(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Every whole record of a segment; stops at a torn or corrupt one.
fn read_segment(path: &Path) -> Result<Vec<Record>> {
    let file = File::open(path).map_err(|e| io("reading", path, e))?;
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    loop {
        let mut head = [0u8; 12];
        if reader.read_exact(&mut head).is_err() {
            break;
        }
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        let sum = u64::from_le_bytes(head[4..].try_into().expect("8 bytes"));
        if !(10..=MAX_RECORD).contains(&len) {
            break;
        }
        let mut body = vec![0u8; len as usize];
        if reader.read_exact(&mut body).is_err() || check(&body) != sum {
            tracing::warn!(path = %path.display(), "the write-ahead log ends with a torn record (a crash while it was written); it was never acknowledged and is ignored");
            break;
        }
        let seq = u64::from_le_bytes(body[1..9].try_into().expect("8 bytes"));
        match body[0] {
            CANCEL => records.push(Record::Cancel { seq }),
            ROWS => {
                let to = To::from_code(body[9]).ok_or_else(|| corrupt(path, seq))?;
                let reader = arrow_ipc::reader::StreamReader::try_new(&body[10..], None)
                    .map_err(|_| corrupt(path, seq))?;
                let batches = reader
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|_| corrupt(path, seq))?;
                let schema = batches
                    .first()
                    .map(|b| b.schema())
                    .ok_or_else(|| corrupt(path, seq))?;
                let batch = arrow_select::concat::concat_batches(&schema, &batches)
                    .map_err(|_| corrupt(path, seq))?;
                records.push(Record::Rows { seq, to, batch });
            }
            _ => return Err(corrupt(path, seq)),
        }
    }
    Ok(records)
}

fn corrupt(path: &Path, seq: u64) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!(
            "record {seq} of the push write-ahead log {} passed its check but does not decode; \
             was it written by another version of skewless?",
            path.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;

    fn rows(seq: u64) -> Record {
        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(Int64Array::from(vec![seq as i64; 3])) as _,
        )])
        .unwrap();
        Record::Rows {
            seq,
            to: To::OnlineAndOffline,
            batch,
        }
    }

    #[test]
    fn records_survive_reopening_a_torn_tail_is_ignored_and_released_segments_go() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, held) = Wal::open(dir.path()).unwrap();
        assert!(held.is_empty());
        wal.append(&rows(1)).unwrap();
        wal.append(&Record::Cancel { seq: 2 }).unwrap();
        wal.roll().unwrap();
        wal.append(&rows(3)).unwrap();
        // A torn record: a frame cut short.
        let frame = encode(&rows(4)).unwrap();
        (&*wal.file()).write_all(&frame[..frame.len() - 5]).unwrap();
        drop(wal);
        let (mut wal, held) = Wal::open(dir.path()).unwrap();
        let seqs: Vec<(u64, bool)> = held
            .iter()
            .map(|r| (r.seq(), matches!(r, Record::Rows { .. })))
            .collect();
        assert_eq!(seqs, [(1, true), (2, false), (3, true)]);
        match &held[2] {
            Record::Rows { batch, .. } => assert_eq!(batch.num_rows(), 3),
            other => panic!("{other:?}"),
        }
        wal.release(2);
        // Open once at a time: the log is locked while open.
        let locked = Wal::open(dir.path()).unwrap_err();
        assert_eq!(locked.kind(), ErrorKind::Unavailable, "{locked}");
        assert!(locked.message().contains("another process"), "{locked}");
        drop(wal);
        let (_, held) = Wal::open(dir.path()).unwrap();
        let seqs: Vec<u64> = held.iter().map(Record::seq).collect();
        assert_eq!(seqs, [3]);
    }
}
