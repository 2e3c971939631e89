//! Windows, and the tiles (time buckets) whose states merge into a window's state.
//!
//! A window of length `w` at time `t` is the half-open interval `(t - w, t]` of event times;
//! a lifetime window is `(-inf, t]`. Tiles use the same convention: tile `j` of width `d` holds
//! the events with `(j - 1)·d < event_ts <= j·d`, so a window whose ends fall on multiples of
//! `d` is exactly a run of whole tiles, and [`cover`] splits any window into aligned tiles of a
//! few widths (say 1 d, 1 h, 1 min and 1 µs) with no event counted twice or missed.

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::registry::parse_duration;

/// The time span an aggregation covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    /// All events at or before `t`.
    Lifetime,
    /// The events with `t - length < event_ts <= t`; `length` in µs, at least 1.
    Span(i64),
}

impl Window {
    /// Parses `lifetime` or a duration such as `24h` or `7d`.
    pub fn parse(text: &str) -> Result<Self> {
        if text == "lifetime" {
            return Ok(Window::Lifetime);
        }
        let d = parse_duration(text).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{} (or `lifetime`)", e.message()),
            )
        })?;
        if d == Duration::ZERO {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("window `{text}` is empty; a window must be longer than zero"),
            ));
        }
        Ok(Window::Span(crate::micros::duration(d)))
    }

    /// Whether an event at `event_ts` is in the window at `t`.
    pub fn contains(self, t: i64, event_ts: i64) -> bool {
        event_ts <= t
            && match self {
                Window::Lifetime => true,
                // In i128: t - length may be below i64::MIN.
                Window::Span(length) => i128::from(event_ts) > i128::from(t) - i128::from(length),
            }
    }

    /// The exclusive start of the window at `t` (`None` for lifetime, or when it is before
    /// every representable time).
    pub fn start(self, t: i64) -> Option<i64> {
        match self {
            Window::Lifetime => None,
            Window::Span(length) => t.checked_sub(length),
        }
    }
}

/// The tile of width `width` (µs, at least 1) holding an event at `event_ts`: the `j` with
/// `(j - 1)·width < event_ts <= j·width`.
pub fn tile_of(event_ts: i64, width: i64) -> i64 {
    debug_assert!(width >= 1);
    // ceil(event_ts / width), for negative times too.
    let q = event_ts.div_euclid(width);
    if event_ts.rem_euclid(width) == 0 {
        q
    } else {
        q + 1
    }
}

/// Splits `(start, end]` into aligned tiles `(width, j)` of the given widths, largest first
/// where they fit. `widths` must include 1, so every interval has a cover; the tiles are
/// disjoint and their union is exactly the interval. Empty when `end <= start`.
pub fn cover(start: i64, end: i64, widths: &[i64]) -> Vec<(i64, i64)> {
    debug_assert!(widths.contains(&1));
    let mut widths = widths.to_vec();
    widths.sort_unstable_by(|a, b| b.cmp(a));
    let mut tiles = Vec::new();
    let mut at = start;
    while at < end {
        let width = widths
            .iter()
            .copied()
            .find(|&w| at.rem_euclid(w) == 0 && at.checked_add(w).is_some_and(|e| e <= end))
            .unwrap_or(1);
        tiles.push((width, at / width + 1));
        at += width;
    }
    tiles
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn edges_follow_the_definition() {
        let w = Window::Span(10);
        assert!(!w.contains(100, 90), "t - window is excluded");
        assert!(w.contains(100, 91));
        assert!(w.contains(100, 100), "t is included");
        assert!(!w.contains(100, 101));
        assert!(Window::Lifetime.contains(100, i64::MIN));
        assert!(Window::Span(i64::MAX).contains(i64::MIN + 1, i64::MIN));
        assert_eq!(Window::parse("24h").unwrap(), Window::Span(86_400_000_000));
        assert_eq!(Window::parse("lifetime").unwrap(), Window::Lifetime);
        assert!(Window::parse("0s").unwrap_err().message().contains("empty"));
        assert!(
            Window::parse("soon")
                .unwrap_err()
                .message()
                .contains("`soon`")
        );
        assert_eq!(tile_of(10, 10), 1);
        assert_eq!(tile_of(11, 10), 2);
        assert_eq!(tile_of(0, 10), 0);
        assert_eq!(tile_of(-1, 10), 0);
        assert_eq!(tile_of(-10, 10), -1);
    }

    proptest! {
        #[test]
        fn a_cover_holds_every_event_of_the_interval_once(
            start in -500i64..500, length in 0i64..400, ts in -600i64..1000,
        ) {
            let end = start + length;
            let tiles = cover(start, end, &[100, 7, 1, 30]);
            let holding = tiles.iter().filter(|(w, j)| tile_of(ts, *w) == *j).count();
            prop_assert_eq!(holding, usize::from(ts > start && ts <= end));
        }
    }
}
