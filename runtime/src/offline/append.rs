//! [`AppendJob`]: stream batches into a table's data files, then publish them as one snapshot.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use iceberg::Catalog;
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::spec::{DataFile, DataFileFormat};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use iceberg::writer::partitioning::unpartitioned_writer::UnpartitionedWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::{SnapshotInfo, TableName, convert_error, current_arrow_schema, schema};
use crate::error::{Error, ErrorKind, Result};

/// The largest row group a writer buffers before flushing it to its file. A job holds one open
/// file per partition it writes to, so its memory is bounded by this times the number of
/// partitions (days) in flight, whatever the number of rows.
const MAX_ROW_GROUP_BYTES: usize = 2 * 1024 * 1024;

/// The same bound in rows: the byte estimate only counts encoded pages, not the values a
/// column writer still buffers, so a row cap keeps each open writer small in practice.
const MAX_ROW_GROUP_ROWS: usize = 16 * 1024;

type FileWriterBuilder =
    DataFileWriterBuilder<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>;

enum Sink {
    // Both boxed: the writers hold their file writer state inline (about 2 KB).
    Unpartitioned(Box<UnpartitionedWriter<FileWriterBuilder>>),
    Partitioned(Box<PartitionedSink>),
}

struct PartitionedSink {
    splitter: RecordBatchPartitionSplitter,
    writer: FanoutWriter<FileWriterBuilder>,
}

/// One append to a table: batches are aligned to the table's schema and streamed into Parquet
/// data files as they arrive; [`commit`](Self::commit) publishes all of them as one atomic
/// snapshot.
///
/// Until `commit` succeeds, readers see nothing of the job. Dropping the job (or a failed
/// write, or [`abort`](Self::abort)) commits nothing; files already written are then orphans
/// that no snapshot references: every file of a job shares one random name prefix
/// ([`file_prefix`](Self::file_prefix)), and `abort` deletes them.
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
}

impl fmt::Debug for AppendJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppendJob")
            .field("table", &self.name.to_string())
            .field("file_prefix", &self.file_prefix)
            .field("rows", &self.rows)
            .field("poisoned", &self.sink.is_none())
            .finish_non_exhaustive()
    }
}

impl AppendJob {
    pub(super) async fn new(
        catalog: Arc<dyn Catalog>,
        name: TableName,
        table: Table,
    ) -> Result<Self> {
        let metadata = table.metadata();
        let target = current_arrow_schema(&name, metadata)?;
        let iceberg_schema = metadata.current_schema().clone();
        let partition_spec = metadata.default_partition_spec().clone();
        let internal = |e: iceberg::Error| convert_error(e, &name, "preparing the append");

        let file_prefix = format!("skewless-{}", uuid::Uuid::new_v4());
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
            .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
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
            DefaultLocationGenerator::new(metadata).map_err(internal)?,
            DefaultFileNameGenerator::new(file_prefix.clone(), None, DataFileFormat::Parquet),
        );
        let builder = DataFileWriterBuilder::new(rolling);
        let sink = if partition_spec.is_unpartitioned() {
            Sink::Unpartitioned(Box::new(UnpartitionedWriter::new(builder)))
        } else {
            let splitter = RecordBatchPartitionSplitter::try_new_with_computed_values(
                iceberg_schema,
                partition_spec,
            )
            .map_err(internal)?;
            Sink::Partitioned(Box::new(PartitionedSink {
                splitter,
                writer: FanoutWriter::new(builder),
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
                let parts = splitter.split(&aligned);
                drop(aligned);
                match parts {
                    Ok(parts) => {
                        let mut result = Ok(());
                        for (key, part) in parts {
                            result = writer.write(key, part).await;
                            if result.is_err() {
                                break;
                            }
                        }
                        result
                    }
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
    pub async fn commit(mut self, summary: HashMap<String, String>) -> Result<SnapshotInfo> {
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

    /// Abandons the job: closes its files and deletes them. Nothing is committed.
    pub async fn abort(mut self) -> Result<()> {
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

    async fn close(&mut self) -> Result<Vec<DataFile>> {
        let sink = self.sink.take().ok_or_else(|| poisoned(&self.name))?;
        let files = match sink {
            Sink::Unpartitioned(writer) => writer.close().await,
            Sink::Partitioned(sink) => sink.writer.close().await,
        };
        files.map_err(|e| convert_error(e, &self.name, "closing data files"))
    }
}

fn poisoned(name: &TableName) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "an earlier write of this append job failed, so it can only be dropped: nothing was \
         committed; start a new job",
    )
    .with_context("table", name)
}
