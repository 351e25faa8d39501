//! Spend anomalies: Cloudflare's AI Spend rule, per user. Each user's spend is summed per
//! session (the session key's value, or the hour where a log names no session); a session is
//! anomalous when it costs at least [`ANOMALY_FACTOR`] times the user's own p95 over their
//! earlier sessions (with at least [`MIN_BASELINE_SESSIONS`] of them, so a newcomer's first
//! busy day is not "anomalous") *and* more than the organisation's p99 session — far above the
//! person's habit and large for anyone, so a heavy user's normal day and a light user's
//! slightly busier one are both left alone.

use serde::Serialize;

/// How far above the user's own p95 a session must be.
pub const ANOMALY_FACTOR: f64 = 2.0;
pub const USER_PERCENTILE: f64 = 95.0;
pub const ORG_PERCENTILE: f64 = 99.0;
/// Earlier sessions a user needs before any of theirs is judged.
pub const MIN_BASELINE_SESSIONS: usize = 10;
/// How far back the baselines reach (sessions older than this are dropped).
pub const BASELINE_DAYS: i64 = 30;

/// What made a session anomalous, as judged when it was flagged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SessionAnomaly {
    pub flagged_at_ms: i64,
    /// The session's spend when it was flagged.
    pub spend_usd: f64,
    pub user_p95_usd: f64,
    pub baseline_sessions: i64,
    pub org_p99_usd: f64,
}

/// One user session's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSession {
    pub user: String,
    /// The session key's value; "" for an hour of traffic without one.
    pub session: String,
    /// The hour's start for an hour session, 0 for a named one.
    pub hour_ms: i64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub requests: i64,
    pub cost_usd: f64,
    pub anomaly: Option<SessionAnomaly>,
}

/// The outcome of judging a session at `requests` requests; saving it marks the session
/// checked up to there (more traffic makes it due again).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionCheck {
    pub user: String,
    pub session: String,
    pub hour_ms: i64,
    pub requests: i64,
    /// Set when the session is anomalous now; a session stays flagged once it was.
    pub anomaly: Option<SessionAnomaly>,
}

/// Which flagged sessions to list, newest flag first.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyQuery {
    pub user: Option<String>,
    /// Flagged at or after.
    pub since_ms: i64,
    pub limit: u32,
}

/// The `p`th percentile (nearest rank) of `values`, sorting them; `None` when empty.
pub fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// The rank (1-based, counted from the top) of the organisation's `p`th percentile among `n`
/// sessions, so a store can read it as the `rank`th largest through its index.
pub fn rank_from_top(n: u64, p: f64) -> u64 {
    let rank = ((p / 100.0) * n as f64).ceil() as u64;
    n + 1 - rank.clamp(1, n.max(1))
}

/// Judges a session of `cost_usd` against the user's earlier sessions' costs and the
/// organisation's p99; `None` when it is not anomalous.
pub fn judge_session(
    cost_usd: f64,
    baseline: &mut [f64],
    org_p99_usd: Option<f64>,
    now_ms: i64,
) -> Option<SessionAnomaly> {
    if baseline.len() < MIN_BASELINE_SESSIONS {
        return None;
    }
    let user_p95 = percentile(baseline, USER_PERCENTILE)?;
    let org_p99 = org_p99_usd?;
    (cost_usd > 0.0 && cost_usd >= ANOMALY_FACTOR * user_p95 && cost_usd > org_p99).then_some(
        SessionAnomaly {
            flagged_at_ms: now_ms,
            spend_usd: cost_usd,
            user_p95_usd: user_p95,
            baseline_sessions: baseline.len() as i64,
            org_p99_usd: org_p99,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 95.0), Some(95.0));
        assert_eq!(percentile(&mut v, 99.0), Some(99.0));
        assert_eq!(percentile(&mut [3.0, 1.0, 2.0], 95.0), Some(3.0));
        assert_eq!(percentile(&mut [], 95.0), None);
        // The 99th percentile of 100 sessions is the 2nd largest; of 1, the only one.
        assert_eq!(rank_from_top(100, 99.0), 2);
        assert_eq!(rank_from_top(1, 99.0), 1);
        assert_eq!(rank_from_top(1_000, 99.0), 11);
    }

    #[test]
    fn a_session_must_be_far_above_the_users_habit_and_large_for_anyone() {
        let mut usual = vec![1.0; 20];
        let tripled = judge_session(3.0, &mut usual, Some(2.5), 7).expect("anomalous");
        assert_eq!((tripled.user_p95_usd, tripled.baseline_sessions), (1.0, 20));
        assert_eq!(tripled.flagged_at_ms, 7);
        // Under twice the habit.
        assert_eq!(judge_session(1.9, &mut usual, Some(0.5), 7), None);
        // Not above the organisation's p99.
        assert_eq!(judge_session(3.0, &mut usual, Some(3.0), 7), None);
        // Too few earlier sessions to know the habit.
        assert_eq!(judge_session(30.0, &mut [1.0; 9], Some(2.0), 7), None);
        // Nothing spent is never anomalous.
        assert_eq!(judge_session(0.0, &mut [0.0; 20], Some(-1.0), 7), None);
    }
}
