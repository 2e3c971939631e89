//! Replacing a time window of a table in one atomic snapshot: an Iceberg `overwrite` written
//! with the crate's public manifest and manifest-list writers (iceberg-rust 0.10.1 has no
//! overwrite action), shaped as iceberg-java's `BaseOverwriteFiles` and PyIceberg's
//! `_OverwriteFiles` write it, so any engine reads it:
//!
//! - the manifest list keeps, untouched, every manifest none of whose files is replaced;
//! - a manifest with replaced files is rewritten: those entries with status DELETED (2) and
//!   this snapshot's id, the others EXISTING (0) with their original snapshot and sequence
//!   numbers (entries an earlier snapshot deleted are dropped, as Java does);
//! - one new manifest lists the added files (status ADDED);
//! - the summary (`operation = overwrite`) counts added and deleted files, records and bytes,
//!   per changed partition, and carries the totals forward.
//!
//! # Which files are replaced
//!
//! Exactly the live data files that may hold a row of the window, judged by the event-time
//! column's bounds in the manifest. A file wholly inside the window is dropped; a file that
//! straddles a window edge (a window not aligned to the day partitions, or a file without
//! bounds) is dropped too, and its rows outside the window are read back and written into the
//! new snapshot ([`Plan::partial`]), so a window of any shape replaces precisely its rows.
//!
//! # Concurrency
//!
//! The commit requires that `main` still points at the snapshot the plan was made on. When
//! another commit got there first, the plan is made again on the new snapshot; if it removes
//! the same files (the other commit touched nothing in the window), the overwrite is retried
//! on top of it, otherwise it fails as a conflict and commits nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use iceberg::spec::{
    DataFile, FormatVersion, MAIN_BRANCH, Manifest, ManifestContentType, ManifestFile,
    ManifestListWriter, ManifestWriterBuilder, Operation, PrimitiveLiteral, Snapshot,
    SnapshotReference, SnapshotRetention, SnapshotSummaryCollector, Summary, TableProperties,
    UNASSIGNED_SEQUENCE_NUMBER,
};
use iceberg::table::Table;
use iceberg::{TableRequirement, TableUpdate};

use super::commit::SqlCommitter;
use super::{TableName, TimeRange, convert_error};
use crate::error::{Error, ErrorKind, Result};

/// Summary keys whose totals an overwrite carries forward: (total, added, removed).
const TOTALS: [(&str, &str, &str); 6] = [
    ("total-data-files", "added-data-files", "deleted-data-files"),
    ("total-records", "added-records", "deleted-records"),
    ("total-files-size", "added-files-size", "removed-files-size"),
    (
        "total-delete-files",
        "added-delete-files",
        "removed-delete-files",
    ),
    (
        "total-position-deletes",
        "added-position-deletes",
        "removed-position-deletes",
    ),
    (
        "total-equality-deletes",
        "added-equality-deletes",
        "removed-equality-deletes",
    ),
];

/// What replacing a window removes from one snapshot of a table.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// The snapshot the plan was made on (`None` for an empty table).
    pub(super) base: Option<i64>,
    /// Manifests carried over as they are.
    kept: Vec<ManifestFile>,
    /// Manifests with replaced files, loaded.
    rewritten: Vec<(ManifestFile, Manifest)>,
    /// The replaced files.
    removed: BTreeSet<String>,
    /// The replaced files holding rows outside the window, which the new snapshot must keep.
    pub(super) partial: BTreeSet<String>,
}

impl Plan {
    /// Whether the overwrite replaces any file.
    pub(super) fn removes_nothing(&self) -> bool {
        self.removed.is_empty()
    }

    /// Whether two plans replace the same files the same way.
    pub(super) fn same_files(&self, other: &Plan) -> bool {
        self.removed == other.removed && self.partial == other.partial
    }
}

/// How a data file relates to the window.
enum Overlap {
    Outside,
    Inside,
    Partial,
}

/// Plans replacing the rows of `table`'s current snapshot whose event time is in `range`.
pub(super) async fn plan(name: &TableName, table: &Table, range: &TimeRange) -> Result<Plan> {
    let metadata = table.metadata();
    let Some(current) = metadata.current_snapshot() else {
        return Ok(Plan::default());
    };
    let field = metadata
        .current_schema()
        .field_by_name(&range.column)
        .map(|f| f.id)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "the table has no column with this name",
            )
            .with_context("column", &range.column)
            .with_context("table", name)
        })?;
    let list = table
        .manifest_list_reader(current)
        .load()
        .await
        .map_err(|e| convert_error(e, name, "reading the manifest list"))?;
    let mut plan = Plan {
        base: Some(current.snapshot_id()),
        ..Plan::default()
    };
    if range.start_us >= range.end_us {
        // An empty range replaces nothing (an append that must land on this snapshot): every
        // manifest is kept, none needs reading.
        plan.kept = list.consume_entries().into_iter().collect();
        return Ok(plan);
    }
    for file in list.consume_entries() {
        if file.content != ManifestContentType::Data {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the table has delete files, which replacing a window does not support yet",
            )
            .with_context("table", name));
        }
        let manifest = file
            .load_manifest(table.file_io())
            .await
            .map_err(|e| convert_error(e, name, "reading a manifest"))?;
        let mut any = false;
        for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
            match overlap(entry.data_file(), field, range) {
                Overlap::Outside => continue,
                Overlap::Inside => {}
                Overlap::Partial => {
                    plan.partial.insert(entry.file_path().to_owned());
                }
            }
            plan.removed.insert(entry.file_path().to_owned());
            any = true;
        }
        match any {
            true => plan.rewritten.push((file, manifest)),
            false => plan.kept.push(file),
        }
    }
    Ok(plan)
}

fn overlap(file: &DataFile, field: i32, range: &TimeRange) -> Overlap {
    let micros =
        |bounds: &HashMap<i32, iceberg::spec::Datum>| match bounds.get(&field).map(|d| d.literal())
        {
            // timestamptz, timestamp and long columns hold microseconds.
            Some(PrimitiveLiteral::Long(us)) => Some(*us),
            _ => None,
        };
    let (Some(low), Some(high)) = (micros(file.lower_bounds()), micros(file.upper_bounds())) else {
        return Overlap::Partial;
    };
    if high < range.start_us || low >= range.end_us {
        return Overlap::Outside;
    }
    let nulls = file.null_value_counts().get(&field).copied().unwrap_or(0);
    match low >= range.start_us && high < range.end_us && nulls == 0 {
        true => Overlap::Inside,
        false => Overlap::Partial,
    }
}

/// Commits an overwrite of `plan` (made on `table`) adding `added`, with `properties` in the
/// summary. Returns the new snapshot's id. A conflict comes back as iceberg's
/// `CatalogCommitConflicts` for the caller to re-plan.
pub(super) async fn commit(
    committer: &SqlCommitter,
    table: &Table,
    plan: &Plan,
    added: &[DataFile],
    properties: &HashMap<String, String>,
) -> iceberg::Result<i64> {
    let metadata = table.metadata();
    if metadata.format_version() != FormatVersion::V2 {
        return Err(iceberg::Error::new(
            iceberg::ErrorKind::FeatureUnsupported,
            format!(
                "replacing a window is supported on format v2 tables, this one is {}",
                metadata.format_version()
            ),
        ));
    }
    let snapshot_id = unique_snapshot_id(table);
    let sequence_number = metadata.next_sequence_number();
    let commit_id = uuid::Uuid::new_v4();
    let metadata_dir = format!("{}/metadata", metadata.location());
    let mut written: Vec<String> = Vec::new();
    let result = async {
        let mut manifests = plan.kept.clone();
        let mut summary = SnapshotSummaryCollector::default();
        summary.set_partition_summary_limit(
            metadata
                .properties()
                .get(TableProperties::PROPERTY_WRITE_PARTITION_SUMMARY_LIMIT)
                .and_then(|v| v.parse().ok())
                .unwrap_or(TableProperties::PROPERTY_WRITE_PARTITION_SUMMARY_LIMIT_DEFAULT),
        );
        for (n, (_, manifest)) in plan.rewritten.iter().enumerate() {
            let path = format!("{metadata_dir}/{commit_id}-m{n}.avro");
            written.push(path.clone());
            let schema = manifest.metadata().schema().clone();
            let spec = manifest.metadata().partition_spec().clone();
            let mut writer = ManifestWriterBuilder::new(
                table.file_io().new_output(&path)?,
                Some(snapshot_id),
                schema.clone(),
                spec.clone(),
            )
            .build_v2_data();
            for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                let file = entry.data_file().clone();
                let sequence = entry.sequence_number().unwrap_or(0);
                let file_sequence = entry.file_sequence_number.or(Some(sequence));
                if plan.removed.contains(entry.file_path()) {
                    summary.remove_file(&file, schema.clone(), Arc::new(spec.clone()));
                    writer.add_delete_file(file, sequence, file_sequence)?;
                } else {
                    let added_by = entry.snapshot_id().unwrap_or(snapshot_id);
                    writer.add_existing_file(file, added_by, sequence, file_sequence)?;
                }
            }
            manifests.push(writer.write_manifest_file().await?);
        }
        if !added.is_empty() {
            let path = format!("{metadata_dir}/{commit_id}-m{}.avro", plan.rewritten.len());
            written.push(path.clone());
            let mut writer = ManifestWriterBuilder::new(
                table.file_io().new_output(&path)?,
                Some(snapshot_id),
                metadata.current_schema().clone(),
                metadata.default_partition_spec().as_ref().clone(),
            )
            .build_v2_data();
            for file in added {
                summary.add_file(
                    file,
                    metadata.current_schema().clone(),
                    metadata.default_partition_spec().clone(),
                );
                // Unassigned: the entry inherits this snapshot's sequence number.
                writer.add_file(file.clone(), UNASSIGNED_SEQUENCE_NUMBER)?;
            }
            manifests.push(writer.write_manifest_file().await?);
        }

        let list_path = format!("{metadata_dir}/snap-{snapshot_id}-0-{commit_id}.avro");
        written.push(list_path.clone());
        let mut list = ManifestListWriter::v2(
            table.file_io().new_output(&list_path)?.writer().await?,
            snapshot_id,
            plan.base,
            sequence_number,
        );
        list.add_manifests(manifests.into_iter())?;
        list.close().await?;

        let mut additional = properties.clone();
        additional.extend(summary.build());
        let previous = metadata.current_snapshot().map(|s| s.summary());
        carry_totals(&mut additional, previous);
        let snapshot = Snapshot::builder()
            .with_manifest_list(list_path)
            .with_snapshot_id(snapshot_id)
            .with_parent_snapshot_id(plan.base)
            .with_sequence_number(sequence_number)
            .with_summary(Summary {
                // Replacing an empty range of the table only adds files: an append.
                operation: match plan.removes_nothing() {
                    true => Operation::Append,
                    false => Operation::Overwrite,
                },
                additional_properties: additional,
            })
            .with_schema_id(metadata.current_schema_id())
            .with_timestamp_ms(chrono::Utc::now().timestamp_millis())
            .build();
        let updates = vec![
            TableUpdate::AddSnapshot { snapshot },
            TableUpdate::SetSnapshotRef {
                ref_name: MAIN_BRANCH.to_owned(),
                reference: SnapshotReference::new(
                    snapshot_id,
                    SnapshotRetention::branch(None, None, None),
                ),
            },
        ];
        let requirements = [
            TableRequirement::UuidMatch {
                uuid: metadata.uuid(),
            },
            TableRequirement::RefSnapshotIdMatch {
                r#ref: MAIN_BRANCH.to_owned(),
                snapshot_id: plan.base,
            },
        ];
        committer.commit(table, updates, &requirements).await
    }
    .await;
    match result {
        Ok(()) => Ok(snapshot_id),
        Err(e) => {
            // Nothing references the manifests of a failed commit.
            for path in written {
                let _ = table.file_io().delete(&path).await;
            }
            Err(e)
        }
    }
}

/// Sets each `total-*` to the previous total plus what was added minus what was removed
/// (what iceberg-rust does for its own snapshots, not public in 0.10.1). A total the
/// previous snapshot did not record stays unset: it would be a guess.
fn carry_totals(summary: &mut HashMap<String, String>, previous: Option<&Summary>) {
    let number = |map: &HashMap<String, String>, key: &str| -> Option<u64> {
        map.get(key).map_or(Some(0), |v| v.parse().ok())
    };
    for (total, added, removed) in TOTALS {
        let before = match previous {
            None => Some(0),
            Some(p) => p
                .additional_properties
                .get(total)
                .and_then(|v| v.parse::<u64>().ok()),
        };
        if let (Some(before), Some(added), Some(removed)) =
            (before, number(summary, added), number(summary, removed))
        {
            summary.insert(
                total.to_owned(),
                (before + added).saturating_sub(removed).to_string(),
            );
        }
    }
}

fn unique_snapshot_id(table: &Table) -> i64 {
    loop {
        let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
        // Positive, as Java and iceberg-rust generate them.
        let id = ((a ^ b) & (i64::MAX as u64)) as i64;
        if id != 0 && table.metadata().snapshot_by_id(id).is_none() {
            return id;
        }
    }
}
