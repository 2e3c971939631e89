//! # `time-features`: calendar features of an event timestamp
//!
//! A per-row transform (`skewless_guest::transform`) over one input column:
//!
//! | Column | Type | Meaning |
//! |---|---|---|
//! | in `event_ts` | timestamp | when the event happened (microseconds since 1970, UTC) |
//! | out `hour_of_day` | int32 | hour in UTC, 0-23 |
//! | out `day_of_week` | int32 | 0 = Monday ... 6 = Sunday (ISO order, counted from 0) |
//! | out `is_weekend` | boolean | Saturday or Sunday |
//! | out `day_of_month` | int32 | 1-31 in the proleptic Gregorian calendar |
//!
//! Every output is defined for every timestamp, including those before 1970: days are counted
//! with Euclidean division (floor, not truncation towards zero), so
//! `1969-12-31T23:59:59.999999Z` (`-1` µs) is a Wednesday at hour 23 on day 31, and the
//! calendar date comes from Howard Hinnant's `civil_from_days` algorithm, exact over the whole
//! `i64` range of microseconds. All in UTC: a local-time feature needs the zone as an input.
//!
//! Build the component (`target/wasm32-wasip2/guest/time_features.wasm`):
//!
//! ```text
//! cargo build --profile guest --target wasm32-wasip2 -p time-features
//! ```

use skewless_guest::{Row, Timestamp, transform};

/// The input row.
#[derive(Debug, Row)]
pub struct Event {
    /// When the event happened.
    pub event_ts: Timestamp,
}

/// The output row.
#[derive(Debug, PartialEq, Eq, Row)]
pub struct TimeFeatures {
    /// Hour of the day in UTC, 0-23.
    pub hour_of_day: i32,
    /// 0 = Monday ... 6 = Sunday.
    pub day_of_week: i32,
    /// Saturday or Sunday.
    pub is_weekend: bool,
    /// Day of the month, 1-31.
    pub day_of_month: i32,
}

const MICROS_PER_HOUR: i64 = 3_600 * Timestamp::MICROS_PER_SECOND;

/// Hour of day, day of week, weekend flag and day of month of `event_ts`, in UTC.
#[transform(name = "time-features", version = "1.0.0")]
pub fn time_features(event: Event) -> TimeFeatures {
    let days = event.event_ts.days();
    // 1970-01-01 was a Thursday: day 3 when Monday is 0.
    let day_of_week = (days + 3).rem_euclid(7) as i32;
    let (_, _, day_of_month) = civil_from_days(days);
    TimeFeatures {
        hour_of_day: (event.event_ts.micros_of_day() / MICROS_PER_HOUR) as i32,
        day_of_week,
        is_weekend: day_of_week >= 5,
        day_of_month: day_of_month as i32,
    }
}

/// `(year, month 1-12, day 1-31)` of a count of days since 1970-01-01 (negative before), in
/// the proleptic Gregorian calendar.
///
/// Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms"
/// (<https://howardhinnant.github.io/date_algorithms.html#civil_from_days>): shifts the epoch
/// to 0000-03-01 so that the leap day ends the year, then splits into 400-year eras.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // year of era, [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1, [0, 365]
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(micros: i64) -> TimeFeatures {
        time_features(Event {
            event_ts: Timestamp::from_micros(micros),
        })
    }

    #[test]
    fn epoch_is_thursday_first_of_january() {
        assert_eq!(
            at(0),
            TimeFeatures {
                hour_of_day: 0,
                day_of_week: 3,
                is_weekend: false,
                day_of_month: 1
            }
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn just_before_the_epoch() {
        assert_eq!(
            at(-1),
            TimeFeatures {
                hour_of_day: 23,
                day_of_week: 2,
                is_weekend: false,
                day_of_month: 31
            }
        );
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn known_dates() {
        // 2000-02-29 (leap day of a century leap year) was a Tuesday.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(at(11_016 * Timestamp::MICROS_PER_DAY).day_of_week, 1);
        // 2024-06-15T13:45:00Z was a Saturday.
        let t = 1_718_459_100 * Timestamp::MICROS_PER_SECOND;
        assert_eq!(
            at(t),
            TimeFeatures {
                hour_of_day: 13,
                day_of_week: 5,
                is_weekend: true,
                day_of_month: 15
            }
        );
        // 1900-03-01 (1900 is not a leap year) was a Thursday.
        assert_eq!(civil_from_days(-25_508), (1900, 3, 1));
        assert_eq!(at(-25_508 * Timestamp::MICROS_PER_DAY).day_of_week, 3);
    }

    #[test]
    fn extremes_do_not_overflow() {
        for micros in [i64::MIN, i64::MAX] {
            let f = at(micros);
            assert!((0..24).contains(&f.hour_of_day));
            assert!((0..7).contains(&f.day_of_week));
            assert!((1..=31).contains(&f.day_of_month));
        }
    }

    #[test]
    fn civil_from_days_walks_the_calendar() {
        let (mut y, mut m, mut d) = civil_from_days(-800_000);
        for days in -799_999..800_000 {
            let next = civil_from_days(days);
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let month_len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ][m as usize - 1];
            let expected = if d < month_len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(next, expected, "day {days}");
            (y, m, d) = next;
        }
    }
}
