//! Durations as feature repos write them: `90s`, `15m`, `12h`, `30d`, `2w`, or combinations
//! such as `1d12h`.

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// Parses a duration such as `30d` or `1h30m`; units `s`, `m`, `h`, `d`, `w`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let invalid = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "`{text}` is not a duration; expected a number and a unit (s, m, h, d or w), \
                 such as `30d`, `12h` or `1d12h`"
            ),
        )
    };
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(invalid()),
        };
        let n: u64 = digits.parse().map_err(|_| invalid())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(invalid)?;
        digits.clear();
    }
    if !digits.is_empty() || text.trim().is_empty() {
        return Err(invalid());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_combinations_parse_and_nonsense_is_rejected_with_the_text() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            parse_duration("1d12h").unwrap(),
            Duration::from_secs(36 * 3600)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
        for bad in ["", "30", "d", "3x", "1.5h", "-1d", "99999999999999999999d"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.message().contains(&format!("`{bad}`")), "{e}");
        }
    }
}
