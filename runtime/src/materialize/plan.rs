//! What a materialization run does, decided before any row is read: which source rows it
//! reads (the files appended since the last processed snapshot, or an event-time window of
//! one pinned snapshot), whether its rows are appended to the feature table or replace a
//! window of it, and where it leaves the processed-snapshot marker.
//!
//! # The processed-snapshot marker
//!
//! Every materialization snapshot records, under [`summary::PROCESSED`], the source
//! snapshot up to which **every** source row has been materialized. Runs that do not move it
//! (window backfills) copy it forward, so the feature table's newest materialization always
//! carries it and expiring old snapshots never loses it.
//!
//! - `--incremental` with a marker `M`: the data files the source's snapshots after `M`
//!   appended, whatever their rows' event times, are read and **appended**; the marker moves
//!   to the current source snapshot. Nothing appended since `M`: nothing to do. A snapshot
//!   after `M` that is not an append is an error asking for a full run.
//! - `--incremental` without a marker (the first run) and a full run (no `--start`/`--end`):
//!   every row of the current source snapshot **replaces** everything the feature table
//!   holds; the marker moves to that snapshot. (A full run is thus the way back after a
//!   source rewrite, and the first incremental run cannot double rows that window backfills
//!   wrote before it.)
//! - `--start`/`--end` (a window backfill): the window's rows **replace** the window in the
//!   feature table. They are read from the source as of the marker when there is one, so a
//!   backfill and the incremental runs around it never both write a row: rows appended after
//!   the marker are the next incremental run's, whatever their event time. Without a marker
//!   the current source snapshot is read. The marker stays where it was.

use super::summary;
use crate::error::{Error, ErrorKind, Result};
use crate::offline::SnapshotInfo;

/// What a run reads and how it writes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Work {
    /// Nothing to do, and why.
    Nothing(String),
    /// Read what the source appended after snapshot `from` up to `to`, and append it.
    Appended { from: i64, to: i64 },
    /// Read rows with event times in `[start, end)` of source snapshot `read`, and replace
    /// that window of the feature table with them.
    Replace {
        start: i64,
        end: i64,
        read: i64,
        /// The marker after the run.
        marker: Option<i64>,
    },
}

/// The run's mode, as recorded in the snapshot summary.
impl Work {
    pub(crate) fn mode(&self) -> &'static str {
        match self {
            Work::Nothing(_) => "none",
            Work::Appended { .. } => "incremental",
            Work::Replace {
                start: i64::MIN,
                end: i64::MAX,
                ..
            } => "full",
            Work::Replace { .. } => "window",
        }
    }
}

/// The run's request: `--incremental`, `--start`, `--end`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request {
    pub(crate) incremental: bool,
    pub(crate) start_us: Option<i64>,
    pub(crate) end_us: Option<i64>,
}

/// Decides what a run of `view` does, given the feature table's current lineage (newest
/// first, see [`lineage`]) and the source's current snapshot and all its snapshot ids.
pub(crate) fn plan(
    request: Request,
    view: &str,
    feature_lineage: &[&SnapshotInfo],
    source_current: i64,
    source_has: impl Fn(i64) -> bool,
) -> Result<Work> {
    let marker = marker(feature_lineage, view)?;
    if request.incremental {
        if request.start_us.is_some() || request.end_us.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "--incremental processes what was appended to the source since the last run, \
                 whatever its event times; it cannot be combined with --start or --end",
            ));
        }
        return Ok(match marker {
            Some(m) if m == source_current => Work::Nothing(format!(
                "nothing was appended to the source since snapshot {m}, the last one processed"
            )),
            Some(m) => Work::Appended {
                from: m,
                to: source_current,
            },
            None => Work::Replace {
                start: i64::MIN,
                end: i64::MAX,
                read: source_current,
                marker: Some(source_current),
            },
        });
    }
    let (start, end) = (
        request.start_us.unwrap_or(i64::MIN),
        request.end_us.unwrap_or(i64::MAX),
    );
    if start >= end {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the window is empty: --start ({start} µs) is not before --end ({end} µs)"),
        ));
    }
    if request.start_us.is_none() && request.end_us.is_none() {
        return Ok(Work::Replace {
            start,
            end,
            read: source_current,
            marker: Some(source_current),
        });
    }
    let read = match marker {
        None => source_current,
        Some(m) if source_has(m) => m,
        Some(m) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a window backfill reads the source as of the last processed snapshot {m}, \
                     which the source no longer has (expired); run a full materialization \
                     (without --start, --end or --incremental)"
                ),
            ));
        }
    };
    Ok(Work::Replace {
        start,
        end,
        read,
        marker,
    })
}

/// The marker left by the newest materialization of `view` in the feature table's lineage.
pub(crate) fn marker(lineage: &[&SnapshotInfo], view: &str) -> Result<Option<i64>> {
    let Some(newest) = lineage
        .iter()
        .find(|s| s.summary.get(summary::VIEW).map(String::as_str) == Some(view))
    else {
        return Ok(None);
    };
    match newest.summary.get(summary::PROCESSED) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "snapshot {} of the feature table records `{}` = `{text}`, which is not a \
                     snapshot id; run a full materialization to reset it",
                    newest.snapshot_id,
                    summary::PROCESSED
                ),
            )
        }),
    }
}

/// The current snapshot and its ancestors, newest first, from a table's snapshots (as far as
/// they were not expired).
pub(crate) fn lineage(snapshots: &[SnapshotInfo], current: Option<i64>) -> Vec<&SnapshotInfo> {
    let mut out = Vec::new();
    let mut next = current;
    while let Some(id) = next {
        let Some(s) = snapshots.iter().find(|s| s.snapshot_id == id) else {
            break;
        };
        out.push(s);
        next = s.parent_id;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn snapshot(id: i64, parent: Option<i64>, pairs: &[(&str, &str)]) -> SnapshotInfo {
        SnapshotInfo {
            snapshot_id: id,
            parent_id: parent,
            timestamp_ms: id,
            summary: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
            added_rows: None,
        }
    }

    const INCREMENTAL: Request = Request {
        incremental: true,
        start_us: None,
        end_us: None,
    };

    #[test]
    fn the_marker_is_the_newest_materializations_in_the_lineage() {
        let snapshots = [
            snapshot(1, None, &[(summary::VIEW, "v"), (summary::PROCESSED, "10")]),
            // Another writer's append carries no marker and is looked past.
            snapshot(2, Some(1), &[]),
            // Not in the lineage of 2.
            snapshot(
                3,
                Some(1),
                &[(summary::VIEW, "v"), (summary::PROCESSED, "99")],
            ),
        ];
        let lineage = lineage(&snapshots, Some(2));
        assert_eq!(lineage.len(), 2);
        let work = plan(INCREMENTAL, "v", &lineage, 12, |_| true).unwrap();
        assert_eq!(work, Work::Appended { from: 10, to: 12 });
        let done = plan(INCREMENTAL, "v", &lineage, 10, |_| true).unwrap();
        assert!(matches!(done, Work::Nothing(_)), "{done:?}");
        // Another view's marker does not count.
        let none = plan(INCREMENTAL, "w", &lineage, 12, |_| true).unwrap();
        assert_eq!(none.mode(), "full");
    }

    #[test]
    fn a_window_reads_the_source_as_of_the_marker_and_keeps_it() {
        let snapshots = [snapshot(
            1,
            None,
            &[(summary::VIEW, "v"), (summary::PROCESSED, "10")],
        )];
        let lineage = lineage(&snapshots, Some(1));
        let window = Request {
            incremental: false,
            start_us: Some(5),
            end_us: None,
        };
        let work = plan(window, "v", &lineage, 12, |_| true).unwrap();
        assert_eq!(
            work,
            Work::Replace {
                start: 5,
                end: i64::MAX,
                read: 10,
                marker: Some(10)
            }
        );
        let e = plan(window, "v", &lineage, 12, |s| s != 10).unwrap_err();
        assert!(e.message().contains("full materialization"), "{e}");
        let e = plan(
            Request {
                incremental: true,
                start_us: Some(1),
                end_us: None,
            },
            "v",
            &lineage,
            12,
            |_| true,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = plan(
            Request {
                incremental: false,
                start_us: Some(7),
                end_us: Some(7),
            },
            "v",
            &lineage,
            12,
            |_| true,
        )
        .unwrap_err();
        assert!(e.message().contains("empty"), "{e}");
    }
}
