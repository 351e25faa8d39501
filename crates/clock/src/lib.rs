//! LangGuard's one notion of time. Every timestamp is Unix milliseconds (`i64`) inside the
//! product and RFC 3339 UTC with milliseconds outside it (`2026-08-05T14:44:36.727Z`, the way
//! Cloudflare writes `created_at`): the API, the UI, the CLI and exports all read and write that.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Formats Unix milliseconds the way Cloudflare writes `created_at`.
pub fn format_ms(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Parses an RFC 3339 timestamp to Unix milliseconds (sub-millisecond digits are dropped).
/// Also accepts the near-misses seen in the wild — a space for the `T`, no offset (UTC) — since
/// a log whose time can't be read can't be stored.
pub fn parse_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let t = OffsetDateTime::parse(s, &Rfc3339).ok().or_else(|| {
        let mut fixed = s.replacen(' ', "T", 1);
        let has_offset = fixed.ends_with('Z')
            || fixed.ends_with('z')
            || fixed
                .get(19..)
                .is_some_and(|tail| tail.contains('+') || tail.contains('-'));
        if !has_offset {
            fixed.push('Z');
        }
        OffsetDateTime::parse(&fixed, &Rfc3339).ok()
    })?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_cloudflare_timestamps() {
        let ms = parse_ms("2026-08-05T14:44:36.727Z").expect("parses");
        assert_eq!(format_ms(ms), "2026-08-05T14:44:36.727Z");
        assert_eq!(parse_ms("2026-08-05T16:44:36.727+02:00"), Some(ms));
        assert_eq!(parse_ms("2026-09-26T10:00:00Z"), Some(1_790_416_800_000));
        assert_eq!(parse_ms("yesterday"), None);
        assert_eq!(parse_ms("2026-08-05 14:44:36.727"), Some(ms));
        assert_eq!(parse_ms("2026-08-05T14:44:36.727"), Some(ms));
        assert_eq!(parse_ms("2026-08-05 14:44:36.727+00:00"), Some(ms));
    }
}
