//! People and teams: the metadata keys that name them, and the per-identity rollups kept at
//! ingest for those keys — per UTC day (spend over time, active days), per day and model (top
//! model and provider), and a rolling 30-day summary per identity so "top 50 by spend" is one
//! indexed read however many interactions there are.
//!
//! Ingest only appends a batch's additions to a pending table (in order, cheap); folding them
//! into the per-identity tables — random updates, one per identity and day — happens once a
//! minute in the upkeep (`fold_identities`), so a busy minute costs one update per identity
//! instead of one per batch. The summary holds day `D` iff `D >=` the window's stored start
//! when `D`'s additions were folded; moving the start forward subtracts the days it passes (see
//! `advance_people_window`), so the summary always equals the sum of the identity's days in
//! the window.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::NewInteraction;

wire_enum!(
    /// What an identity is: a person (`user`) or the team they belong to.
    IdentityKind {
        User => "user",
        Team => "team",
    }
);

/// Days in the rolling window of the people summary.
pub const PEOPLE_WINDOW_DAYS: i64 = 30;
pub const DAY_MS: i64 = 86_400_000;

/// Identities longer than this are not counted: a metadata value that long is not a name, and
/// storing it per day would let one caller bloat the rollups.
pub const MAX_IDENTITY_CHARS: usize = 200;

/// The start of the UTC day `ms` falls in.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// The first day of the rolling window that ends on the day of `now_ms`.
pub fn people_window_start(now_ms: i64) -> i64 {
    day_of(now_ms) - (PEOPLE_WINDOW_DAYS - 1) * DAY_MS
}

/// A metadata key that identifies one kind of identity, and how far the rollups of logs
/// stored before it was named have been built.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityKey {
    pub kind: IdentityKind,
    pub meta_key: String,
    /// Users only: the metadata key naming a session, whose spend the anomaly detection
    /// compares (`None`, or a log without it: the user's hour is the session).
    pub session_key: Option<String>,
    /// Logs with ids below this are still to be counted by the background backfill; `None`
    /// once every stored log is.
    pub backfill_below_id: Option<i64>,
    pub set_at_ms: i64,
}

/// Totals of one identity on one day (or over the window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct IdentityTotals {
    pub requests: i64,
    pub errors: i64,
    pub cache_hits: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub first_ms: i64,
    pub last_ms: i64,
}

impl IdentityTotals {
    fn add(&mut self, log: &NewInteraction) {
        let first = self.requests == 0;
        self.requests += 1;
        self.errors += i64::from(!log.success);
        self.cache_hits += i64::from(log.cached);
        self.tokens_in += log.tokens_in.unwrap_or(0);
        self.tokens_out += log.tokens_out.unwrap_or(0);
        self.cost_usd += log.cost_usd.unwrap_or(0.0);
        self.first_ms = if first {
            log.created_at_ms
        } else {
            self.first_ms.min(log.created_at_ms)
        };
        self.last_ms = if first {
            log.created_at_ms
        } else {
            self.last_ms.max(log.created_at_ms)
        };
    }
}

/// `(kind, identity, day, provider, model)`.
pub type IdentityModelDay = (IdentityKind, String, i64, String, String);

/// `(user, session, hour_ms)`: a named session has `hour_ms` 0; where there is none the
/// session is "" and the hour the log falls in.
pub type SessionOf = (String, String, i64);

pub const HOUR_MS: i64 = 3_600_000;

/// The session a user's log belongs to under `key` (the user key): the session key's value, or
/// the log's hour where it has none.
pub fn session_of(
    key: &IdentityKey,
    fields: &serde_json::Map<String, serde_json::Value>,
    at_ms: i64,
) -> (String, i64) {
    key.session_key
        .as_ref()
        .and_then(|k| fields.get(k))
        .and_then(identity_of)
        .map(|named| (named, 0))
        .unwrap_or_else(|| (String::new(), at_ms.div_euclid(HOUR_MS) * HOUR_MS))
}

/// A log's user and session under the user key, `None` when the log names no user.
pub fn user_session_of(key: &IdentityKey, log: &NewInteraction) -> Option<SessionOf> {
    let fields = metadata_fields(log)?;
    let user = fields.get(&key.meta_key).and_then(identity_of)?;
    let (session, hour_ms) = session_of(key, &fields, log.created_at_ms);
    Some((user, session, hour_ms))
}

fn metadata_fields(log: &NewInteraction) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str::<serde_json::Value>(log.metadata.as_deref()?) {
        Ok(serde_json::Value::Object(fields)) => Some(fields),
        _ => None,
    }
}

/// The identity additions of a batch of logs: per identity, day and model, and per user
/// session.
#[derive(Debug, Default, PartialEq)]
pub struct IdentityDelta {
    pub rows: HashMap<IdentityModelDay, IdentityTotals>,
    /// Per user session: the sessions keep requests, spend and first and last request.
    pub sessions: HashMap<SessionOf, IdentityTotals>,
}

impl IdentityDelta {
    /// The additions of `logs` for each key; logs without the key (or with an empty or
    /// over-long value) count for nobody.
    pub fn from_logs<'a>(
        keys: &[IdentityKey],
        logs: impl IntoIterator<Item = &'a NewInteraction>,
    ) -> Self {
        let mut delta = Self::default();
        if keys.is_empty() {
            return delta;
        }
        for log in logs {
            let Some(fields) = metadata_fields(log) else {
                continue;
            };
            for key in keys {
                if let Some(identity) = fields.get(&key.meta_key).and_then(identity_of) {
                    if key.kind == IdentityKind::User {
                        let (session, hour_ms) = session_of(key, &fields, log.created_at_ms);
                        delta
                            .sessions
                            .entry((identity.clone(), session, hour_ms))
                            .or_default()
                            .add(log);
                    }
                    delta
                        .rows
                        .entry((
                            key.kind,
                            identity,
                            day_of(log.created_at_ms),
                            log.provider.clone(),
                            log.model.clone(),
                        ))
                        .or_default()
                        .add(log);
                }
            }
        }
        delta
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.sessions.is_empty()
    }

    /// Drops the sessions whose last traffic is before `floor_ms`: a history being counted
    /// needs only the sessions a baseline can still read (the rest would be pruned anyway).
    pub fn without_sessions_before(mut self, floor_ms: i64) -> Self {
        self.sessions.retain(|_, t| t.last_ms >= floor_ms);
        self
    }
}

/// A metadata value as an identity: strings as they are, numbers and booleans as written.
fn identity_of(value: &serde_json::Value) -> Option<String> {
    let text = match value {
        // As written (untrimmed), so the Trace Explorer's `metadata=key=value` finds its logs.
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    // Blank names nobody; `.` and `..` can't be a path segment of the identity's page.
    let usable = !text.trim().is_empty()
        && text != "."
        && text != ".."
        && text.chars().count() <= MAX_IDENTITY_CHARS;
    usable.then_some(text)
}

wire_enum!(
    /// How the people list is ordered (descending).
    PeopleSort {
        Spend => "spend",
        Requests => "requests",
        Tokens => "tokens",
        LastSeen => "last_seen",
    }
);

impl PeopleSort {
    /// The `ORDER BY` of the summary (`people`) for this sort, ties by identity.
    pub fn order_by(self) -> &'static str {
        match self {
            PeopleSort::Spend => "cost_usd DESC, identity",
            PeopleSort::Requests => "requests DESC, identity",
            PeopleSort::Tokens => "tokens_in + tokens_out DESC, identity",
            PeopleSort::LastSeen => "last_seen_ms DESC, identity",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeopleQuery {
    pub kind: IdentityKind,
    pub sort: PeopleSort,
    /// Only identities containing this (case-insensitive).
    pub search: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// One identity's figures over the rolling window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    pub kind: IdentityKind,
    pub identity: String,
    pub requests: i64,
    pub errors: i64,
    pub cache_hits: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    /// All-time.
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Days in the window with at least one request.
    pub active_days: i64,
    /// Users: sessions flagged as spend anomalies with traffic in the window.
    pub anomalies: i64,
    /// The model and provider the identity spent most on in the window (most requests where
    /// nothing was priced).
    pub top_model: Option<(String, String)>,
}

/// A page of the people list and how many identities of the kind match in all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeoplePage {
    pub people: Vec<Person>,
    pub total: u64,
}

/// One day of an identity's activity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityDayTotals {
    pub day_ms: i64,
    pub totals: IdentityTotals,
}

/// One model an identity used in a span of days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityModelTotals {
    pub provider: String,
    pub model: String,
    pub requests: i64,
    pub cost_usd: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(at: i64, metadata: &str, cost: f64, success: bool) -> NewInteraction {
        NewInteraction {
            log_id: format!("l{at}"),
            created_at_ms: at,
            provider: "openai".into(),
            model: "gpt-4o".into(),
            path: None,
            status_code: Some(200),
            success,
            cached: false,
            duration_ms: 10,
            tokens_in: Some(10),
            tokens_out: Some(5),
            cost_usd: Some(cost),
            cost_source: None,
            metadata: Some(metadata.into()),
            requested_model: None,
            details: Default::default(),
        }
    }

    fn key(kind: IdentityKind, meta_key: &str) -> IdentityKey {
        IdentityKey {
            kind,
            meta_key: meta_key.into(),
            session_key: None,
            backfill_below_id: None,
            set_at_ms: 0,
        }
    }

    #[test]
    fn counts_each_key_and_skips_logs_without_a_usable_value() {
        let keys = [
            key(IdentityKind::User, "user_id"),
            key(IdentityKind::Team, "team"),
        ];
        let logs = [
            log(1_000, r#"{"user_id":"ana","team":"ml"}"#, 1.0, true),
            log(2_000, r#"{"user_id":"ana"}"#, 2.0, false),
            log(3_000, r#"{"user_id":42}"#, 4.0, true),
            log(4_000, r#"{"user_id":"  "}"#, 8.0, true),
            log(4_500, r#"{"user_id":".."}"#, 8.0, true),
            log(5_000, r#"{"user_id":{"nested":1}}"#, 8.0, true),
            log(6_000, "not json", 8.0, true),
            log(
                7_000,
                &format!(r#"{{"user_id":"{}"}}"#, "x".repeat(201)),
                8.0,
                true,
            ),
        ];
        let delta = IdentityDelta::from_logs(&keys, &logs);
        let row = |kind, who: &str| {
            delta.rows[&(kind, who.to_owned(), 0, "openai".into(), "gpt-4o".into())]
        };
        let ana = row(IdentityKind::User, "ana");
        assert_eq!((ana.requests, ana.errors, ana.cost_usd), (2, 1, 3.0));
        assert_eq!((ana.first_ms, ana.last_ms), (1_000, 2_000));
        assert_eq!(row(IdentityKind::User, "42").cost_usd, 4.0);
        assert_eq!(row(IdentityKind::Team, "ml").requests, 1);
        assert_eq!(delta.rows.len(), 3);
    }

    #[test]
    fn a_users_sessions_are_named_by_the_session_key_or_else_by_the_hour() {
        let mut user = key(IdentityKind::User, "user_id");
        user.session_key = Some("session".into());
        let logs = [
            log(1_000, r#"{"user_id":"ana","session":"s1"}"#, 1.0, true),
            log(
                HOUR_MS * 5,
                r#"{"user_id":"ana","session":"s1"}"#,
                2.0,
                true,
            ),
            log(HOUR_MS + 7, r#"{"user_id":"ana"}"#, 4.0, true),
            log(HOUR_MS + 9, r#"{"user_id":"ana","session":""}"#, 8.0, true),
            log(HOUR_MS + 9, r#"{"session":"s1"}"#, 16.0, true),
        ];
        let delta = IdentityDelta::from_logs(&[user, key(IdentityKind::Team, "team")], &logs);
        let named = delta.sessions[&("ana".into(), "s1".into(), 0)];
        assert_eq!((named.requests, named.cost_usd), (2, 3.0));
        assert_eq!((named.first_ms, named.last_ms), (1_000, HOUR_MS * 5));
        let hour = delta.sessions[&("ana".into(), String::new(), HOUR_MS)];
        assert_eq!((hour.requests, hour.cost_usd), (2, 12.0));
        assert_eq!(delta.sessions.len(), 2);
    }

    #[test]
    fn the_window_is_thirty_days_ending_today() {
        let now = 100 * DAY_MS + 5;
        assert_eq!(people_window_start(now), 71 * DAY_MS);
        assert_eq!(day_of(-1), -DAY_MS);
    }
}
