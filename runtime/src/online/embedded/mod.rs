//! The embedded online store: one [LMDB](http://www.lmdb.tech/doc/) file, no server, shared by
//! every process on the repo.
//!
//! A running `skewless serve` and any number of jobs (`materialize`, `get`) open the same file
//! at once. A key design decision is the engine: LMDB, because it is built for exactly this
//! sharing and its reads cost next to nothing:
//!
//! - **Readers are never blocked.** A read is an MVCC snapshot of the memory-mapped file: no
//!   lock is waited on, no file is reopened, no system call is made for data already in the
//!   page cache. A reader sees every write committed before its read began, from any process.
//! - **One writer at a time, across processes.** LMDB serializes write transactions with a
//!   robust mutex in the lock file (`<path>-lock`), so a `write` call's read-compare-put of
//!   the order of rows ([`compare_rows`](super::compare_rows)) runs inside one cross-process write
//!   transaction, and two writers in different processes cannot regress a value. A writer
//!   that dies mid-transaction releases the mutex and its writes are discarded.
//! - **Durable on commit.** Each `write` commits once, fsynced; a failed call commits nothing.
//!
//! (SQLite in WAL mode shares files between processes too, but each read runs a prepared
//! statement through its page cache, several times the cost of an LMDB lookup; keeping redb
//! would have meant handing every job's writes to the running server.)
//!
//! **Layout:** all views in LMDB's one unnamed database, keyed by view and entity (see
//! `layout.rs`), valued by the stored-row bytes of `row.rs`, the same bytes the Redis backend
//! stores. **Size:** the file grows as rows are written, up to its *map size*, address space
//! reserved when the store opens: [`DEFAULT_MAP_SIZE`] (64 GiB on 64-bit machines), set with
//! `[online] map_size`. A write that would pass it fails with an error naming the setting.
//! **Crashes:** reader slots left by a killed process are cleared when the store next opens.
//! The file must be on a local file system (LMDB's lock file does not work over NFS).
//!
//! A file written by an earlier skewless version (redb) is refused with what to do; see
//! `legacy.rs`.

mod errors;
mod layout;
mod legacy;

use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, RoTxn, WithoutTls};

use self::errors::{Doing, store_error};
use super::row::{decode_row, encode_row, replaces_encoded};
use super::{EntityKey, OnlineStore, StoredRow, WriteStats, newest_per_key};
use crate::error::{Error, ErrorKind, Result};

/// The map size when `[online] map_size` is not set: 64 GiB of address space on 64-bit
/// machines (1 GiB elsewhere). Reserved, not allocated: the file only grows as rows are
/// written.
pub const DEFAULT_MAP_SIZE: u64 = if cfg!(target_pointer_width = "64") {
    64 << 30
} else {
    1 << 30
};

/// The smallest map size accepted.
const MIN_MAP_SIZE: u64 = 1 << 20;
/// Map sizes are rounded up to this, a multiple of every page size LMDB runs with.
const MAP_SIZE_STEP: u64 = 64 << 10;
/// Concurrent read transactions across all processes (a slot is held only during a read).
pub(super) const MAX_READERS: u32 = 1024;

/// The online store in a local LMDB file (e.g. `.skewless/online.lmdb`, beside its
/// `online.lmdb-lock`), shared by processes: reads never wait, writes from any process are
/// serialized and apply the ordering rule atomically. See the [online module docs](super).
///
/// Open it once per process ([`EmbeddedStore::open`]) and share the handle between threads;
/// a second open of the same file in one process is refused.
pub struct EmbeddedStore {
    path: PathBuf,
    map_size: usize,
    env: Env<WithoutTls>,
    rows: Database<Bytes, Bytes>,
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .field("map_size", &self.map_size)
            .finish_non_exhaustive()
    }
}

/// Options of an [`EmbeddedStore`] before it opens: [`EmbeddedStore::builder`].
#[derive(Clone, Debug)]
pub struct EmbeddedStoreBuilder {
    path: PathBuf,
    map_size: u64,
}

impl EmbeddedStoreBuilder {
    /// The most bytes the store may hold (`[online] map_size`; [`DEFAULT_MAP_SIZE`] if not
    /// set), rounded up to a multiple of 64 KiB. At least 1 MiB.
    pub fn map_size(mut self, bytes: u64) -> Self {
        self.map_size = bytes;
        self
    }

    /// Opens the store, creating the file and its parent directories if needed.
    ///
    /// Fails with `InvalidInput` if the file is not an embedded store (or is one of an
    /// earlier skewless version) or the map size is unusable, with `Unavailable` if this
    /// process already has it open, and with `Io` if it cannot be created or read.
    pub fn open(self) -> Result<EmbeddedStore> {
        let EmbeddedStoreBuilder { path, map_size } = self;
        let map_size = checked_map_size(map_size, &path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::from(e)
                    .with_context("directory", parent.display())
                    .with_context("online_store", path.display())
            })?;
        }
        legacy::refuse_earlier_store(&path)?;
        let err = |e| store_error(&path, map_size, Doing::Open, e);
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(map_size).max_readers(MAX_READERS);
        #[allow(
            unsafe_code,
            reason = "LMDB maps the file into memory; sound as long as nothing but LMDB \
                      writes the file, which its lock file guarantees for every process that \
                      opens it through LMDB (skewless never writes it otherwise)"
        )]
        // SAFETY: `NO_SUB_DIR` only changes where LMDB looks for its files (`path` and
        // `path-lock` instead of a directory); none of the unsafe flags (NO_LOCK, NO_SYNC,
        // WRITE_MAP) is set.
        let env = unsafe {
            options.flags(EnvFlags::NO_SUB_DIR);
            options.open(&path)
        }
        .map_err(err)?;
        // Reader slots of processes that died mid-read would keep old pages from being
        // reused; LMDB frees them only when asked.
        env.clear_stale_readers().map_err(err)?;
        if env.max_key_size() < layout::MAX_KEY {
            return Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "this build of LMDB takes keys of at most {} bytes; the embedded online \
                     store's layout needs {}",
                    env.max_key_size(),
                    layout::MAX_KEY
                ),
            ));
        }
        let txn = env.read_txn().map_err(err)?;
        let rows = env.open_database::<Bytes, Bytes>(&txn, None).map_err(err)?;
        // Committing makes the database handle valid in later transactions.
        txn.commit().map_err(err)?;
        let rows = rows.ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                "LMDB has no unnamed database in the embedded online store",
            )
            .with_context("online_store", path.display())
        })?;
        Ok(EmbeddedStore {
            path,
            map_size,
            env,
            rows,
        })
    }
}

/// `bytes` as a map size LMDB takes, or `InvalidInput` naming the setting.
fn checked_map_size(bytes: u64, path: &Path) -> Result<usize> {
    let rounded = bytes.checked_next_multiple_of(MAP_SIZE_STEP);
    match rounded.and_then(|b| usize::try_from(b).ok()) {
        Some(size) if bytes >= MIN_MAP_SIZE => Ok(size),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "`[online] map_size` is {bytes} bytes; expected at least {MIN_MAP_SIZE} (1 MiB) \
                 and at most what this machine can address (the default is {DEFAULT_MAP_SIZE}, \
                 {})",
                errors::human_size(DEFAULT_MAP_SIZE as usize)
            ),
        )
        .with_context("online_store", path.display())),
    }
}

impl EmbeddedStore {
    /// Opens the store at `path` with the default map size (see
    /// [`EmbeddedStoreBuilder::open`] for the errors).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::builder(path).open()
    }

    /// A store at `path` to configure, then [`open`](EmbeddedStoreBuilder::open).
    pub fn builder(path: impl AsRef<Path>) -> EmbeddedStoreBuilder {
        EmbeddedStoreBuilder {
            path: path.as_ref().to_path_buf(),
            map_size: DEFAULT_MAP_SIZE,
        }
    }

    /// The database file (its lock file is beside it, with `-lock` appended).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The error for `e`, met while `doing` something to `view`. Called only on failure, so
    /// that the read path allocates nothing for errors that do not happen.
    fn fail(&self, doing: Doing, view: &str, e: heed::Error) -> Error {
        store_error(&self.path, self.map_size, doing, e).with_context("view", view)
    }

    /// The rows of `keys` of `view` in the snapshot `txn` reads; `key` is a scratch buffer.
    fn read_in(
        &self,
        txn: &RoTxn<'_, WithoutTls>,
        view: &str,
        keys: &[EntityKey],
        key: &mut Vec<u8>,
    ) -> Result<Vec<Option<StoredRow>>> {
        // A view name too long to be stored was never written.
        let Ok(prefix) = layout::view_prefix(view) else {
            return Ok(vec![None; keys.len()]);
        };
        keys.iter()
            .map(|entity| {
                layout::key_into(&prefix, entity, key);
                let stored = self
                    .rows
                    .get(txn, key)
                    .map_err(|e| self.fail(Doing::Read, view, e))?;
                stored
                    .map(|bytes| {
                        decode_row(bytes).map_err(|e| {
                            e.with_context("entity", entity).with_context("view", view)
                        })
                    })
                    .transpose()
            })
            .collect()
    }
}

impl OnlineStore for EmbeddedStore {
    fn write(&self, view: &str, rows: &[(EntityKey, StoredRow)]) -> Result<WriteStats> {
        let (newest, mut skipped_older) = newest_per_key(rows)?;
        if newest.is_empty() {
            return Ok(WriteStats::default());
        }
        // Everything that needs no lock is done before the cross-process write lock is taken,
        // so that other writers wait for as short a time as possible.
        let prefix = layout::view_prefix(view)?;
        let mut encoded = newest
            .into_iter()
            .map(|(entity, row)| {
                let mut key = Vec::with_capacity(prefix.len() + entity.len());
                layout::key_into_from_encoded(&prefix, &entity, &mut key);
                Ok((key, encode_row(row)?))
            })
            .collect::<Result<Vec<_>>>()?;
        // Keys in order touch each B-tree page once rather than at random.
        encoded.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let err = |e: heed::Error| self.fail(Doing::Write, view, e);
        let mut txn = self.env.write_txn().map_err(&err)?;
        let mut written = 0;
        for (key, row) in &encoded {
            let stored_is_newer = match self.rows.get(&txn, key).map_err(&err)? {
                Some(stored) => !replaces_encoded(row, stored),
                None => false,
            };
            if stored_is_newer {
                skipped_older += 1;
            } else {
                self.rows.put(&mut txn, key, row).map_err(&err)?;
                written += 1;
            }
        }
        txn.commit().map_err(&err)?;
        Ok(WriteStats {
            written,
            skipped_older,
        })
    }

    fn read(&self, view: &str, keys: &[EntityKey]) -> Result<Vec<Option<StoredRow>>> {
        let txn = self
            .env
            .read_txn()
            .map_err(|e| self.fail(Doing::Read, view, e))?;
        self.read_in(&txn, view, keys, &mut Vec::new())
    }

    /// One snapshot for all the views: the answer is consistent across them.
    fn read_many(&self, requests: &[(&str, &[EntityKey])]) -> Result<Vec<Vec<Option<StoredRow>>>> {
        let Some((first, _)) = requests.first() else {
            return Ok(Vec::new());
        };
        let txn = self
            .env
            .read_txn()
            .map_err(|e| self.fail(Doing::Read, first, e))?;
        let mut key = Vec::new();
        requests
            .iter()
            .map(|(view, keys)| self.read_in(&txn, view, keys, &mut key))
            .collect()
    }

    fn delete_view(&self, view: &str) -> Result<()> {
        let Ok(prefix) = layout::view_prefix(view) else {
            return Ok(());
        };
        let err = |e: heed::Error| self.fail(Doing::Delete, view, e);
        let mut txn = self.env.write_txn().map_err(&err)?;
        let end = layout::prefix_end(&prefix);
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (
            Bound::Included(&prefix),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        );
        self.rows.delete_range(&mut txn, &range).map_err(&err)?;
        txn.commit().map_err(&err)
    }

    fn ping(&self) -> Result<()> {
        self.env
            .read_txn()
            .map(drop)
            .map_err(|e| store_error(&self.path, self.map_size, Doing::Read, e))
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }

    /// A read is a lookup in a memory-mapped file.
    fn is_local(&self) -> bool {
        true
    }
}
