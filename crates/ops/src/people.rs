//! People and teams: an admin names the metadata keys that identify a user and a team
//! (`user_id`, `team`); from then on every stored log is counted for its user and team at
//! ingest, logs stored before are counted by a background backfill, and the People page lists
//! each identity's last 30 days — spend, requests, tokens, error and cache-hit rates, top
//! model, active days — from a summary kept up to date, so it is one indexed read at any size.

use std::time::{Duration, Instant};

use langguard_clock::format_ms;
use langguard_store::{
    people_window_start, IdentityKey, IdentityKind, PeopleQuery, PeopleSort, Person, Store,
    StoreResult, DAY_MS, PEOPLE_WINDOW_DAYS,
};
use serde::Serialize;
use serde_json::json;
use tracing::instrument;

use crate::{Actor, OpsError, OpsResult, Services};

/// Logs a backfill step counts in one transaction: small enough not to hold ingest up long.
pub const BACKFILL_STEP: u32 = 5_000;
/// Pending rows a fold step takes in one transaction (about a second's work on SQLite).
pub const FOLD_STEP: u32 = 100_000;
/// The most a page of people lists.
pub const MAX_LIMIT: u32 = 200;
pub const DEFAULT_LIMIT: u32 = 50;
/// The longest span of days one identity's history shows.
pub const MAX_DAYS: u32 = 366;

/// The keys named, as the API shows them.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct IdentityKeysView {
    /// The metadata key naming a user (e.g. `user_id`); null when none is named.
    pub user_key: Option<String>,
    /// The metadata key naming a team (e.g. `team`).
    pub team_key: Option<String>,
    /// The metadata key naming a user's session (e.g. `session_id`), whose spend the anomaly
    /// detection compares; null: each hour of a user's traffic is a session.
    pub session_key: Option<String>,
    /// Kinds (`user`, `team`) whose logs stored before their key was named are still being
    /// counted; their figures grow until this is empty.
    pub backfilling: Vec<&'static str>,
}

impl IdentityKeysView {
    fn new(keys: &[IdentityKey]) -> Self {
        let key = |kind| {
            keys.iter()
                .find(|k| k.kind == kind)
                .map(|k| k.meta_key.clone())
        };
        Self {
            user_key: key(IdentityKind::User),
            team_key: key(IdentityKind::Team),
            session_key: keys
                .iter()
                .find(|k| k.kind == IdentityKind::User)
                .and_then(|k| k.session_key.clone()),
            backfilling: keys
                .iter()
                .filter(|k| k.backfill_below_id.is_some())
                .map(|k| k.kind.as_str())
                .collect(),
        }
    }

    pub fn key(&self, kind: IdentityKind) -> Option<&str> {
        match kind {
            IdentityKind::User => self.user_key.as_deref(),
            IdentityKind::Team => self.team_key.as_deref(),
        }
    }
}

/// The keys to name; `None` names none for that kind.
#[derive(Debug, Clone, Default)]
pub struct IdentityKeysInput {
    pub user_key: Option<String>,
    pub team_key: Option<String>,
    /// Needs a user key.
    pub session_key: Option<String>,
}

pub async fn keys(ops: &Services) -> OpsResult<IdentityKeysView> {
    Ok(IdentityKeysView::new(&ops.store.identity_keys().await?))
}

/// A metadata key as the Trace Explorer's `metadata=key=value` filter can name it.
fn checked_key(kind: &str, key: Option<String>) -> OpsResult<Option<String>> {
    let Some(key) = key.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    let fine = key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !fine {
        return Err(OpsError::invalid(
            "invalid_identity_key",
            format!(
                "the {kind} key must be a metadata key of up to 64 letters, digits, '_', '-' or \
                 '.' (e.g. user_id); got {key:?}"
            ),
        ));
    }
    Ok(Some(key))
}

/// Names the keys. A changed key starts over: its figures are dropped, new logs are counted
/// at once and stored ones in the background.
#[instrument(skip_all)]
pub async fn set_keys(
    ops: &Services,
    actor: Actor<'_>,
    input: IdentityKeysInput,
) -> OpsResult<IdentityKeysView> {
    let user = checked_key("user", input.user_key)?;
    let team = checked_key("team", input.team_key)?;
    let session = checked_key("session", input.session_key)?;
    if session.is_some() && user.is_none() {
        return Err(OpsError::invalid(
            "invalid_identity_key",
            "a session key needs a user key: sessions are a user's",
        ));
    }
    let before = keys(ops).await?;
    ops.store
        .set_identity_key(IdentityKind::User, user.clone(), session.clone())
        .await?;
    let after = ops
        .store
        .set_identity_key(IdentityKind::Team, team.clone(), None)
        .await?;
    let now = (user.as_ref(), team.as_ref(), session.as_ref());
    if (
        before.user_key.as_ref(),
        before.team_key.as_ref(),
        before.session_key.as_ref(),
    ) != now
    {
        ops.audit(
            actor,
            "settings.people_keys_changed",
            None,
            json!({"user_key": user, "team_key": team, "session_key": session}),
            None,
        )
        .await;
    }
    Ok(IdentityKeysView::new(&after))
}

/// What to list, as a client wrote it.
#[derive(Debug, Clone, Default)]
pub struct PeopleListInput {
    /// `user` (default) or `team`.
    pub kind: Option<String>,
    /// `spend` (default), `requests`, `tokens` or `last_seen`.
    pub sort: Option<String>,
    pub q: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

pub fn parse_kind(kind: Option<&str>) -> OpsResult<IdentityKind> {
    match kind {
        None => Ok(IdentityKind::User),
        Some(k) => IdentityKind::parse(k).ok_or_else(|| {
            OpsError::invalid(
                "invalid_kind",
                format!("kind must be user or team, not {k:?}"),
            )
        }),
    }
}

impl PeopleListInput {
    fn query(self) -> OpsResult<PeopleQuery> {
        let sort = match self.sort.as_deref() {
            None => PeopleSort::Spend,
            Some(s) => PeopleSort::parse(s).ok_or_else(|| {
                OpsError::invalid(
                    "invalid_sort",
                    format!("sort must be spend, requests, tokens or last_seen, not {s:?}"),
                )
            })?,
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(OpsError::invalid(
                "invalid_limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let search = self
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty());
        if search.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(OpsError::invalid(
                "invalid_query",
                "q is at most 200 characters",
            ));
        }
        Ok(PeopleQuery {
            kind: parse_kind(self.kind.as_deref())?,
            sort,
            search,
            limit,
            offset: self.offset.unwrap_or(0),
        })
    }
}

/// One identity over the last 30 days, as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonView {
    /// `user` or `team`.
    pub kind: &'static str,
    /// The metadata value (`ana@example.com`, `ml-platform`).
    pub identity: String,
    pub spend_usd: f64,
    pub requests: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub errors: i64,
    /// Failed requests in % of all.
    pub error_rate: f64,
    /// Requests answered from the gateway's cache, in % of all.
    pub cache_hit_rate: f64,
    /// The model spent most on in the window, and its provider.
    pub top_model: Option<String>,
    pub top_provider: Option<String>,
    /// First and last request ever seen (all time, RFC 3339).
    pub first_seen: String,
    pub last_seen: String,
    /// Days of the window with at least one request.
    pub active_days: i64,
    /// Users: their sessions with traffic in the window flagged as spend anomalies (far above
    /// their own p95 and the organisation's p99); always 0 for teams.
    pub anomalies: i64,
    /// The Trace Explorer filtered to this identity's requests in the window.
    pub traces_url: String,
    /// This identity's page (spend per day, models).
    pub url: String,
}

fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 10_000.0 / whole as f64).round() / 100.0
    }
}

/// Dollars to the tenth of a cent's millionth: a summary that subtracted days may hold a
/// rounding residue the display shouldn't show.
pub(crate) fn dollars(usd: f64) -> f64 {
    (usd * 1e9).round() / 1e9
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `/traces` filtered to `key=identity` from `from_ms` on.
pub fn traces_url(key: &str, identity: &str, from_ms: i64) -> String {
    format!(
        "/traces?metadata={}&from={}",
        encode(&format!("{key}={identity}")),
        encode(&format_ms(from_ms))
    )
}

/// The path of an identity's page.
pub fn person_path(kind: IdentityKind, identity: &str) -> String {
    let segment: String = url::form_urlencoded::byte_serialize(identity.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!("/people/{}/{segment}", kind.as_str())
}

impl PersonView {
    fn new(person: &Person, key: &str, window_start: i64) -> Self {
        let (top_provider, top_model) = match &person.top_model {
            Some((provider, model)) => (Some(provider.clone()), Some(model.clone())),
            None => (None, None),
        };
        Self {
            kind: person.kind.as_str(),
            identity: person.identity.clone(),
            spend_usd: dollars(person.cost_usd),
            requests: person.requests,
            tokens_in: person.tokens_in,
            tokens_out: person.tokens_out,
            errors: person.errors,
            error_rate: percent(person.errors, person.requests),
            cache_hit_rate: percent(person.cache_hits, person.requests),
            top_model,
            top_provider,
            first_seen: format_ms(person.first_seen_ms),
            last_seen: format_ms(person.last_seen_ms),
            active_days: person.active_days,
            anomalies: person.anomalies,
            traces_url: traces_url(key, &person.identity, window_start),
            url: person_path(person.kind, &person.identity),
        }
    }
}

/// A page of people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PeopleList {
    /// `user` or `team`.
    pub kind: &'static str,
    /// The metadata key naming this kind; null when no admin has named one (the list is then
    /// empty).
    pub key: Option<String>,
    /// The window's first day (UTC) and length.
    pub window_start: String,
    pub window_days: i64,
    /// Identities with traffic in the window (matching `q`).
    pub total: u64,
    pub people: Vec<PersonView>,
    /// Logs stored before the key was named are still being counted.
    pub backfilling: bool,
}

/// The people of one kind over the last 30 days.
#[instrument(skip_all)]
pub async fn list(ops: &Services, now_ms: i64, input: PeopleListInput) -> OpsResult<PeopleList> {
    let query = input.query()?;
    let keys = keys(ops).await?;
    ops.store.advance_people_window(now_ms).await?;
    let window_start = ops.store.people_window_start().await?;
    let key = keys.key(query.kind).map(str::to_owned);
    let page = match &key {
        Some(_) => ops.store.people(&query).await?,
        None => Default::default(),
    };
    Ok(PeopleList {
        kind: query.kind.as_str(),
        window_start: format_ms(window_start),
        window_days: PEOPLE_WINDOW_DAYS,
        total: page.total,
        people: page
            .people
            .iter()
            .map(|p| PersonView::new(p, key.as_deref().unwrap_or_default(), window_start))
            .collect(),
        backfilling: keys.backfilling.contains(&query.kind.as_str()),
        key,
    })
}

/// One day of an identity's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonDay {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub spend_usd: f64,
    pub requests: i64,
    pub tokens: i64,
    pub errors: i64,
}

/// One model an identity used in the window.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonModel {
    pub provider: String,
    pub model: String,
    pub requests: i64,
    pub spend_usd: f64,
    /// Of the identity's spend in the window, in %.
    pub share: f64,
}

/// An identity's page: the window's figures, spend per day, models.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonDetail {
    pub person: PersonView,
    /// Every day of the span asked for, oldest first (days without traffic are zeros).
    pub daily: Vec<PersonDay>,
    /// Models of the 30-day window, most spent first.
    pub models: Vec<PersonModel>,
}

/// One identity with `days` days of history (default 30).
#[instrument(skip_all)]
pub async fn detail(
    ops: &Services,
    now_ms: i64,
    kind: IdentityKind,
    identity: &str,
    days: Option<u32>,
) -> OpsResult<PersonDetail> {
    let days = days.unwrap_or(PEOPLE_WINDOW_DAYS as u32);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(OpsError::invalid(
            "invalid_days",
            format!("days must be between 1 and {MAX_DAYS}"),
        ));
    }
    let keys = keys(ops).await?;
    let Some(key) = keys.key(kind) else {
        return Err(OpsError::NotFound(format!(
            "{} {identity:?} not found: no metadata key names a {} yet (an admin names one on \
             the People page or with PUT /api/v1/people/keys)",
            kind.as_str(),
            kind.as_str()
        )));
    };
    ops.store.advance_people_window(now_ms).await?;
    let window_start = ops.store.people_window_start().await?;
    let person = ops.store.person(kind, identity).await?.ok_or_else(|| {
        OpsError::NotFound(format!(
            "{} {identity:?} not found: no stored log names it",
            kind.as_str()
        ))
    })?;
    let today = langguard_store::day_of(now_ms);
    let from = today - (i64::from(days) - 1) * DAY_MS;
    let stored = ops.store.identity_days(kind, identity, from).await?;
    let mut stored = stored.into_iter().peekable();
    let mut daily = Vec::with_capacity(days as usize);
    for n in 0..i64::from(days) {
        let day = from + n * DAY_MS;
        // Days past today (clock skew) are left to their own day's page.
        while stored.peek().is_some_and(|d| d.day_ms < day) {
            stored.next();
        }
        let totals = match stored.peek() {
            Some(d) if d.day_ms == day => stored.next().map(|d| d.totals).unwrap_or_default(),
            _ => Default::default(),
        };
        daily.push(PersonDay {
            date: format_ms(day)[..10].to_owned(),
            spend_usd: dollars(totals.cost_usd),
            requests: totals.requests,
            tokens: totals.tokens_in + totals.tokens_out,
            errors: totals.errors,
        });
    }
    let models = ops
        .store
        .identity_models(kind, identity, window_start)
        .await?;
    let total: f64 = models.iter().map(|m| m.cost_usd).sum();
    Ok(PersonDetail {
        person: PersonView::new(&person, key, window_start),
        daily,
        models: models
            .into_iter()
            .map(|m| PersonModel {
                share: if total > 0.0 {
                    (m.cost_usd * 10_000.0 / total).round() / 100.0
                } else {
                    0.0
                },
                spend_usd: dollars(m.cost_usd),
                provider: m.provider,
                model: m.model,
                requests: m.requests,
            })
            .collect(),
    })
}

/// What one round of upkeep did.
#[derive(Debug, Default, PartialEq)]
pub struct Upkeep {
    /// Additions of logs stored since the last round, folded into the figures.
    pub folded: u64,
    pub window_moved: bool,
    /// Stored logs the backfill counted.
    pub backfilled: u64,
    /// User sessions judged and newly flagged as spend anomalies.
    pub sessions_judged: u64,
    pub anomalies_flagged: u64,
}

/// The people summary's upkeep, run by the alert evaluator each minute under its lease: fold in
/// what ingest appended since the last round (the figures are as of then), move the window to
/// today, backfill keys named since until done or `budget` has passed (a large history is
/// counted over several rounds; each step is its own transaction), then judge the sessions
/// with new traffic for spend anomalies (at least one step, however much time is left).
pub async fn upkeep(store: &dyn Store, now_ms: i64, budget: Duration) -> StoreResult<Upkeep> {
    let started = Instant::now();
    let mut done = Upkeep::default();
    // In steps, each its own transaction, so ingest goes on between them.
    loop {
        let folded = store.fold_identities(FOLD_STEP).await?;
        done.folded += folded;
        if folded == 0 || started.elapsed() >= budget {
            break;
        }
    }
    done.window_moved = store.advance_people_window(now_ms).await?;
    while started.elapsed() < budget {
        let read = store.backfill_identities(BACKFILL_STEP).await?;
        done.backfilled += read;
        if read == 0 {
            break;
        }
    }
    // Judged against whole baselines only: not while the user key's history is still being
    // counted (a flag is for good, and a half-counted history has too few sessions). After
    // the backfill, so a history just counted is judged in the same round.
    let counting = store
        .identity_keys()
        .await?
        .iter()
        .any(|k| k.kind == IdentityKind::User && k.backfill_below_id.is_some());
    if !counting {
        (done.sessions_judged, done.anomalies_flagged) =
            crate::anomalies::detect(store, now_ms, budget.saturating_sub(started.elapsed()))
                .await?;
    }
    if done.window_moved {
        tracing::info!(
            window_start = %format_ms(people_window_start(now_ms)),
            "people: the 30-day window moved on"
        );
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_what_the_trace_filter_can_name() {
        assert_eq!(
            checked_key("user", Some(" user_id ".into())).expect("fine"),
            Some("user_id".into())
        );
        assert_eq!(checked_key("team", Some("".into())).expect("none"), None);
        for bad in ["user=id", "a b", "ü", &"k".repeat(65)] {
            assert!(checked_key("user", Some(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_escape_the_identity() {
        assert_eq!(
            traces_url("user_id", "ana&bo=1", 0),
            "/traces?metadata=user_id%3Dana%26bo%3D1&from=1970-01-01T00%3A00%3A00.000Z"
        );
        assert_eq!(
            person_path(IdentityKind::Team, "ml platform/x"),
            "/people/team/ml%20platform%2Fx"
        );
    }

    #[test]
    fn rates_are_percent_to_two_places() {
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(0, 0), 0.0);
    }
}
