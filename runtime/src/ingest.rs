//! `ingest`: append a Parquet or CSV file to an Iceberg source table, as one snapshot.
//!
//! Streams the file a batch at a time (memory independent of its size). With `create`, a
//! missing table is created from the file's schema; timestamps are stored as Iceberg
//! `timestamptz` (the offline store relabels UTC zones). A failure commits nothing.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::files;
use crate::offline::{OfflineStore, SnapshotInfo, TableName};

/// What one ingest did.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// Rows appended.
    pub rows: u64,
    /// The snapshot committed.
    pub snapshot: SnapshotInfo,
    /// Whether the table was created.
    pub created: bool,
}

/// Appends `file` to `table`, creating the table when `create` is set and it is missing.
pub async fn ingest(
    offline: &OfflineStore,
    table: &TableName,
    file: &Path,
    create: bool,
) -> Result<Ingested> {
    let (schema, batches) = files::read_batches(file, &[], files::DEFAULT_BATCH_SIZE * 8)?;
    let exists = offline.table_exists(table).await?;
    if !exists && !create {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "table {table} does not exist; add --create to create it from the file's schema"
            ),
        ));
    }
    if !exists {
        offline
            .create_table(table, &schema, None, HashMap::new())
            .await?;
    }
    let mut job = offline.begin_append(table).await?;
    for batch in batches {
        job.write(batch?).await?;
    }
    let rows = job.rows();
    let summary = HashMap::from([
        ("skewless.operation".to_owned(), "ingest".to_owned()),
        (
            "skewless.source-file".to_owned(),
            file.display().to_string(),
        ),
    ]);
    let snapshot = job.commit(summary).await?;
    Ok(Ingested {
        rows,
        snapshot,
        created: !exists,
    })
}
