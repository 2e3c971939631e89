//! What an online read reports for one feature: the point-in-time join at `T = now`.
//!
//! DESIGN.md defines the point-in-time join once: for an entity at time `T`, take the row with
//! the greatest `(event_ts, created_ts)` such that `event_ts <= T` and, with a TTL,
//! `event_ts >= T - ttl`. The online store keeps only the greatest row per entity, so
//! [`status_at`] answers that question for `T = now` from that one row:
//!
//! - **A row from the future** (`event_ts > now`, e.g. a backfill of a forecast, or clock skew
//!   between the materializer and the server) is [`ReadStatus::NotFound`]: the join at `now`
//!   would not see it. The older row it replaced is gone, so the online store cannot answer
//!   with that one either; "not found yet" is the honest answer, and the row becomes visible
//!   once `now` reaches its `event_ts`.
//! - **An expired row** (`event_ts < now - ttl`) is [`ReadStatus::OutsideMaxAge`], not
//!   `NotFound`, so a caller can tell a stale pipeline from an unknown entity. The edge is
//!   inclusive: `event_ts == now - ttl` is still present, as in the offline join.
//! - **A null value in a visible row** is [`ReadStatus::NullValue`]: the transform computed
//!   null.

use std::time::Duration;

use super::row::StoredRow;

/// The status of one feature of one entity in an online read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadStatus {
    /// A value is present.
    Present,
    /// The row is visible but the transform computed null for this feature.
    NullValue,
    /// No visible row: the entity was never written, its row is from the future, or the row has
    /// no value at this feature index (it predates the feature).
    NotFound,
    /// The row is older than the view's TTL allows.
    OutsideMaxAge,
}

impl ReadStatus {
    /// A short stable name, for JSON responses and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadStatus::Present => "present",
            ReadStatus::NullValue => "null_value",
            ReadStatus::NotFound => "not_found",
            ReadStatus::OutsideMaxAge => "outside_max_age",
        }
    }
}

/// The status of feature `feature_index` of `row` (the stored row of an entity, if any) read at
/// `now_us` (microseconds since the epoch, UTC) under the view's `ttl`. See the module docs.
pub fn status_at(
    row: Option<&StoredRow>,
    feature_index: usize,
    ttl: Option<Duration>,
    now_us: i64,
) -> ReadStatus {
    let Some(row) = row else {
        return ReadStatus::NotFound;
    };
    if row.event_ts > now_us {
        return ReadStatus::NotFound;
    }
    if let Some(ttl) = ttl
        && row.event_ts < now_us.saturating_sub(crate::micros::duration(ttl))
    {
        return ReadStatus::OutsideMaxAge;
    }
    match row.values.get(feature_index) {
        None => ReadStatus::NotFound,
        Some(value) if value.is_null() => ReadStatus::NullValue,
        Some(_) => ReadStatus::Present,
    }
}

#[cfg(test)]
mod tests {
    use super::super::row::FeatureValue;
    use super::*;

    fn row(event_ts: i64) -> StoredRow {
        StoredRow {
            event_ts,
            created_ts: 0,
            digest: "sha256:00".into(),
            values: vec![FeatureValue::Float64(1.5), FeatureValue::Null],
        }
    }

    const NOW: i64 = 1_700_000_000_000_000;
    const HOUR: Duration = Duration::from_secs(3600);
    const HOUR_US: i64 = 3_600_000_000;

    #[test]
    fn no_row_is_not_found() {
        assert_eq!(status_at(None, 0, None, NOW), ReadStatus::NotFound);
        assert_eq!(status_at(None, 0, Some(HOUR), NOW), ReadStatus::NotFound);
    }

    #[test]
    fn ttl_edge_is_inclusive() {
        let on_edge = row(NOW - HOUR_US);
        assert_eq!(
            status_at(Some(&on_edge), 0, Some(HOUR), NOW),
            ReadStatus::Present
        );
        let one_us_older = row(NOW - HOUR_US - 1);
        assert_eq!(
            status_at(Some(&one_us_older), 0, Some(HOUR), NOW),
            ReadStatus::OutsideMaxAge
        );
        assert_eq!(
            status_at(Some(&one_us_older), 0, None, NOW),
            ReadStatus::Present,
            "without a TTL nothing expires"
        );
        // A huge TTL or an ancient row does not overflow.
        assert_eq!(
            status_at(Some(&row(0)), 0, Some(Duration::MAX), NOW),
            ReadStatus::Present
        );
        assert_eq!(
            status_at(Some(&row(i64::MIN)), 0, Some(Duration::MAX), i64::MIN + 5),
            ReadStatus::Present
        );
        assert_eq!(
            status_at(Some(&row(NOW)), 0, Some(Duration::ZERO), NOW),
            ReadStatus::Present
        );
        assert_eq!(
            status_at(Some(&row(NOW - 1)), 0, Some(Duration::ZERO), NOW),
            ReadStatus::OutsideMaxAge
        );
    }

    #[test]
    fn rows_from_the_future_are_not_yet_visible() {
        assert_eq!(
            status_at(Some(&row(NOW + 1)), 0, None, NOW),
            ReadStatus::NotFound
        );
        assert_eq!(
            status_at(Some(&row(NOW + 1)), 0, Some(HOUR), NOW),
            ReadStatus::NotFound
        );
        assert_eq!(
            status_at(Some(&row(NOW)), 0, Some(HOUR), NOW),
            ReadStatus::Present,
            "event_ts == now is visible"
        );
    }

    #[test]
    fn null_values_and_missing_features() {
        let r = row(NOW - 10);
        assert_eq!(status_at(Some(&r), 1, None, NOW), ReadStatus::NullValue);
        assert_eq!(status_at(Some(&r), 2, None, NOW), ReadStatus::NotFound);
        // Expiry wins over null: the row as a whole is too old.
        assert_eq!(
            status_at(Some(&row(NOW - HOUR_US - 1)), 1, Some(HOUR), NOW),
            ReadStatus::OutsideMaxAge
        );
        assert_eq!(ReadStatus::OutsideMaxAge.as_str(), "outside_max_age");
    }
}
