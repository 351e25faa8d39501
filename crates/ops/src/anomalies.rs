//! Spend anomalies (Cloudflare's AI Spend rule, per user): the detector, run in the people
//! upkeep each minute, judges every user session with new traffic against the user's own
//! earlier sessions and the organisation's p99 (see `langguard_store::anomaly_model`), and
//! the list the People page, the API and the `spend-anomaly` policy read.

use std::time::{Duration, Instant};

use langguard_clock::format_ms;
use langguard_store::{
    judge_session, AnomalyQuery, IdentityKind, SessionCheck, Store, StoreResult, UserSession,
    BASELINE_DAYS, DAY_MS, HOUR_MS, ORG_PERCENTILE,
};
use serde::Serialize;

use crate::people::{dollars, keys, person_path};
use crate::{OpsError, OpsResult, Services};

/// Sessions judged per step.
pub const CHECK_STEP: u32 = 2_000;
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;
pub const MAX_DAYS: u32 = 30;

/// Judges the sessions with traffic not judged yet, oldest first, until none is left or
/// `budget` has passed (one step at least, so a long backfill can't starve it); returns how
/// many sessions it judged and how many it newly flagged.
pub async fn detect(store: &dyn Store, now_ms: i64, budget: Duration) -> StoreResult<(u64, u64)> {
    let started = Instant::now();
    let (mut judged, mut flagged) = (0, 0);
    // Read once per round: a p99 over every session moves little in a minute.
    let mut org_p99 = None;
    loop {
        // Sessions older than a baseline reaches are left to the prune.
        let due = store
            .sessions_to_check(now_ms - (BASELINE_DAYS + 1) * DAY_MS, CHECK_STEP)
            .await?;
        if due.is_empty() {
            break;
        }
        if org_p99.is_none() {
            org_p99 = Some(store.session_cost_percentile(ORG_PERCENTILE).await?);
        }
        let org_p99 = org_p99.flatten();
        let mut checks = Vec::with_capacity(due.len());
        // Due sessions come a user's together: their sessions are read once for all of them.
        let mut history: Option<(String, Vec<(i64, f64)>)> = None;
        for session in due {
            let anomaly = if session.anomaly.is_some() {
                // Flagged once, flagged for good: the figures of that moment are kept.
                None
            } else {
                if history
                    .as_ref()
                    .is_none_or(|(user, _)| *user != session.user)
                {
                    // Every session a due one's baseline can reach (due ones start at most
                    // BASELINE_DAYS + 1 days ago).
                    let sessions = store
                        .session_costs(
                            &session.user,
                            now_ms - (2 * BASELINE_DAYS + 1) * DAY_MS,
                            i64::MAX,
                        )
                        .await?;
                    history = Some((session.user.clone(), sessions));
                }
                let earlier = history.as_ref().map_or(&[][..], |(_, s)| s.as_slice());
                let from = session.first_ms - BASELINE_DAYS * DAY_MS;
                let mut baseline: Vec<f64> = earlier
                    .iter()
                    .filter(|(start, _)| (from..session.first_ms).contains(start))
                    .map(|(_, cost)| *cost)
                    .collect();
                judge_session(session.cost_usd, &mut baseline, org_p99, now_ms)
            };
            flagged += u64::from(anomaly.is_some());
            judged += 1;
            checks.push(SessionCheck {
                user: session.user,
                session: session.session,
                hour_ms: session.hour_ms,
                requests: session.requests,
                anomaly,
            });
        }
        store.save_session_checks(checks).await?;
        if started.elapsed() >= budget {
            break;
        }
    }
    if flagged > 0 {
        tracing::info!(flagged, "people: sessions flagged as spend anomalies");
    }
    Ok((judged, flagged))
}

/// The query string that filters the Trace Explorer to one session's traffic.
pub fn session_traces_url(
    user_key: &str,
    session_key: Option<&str>,
    session: &UserSession,
) -> String {
    let pair = |k: &str, v: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("metadata", &format!("{k}={v}"))
            .finish()
    };
    let mut url = format!("/traces?{}", pair(user_key, &session.user));
    let (from, to) = match session_key.filter(|_| !session.session.is_empty()) {
        Some(key) => {
            url.push('&');
            url.push_str(&pair(key, &session.session));
            (session.first_ms, session.last_ms + 1)
        }
        None => (session.hour_ms, session.hour_ms + HOUR_MS),
    };
    let range = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("from", &format_ms(from))
        .append_pair("to", &format_ms(to))
        .finish();
    format!("{url}&{range}")
}

/// One flagged session, as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnomalyView {
    pub user: String,
    /// The session key's value; null where the session is an hour of the user's traffic.
    pub session: Option<String>,
    /// The hour (RFC 3339) of an hour session; null for a named one.
    pub hour: Option<String>,
    /// First and last request of the session (RFC 3339).
    pub started: String,
    pub last_seen: String,
    pub requests: i64,
    /// The session's spend now.
    pub spend_usd: f64,
    /// What it had spent when it was flagged, and what it was judged against.
    pub flagged_spend_usd: f64,
    pub user_p95_usd: f64,
    /// The user's earlier sessions (30 days) behind the p95.
    pub baseline_sessions: i64,
    pub org_p99_usd: f64,
    /// The flagged spend over the user's p95 (e.g. 3.1 for "3.1×").
    pub times_p95: f64,
    pub flagged_at: String,
    /// The Trace Explorer filtered to this session's requests.
    pub traces_url: String,
    /// The user's page.
    pub person_url: String,
}

impl AnomalyView {
    fn new(s: &UserSession, user_key: &str, session_key: Option<&str>) -> Option<Self> {
        let a = s.anomaly?;
        Some(Self {
            user: s.user.clone(),
            session: (!s.session.is_empty()).then(|| s.session.clone()),
            hour: s.session.is_empty().then(|| format_ms(s.hour_ms)),
            started: format_ms(s.first_ms),
            last_seen: format_ms(s.last_ms),
            requests: s.requests,
            spend_usd: dollars(s.cost_usd),
            flagged_spend_usd: dollars(a.spend_usd),
            user_p95_usd: dollars(a.user_p95_usd),
            baseline_sessions: a.baseline_sessions,
            org_p99_usd: dollars(a.org_p99_usd),
            times_p95: if a.user_p95_usd > 0.0 {
                (a.spend_usd / a.user_p95_usd * 10.0).round() / 10.0
            } else {
                0.0
            },
            flagged_at: format_ms(a.flagged_at_ms),
            traces_url: session_traces_url(user_key, session_key, s),
            person_url: person_path(IdentityKind::User, &s.user),
        })
    }
}

/// Which anomalies to list, as a client wrote it.
#[derive(Debug, Clone, Default)]
pub struct AnomalyListInput {
    /// Only this user's.
    pub user: Option<String>,
    /// Sessions with traffic in the last `days` days (default and most: 30).
    pub days: Option<u32>,
    pub limit: Option<u32>,
}

/// Flagged sessions, newest flag first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnomalyList {
    /// The metadata keys naming users and sessions (null: none named; without a user key
    /// nothing is detected, without a session key each hour of a user's traffic is a session).
    pub user_key: Option<String>,
    pub session_key: Option<String>,
    /// The rule: a session at least `factor` times the user's own p95 of their earlier
    /// sessions (at least `min_baseline_sessions` of them) and above the organisation's p99.
    pub factor: f64,
    pub min_baseline_sessions: usize,
    pub anomalies: Vec<AnomalyView>,
}

#[tracing::instrument(skip_all)]
pub async fn list(ops: &Services, now_ms: i64, input: AnomalyListInput) -> OpsResult<AnomalyList> {
    let days = input.days.unwrap_or(MAX_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(OpsError::invalid(
            "invalid_days",
            format!("days must be between 1 and {MAX_DAYS}"),
        ));
    }
    let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(OpsError::invalid(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let keys = keys(ops).await?;
    let anomalies = match keys.user_key.as_deref() {
        None => Vec::new(),
        Some(user_key) => ops
            .store
            .spend_anomalies(&AnomalyQuery {
                user: input.user.filter(|u| !u.is_empty()),
                since_ms: now_ms - i64::from(days) * DAY_MS,
                limit,
            })
            .await?
            .iter()
            .filter_map(|s| AnomalyView::new(s, user_key, keys.session_key.as_deref()))
            .collect(),
    };
    Ok(AnomalyList {
        user_key: keys.user_key,
        session_key: keys.session_key,
        factor: langguard_store::ANOMALY_FACTOR,
        min_baseline_sessions: langguard_store::MIN_BASELINE_SESSIONS,
        anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(name: &str) -> UserSession {
        UserSession {
            user: "ana@x.io".into(),
            session: name.into(),
            hour_ms: if name.is_empty() { 7_200_000 } else { 0 },
            first_ms: 7_300_000,
            last_ms: 7_400_000,
            requests: 3,
            cost_usd: 1.0,
            anomaly: None,
        }
    }

    #[test]
    fn a_sessions_traces_are_its_user_and_session_or_its_hour() {
        assert_eq!(
            session_traces_url("user_id", Some("sid"), &session("s 1")),
            "/traces?metadata=user_id%3Dana%40x.io&metadata=sid%3Ds+1\
             &from=1970-01-01T02%3A01%3A40.000Z&to=1970-01-01T02%3A03%3A20.001Z"
        );
        assert_eq!(
            session_traces_url("user_id", Some("sid"), &session("")),
            "/traces?metadata=user_id%3Dana%40x.io\
             &from=1970-01-01T02%3A00%3A00.000Z&to=1970-01-01T03%3A00%3A00.000Z"
        );
    }
}
