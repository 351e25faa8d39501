//! Numbers and times as people read them.

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

/// Dollars: four decimals under a dollar (`$0.0123`), cents above (`$1,234.56`).
pub fn usd(amount: f64) -> String {
    if !amount.is_finite() {
        return "–".into();
    }
    if amount.abs() < 1.0 {
        return format!("${amount:.4}");
    }
    let cents = (amount * 100.0).round() as i64;
    format!("${}.{:02}", count(cents / 100), (cents % 100).abs())
}

/// A duration in milliseconds as people say it: `850 ms`, `1.2 s`, or `–`.
pub fn duration(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms.is_finite() && ms >= 1_000.0 => format!("{:.1} s", ms / 1_000.0),
        Some(ms) if ms.is_finite() => format!("{ms:.0} ms"),
        _ => "–".into(),
    }
}

/// The success-rate colour of PRODUCT-SPEC §3: green from 95 %, yellow from 85 %, red below.
pub fn health_class(success_rate: Option<f64>) -> &'static str {
    match success_rate {
        None => "none",
        Some(r) if r >= 0.95 => "good",
        Some(r) if r >= 0.85 => "fair",
        Some(_) => "poor",
    }
}

/// Text made safe to put in HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
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
    fn money_rates_and_durations_read_naturally() {
        assert_eq!(percent(Some(0.125)), "12.5 %");
        assert_eq!(percent(None), "–");
        assert_eq!(usd(0.0123), "$0.0123");
        assert_eq!(usd(1234.5), "$1,234.50");
        assert_eq!(duration(Some(850.0)), "850 ms");
        assert_eq!(duration(Some(1_234.0)), "1.2 s");
        assert_eq!(health_class(Some(0.96)), "good");
        assert_eq!(health_class(Some(0.90)), "fair");
        assert_eq!(health_class(Some(0.50)), "poor");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
