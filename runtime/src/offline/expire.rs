//! Expiring old snapshots of a table and deleting the files only they referenced, so that
//! replaced rows stop taking space once no retained snapshot can read them.
//!
//! The snapshots are removed from the table's metadata by iceberg-rust's own
//! `ExpireSnapshotsAction` (never the current snapshot; at least `retain_last` of the
//! current lineage are kept), committed like any other change. Files are deleted only after
//! that commit, and only when no retained snapshot needs them:
//! - a manifest list or manifest referenced by an expired snapshot and by no retained one;
//! - a data file live (ADDED or EXISTING) in an expired snapshot and live in no retained
//!   one.
//!
//! So every retained snapshot reads exactly what it read before: a training set pinned to a
//! retained snapshot is rebuilt from the same rows. A job running meanwhile only commits on
//! top of the current snapshot, which is retained with all its files, and its own files are
//! referenced by no snapshot yet, so they are never candidates. Old metadata JSON files are
//! left in place (they are small and the catalog's history).

use std::collections::{BTreeSet, HashSet};

use iceberg::Catalog;
use iceberg::spec::SnapshotRef;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};

use super::{TableName, convert_error};
use crate::error::{Error, ErrorKind, Result};

/// What [`OfflineStore::expire_snapshots`](super::OfflineStore::expire_snapshots) removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// The snapshots removed from the table's metadata.
    pub snapshots: Vec<i64>,
    /// Data files deleted.
    pub data_files: usize,
    /// Manifest and manifest-list files deleted.
    pub metadata_files: usize,
    /// Bytes of data files deleted.
    pub data_bytes: u64,
}

/// Files a set of snapshots references.
#[derive(Default)]
struct Reachable {
    metadata: HashSet<String>,
    /// Data files with their sizes.
    data: HashSet<(String, u64)>,
}

pub(super) async fn expire(
    catalog: &dyn Catalog,
    name: &TableName,
    before: Table,
    older_than_ms: i64,
    retain_last: usize,
) -> Result<Expired> {
    if retain_last == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "at least one snapshot must be retained (--retain-last 1 or more)",
        ));
    }
    let tx = Transaction::new(&before);
    let action = tx
        .expire_snapshots()
        .expire_older_than_ms(older_than_ms)
        .retain_last(retain_last);
    let after = action
        .apply(tx)
        .map_err(|e| convert_error(e, name, "preparing the expiry"))?
        .commit(catalog)
        .await
        .map_err(|e| convert_error(e, name, "committing the expiry"))?;
    let kept: HashSet<i64> = after
        .metadata()
        .snapshots()
        .map(|s| s.snapshot_id())
        .collect();
    let removed: Vec<&SnapshotRef> = before
        .metadata()
        .snapshots()
        .filter(|s| !kept.contains(&s.snapshot_id()))
        .collect();
    let mut expired = Expired {
        snapshots: removed.iter().map(|s| s.snapshot_id()).collect(),
        ..Expired::default()
    };
    expired.snapshots.sort_unstable();
    if removed.is_empty() {
        return Ok(expired);
    }
    let retained: Vec<&SnapshotRef> = after.metadata().snapshots().collect();
    let keep = reachable(name, &after, &retained, false).await?;
    let gone = reachable(name, &before, &removed, true).await?;
    let keep_data: HashSet<&str> = keep.data.iter().map(|(p, _)| p.as_str()).collect();
    let data: BTreeSet<&(String, u64)> = gone
        .data
        .iter()
        .filter(|(path, _)| !keep_data.contains(path.as_str()))
        .collect();
    let metadata: BTreeSet<&String> = gone.metadata.difference(&keep.metadata).collect();
    let file_io = after.file_io();
    for (path, size) in data {
        file_io
            .delete(path)
            .await
            .map_err(|e| convert_error(e, name, "deleting an expired data file"))?;
        expired.data_files += 1;
        expired.data_bytes += size;
    }
    for path in metadata {
        file_io
            .delete(path)
            .await
            .map_err(|e| convert_error(e, name, "deleting an expired manifest"))?;
        expired.metadata_files += 1;
    }
    Ok(expired)
}

/// The manifest lists, manifests and data files of `snapshots`: live data files only, or
/// with `all_entries` also those the snapshots list as deleted.
async fn reachable(
    name: &TableName,
    table: &Table,
    snapshots: &[&SnapshotRef],
    all_entries: bool,
) -> Result<Reachable> {
    let mut out = Reachable::default();
    let mut seen_manifests = HashSet::new();
    for snapshot in snapshots {
        out.metadata.insert(snapshot.manifest_list().to_owned());
        let list = table
            .manifest_list_reader(snapshot)
            .load()
            .await
            .map_err(|e| convert_error(e, name, "reading a manifest list"))?;
        for manifest in list.entries() {
            if !seen_manifests.insert(manifest.manifest_path.clone()) {
                continue;
            }
            out.metadata.insert(manifest.manifest_path.clone());
            let entries = manifest
                .load_manifest(table.file_io())
                .await
                .map_err(|e| convert_error(e, name, "reading a manifest"))?;
            for entry in entries.entries() {
                if all_entries || entry.is_alive() {
                    out.data
                        .insert((entry.file_path().to_owned(), entry.file_size_in_bytes()));
                }
            }
        }
    }
    Ok(out)
}
