//! Committing table updates under requirements to the SQL catalog, for commits that
//! iceberg-rust's transaction actions cannot express (an overwrite snapshot).
//!
//! # Why this exists
//!
//! `Catalog::update_table` takes a `TableCommit`, and iceberg-rust 0.10.1 builds one only
//! inside its own `Transaction`, whose actions (fast append, properties, expiry, ...) are a
//! closed set: a snapshot that deletes files cannot be committed through it. So for the SQL
//! catalog this module does what `SqlCatalog::update_table` does, with the crate's public
//! pieces: check the requirements against the table as loaded, apply the updates to its
//! metadata, write the next metadata file, and swap the catalog row's metadata pointer with a
//! compare-and-swap on the previous pointer (the same `UPDATE ... WHERE metadata_location =
//! <previous>` that iceberg-rust's and PyIceberg's SQL catalogs run). A commit that lost the
//! race is a [`iceberg::ErrorKind::CatalogCommitConflicts`], never a lost write.
//!
//! The REST catalog has no such path here (its commit protocol needs the catalog's own HTTP
//! client); callers check [`OfflineStore::can_replace`](super::OfflineStore::can_replace).

use std::str::FromStr;

use iceberg::table::Table;
use iceberg::{MetadataLocation, TableRequirement, TableUpdate};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::SQL_CATALOG_NAME;

/// Compare-and-swap commits to the SQLite catalog's `iceberg_tables` row of a table.
#[derive(Debug)]
pub(super) struct SqlCommitter {
    pool: SqlitePool,
}

impl SqlCommitter {
    /// A committer on the catalog database at `uri` (`sqlite:<path>?mode=...`), connected on
    /// first use.
    pub(super) fn new(uri: &str) -> iceberg::Result<Self> {
        let options = SqliteConnectOptions::from_str(uri).map_err(|e| {
            iceberg::Error::new(iceberg::ErrorKind::DataInvalid, "bad SQLite catalog uri")
                .with_source(e)
        })?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(options);
        Ok(SqlCommitter { pool })
    }

    /// Commits `updates` to `table` if `requirements` hold for it and nobody committed since
    /// it was loaded from the catalog.
    pub(super) async fn commit(
        &self,
        table: &Table,
        updates: Vec<TableUpdate>,
        requirements: &[TableRequirement],
    ) -> iceberg::Result<()> {
        for requirement in requirements {
            requirement.check(Some(table.metadata()))?;
        }
        let previous = table.metadata_location_result()?.to_owned();
        let mut builder = table
            .metadata()
            .clone()
            .into_builder(Some(previous.clone()));
        for update in updates {
            builder = update.apply(builder)?;
        }
        let metadata = builder.build()?.metadata;
        let location = MetadataLocation::from_str(&previous)?
            .with_next_version()
            .with_new_metadata(&metadata);
        metadata.write_to(table.file_io(), &location).await?;

        let ident = table.identifier();
        let swapped = sqlx::query(
            "UPDATE iceberg_tables
             SET metadata_location = ?, previous_metadata_location = ?
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?
               AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)
               AND metadata_location = ?",
        )
        .bind(location.to_string())
        .bind(&previous)
        .bind(SQL_CATALOG_NAME)
        .bind(ident.namespace().join("."))
        .bind(ident.name())
        .bind(&previous)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            iceberg::Error::new(
                iceberg::ErrorKind::Unexpected,
                "updating the catalog's metadata pointer failed",
            )
            .with_source(e)
        })?;
        if swapped.rows_affected() == 0 {
            // The metadata file just written is referenced by nothing; remove it.
            let _ = table.file_io().delete(location.to_string()).await;
            return Err(iceberg::Error::new(
                iceberg::ErrorKind::CatalogCommitConflicts,
                format!("another commit changed table {ident} since it was read"),
            )
            .with_retryable(true));
        }
        Ok(())
    }
}
