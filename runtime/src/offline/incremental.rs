//! What a table's snapshots appended since an earlier snapshot: the input of an incremental
//! materialization, which must see every appended row once, whatever its event time.
//!
//! The current snapshot's lineage is walked back through parent ids to the earlier snapshot.
//! Every snapshot in between must be an `append`: a rewrite, overwrite or delete may have
//! removed or replaced rows already processed, which no list of added files can express,
//! so it is an error that says to run a full materialization instead. The data files are
//! read from the manifests those snapshots wrote (status ADDED, or EXISTING where a later
//! append merged manifests, with the adding snapshot's id): the cost is proportional to the
//! appended data, not to the table.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use iceberg::spec::{ManifestContentType, Operation};
use iceberg::table::Table;

use super::{TableName, convert_error};
use crate::error::{Error, ErrorKind, Result};

/// The data files a range of append snapshots added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The snapshots after the earlier one, up to and including the current one, newest
    /// first.
    pub snapshots: Vec<i64>,
    /// Their data files' paths.
    pub files: Arc<BTreeSet<String>>,
    /// Rows in those files.
    pub rows: u64,
}

/// The files `table`'s snapshots after `from` up to `to` appended.
pub(super) async fn appended_between(
    name: &TableName,
    table: &Table,
    from: i64,
    to: i64,
) -> Result<Appended> {
    let metadata = table.metadata();
    let full_run = "run a full materialization (without --incremental) to reprocess the table";
    let mut snapshots = Vec::new();
    let mut id = to;
    while id != from {
        let Some(snapshot) = metadata.snapshot_by_id(id) else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "snapshot {id} of the source, after the last processed snapshot {from}, \
                     no longer exists (expired?), so the rows it added cannot be found; \
                     {full_run}"
                ),
            )
            .with_context("table", name));
        };
        let operation = &snapshot.summary().operation;
        if *operation != Operation::Append {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "snapshot {id} of the source is an `{}`, not an append: rows already \
                     processed may have been rewritten or removed, which an incremental run \
                     cannot follow; {full_run}",
                    operation.as_str()
                ),
            )
            .with_context("snapshot", id)
            .with_context("table", name));
        }
        snapshots.push(id);
        id = match snapshot.parent_snapshot_id() {
            Some(parent) => parent,
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "the last processed snapshot {from} is not an ancestor of the source's \
                         current snapshot {to} (the table was replaced, rolled back or its \
                         history expired); {full_run}"
                    ),
                )
                .with_context("table", name));
            }
        };
    }
    let Some(current) = metadata.snapshot_by_id(to) else {
        return Ok(Appended {
            snapshots,
            files: Arc::default(),
            rows: 0,
        });
    };
    let ids: HashSet<i64> = snapshots.iter().copied().collect();
    let list = table
        .manifest_list_reader(current)
        .load()
        .await
        .map_err(|e| convert_error(e, name, "reading the manifest list"))?;
    let mut files = BTreeSet::new();
    let mut rows = 0;
    for manifest in list.entries() {
        if !ids.contains(&manifest.added_snapshot_id) {
            continue;
        }
        if manifest.content != ManifestContentType::Data {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "snapshot {} of the source added delete files; {full_run}",
                    manifest.added_snapshot_id
                ),
            )
            .with_context("table", name));
        }
        let entries = manifest
            .load_manifest(table.file_io())
            .await
            .map_err(|e| convert_error(e, name, "reading a manifest"))?;
        for entry in entries.entries() {
            if entry.is_alive() && entry.snapshot_id().is_some_and(|s| ids.contains(&s)) {
                rows += entry.record_count();
                files.insert(entry.file_path().to_owned());
            }
        }
    }
    Ok(Appended {
        snapshots,
        files: Arc::new(files),
        rows,
    })
}
