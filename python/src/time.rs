//! Times given as text: RFC 3339 timestamps and snapshot ids, read as the CLI reads its
//! `--start`, `--end` and `--as-of` flags (the CLI's own helpers are private to it).

use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, PrimitiveArray, StringArray};
use arrow_schema::{DataType, TimeUnit};
use skewless_runtime::offline::OfflineStore;
use skewless_runtime::registry::{FeatureRef, FeatureRepo};
use skewless_runtime::{Error, ErrorKind, Result};

/// Parses an RFC 3339 timestamp (`2026-08-01T00:00:00Z`, or a date `2026-08-01`) into µs;
/// `what` names the argument in the error.
pub(crate) fn parse_time(what: &str, text: &str) -> Result<i64> {
    let target = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
    arrow_cast::cast(&StringArray::from(vec![text]), &target)
        .ok()
        .filter(|a| a.is_valid(0))
        .and_then(|a| {
            a.as_any()
                .downcast_ref::<PrimitiveArray<TimestampMicrosecondType>>()
                .map(|a| a.value(0))
        })
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{what} `{text}` is not a timestamp; expected RFC 3339, e.g. \
                     2026-08-01T00:00:00Z, or a datetime"
                ),
            )
        })
}

/// The commit time (ms) of `snapshot` in one of the requested batch views' feature tables.
pub(crate) fn snapshot_time(
    repo: &FeatureRepo,
    offline: &OfflineStore,
    runtime: &tokio::runtime::Runtime,
    features: &[FeatureRef],
    snapshot: i64,
) -> Result<i64> {
    for r in features {
        let Ok(table) = repo.feature_table(&r.view) else {
            continue;
        };
        if !runtime.block_on(offline.table_exists(&table))? {
            continue;
        }
        if let Some(s) = runtime
            .block_on(offline.snapshots(&table))?
            .into_iter()
            .find(|s| s.snapshot_id == snapshot)
        {
            return Ok(s.timestamp_ms);
        }
    }
    Err(Error::new(
        ErrorKind::NotFound,
        format!(
            "snapshot {snapshot} is not a snapshot of any requested view's feature table; pass \
             an RFC 3339 time or a datetime instead"
        ),
    ))
}
