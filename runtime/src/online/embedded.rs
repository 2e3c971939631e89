//! The embedded online store: one [redb](https://docs.rs/redb) file, no server.
//!
//! Layout: one table per view, named `view/<view>`, mapping [`EntityKey::encode`] to the
//! stored row bytes of `row.rs` (the 16-byte version prefix first). A `write` is one redb write
//! transaction: redb runs one write transaction at a time per database, so the
//! read-compare-insert of the ordering rule is atomic against every other writer in the
//! process, and the whole call commits (durably, fsynced) or not at all. Reads run on MVCC
//! snapshots and never wait for a writer.
//!
//! **One process at a time.** redb locks the file for the process that opens it (its default
//! `ExclusiveWriter` mode), so a second process (a `skewless materialize` while
//! `skewless serve` holds the store, say) gets an `Unavailable` error saying so. Share one
//! [`EmbeddedStore`] between the threads of a process (it is `Send + Sync`); use the Redis
//! backend when several processes must write at once.

use std::fmt;
use std::path::{Path, PathBuf};

use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::row::{decode_row, encode_row, replaces_encoded};
use super::{EntityKey, OnlineStore, StoredRow, WriteStats, newest_per_key};
use crate::error::{Error, ErrorKind, Result};

/// The online store in a local redb file (e.g. `.skewless/online.redb`): one table per view,
/// the ordering rule applied inside one write transaction per [`write`](OnlineStore::write).
/// One process at a time may open the file; share the handle between threads, and use
/// [`RedisStore`](super::RedisStore) when several processes write.
pub struct EmbeddedStore {
    path: PathBuf,
    db: Database,
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens the store at `path`, creating the file and its parent directories if needed.
    ///
    /// Fails with `Unavailable` if another process (or another handle in this process) has
    /// the file open.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::from(e)
                    .with_context("directory", parent.display())
                    .with_context("online_store", path.display())
            })?;
        }
        let db = Database::create(&path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the embedded online store at {} is in use by another process (or another \
                     handle in this process); the embedded store allows one process at a time: \
                     stop the other process, or configure `type = \"redis\"` for concurrent \
                     writers",
                    path.display()
                ),
            )
            .with_source(e),
            e => storage_error(&path, "open", e),
        })?;
        Ok(EmbeddedStore { path, db })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn table_name(view: &str) -> String {
    format!("view/{view}")
}

fn storage_error(path: &Path, doing: &str, e: impl Into<redb::Error>) -> Error {
    let e: redb::Error = e.into();
    Error::new(
        ErrorKind::Io,
        format!("cannot {doing} the embedded online store: {e}"),
    )
    .with_context("online_store", path.display())
    .with_source(e)
}

impl OnlineStore for EmbeddedStore {
    fn write(&self, view: &str, rows: &[(EntityKey, StoredRow)]) -> Result<WriteStats> {
        let (newest, mut skipped_older) = newest_per_key(rows);
        if newest.is_empty() {
            return Ok(WriteStats::default());
        }
        let encoded = newest
            .into_iter()
            .map(|(key, row)| Ok((key, encode_row(row)?)))
            .collect::<Result<Vec<_>>>()?;
        let err =
            |e: redb::Error| storage_error(&self.path, "write to", e).with_context("view", view);
        let name = table_name(view);
        let definition = TableDefinition::<&[u8], &[u8]>::new(&name);
        let txn = self.db.begin_write().map_err(|e| err(e.into()))?;
        let mut written = 0;
        {
            let mut table = txn.open_table(definition).map_err(|e| err(e.into()))?;
            for (key, row) in &encoded {
                let stored_is_newer = match table.get(key.as_slice()).map_err(|e| err(e.into()))? {
                    Some(stored) => !replaces_encoded(row, stored.value()),
                    None => false,
                };
                if stored_is_newer {
                    skipped_older += 1;
                } else {
                    table
                        .insert(key.as_slice(), row.as_slice())
                        .map_err(|e| err(e.into()))?;
                    written += 1;
                }
            }
        }
        txn.commit().map_err(|e| err(e.into()))?;
        Ok(WriteStats {
            written,
            skipped_older,
        })
    }

    fn read(&self, view: &str, keys: &[EntityKey]) -> Result<Vec<Option<StoredRow>>> {
        let err =
            |e: redb::Error| storage_error(&self.path, "read from", e).with_context("view", view);
        let name = table_name(view);
        let definition = TableDefinition::<&[u8], &[u8]>::new(&name);
        let txn = self.db.begin_read().map_err(|e| err(e.into()))?;
        let table = match txn.open_table(definition) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(vec![None; keys.len()]),
            Err(e) => return Err(err(e.into())),
        };
        keys.iter()
            .map(|key| {
                let Some(bytes) = table
                    .get(key.encode().as_slice())
                    .map_err(|e| err(e.into()))?
                else {
                    return Ok(None);
                };
                decode_row(bytes.value())
                    .map(Some)
                    .map_err(|e| e.with_context("entity", key).with_context("view", view))
            })
            .collect()
    }

    fn delete_view(&self, view: &str) -> Result<()> {
        let err = |e: redb::Error| {
            storage_error(&self.path, "delete a view from", e).with_context("view", view)
        };
        let name = table_name(view);
        let txn = self.db.begin_write().map_err(|e| err(e.into()))?;
        txn.delete_table(TableDefinition::<&[u8], &[u8]>::new(&name))
            .map_err(|e| err(e.into()))?;
        txn.commit().map_err(|e| err(e.into()))
    }

    fn ping(&self) -> Result<()> {
        self.db
            .begin_read()
            .map(drop)
            .map_err(|e| storage_error(&self.path, "read from", e))
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }

    /// A read is a lookup in a memory-mapped file.
    fn is_local(&self) -> bool {
        true
    }
}
