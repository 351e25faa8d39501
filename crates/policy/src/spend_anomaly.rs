//! `input.spend_anomaly`: the interaction's user session as the people upkeep last judged it
//! (at most a minute old), so a policy — the built-in `spend-anomaly` — can flag the traffic of
//! a session far above its user's habit. Present only when a user key is named and the
//! interaction names a user.

use std::collections::HashMap;

use langguard_clock::format_ms;
use langguard_store::{
    user_session_of, IdentityKind, Interaction, SessionOf, Store, StoreResult, UserSession,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendAnomalyInput {
    pub user: String,
    /// The session key's value; null where the session is the hour (`hour`).
    pub session: Option<String>,
    pub hour: Option<String>,
    /// The session's spend and requests as last folded (0 before its first fold).
    pub session_spend_usd: f64,
    pub session_requests: i64,
    /// The session is flagged: far above the user's own p95 and the organisation's p99.
    pub anomalous: bool,
    /// What it was judged against when flagged (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_p95_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_sessions: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_p99_usd: Option<f64>,
}

impl SpendAnomalyInput {
    fn new(key: &SessionOf, stored: Option<&UserSession>) -> Self {
        let (user, session, hour_ms) = key;
        let anomaly = stored.and_then(|s| s.anomaly);
        Self {
            user: user.clone(),
            session: (!session.is_empty()).then(|| session.clone()),
            hour: session.is_empty().then(|| format_ms(*hour_ms)),
            session_spend_usd: stored.map_or(0.0, |s| s.cost_usd),
            session_requests: stored.map_or(0, |s| s.requests),
            anomalous: anomaly.is_some(),
            user_p95_usd: anomaly.map(|a| a.user_p95_usd),
            baseline_sessions: anomaly.map(|a| a.baseline_sessions),
            org_p99_usd: anomaly.map(|a| a.org_p99_usd),
        }
    }
}

/// Each interaction's session (those naming a user), read in one go for a batch.
pub async fn load(
    store: &dyn Store,
    interactions: &[Interaction],
) -> StoreResult<HashMap<i64, SpendAnomalyInput>> {
    let keys = store.identity_keys().await?;
    let Some(user_key) = keys.iter().find(|k| k.kind == IdentityKind::User) else {
        return Ok(HashMap::new());
    };
    let sessions: Vec<(i64, SessionOf)> = interactions
        .iter()
        .filter_map(|i| Some((i.id, user_session_of(user_key, &i.log)?)))
        .collect();
    let mut wanted: Vec<SessionOf> = sessions.iter().map(|(_, s)| s.clone()).collect();
    wanted.sort();
    wanted.dedup();
    let stored: HashMap<SessionOf, UserSession> = store
        .user_sessions(wanted)
        .await?
        .into_iter()
        .map(|s| ((s.user.clone(), s.session.clone(), s.hour_ms), s))
        .collect();
    Ok(sessions
        .into_iter()
        .map(|(id, key)| {
            let input = SpendAnomalyInput::new(&key, stored.get(&key));
            (id, input)
        })
        .collect())
}
