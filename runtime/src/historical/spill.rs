//! Spill files: the feature rows of one partition, on disk as an Arrow IPC stream.
//!
//! A [`SpillDir`] is a fresh temporary folder, made on first use under the configured root and
//! removed with everything in it when dropped — on success, on an error and on a panic that
//! unwinds — so a retrieval leaves nothing behind unless the process is killed. A
//! [`PartitionWriter`] holds one file per partition of one round of partitioning, and gathers
//! rows per partition so that files get batches of a useful size rather than a sliver of
//! every scanned batch.
//!
//! Arrow IPC, uncompressed: the bytes are the in-memory layout, so writing and reading back are
//! memcpys and a read-back batch is exactly the batch written (types, nulls, bits).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::SchemaRef;
use arrow_select::coalesce::BatchCoalescer;

use crate::error::{Error, ErrorKind, Result};

/// A temporary folder for spill files, created on first use, removed when dropped.
#[derive(Debug)]
pub(super) struct SpillDir {
    root: PathBuf,
    dir: Option<tempfile::TempDir>,
    files: usize,
    bytes: u64,
}

impl SpillDir {
    /// Spill files will go into a new folder under `root` (created if missing).
    pub(super) fn new(root: PathBuf) -> Self {
        SpillDir {
            root,
            dir: None,
            files: 0,
            bytes: 0,
        }
    }

    /// Spill files created and bytes written to them so far.
    pub(super) fn spilled(&self) -> (usize, u64) {
        (self.files, self.bytes)
    }

    /// A path for a new spill file.
    fn next_path(&mut self) -> Result<PathBuf> {
        let dir = match &mut self.dir {
            Some(dir) => dir,
            none => {
                std::fs::create_dir_all(&self.root)
                    .map_err(|e| io_error(&self.root, "create", e))?;
                let dir = tempfile::Builder::new()
                    .prefix("historical-")
                    .tempdir_in(&self.root)
                    .map_err(|e| io_error(&self.root, "create a folder in", e))?;
                none.insert(dir)
            }
        };
        self.files += 1;
        Ok(dir.path().join(format!("part-{}.arrows", self.files)))
    }
}

/// One round of partitioning: a spill file per partition, written on demand.
#[derive(Debug)]
pub(super) struct PartitionWriter {
    schema: SchemaRef,
    /// Rows a partition gathers before they go to its file as one batch.
    batch_rows: usize,
    parts: Vec<Part>,
}

#[derive(Default)]
struct Part {
    /// Rows not yet written, copied out of the batches they came in (so that a slice does
    /// not keep its whole batch alive).
    pending: Option<BatchCoalescer>,
    file: Option<(PathBuf, StreamWriter<BufWriter<File>>)>,
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field(
                "pending",
                &self.pending.as_ref().map(BatchCoalescer::get_buffered_rows),
            )
            .field("file", &self.file.as_ref().map(|(path, _)| path))
            .finish()
    }
}

impl PartitionWriter {
    /// `partitions` files for batches of `schema`, whose rows take about `row_bytes` each;
    /// at most about `buffer_bytes` are held in memory across all partitions.
    pub(super) fn new(
        schema: SchemaRef,
        partitions: usize,
        buffer_bytes: usize,
        row_bytes: usize,
    ) -> Self {
        // Large enough batches that the IPC framing is noise, small enough to fit the buffer.
        const MAX_BATCH_ROWS: usize = 65_536;
        let batch_rows = (buffer_bytes / partitions / row_bytes.max(1)).clamp(1, MAX_BATCH_ROWS);
        PartitionWriter {
            schema,
            batch_rows,
            parts: (0..partitions).map(|_| Part::default()).collect(),
        }
    }

    /// Appends the rows of `batch` to partition `part`.
    pub(super) fn write(
        &mut self,
        dir: &mut SpillDir,
        part: usize,
        batch: &RecordBatch,
    ) -> Result<()> {
        let p = &mut self.parts[part];
        let pending = p
            .pending
            .get_or_insert_with(|| BatchCoalescer::new(self.schema.clone(), self.batch_rows));
        pending
            .push_batch(batch.clone())
            .map_err(|e| Error::new(ErrorKind::Internal, format!("buffering spill rows: {e}")))?;
        write_completed(p, dir, &self.schema)
    }

    /// Writes what is pending and closes every file: the file of each partition, `None` for
    /// a partition that received no rows.
    pub(super) fn finish(mut self, dir: &mut SpillDir) -> Result<Vec<Option<PathBuf>>> {
        self.parts
            .iter_mut()
            .map(|p| {
                if let Some(pending) = &mut p.pending {
                    pending.finish_buffered_batch().map_err(|e| {
                        Error::new(ErrorKind::Internal, format!("buffering spill rows: {e}"))
                    })?;
                }
                write_completed(p, dir, &self.schema)?;
                match p.file.take() {
                    None => Ok(None),
                    Some((path, writer)) => {
                        // Finished, flushed and closed here, so a write error is not lost in
                        // a drop.
                        let file = writer
                            .into_inner()
                            .map_err(|e| arrow_io_error(&path, "write", e))?
                            .into_inner()
                            .map_err(|e| io_error(&path, "write", e.into_error()))?;
                        let size = file.metadata().map_err(|e| io_error(&path, "write", e))?;
                        dir.bytes += size.len();
                        Ok(Some(path))
                    }
                }
            })
            .collect()
    }
}

/// Writes the partition's completed batches to its file (created on the first).
fn write_completed(p: &mut Part, dir: &mut SpillDir, schema: &SchemaRef) -> Result<()> {
    let Some(pending) = &mut p.pending else {
        return Ok(());
    };
    while let Some(batch) = pending.next_completed_batch() {
        let (path, writer) = match &mut p.file {
            Some(file) => file,
            none => {
                let path = dir.next_path()?;
                let file = File::create(&path).map_err(|e| io_error(&path, "create", e))?;
                let writer = StreamWriter::try_new(BufWriter::new(file), schema)
                    .map_err(|e| arrow_io_error(&path, "write", e))?;
                none.insert((path, writer))
            }
        };
        writer
            .write(&batch)
            .map_err(|e| arrow_io_error(path, "write", e))?;
    }
    Ok(())
}

/// The batches of a spill file, in the order they were written.
pub(super) fn read(path: &Path) -> Result<impl Iterator<Item = Result<RecordBatch>> + use<>> {
    let file = File::open(path).map_err(|e| io_error(path, "open", e))?;
    let reader = StreamReader::try_new(BufReader::new(file), None)
        .map_err(|e| arrow_io_error(path, "read", e))?;
    let path = path.to_owned();
    Ok(reader.map(move |b| b.map_err(|e| arrow_io_error(&path, "read", e))))
}

/// Deletes a spill file once it has been read, so disk use stays near one copy of the rows.
pub(super) fn remove(path: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(|e| io_error(path, "remove", e))
}

fn io_error(path: &Path, action: &str, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        format!(
            "could not {action} a spill file or folder of historical retrieval: {e} (it needs \
             free disk space for the feature rows that do not fit the memory budget; a larger \
             budget spills less)"
        ),
    )
    .with_context("path", path.display())
    .with_source(e)
}

fn arrow_io_error(path: &Path, action: &str, e: arrow_schema::ArrowError) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("could not {action} a spill file of historical retrieval: {e}"),
    )
    .with_context("path", path.display())
    .with_source(e)
}
