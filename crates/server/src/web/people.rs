//! The People page: users and teams (named by the metadata keys an admin picks here) with
//! their last 30 days — spend, requests, tokens, rates, top model, first and last seen, active
//! days — each linking to its traces and to its own page with spend per day — and the users'
//! sessions flagged as spend anomalies.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use langguard_ops::anomalies::{self, AnomalyListInput, AnomalyView};
use langguard_ops::people::{self, IdentityKeysInput, PeopleListInput, PersonView};
use langguard_ops::{Actor, OpsError};
use langguard_store::{IdentityKind, Role};
use serde::Deserialize;

use super::chart::{line_chart, Line};
use super::form::{given, not_understood};
use super::format::{count, usd};
use super::session::WebUser;
use super::{page_failure, problem, refuse, render, Frame};
use crate::{now_ms, AppState};

/// A row of the table, formatted.
struct Row {
    identity: String,
    url: String,
    spend: String,
    requests: String,
    tokens: String,
    error_rate: String,
    cache_hit_rate: String,
    top_model: String,
    first_seen: String,
    last_seen: String,
    active_days: i64,
    anomalies: i64,
    traces_url: String,
}

/// A flagged session, formatted.
struct AnomalyRow {
    user: String,
    person_url: String,
    /// "session s-42" or "hour from 2026-12-01 14:00".
    session: String,
    last_seen: String,
    spend: String,
    /// "3.1× their p95 of $1.00 (20 sessions)".
    against: String,
    org_p99: String,
    traces_url: String,
}

impl From<&AnomalyView> for AnomalyRow {
    fn from(a: &AnomalyView) -> Self {
        let minute = |t: &str| t.replace('T', " ")[..16.min(t.len())].to_owned();
        Self {
            user: a.user.clone(),
            person_url: a.person_url.clone(),
            session: match (&a.session, &a.hour) {
                (Some(s), _) => format!("session {s}"),
                (None, Some(h)) => format!("hour from {}", minute(h)),
                (None, None) => "—".into(),
            },
            last_seen: minute(&a.last_seen),
            spend: usd(a.spend_usd),
            against: format!(
                "{:.1}× their p95 of {} ({} sessions)",
                a.times_p95,
                usd(a.user_p95_usd),
                a.baseline_sessions
            ),
            org_p99: usd(a.org_p99_usd),
            traces_url: a.traces_url.clone(),
        }
    }
}

/// The flagged sessions (of one user, or everyone's), newest first.
async fn anomaly_rows(state: &AppState, user: Option<String>) -> Result<Vec<AnomalyRow>, OpsError> {
    let input = AnomalyListInput {
        user,
        days: None,
        limit: Some(ANOMALIES_SHOWN),
    };
    let list = anomalies::list(&state.ops, now_ms(), input).await?;
    Ok(list.anomalies.iter().map(AnomalyRow::from).collect())
}

const ANOMALIES_SHOWN: u32 = 20;

impl From<&PersonView> for Row {
    fn from(p: &PersonView) -> Self {
        Self {
            identity: p.identity.clone(),
            url: p.url.clone(),
            spend: usd(p.spend_usd),
            requests: count(p.requests),
            tokens: count(p.tokens_in + p.tokens_out),
            error_rate: format!("{:.1} %", p.error_rate),
            cache_hit_rate: format!("{:.1} %", p.cache_hit_rate),
            top_model: match (&p.top_provider, &p.top_model) {
                (Some(provider), Some(model)) => format!("{model} ({provider})"),
                _ => "—".into(),
            },
            first_seen: p.first_seen[..10.min(p.first_seen.len())].to_owned(),
            last_seen: p.last_seen.replace('T', " ")[..16.min(p.last_seen.len())].to_owned(),
            active_days: p.active_days,
            anomalies: p.anomalies,
            traces_url: p.traces_url.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "people.html")]
struct PeoplePage {
    frame: Frame,
    admin: bool,
    kind: &'static str,
    key: Option<String>,
    user_key: String,
    team_key: String,
    session_key: String,
    backfilling: bool,
    /// Users: the latest flagged sessions.
    anomalies: Vec<AnomalyRow>,
    sort: String,
    q: String,
    /// "2 users", "1 team".
    counted: String,
    rows: Vec<Row>,
    /// Query strings of the previous and next pages, when there are some.
    previous: Option<String>,
    next: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    kind: Option<String>,
    sort: Option<String>,
    q: Option<String>,
    offset: Option<u32>,
}

const PAGE: u32 = people::DEFAULT_LIMIT;

fn page_link(kind: &str, sort: &str, q: &str, offset: u32) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("kind", kind);
    query.append_pair("sort", sort);
    if !q.is_empty() {
        query.append_pair("q", q);
    }
    if offset > 0 {
        query.append_pair("offset", &offset.to_string());
    }
    format!("/people?{}", query.finish())
}

pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<ListQuery>,
) -> Response {
    let offset = q.offset.unwrap_or(0);
    let input = PeopleListInput {
        kind: given(&q.kind),
        sort: given(&q.sort),
        q: given(&q.q),
        limit: Some(PAGE),
        offset: Some(offset),
    };
    let list = match people::list(&state.ops, now_ms(), input).await {
        Ok(list) => list,
        Err(e @ OpsError::Invalid { .. }) => {
            return (StatusCode::BAD_REQUEST, problem(e)).into_response()
        }
        Err(e) => return page_failure("People", e),
    };
    let admin = user.user.role == Role::Admin;
    // The form's current keys, for the admins who see it (the list has its own kind's key).
    let keys = if admin {
        match people::keys(&state.ops).await {
            Ok(keys) => Some(keys),
            Err(e) => return page_failure("People", e),
        }
    } else {
        None
    };
    let anomalies = if list.kind == "user" && list.key.is_some() {
        match anomaly_rows(&state, None).await {
            Ok(rows) => rows,
            Err(e) => return page_failure("People", e),
        }
    } else {
        Vec::new()
    };
    let sort = given(&q.sort).unwrap_or_else(|| "spend".into());
    let search = given(&q.q).unwrap_or_default();
    let seen = u64::from(offset) + list.people.len() as u64;
    render(&PeoplePage {
        frame: Frame::new(&user, "People", "people"),
        admin,
        kind: list.kind,
        backfilling: list.backfilling,
        sort: sort.clone(),
        counted: format!(
            "{} {}{}",
            count(list.total as i64),
            list.kind,
            if list.total == 1 { "" } else { "s" }
        ),
        rows: list.people.iter().map(Row::from).collect(),
        previous: (offset > 0)
            .then(|| page_link(list.kind, &sort, &search, offset.saturating_sub(PAGE))),
        next: (seen < list.total).then(|| page_link(list.kind, &sort, &search, offset + PAGE)),
        q: search,
        key: list.key,
        user_key: keys
            .as_ref()
            .and_then(|k| k.user_key.clone())
            .unwrap_or_default(),
        session_key: keys
            .as_ref()
            .and_then(|k| k.session_key.clone())
            .unwrap_or_default(),
        team_key: keys.and_then(|k| k.team_key).unwrap_or_default(),
        anomalies,
    })
}

#[derive(Deserialize, Default)]
struct KeysForm {
    csrf: Option<String>,
    user_key: Option<String>,
    team_key: Option<String>,
    session_key: Option<String>,
}

/// Names the keys (Admins).
pub async fn set_keys(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = serde_html_form::from_bytes::<KeysForm>(&body) else {
        return not_understood();
    };
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Admin) {
        return refused;
    }
    let input = IdentityKeysInput {
        user_key: given(&form.user_key),
        team_key: given(&form.team_key),
        session_key: given(&form.session_key),
    };
    match people::set_keys(&state.ops, Actor::User(&user.user), input).await {
        Ok(_) => Redirect::to("/people").into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, problem(e)).into_response(),
    }
}

struct ModelRow {
    name: String,
    requests: String,
    spend: String,
    share: String,
}

#[derive(Template)]
#[template(path = "person.html")]
struct PersonPage {
    frame: Frame,
    kind: &'static str,
    row: Row,
    chart: String,
    models: Vec<ModelRow>,
    anomalies: Vec<AnomalyRow>,
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    days: Option<u32>,
}

pub async fn person(
    State(state): State<AppState>,
    user: WebUser,
    Path((kind, identity)): Path<(String, String)>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let kind = match people::parse_kind(Some(&kind)) {
        Ok(kind) => kind,
        Err(e) => return (StatusCode::NOT_FOUND, problem(e)).into_response(),
    };
    let detail = match people::detail(&state.ops, now_ms(), kind, &identity, q.days).await {
        Ok(detail) => detail,
        Err(e) => return page_failure("People", e),
    };
    let anomalies = match kind {
        IdentityKind::User => match anomaly_rows(&state, Some(identity.clone())).await {
            Ok(rows) => rows,
            Err(e) => return page_failure("People", e),
        },
        IdentityKind::Team => Vec::new(),
    };
    let times: Vec<String> = detail.daily.iter().map(|d| d.date.clone()).collect();
    let title = format!("Spend per day of {}", detail.person.identity);
    let chart = line_chart(
        &title,
        &times,
        &[Line {
            label: "Spend",
            class: "s1",
            values: detail.daily.iter().map(|d| Some(d.spend_usd)).collect(),
        }],
        usd,
    );
    render(&PersonPage {
        frame: Frame::new(&user, "People", "people"),
        kind: kind.as_str(),
        row: Row::from(&detail.person),
        chart,
        models: detail
            .models
            .iter()
            .map(|m| ModelRow {
                name: format!("{} ({})", m.model, m.provider),
                requests: count(m.requests),
                spend: usd(m.spend_usd),
                share: format!("{:.1} %", m.share),
            })
            .collect(),
        anomalies,
    })
}
