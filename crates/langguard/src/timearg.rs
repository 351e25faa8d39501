//! Time arguments people type: RFC 3339, a bare date, or an age like `24h`.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// Parses `s` relative to `now_ms` into Unix milliseconds.
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| format!("{s:?} is out of range"));
    }
    if let Ok(d) = Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc().unix_timestamp() * 1_000);
    }
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = number.parse().map_err(|_| {
        format!("{s:?} is not a time: use RFC 3339, YYYY-MM-DD, or an age like 90m, 24h, 7d")
    })?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("{s:?}: the unit must be s, m, h, d or w")),
    };
    Ok(now_ms - n.saturating_mul(unit_ms))
}

pub fn format_ms(ms: i64) -> String {
    langguard_clock::format_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("24h", now), Ok(now - 86_400_000));
        assert_eq!(parse_time("90m", now), Ok(now - 5_400_000));
        assert_eq!(
            parse_time("2026-09-26T10:00:00Z", now),
            Ok(1_790_416_800_000)
        );
        assert_eq!(parse_time("2026-09-26", now), Ok(1_790_380_800_000));
        assert!(parse_time("soon", now).is_err());
        assert!(parse_time("5y", now).is_err());
    }
}
