//! Violations pages: the list with filters and bulk Acknowledge / Mark Resolved, and one
//! violation with its evidence. Members and Admins change status; Viewers read.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use langguard_store::{Role, Severity, ViolationQuery, ViolationStatus};
use serde::Deserialize;
use serde_json::Value;

use super::format::{clock, count};
use super::policies::{writer, SEVERITIES};
use super::session::{local_path, WebUser};
use super::{page_failure, refuse, render, Frame};
use crate::AppState;
use langguard_ops::views::{decode_violation_cursor, encode_violation_cursor};
use langguard_ops::{violations, Actor};

struct ViolationRow {
    id: i64,
    time: String,
    policy: String,
    severity: &'static str,
    model: String,
    message: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "violations.html")]
struct ViolationsPage {
    frame: Frame,
    writer: bool,
    q: String,
    severity: String,
    status: String,
    policy: String,
    severities: [&'static str; 4],
    statuses: [&'static str; 3],
    policies: Vec<(String, String)>,
    total: String,
    rows: Vec<ViolationRow>,
    next: Option<String>,
    back: String,
}

#[derive(Deserialize, Default)]
pub struct ViolationsQuery {
    q: Option<String>,
    severity: Option<String>,
    status: Option<String>,
    policy: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<ViolationsQuery>,
) -> Response {
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let before = given(&q.cursor).and_then(|c| decode_violation_cursor(&c));
    let query = ViolationQuery {
        policy_id: given(&q.policy).and_then(|p| p.parse().ok()),
        severity: given(&q.severity).as_deref().and_then(Severity::parse),
        status: given(&q.status).as_deref().and_then(ViolationStatus::parse),
        text: given(&q.q),
        limit: 50,
        before,
        ..ViolationQuery::default()
    };
    let (page, policies) = match tokio::try_join!(
        state.ops.store.violations(&query),
        state.ops.store.list_policies()
    ) {
        Ok(found) => found,
        Err(e) => return page_failure("Violations", e),
    };
    let text = |v: &Option<String>| given(v).unwrap_or_default();
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("q", &q.q),
        ("severity", &q.severity),
        ("status", &q.status),
        ("policy", &q.policy),
    ] {
        if let Some(v) = given(value) {
            params.append_pair(key, &v);
        }
    }
    let base = params.finish();
    let next = page
        .next_cursor
        .map(|c| format!("/violations?{base}&cursor={}", encode_violation_cursor(c)));
    render(&ViolationsPage {
        frame: Frame::new(&user, "Violations", "violations"),
        writer: writer(&user),
        q: text(&q.q),
        severity: text(&q.severity),
        status: text(&q.status),
        policy: text(&q.policy),
        severities: SEVERITIES,
        statuses: ["new", "acknowledged", "resolved"],
        policies: policies
            .iter()
            .map(|p| (p.id.to_string(), p.display_name.clone()))
            .collect(),
        total: count(page.total as i64),
        rows: page
            .items
            .iter()
            .map(|v| ViolationRow {
                id: v.id,
                time: clock(v.occurred_at_ms),
                policy: v.policy_name.clone(),
                severity: v.severity.as_str(),
                model: v.model.clone(),
                message: v.message.clone(),
                status: v.status.as_str(),
            })
            .collect(),
        next,
        back: format!("/violations?{base}"),
    })
}

struct ViolationDetail {
    id: i64,
    message: String,
    policy: String,
    severity: &'static str,
    kind: String,
    trace_id: i64,
    time: String,
    status: &'static str,
    notes: Option<String>,
    evidence: String,
}

#[derive(Template)]
#[template(path = "violation_detail.html")]
struct ViolationPage {
    frame: Frame,
    writer: bool,
    v: ViolationDetail,
}

pub async fn violation(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> Response {
    let v = match state.ops.store.get_violation(id).await {
        Ok(v) => v,
        Err(langguard_store::StoreError::NotFound { .. }) => {
            return (StatusCode::NOT_FOUND, "no such violation").into_response()
        }
        Err(e) => return page_failure("violation", e),
    };
    let evidence = serde_json::from_str::<Value>(&v.evidence)
        .and_then(|e| serde_json::to_string_pretty(&e))
        .unwrap_or_else(|_| v.evidence.clone());
    render(&ViolationPage {
        frame: Frame::new(&user, "Violation", "violations"),
        writer: writer(&user),
        v: ViolationDetail {
            id: v.id,
            message: v.message.clone(),
            policy: v.policy_name.clone(),
            severity: v.severity.as_str(),
            kind: v.kind.clone(),
            trace_id: v.interaction_id,
            time: clock(v.occurred_at_ms),
            status: v.status.as_str(),
            notes: v.notes.clone(),
            evidence,
        },
    })
}

#[derive(Deserialize)]
struct BulkForm {
    csrf: Option<String>,
    #[serde(default)]
    ids: Vec<i64>,
    status: String,
    notes: Option<String>,
    back: Option<String>,
}

/// Acknowledge / Mark Resolved for the ticked violations (or one, from its page).
pub async fn bulk(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = serde_html_form::from_bytes::<BulkForm>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "the form was not understood; reload the page",
        )
            .into_response();
    };
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Member) {
        return refused;
    }
    let back = local_path(form.back.as_deref()).to_string();
    let Some(status) = ViolationStatus::parse(&form.status) else {
        return (
            StatusCode::BAD_REQUEST,
            "status is acknowledged or resolved",
        )
            .into_response();
    };
    if form.ids.is_empty() {
        return Redirect::to(&back).into_response();
    }
    let notes = form
        .notes
        .map(|n| n.trim().chars().take(5_000).collect::<String>())
        .filter(|n| !n.is_empty());
    match violations::set_status(&state.ops, Actor::User(&user.user), form.ids, status, notes).await
    {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => page_failure("violations", e),
    }
}
