//! Time as skewless stores and compares it: microseconds since the Unix epoch (UTC) in an
//! `i64`, and durations (TTLs) in the same unit, saturating rather than wrapping.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current time in µs since the epoch (0 if the clock is before 1970).
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration)
}

/// `d` in µs; `i64::MAX` for a duration too long to count (a TTL of ~292,000 years or more).
pub(crate) fn duration(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_saturate() {
        assert_eq!(duration(Duration::from_secs(1)), 1_000_000);
        assert_eq!(duration(Duration::MAX), i64::MAX);
        assert!(now() > 1_767_225_600_000_000, "after 2026-01-01");
    }
}
