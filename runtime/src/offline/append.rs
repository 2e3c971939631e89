//! [`AppendJob`]: stream batches into a table's data files, then publish them as one snapshot.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use futures::TryStreamExt;
use iceberg::Catalog;
use iceberg::spec::{
    DataFile, DataFileFormat, TableMetadata, deserialize_data_file_from_json,
    serialize_data_file_to_json,
};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::partitioning::unpartitioned_writer::UnpartitionedWriter;
use parquet::file::properties::WriterProperties;

use super::commit::SqlCommitter;
use super::lanes::{Lanes, RowGroup};
use super::split::PartitionSplitter;
use super::{
    ScanOptions, SnapshotInfo, TableName, TimeRange, convert_error, current_arrow_schema,
    overwrite, scan, schema,
};
use crate::error::{Error, ErrorKind, Result};

/// The largest row group of a partitioned table's files. A job holds the pending rows of
/// every partition it writes to (in its writer lanes), so its memory is bounded by this times
/// the number of partitions (days) in flight, whatever the number of rows.
const PARTITIONED_ROW_GROUP: RowGroup = RowGroup {
    rows: 8 * 1024,
    bytes: 2 * 1024 * 1024,
};

/// The largest row group of an unpartitioned table's files (an ingested source). A job holds
/// one open file, so the groups can be larger: every column chunk a scan reads costs it a
/// reader and a decompression context (zstd's, which probes the CPU each time). They stay
/// small enough that a file of a few 10k rows still splits into several parts of a
/// distributed run, which splits files by row group.
const UNPARTITIONED_ROW_GROUP: RowGroup = RowGroup {
    rows: 16 * 1024,
    bytes: 4 * 1024 * 1024,
};

/// How many times a replacing commit that lost a race is planned and tried again.
const REPLACE_ATTEMPTS: usize = 5;

/// What builds one data file writer (a lane's fan-out writer builds one per partition).
pub(super) type FileWriterBuilder =
    DataFileWriterBuilder<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>;

/// What builds a data file writer: Parquet files rolled at the target size, named and placed
/// by the job. Clones share the job's file name counter.
pub(super) type RollingBuilder = RollingFileWriterBuilder<
    ParquetWriterBuilder,
    DefaultLocationGenerator,
    DefaultFileNameGenerator,
>;

enum Sink {
    // Both boxed: the writers hold their file writer state inline (about 2 KB).
    Unpartitioned(Box<UnpartitionedWriter<FileWriterBuilder>>),
    Partitioned(Box<PartitionedSink>),
}

struct PartitionedSink {
    splitter: PartitionSplitter,
    /// One fan-out writer per writer thread, the partitions spread over them.
    writer: Lanes,
}

/// The writer threads of a partitioned append: one per core, at most [`MAX_LANES`].
fn lanes() -> usize {
    crate::pipeline::cores().min(MAX_LANES)
}

/// The most writer threads a partitioned append uses.
const MAX_LANES: usize = 4;

/// One append to a table: batches are aligned to the table's schema and streamed into Parquet
/// data files as they arrive; [`commit`](Self::commit) publishes all of them as one atomic
/// snapshot.
///
/// Until `commit` succeeds, readers see nothing of the job. Dropping the job (or a failed
/// write, or [`abort`](Self::abort)) commits nothing; files already written are then orphans
/// that no snapshot references: every file of a job shares one random name prefix
/// ([`file_prefix`](Self::file_prefix)), and `abort` deletes them.
///
/// A job begun with [`OfflineStore::begin_replace`](super::OfflineStore::begin_replace)
/// publishes an `overwrite` instead: its rows replace every row the table held in the job's
/// time range, in the same one snapshot (see [`commit`](Self::commit)).
///
/// Partitioned tables fan batches out to one writer per partition; each writer rolls to a new
/// file at the table's target file size and flushes row groups as it goes, so memory does not
/// grow with the number of rows written.
pub struct AppendJob {
    catalog: Arc<dyn Catalog>,
    name: TableName,
    table: Table,
    target: SchemaRef,
    /// `None` once a write failed: the writers' state is unknown, so the job is poisoned.
    sink: Option<Sink>,
    file_prefix: String,
    rows: u64,
    /// Set by [`finish_writing`](Self::finish_writing): the files are being finished.
    finishing: bool,
    replace: Option<Replace>,
    /// A replacing job's overwrite, planned by `finish_writing` for the commit.
    planned: Option<overwrite::Plan>,
    /// Data files written by other processes (the parts of a distributed job), committed with
    /// this job's own (see [`adopt`](Self::adopt)).
    adopted: Vec<DataFile>,
}

/// What a replacing job replaces, and how it commits.
pub(super) struct Replace {
    pub(super) range: TimeRange,
    pub(super) committer: Arc<SqlCommitter>,
    pub(super) guard: Option<CommitGuard>,
}

/// A check a replacing job runs on the table another commit produced, before it tries again
/// on top of it: given the table's snapshots and its current snapshot id, an error stops the
/// job (nothing committed) with that error.
pub type CommitGuard = Arc<dyn Fn(&[SnapshotInfo], Option<i64>) -> Result<()> + Send + Sync>;

impl fmt::Debug for AppendJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppendJob")
            .field("table", &self.name.to_string())
            .field("file_prefix", &self.file_prefix)
            .field("rows", &self.rows)
            .field("poisoned", &self.sink.is_none())
            .field("replaces", &self.replace.as_ref().map(|r| &r.range))
            .finish_non_exhaustive()
    }
}

impl AppendJob {
    pub(super) async fn new(
        catalog: Arc<dyn Catalog>,
        name: TableName,
        table: Table,
        replace: Option<Replace>,
        data_dir: Option<&str>,
    ) -> Result<Self> {
        let metadata = table.metadata();
        let target = current_arrow_schema(&name, metadata)?;
        let iceberg_schema = metadata.current_schema().clone();
        let partition_spec = metadata.default_partition_spec().clone();
        let internal = |e: iceberg::Error| convert_error(e, &name, "preparing the append");

        let compression = super::compression::from_properties(&name, metadata.properties())?;
        let file_prefix = format!("skewless-{}", uuid::Uuid::new_v4());
        let row_group = match partition_spec.is_unpartitioned() {
            true => UNPARTITIONED_ROW_GROUP,
            false => PARTITIONED_ROW_GROUP,
        };
        let properties = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_bytes(Some(row_group.bytes))
            .set_max_row_group_row_count(Some(row_group.rows))
            // Feature columns are mostly high-cardinality numbers: dictionary interning cost
            // 12% of a materialization's time and bought nothing zstd does not already give.
            .set_dictionary_enabled(false)
            .build();
        let parquet = ParquetWriterBuilder::new(properties, iceberg_schema.clone());
        let target_file_size = metadata
            .table_properties()
            .map_err(internal)?
            .write_target_file_size_bytes;
        let rolling = RollingFileWriterBuilder::new(
            parquet,
            target_file_size,
            table.file_io().clone(),
            match data_dir {
                None => DefaultLocationGenerator::new(metadata).map_err(internal)?,
                Some(dir) => DefaultLocationGenerator::with_data_location(format!(
                    "{}/{dir}",
                    data_location(metadata)
                )),
            },
            DefaultFileNameGenerator::new(file_prefix.clone(), None, DataFileFormat::Parquet),
        );
        let sink = if partition_spec.is_unpartitioned() {
            let builder = DataFileWriterBuilder::new(rolling);
            Sink::Unpartitioned(Box::new(UnpartitionedWriter::new(builder)))
        } else {
            let splitter =
                PartitionSplitter::try_new(iceberg_schema, partition_spec).map_err(internal)?;
            Sink::Partitioned(Box::new(PartitionedSink {
                splitter,
                writer: Lanes::new(&rolling, lanes(), row_group).map_err(internal)?,
            }))
        };
        Ok(AppendJob {
            catalog,
            name,
            table,
            target,
            sink: Some(sink),
            file_prefix,
            rows: 0,
            finishing: false,
            replace,
            planned: None,
            adopted: Vec::new(),
        })
    }

    /// The table this job appends to.
    pub fn table(&self) -> &TableName {
        &self.name
    }

    /// The Arrow schema batches are aligned to: the table's current schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.target
    }

    /// The random prefix of every data file this job writes.
    pub fn file_prefix(&self) -> &str {
        &self.file_prefix
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Aligns `batch` to the table's schema and writes it to data files.
    ///
    /// Columns are matched by name; missing nullable columns are filled with nulls; lossless
    /// conversions are applied (a timestamp labelled `"UTC"` becomes `"+00:00"`, `int32`
    /// widens to `int64`, ...). A missing required column, an extra column, a null in a
    /// required column or a type that does not convert is a
    /// [`SchemaMismatch`](ErrorKind::SchemaMismatch) naming the column, and leaves the job
    /// usable. A failure while writing files poisons the job: later writes and the commit
    /// fail, and nothing is committed.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let Some(sink) = self.sink.as_mut() else {
            return Err(poisoned(&self.name));
        };
        if self.finishing {
            // Refused before touching the writers, so the job can still commit or abort.
            return Err(Error::new(
                ErrorKind::Internal,
                "rows were written after the append's files began to be finished; \
                 they were not written",
            )
            .with_context("table", &self.name));
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let aligned = schema::align_batch(&self.name, &self.target, &batch)?;
        drop(batch);
        let rows = aligned.num_rows() as u64;
        let result = match sink {
            Sink::Unpartitioned(writer) => writer.write(aligned).await,
            Sink::Partitioned(sink) => {
                let PartitionedSink { splitter, writer } = sink.as_mut();
                match splitter.split(&aligned) {
                    Ok(parts) => writer.write(aligned, parts, splitter).await,
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(()) => {
                self.rows += rows;
                Ok(())
            }
            Err(e) => {
                self.sink = None;
                Err(convert_error(e, &self.name, "writing data files"))
            }
        }
    }

    /// Closes the data files and publishes them as one new snapshot of the table, with
    /// `summary` added to the snapshot summary (for example `skewless.view`,
    /// `skewless.digest`, `skewless.window.start`/`end`). Iceberg's own summary keys
    /// (`added-records`, ...) win over a caller's key of the same name.
    ///
    /// A job with no rows still commits a snapshot when `summary` is not empty (recording,
    /// say, that an empty window was materialized); with no rows and no summary there is
    /// nothing to commit and this fails with [`InvalidInput`](ErrorKind::InvalidInput).
    ///
    /// Concurrent appends to the same table are fine: the commit is retried against the
    /// table's latest metadata.
    ///
    /// A replacing job first writes the rows of the table's files that straddle its range
    /// but lie outside it, then commits one `overwrite` snapshot that drops every file with a
    /// row in the range and adds the job's files. If another commit lands first and changed
    /// nothing in the range, the overwrite is made again on top of it; if it changed the
    /// range's files, this fails ([`Unavailable`](ErrorKind::Unavailable), "another commit
    /// changed ...") and commits nothing, and the job's files are deleted.
    pub async fn commit(mut self, summary: HashMap<String, String>) -> Result<SnapshotInfo> {
        if let Some(replace) = self.replace.take() {
            return self.commit_replacing(replace, summary).await;
        }
        let files = self.close().await?;
        if files.is_empty() && summary.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "nothing to commit: no rows were written and no summary properties given",
            )
            .with_context("table", &self.name));
        }
        let tx = Transaction::new(&self.table);
        let action = tx
            .fast_append()
            .add_data_files(files)
            .set_snapshot_properties(summary);
        let tx = action
            .apply(tx)
            .map_err(|e| convert_error(e, &self.name, "preparing the commit"))?;
        let table = tx
            .commit(self.catalog.as_ref())
            .await
            .map_err(|e| convert_error(e, &self.name, "committing the append"))?;
        let snapshot = table.metadata().current_snapshot().ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                "the append committed but the table has no current snapshot",
            )
            .with_context("table", &self.name)
        })?;
        Ok(SnapshotInfo::from_snapshot(snapshot))
    }

    async fn commit_replacing(
        mut self,
        replace: Replace,
        summary: HashMap<String, String>,
    ) -> Result<SnapshotInfo> {
        let mut table = self.table.clone();
        let mut plan = match self.planned.take() {
            Some(plan) => plan,
            None => match self.plan_replace(&replace).await {
                Ok(plan) => plan,
                Err(e) => {
                    let _ = self.abort_files().await;
                    return Err(e);
                }
            },
        };
        let files = self.close().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match overwrite::commit(&replace.committer, &table, &plan, &files, &summary).await {
                Ok(snapshot_id) => {
                    let table = self
                        .catalog
                        .load_table(&self.name.ident())
                        .await
                        .map_err(|e| convert_error(e, &self.name, "loading the table"))?;
                    let snapshot =
                        table
                            .metadata()
                            .snapshot_by_id(snapshot_id)
                            .ok_or_else(|| {
                                Error::new(
                                    ErrorKind::Internal,
                                    "the overwrite committed but its snapshot is not in the table",
                                )
                                .with_context("table", &self.name)
                            })?;
                    return Ok(SnapshotInfo::from_snapshot(snapshot));
                }
                Err(e)
                    if e.kind() == iceberg::ErrorKind::CatalogCommitConflicts
                        && attempt < REPLACE_ATTEMPTS =>
                {
                    let reloaded = self.catalog.load_table(&self.name.ident()).await;
                    let replanned = match reloaded {
                        Ok(t) => match guarded(&replace, &t) {
                            Ok(()) => overwrite::plan(&self.name, &t, &replace.range)
                                .await
                                .map(|p| (t, p)),
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(convert_error(e, &self.name, "loading the table")),
                    };
                    match replanned {
                        Ok((t, p)) if p.same_files(&plan) => (table, plan) = (t, p),
                        Ok(_) => {
                            delete_files(&self.table, &files).await;
                            return Err(Error::new(
                                ErrorKind::Unavailable,
                                "another commit changed the table's rows in this time range \
                     while the job ran; nothing was committed: run it again",
                            )
                            .with_context("table", &self.name));
                        }
                        Err(e) => {
                            delete_files(&self.table, &files).await;
                            return Err(e);
                        }
                    }
                }
                Err(e) => {
                    delete_files(&self.table, &files).await;
                    return Err(convert_error(e, &self.name, "committing the overwrite"));
                }
            }
        }
    }

    /// The first half of a replacing commit, before the files are closed: checks the guard,
    /// plans the overwrite against the table as this job loaded it, and writes the rows of
    /// the files it drops that lie outside the range.
    async fn plan_replace(&mut self, replace: &Replace) -> Result<overwrite::Plan> {
        let table = self.table.clone();
        // The table as this job loaded it must satisfy the guard too: a distributed job loads
        // it only to commit, long after it planned (a local job loads it as it plans, and
        // this passes).
        guarded(replace, &table)?;
        let plan = overwrite::plan(&self.name, &table, &replace.range).await?;
        self.carry_outside_rows(&table, &plan, &replace.range)
            .await?;
        Ok(plan)
    }

    /// Writes the rows of `plan`'s straddling files that lie outside `range`: the overwrite
    /// drops those files whole, so the rows it must keep go into the new snapshot.
    async fn carry_outside_rows(
        &mut self,
        table: &Table,
        plan: &overwrite::Plan,
        range: &TimeRange,
    ) -> Result<()> {
        let (Some(base), false) = (plan.base, plan.partial.is_empty()) else {
            return Ok(());
        };
        let options = ScanOptions::default()
            .snapshot(base)
            .data_files(Arc::new(plan.partial.clone()));
        let mut batches = scan::scan(&self.name, table, options).await?;
        while let Some(batch) = batches.try_next().await? {
            let kept = outside(&self.name, &batch, range)?;
            self.write(kept).await?;
        }
        Ok(())
    }

    /// Closes the job's data files without committing them, for a part of a distributed job
    /// whose driver commits them ([`adopt`](Self::adopt)): each file as Iceberg's JSON form
    /// of a data file. Nothing is committed here; the files are orphans until the driver's
    /// commit references them.
    pub async fn finish(mut self) -> Result<Vec<String>> {
        let files = self.close().await?;
        let metadata = self.table.metadata();
        let partition_type = metadata
            .default_partition_spec()
            .partition_type(metadata.current_schema())
            .map_err(|e| convert_error(e, &self.name, "describing the written files"))?;
        files
            .into_iter()
            .map(|file| {
                serialize_data_file_to_json(file, &partition_type, metadata.format_version())
                    .map_err(|e| convert_error(e, &self.name, "describing the written files"))
            })
            .collect()
    }

    /// Adds data files another job wrote into this table and [`finish`](Self::finish)ed,
    /// to be committed in this job's snapshot with its own files (and deleted by
    /// [`abort`](Self::abort) or a failed commit, as its own are).
    pub fn adopt(&mut self, files_json: &[String]) -> Result<()> {
        let metadata = self.table.metadata();
        let spec = metadata.default_partition_spec();
        let partition_type = spec
            .partition_type(metadata.current_schema())
            .map_err(|e| convert_error(e, &self.name, "reading a part's files"))?;
        for json in files_json {
            let file = deserialize_data_file_from_json(
                json,
                spec.spec_id(),
                &partition_type,
                metadata.current_schema(),
            )
            .map_err(|e| convert_error(e, &self.name, "reading a part's files"))?;
            self.adopted.push(file);
        }
        Ok(())
    }

    /// Abandons the job: closes its files and deletes them. Nothing is committed.
    pub async fn abort(mut self) -> Result<()> {
        self.abort_files().await
    }

    async fn abort_files(&mut self) -> Result<()> {
        let files = match self.close().await {
            Ok(files) => files,
            // A poisoned job's files cannot be listed; they stay as unreferenced orphans.
            Err(_) => return Ok(()),
        };
        let file_io = self.table.file_io();
        for file in files {
            file_io
                .delete(file.file_path())
                .await
                .map_err(|e| convert_error(e, &self.name, "deleting an aborted job's file"))?;
        }
        Ok(())
    }

    /// Ends the job's writes and starts finishing its data files in the background (a
    /// partitioned job's writer lanes close their last row groups on their own threads), so
    /// that work overlaps whatever the caller does before [`commit`](Self::commit), which waits
    /// for it. Nothing is committed; `commit` and `abort` work as before. A write after this
    /// fails and writes nothing, leaving the job as it was. A replacing job first plans its
    /// overwrite and writes the rows it keeps around its range (what its commit would do
    /// first; an error here is the commit's, and the job should be aborted). An unpartitioned
    /// job finishes its file in `commit`, on the caller's thread.
    pub async fn finish_writing(&mut self) -> Result<()> {
        if self.finishing {
            return Ok(());
        }
        if let Some(replace) = self.replace.take() {
            // A replacing job writes the rows it keeps around its range first, as its commit
            // would; the commit then uses this plan.
            let planned = self.plan_replace(&replace).await;
            self.replace = Some(replace);
            self.planned = Some(planned?);
        }
        self.finishing = true;
        if let Some(Sink::Partitioned(sink)) = &mut self.sink {
            sink.writer.finish_writing().await;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<Vec<DataFile>> {
        let sink = self.sink.take().ok_or_else(|| poisoned(&self.name))?;
        let files = match sink {
            Sink::Unpartitioned(writer) => writer.close().await,
            Sink::Partitioned(sink) => sink.writer.close().await,
        };
        let mut files = files.map_err(|e| convert_error(e, &self.name, "closing data files"))?;
        files.append(&mut self.adopted);
        Ok(files)
    }
}

/// Runs the job's guard, if any, on `table` as another commit left it.
fn guarded(replace: &Replace, table: &Table) -> Result<()> {
    let Some(guard) = &replace.guard else {
        return Ok(());
    };
    let snapshots: Vec<SnapshotInfo> = table
        .metadata()
        .snapshots()
        .map(|s| SnapshotInfo::from_snapshot(s))
        .collect();
    guard(&snapshots, table.metadata().current_snapshot_id())
}

/// Deletes the data files of a job that committed nothing (best effort: a file left behind
/// is an orphan no snapshot references).
async fn delete_files(table: &Table, files: &[DataFile]) {
    for file in files {
        if let Err(e) = table.file_io().delete(file.file_path()).await {
            tracing::warn!(file = file.file_path(), error = %e, "could not remove a file of a failed job");
        }
    }
}

/// The rows of `batch` whose `range.column` is outside `range` (or null).
fn outside(name: &TableName, batch: &RecordBatch, range: &TimeRange) -> Result<RecordBatch> {
    let column = batch.column_by_name(&range.column).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            "the table has no column with this name",
        )
        .with_context("column", &range.column)
        .with_context("table", name)
    })?;
    let internal = |e: arrow_schema::ArrowError| {
        Error::new(
            ErrorKind::Internal,
            format!("selecting the rows outside the time range: {e}"),
        )
        .with_context("table", name)
    };
    let micros = arrow_cast::cast(column, &DataType::Int64).map_err(internal)?;
    let micros = micros
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .ok_or_else(|| internal(arrow_schema::ArrowError::CastError("not int64".into())))?;
    let keep: BooleanArray = (0..micros.len())
        .map(|i| {
            Some(
                micros.is_null(i)
                    || micros.value(i) < range.start_us
                    || micros.value(i) >= range.end_us,
            )
        })
        .collect();
    arrow_select::filter::filter_record_batch(batch, &keep).map_err(internal)
}

fn poisoned(name: &TableName) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "an earlier write of this append job failed, so it can only be dropped: nothing was \
         committed; start a new job",
    )
    .with_context("table", name)
}

/// Where the table's data files go, as iceberg-rust's `DefaultLocationGenerator` decides it
/// (`write.data.path`, else `write.folder-storage.path`, else `<location>/data`).
pub(super) fn data_location(metadata: &TableMetadata) -> String {
    let properties = metadata.properties();
    match (properties.get("write.data.path"))
        .or_else(|| properties.get("write.folder-storage.path"))
    {
        Some(location) => location.clone(),
        None => format!("{}/data", metadata.location()),
    }
}
