//! Time as skewless stores and compares it: microseconds since the Unix epoch (UTC) in an
//! `i64`, and durations (TTLs) in the same unit, saturating rather than wrapping; and times
//! given as text by a user (the CLI's `--start`, `--end`, `--as-of`, the Python package's
//! arguments), read by one rule.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};

/// The current time in µs since the epoch (0 if the clock is before 1970).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration)
}

/// `d` in µs; `i64::MAX` for a duration too long to count (a TTL of ~292,000 years or more).
pub(crate) fn duration(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Parses an RFC 3339 timestamp (`2026-08-01T00:00:00Z`, or a date `2026-08-01`) into µs;
/// `what` names the argument in the error (`--start`, `as_of`).
pub fn parse_time(what: &str, text: &str) -> Result<i64> {
    use arrow_array::types::TimestampMicrosecondType;
    use arrow_array::{Array, PrimitiveArray, StringArray};
    let target = arrow_schema::DataType::Timestamp(
        arrow_schema::TimeUnit::Microsecond,
        Some("+00:00".into()),
    );
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
                     2026-08-01T00:00:00Z"
                ),
            )
        })
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

    #[test]
    fn times_parse_as_rfc_3339_or_name_the_argument() {
        assert_eq!(
            parse_time("--start", "2026-01-01T00:00:01Z").unwrap(),
            1_767_225_601_000_000
        );
        assert_eq!(
            parse_time("--start", "2026-01-01").unwrap(),
            1_767_225_600_000_000
        );
        let e = parse_time("--end", "yesterday").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.to_string()
                .starts_with("--end `yesterday` is not a timestamp"),
            "{e}"
        );
    }
}
