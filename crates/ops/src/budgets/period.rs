//! A budget's period — the calendar day, ISO week (from Monday) or calendar month holding an
//! instant, in the budget's time zone — and the forecast of its spend at the period's end.

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;
use langguard_store::BudgetPeriod;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The time zone named, or why not.
pub fn zone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!("unknown time zone {name:?}; use an IANA name such as UTC, Europe/Berlin or America/New_York")
    })
}

/// When the local day `date` begins in `tz`: local midnight, or — where a clock change skips
/// midnight — the first instant of the day.
fn day_start(tz: Tz, date: NaiveDate) -> i64 {
    let mut local = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    // A gap is at most a few hours; step through it a quarter hour at a time.
    for _ in 0..96 {
        if let Some(at) = tz.from_local_datetime(&local).earliest() {
            return at.timestamp_millis();
        }
        local += Duration::minutes(15);
    }
    local.and_utc().timestamp_millis()
}

fn local_date(tz: Tz, at_ms: i64) -> NaiveDate {
    tz.timestamp_millis_opt(at_ms)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// `[start, end)` of the period holding `at_ms`, in Unix ms.
pub fn bounds(period: BudgetPeriod, tz: Tz, at_ms: i64) -> (i64, i64) {
    let today = local_date(tz, at_ms);
    let (first, next) = match period {
        BudgetPeriod::Day => (today, today + Duration::days(1)),
        BudgetPeriod::Week => {
            let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
            (monday, monday + Duration::days(7))
        }
        BudgetPeriod::Month => {
            let first = today.with_day(1).unwrap_or(today);
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
            };
            (first, next.unwrap_or(first + Duration::days(31)))
        }
    };
    (day_start(tz, first), day_start(tz, next))
}

/// The local date of an instant, as `YYYY-MM-DD`.
pub fn date_label(tz: Tz, at_ms: i64) -> String {
    local_date(tz, at_ms).format("%Y-%m-%d").to_string()
}

/// How many trailing hours the spend rate is read over: the period so far, at least a day
/// (a forecast from the first hour of a month would be noise) and at most a week (so a change
/// in usage shows within days).
pub fn rate_window_ms(period_start_ms: i64, now_ms: i64) -> i64 {
    (now_ms - period_start_ms).clamp(DAY_MS, 7 * DAY_MS)
}

/// Where spend is heading by the period's end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// Spend at the period's end if the recent rate holds.
    pub end_usd: f64,
    /// When the amount will be reached at that rate; `None` when it already has been or
    /// won't be within the period.
    pub crosses_at_ms: Option<i64>,
}

/// `spent` by `now` in `[start, end)`, and `recent_usd` spent over the `rate_window_ms` before
/// `now`: spend so far plus the recent hourly rate over the hours left.
pub fn forecast(
    amount_usd: f64,
    spent_usd: f64,
    (now_ms, end_ms): (i64, i64),
    (recent_usd, rate_window_ms): (f64, i64),
) -> Forecast {
    let per_ms = if rate_window_ms > 0 {
        recent_usd.max(0.0) / rate_window_ms as f64
    } else {
        0.0
    };
    let left_ms = (end_ms - now_ms).max(0);
    let end_usd = spent_usd + per_ms * left_ms as f64;
    // Compared in floating point before it becomes a time: a huge amount at a tiny rate is
    // centuries away, far past any i64 of milliseconds.
    let crosses_at_ms = (spent_usd < amount_usd && per_ms > 0.0)
        .then(|| ((amount_usd - spent_usd) / per_ms).ceil())
        .filter(|wait| *wait < left_ms as f64)
        .map(|wait| now_ms.saturating_add(wait as i64))
        // Shown to the hour: more precision than the rate has would mislead.
        .map(|at| at - at.rem_euclid(HOUR_MS));
    Forecast {
        end_usd,
        crosses_at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tz: Tz, y: i32, m: u32, d: u32, h: u32) -> i64 {
        tz.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .expect("a time")
            .timestamp_millis()
    }

    #[test]
    fn months_begin_at_local_midnight() {
        let ny = zone("America/New_York").expect("zone");
        // 2026-12-01 03:00 UTC is still November 30th in New York.
        let (start, end) = bounds(BudgetPeriod::Month, ny, at(chrono_tz::UTC, 2026, 12, 1, 3));
        assert_eq!(start, at(ny, 2026, 11, 1, 0));
        assert_eq!(end, at(ny, 2026, 12, 1, 0));
        assert_eq!(
            end - start,
            30 * DAY_MS + HOUR_MS,
            "November holds the end of DST"
        );
        let (start, end) = bounds(BudgetPeriod::Month, ny, at(ny, 2026, 12, 31, 23));
        assert_eq!(
            (start, end),
            (at(ny, 2026, 12, 1, 0), at(ny, 2027, 1, 1, 0))
        );
        assert_eq!(date_label(ny, start), "2026-12-01");
    }

    #[test]
    fn weeks_begin_on_monday_and_days_at_midnight() {
        let kolkata = zone("Asia/Kolkata").expect("zone");
        // Wednesday 2026-12-02, 10:00 in Kolkata.
        let now = at(kolkata, 2026, 12, 2, 10);
        assert_eq!(
            bounds(BudgetPeriod::Week, kolkata, now),
            (at(kolkata, 2026, 11, 30, 0), at(kolkata, 2026, 12, 7, 0))
        );
        assert_eq!(
            bounds(BudgetPeriod::Day, kolkata, now),
            (at(kolkata, 2026, 12, 2, 0), at(kolkata, 2026, 12, 3, 0))
        );
        assert_eq!(
            bounds(BudgetPeriod::Day, kolkata, now).0 % HOUR_MS,
            30 * 60_000
        );
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_begins_when_the_clock_resumes() {
        // Santiago moved its clocks from 00:00 to 01:00 on 2026-09-06.
        let santiago = zone("America/Santiago").expect("zone");
        let (start, end) = bounds(BudgetPeriod::Day, santiago, at(santiago, 2026, 9, 6, 12));
        assert_eq!(end - start, 23 * HOUR_MS);
    }

    #[test]
    fn unknown_zones_are_refused_with_an_example() {
        assert!(zone("Mars/Olympus")
            .expect_err("unknown")
            .contains("Europe/Berlin"));
        assert!(zone("UTC").is_ok());
    }

    #[test]
    fn the_forecast_extends_the_recent_rate_to_the_period_end() {
        // $400 spent 10 days into a 30-day month, $280 of it in the last 7 days: $40 a day.
        let (now, end) = (10 * DAY_MS, 30 * DAY_MS);
        let f = forecast(1_000.0, 400.0, (now, end), (280.0, 7 * DAY_MS));
        assert!((f.end_usd - 1_200.0).abs() < 1e-6, "{f:?}");
        // $600 to go at $40 a day: day 25.
        assert_eq!(f.crosses_at_ms, Some(25 * DAY_MS));
        // Below the amount at month end: no crossing.
        let f = forecast(5_000.0, 400.0, (now, end), (280.0, 7 * DAY_MS));
        assert_eq!(f.crosses_at_ms, None);
        // Already over: no crossing ahead; no spend lately: the forecast is what was spent.
        assert_eq!(
            forecast(100.0, 150.0, (now, end), (0.0, 7 * DAY_MS)).end_usd,
            150.0
        );
        assert_eq!(rate_window_ms(0, HOUR_MS), DAY_MS);
        assert_eq!(rate_window_ms(0, 3 * DAY_MS), 3 * DAY_MS);
        assert_eq!(rate_window_ms(0, 20 * DAY_MS), 7 * DAY_MS);
    }

    #[test]
    fn a_crossing_centuries_away_is_none_not_an_overflow() {
        let now = 1_790_000_000_000;
        let f = forecast(1e12, 0.0, (now, now + 30 * DAY_MS), (0.01, 7 * DAY_MS));
        assert_eq!(f.crosses_at_ms, None);
        assert!(f.end_usd.is_finite());
    }
}
