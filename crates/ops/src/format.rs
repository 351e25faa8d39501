//! Numbers, money and times as people read them — one formatter for the web UI and the CLI:
//! 1,234 · 12.5 % · $0.0123 · 1.2 s · 2026-11-27 04:20 UTC.

use time::OffsetDateTime;

/// `1234567` → `1,234,567`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A moment in UTC to the minute (`2026-11-27 04:20 UTC`), or `Never`.
pub fn moment(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "Never".into();
    };
    match OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "Never".into(),
    }
}

/// A moment in UTC to the second (`2026-11-27 04:20:07`), for tables of events.
pub fn clock(ms: i64) -> String {
    let text = langguard_clock::format_ms(ms);
    text.get(..19).unwrap_or(&text).replace('T', " ")
}

/// A fraction as a percentage (`0.125` → `12.5 %`), or `–` without data.
pub fn percent(fraction: Option<f64>) -> String {
    match fraction {
        Some(f) if f.is_finite() => format!("{:.1} %", f * 100.0),
        _ => "–".into(),
    }
}

/// Dollars: four decimals under a dollar (`$0.0123`), cents above (`$1,234.56`), rounded (never
/// cut: `$2.999` is `$3.00`), the sign before the dollar (`-$1.50`).
pub fn usd(amount: f64) -> String {
    if !amount.is_finite() {
        return "–".into();
    }
    let sign = if amount < 0.0 { "-" } else { "" };
    let amount = amount.abs();
    if amount < 1.0 {
        // Rounded to four places, a sum just under a dollar may read `$1.0000`; that is fine.
        return format!("{sign}${amount:.4}");
    }
    let cents = (amount * 100.0).round() as i64;
    format!("{sign}${}.{:02}", count(cents / 100), cents % 100)
}

/// A duration in milliseconds as people say it: `850 ms`, `1.2 s`, or `–`.
pub fn duration(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms.is_finite() && ms >= 1_000.0 => format!("{:.1} s", ms / 1_000.0),
        Some(ms) if ms.is_finite() => format!("{ms:.0} ms"),
        _ => "–".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_234), "1,234");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-12_345), "-12,345");
    }

    #[test]
    fn moments_are_utc_minutes() {
        assert_eq!(clock(1_767_225_607_000), "2026-01-01 00:00:07");
        assert_eq!(moment(None), "Never");
        assert_eq!(moment(Some(1_767_225_600_000)), "2026-01-01 00:00 UTC");
    }

    #[test]
    fn money_is_rounded_and_keeps_its_sign() {
        assert_eq!(usd(0.0123), "$0.0123");
        assert_eq!(usd(0.0), "$0.0000");
        assert_eq!(usd(1234.5), "$1,234.50");
        assert_eq!(usd(2.999), "$3.00");
        assert_eq!(usd(2.994), "$2.99");
        assert_eq!(usd(-1.5), "-$1.50");
        assert_eq!(usd(-0.25), "-$0.2500");
        assert_eq!(usd(-1234.567), "-$1,234.57");
        assert_eq!(usd(f64::NAN), "–");
    }

    #[test]
    fn rates_and_durations_read_naturally() {
        assert_eq!(percent(Some(0.125)), "12.5 %");
        assert_eq!(percent(None), "–");
        assert_eq!(duration(Some(850.0)), "850 ms");
        assert_eq!(duration(Some(87.4)), "87 ms");
        assert_eq!(duration(Some(1_234.0)), "1.2 s");
        assert_eq!(duration(None), "–");
    }
}
