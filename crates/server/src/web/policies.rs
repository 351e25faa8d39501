//! Policies pages: the policy list with mode switches, and the editor with Test on sample JSON
//! and Backtest over history. Members and Admins change things; Viewers read.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use langguard_store::{Policy, PolicyCategory, PolicyId, PolicyMode, Role, Severity};
use serde::Deserialize;

use super::form::not_understood;
use super::policy_config::{config_fields, config_from_fields, ConfigField};
use serde_json::{json, Value};

use super::format::count;
use super::monitoring::{Range, RangeQuery, PRESETS};
use super::session::WebUser;
use super::{forbidden, page_failure, problem, refuse, render, Frame};
use crate::AppState;
use langguard_ops::policies::{self, HistoryRequest, PolicyChange, PolicyInput};
use langguard_ops::Actor;

pub(super) fn writer(user: &WebUser) -> bool {
    matches!(user.user.role, Role::Admin | Role::Member)
}

const MODES: [&str; 3] = ["enforce", "permissive", "disabled"];
pub(super) const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];
const CATEGORIES: [&str; 4] = [
    "Security & Access",
    "Models & Compliance",
    "Budget & Operations",
    "Audit",
];

/// What a new policy starts as: the contract, ready to edit.
const NEW_REGO: &str = r#"package langguard.my_policy

import rego.v1

violation contains result if {
    some obs in input.trace.observations
    obs.metadata.latency_ms > object.get(input.config, "max_latency_ms", 5000)
    result := {
        "type": "slow_call",
        "message": sprintf("%v took %v ms", [obs.model, obs.metadata.latency_ms]),
    }
}
"#;

const SAMPLE_INPUT: &str = r#"{
  "trace": {
    "id": "sample",
    "metadata": {"provider": "openai", "gateway": "prod"},
    "observations": [{
      "type": "generation", "model": "gpt-4o",
      "metadata": {"status": "success", "latency_ms": 7200},
      "usage": {"input": 900, "output": 300, "total": 1200},
      "costDetails": {"total": 0.012}
    }]
  }
}"#;

struct PolicyRow {
    id: i64,
    name: String,
    display_name: String,
    category: &'static str,
    severity: &'static str,
    mode: &'static str,
    builtin: bool,
    quarantine_reason: Option<String>,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    frame: Frame,
    writer: bool,
    lag: String,
    modes: [&'static str; 3],
    rows: Vec<PolicyRow>,
}

pub async fn list(State(state): State<AppState>, user: WebUser) -> Response {
    let (policies, progress) = match tokio::try_join!(
        state.ops.store.list_policies(),
        state.ops.store.policy_progress()
    ) {
        Ok(found) => found,
        Err(e) => return page_failure("Policies", e),
    };
    let rows = policies
        .iter()
        .map(|p| PolicyRow {
            id: p.id,
            name: p.name.clone(),
            display_name: p.display_name.clone(),
            category: p.category.as_str(),
            severity: p.severity.as_str(),
            mode: p.mode.as_str(),
            builtin: p.builtin_id.is_some(),
            quarantine_reason: p.quarantine_reason.clone(),
        })
        .collect();
    render(&PoliciesPage {
        frame: Frame::new(&user, "Policies", "policies"),
        writer: writer(&user),
        lag: count(progress.lag()),
        modes: MODES,
        rows,
    })
}

#[derive(Deserialize)]
pub struct ModeForm {
    csrf: Option<String>,
    mode: String,
}

pub async fn set_mode(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<PolicyId>,
    Form(form): Form<ModeForm>,
) -> Response {
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Member) {
        return refused;
    }
    let Some(mode) = PolicyMode::parse(&form.mode) else {
        return (
            StatusCode::BAD_REQUEST,
            "mode is enforce, permissive or disabled",
        )
            .into_response();
    };
    let change = PolicyChange {
        mode: Some(mode),
        ..PolicyChange::default()
    };
    match policies::change(&state.ops, Actor::User(&user.user), id, change).await {
        Ok(_) => Redirect::to("/policies").into_response(),
        Err(e) => page_failure("policy mode", e),
    }
}

#[derive(Template)]
#[template(path = "policy_edit.html")]
struct EditPage {
    frame: Frame,
    writer: bool,
    id: i64,
    name: String,
    display_name: String,
    category: String,
    severity: String,
    mode: String,
    version: i64,
    rego: String,
    config: String,
    sample: String,
    presets: &'static [(&'static str, &'static str)],
    categories: [&'static str; 4],
    severities: [&'static str; 4],
    modes: [&'static str; 3],
    error: Option<String>,
    notice: Option<String>,
    /// Why the policy worker disabled this policy, when it did.
    quarantine_reason: Option<String>,
    /// A built-in's config as form fields, one per key (custom policies edit the JSON).
    fields: Vec<ConfigField>,
}

/// The form's config: from the built-in's fields when the form has them, else its JSON.
async fn resolve_config(
    state: &AppState,
    form: &mut PolicyForm,
    pairs: &[(String, String)],
) -> Result<(), String> {
    let has_fields = pairs.iter().any(|(k, _)| k.starts_with("cfg."));
    let policy_id = form.policy_id.filter(|id| *id > 0);
    if let (true, Some(id)) = (has_fields || form.config.is_none(), policy_id) {
        let current = state.ops.store.get_policy(id).await.map_err(problem)?;
        if current.builtin_id.is_some() {
            form.config = Some(config_from_fields(&current.config, pairs)?);
        }
    }
    Ok(())
}

/// The form as fields and as raw pairs (for a built-in's `cfg.<key>` fields).
fn parse_form(body: &[u8]) -> Option<(PolicyForm, Vec<(String, String)>)> {
    let form = serde_html_form::from_bytes::<PolicyForm>(body).ok()?;
    let pairs = serde_html_form::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default();
    Some((form, pairs))
}

impl EditPage {
    fn of(user: &WebUser, p: Option<&Policy>) -> Self {
        let pretty = |text: &str| {
            serde_json::from_str::<Value>(text)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| text.to_string())
        };
        Self {
            frame: Frame::new(user, "Policy", "policies"),
            writer: writer(user),
            id: p.map_or(0, |p| p.id),
            name: p.map_or_else(String::new, |p| p.name.clone()),
            display_name: p.map_or_else(String::new, |p| p.display_name.clone()),
            category: p
                .map_or("Models & Compliance", |p| p.category.as_str())
                .into(),
            severity: p.map_or("medium", |p| p.severity.as_str()).into(),
            mode: p.map_or("permissive", |p| p.mode.as_str()).into(),
            version: p.map_or(0, |p| p.version),
            rego: p.map_or_else(|| NEW_REGO.to_string(), |p| p.rego.clone()),
            config: p.map_or_else(|| "{}".to_string(), |p| pretty(&p.config)),
            sample: SAMPLE_INPUT.to_string(),
            presets: &PRESETS,
            categories: CATEGORIES,
            severities: SEVERITIES,
            modes: MODES,
            error: None,
            notice: None,
            quarantine_reason: p.and_then(|p| p.quarantine_reason.clone()),
            fields: p
                .filter(|p| p.builtin_id.is_some())
                .map(|p| config_fields(&p.config))
                .unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
pub struct PolicyForm {
    csrf: Option<String>,
    policy_id: Option<i64>,
    name: Option<String>,
    display_name: Option<String>,
    category: Option<String>,
    severity: Option<String>,
    mode: Option<String>,
    rego: String,
    config: Option<String>,
    sample: Option<String>,
    range: Option<String>,
}

impl PolicyForm {
    /// The config as a JSON object's text.
    fn config(&self) -> Result<Value, String> {
        let text = self.config.as_deref().map(str::trim).unwrap_or("");
        if text.is_empty() {
            return Ok(json!({}));
        }
        match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err("Config must be a JSON object, e.g. {\"max_latency_ms\": 3000}".into()),
        }
    }

    fn fill(&self, page: &mut EditPage) {
        page.rego = self.rego.clone();
        page.config = self.config.clone().unwrap_or_default();
        if let Some(v) = &self.display_name {
            page.display_name = v.clone();
        }
        if let Some(v) = &self.name {
            page.name = v.clone();
        }
        for (field, value) in [
            (&mut page.category, &self.category),
            (&mut page.severity, &self.severity),
            (&mut page.mode, &self.mode),
        ] {
            if let Some(v) = value {
                *field = v.clone();
            }
        }
        if let Some(v) = &self.sample {
            page.sample = v.clone();
        }
    }

    fn choices(&self) -> Result<(PolicyCategory, Severity, PolicyMode), String> {
        let category = self.category.as_deref().and_then(PolicyCategory::parse);
        let severity = self.severity.as_deref().and_then(Severity::parse);
        let mode = self.mode.as_deref().and_then(PolicyMode::parse);
        match (category, severity, mode) {
            (Some(c), Some(s), Some(m)) => Ok((c, s, m)),
            _ => Err("Choose a category, a severity and a mode.".into()),
        }
    }
}

pub async fn new_form(user: WebUser) -> Response {
    if !writer(&user) {
        return forbidden(&user);
    }
    render(&EditPage::of(&user, None))
}

pub async fn edit(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<PolicyId>,
) -> Response {
    match state.ops.store.get_policy(id).await {
        Ok(p) => {
            let mut page = EditPage::of(&user, Some(&p));
            page.frame.title = "Policy";
            render(&page)
        }
        Err(langguard_store::StoreError::NotFound { .. }) => {
            (StatusCode::NOT_FOUND, "no such policy").into_response()
        }
        Err(e) => page_failure("policy", e),
    }
}

/// Saves a new policy (`id` None) or a change; the Rego must compile first.
async fn save(
    state: &AppState,
    user: &WebUser,
    id: Option<PolicyId>,
    form: &PolicyForm,
) -> Result<Policy, String> {
    let (category, severity, mode) = form.choices()?;
    let config = form.config()?;
    let display_name = |name: &str| {
        form.display_name
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .unwrap_or(name)
            .chars()
            .take(200)
            .collect::<String>()
    };
    let saved = match id {
        None => {
            let name = form.name.as_deref().map(str::trim).unwrap_or("");
            let input = PolicyInput {
                name: name.to_string(),
                display_name: Some(display_name(name)),
                description: None,
                category,
                severity,
                mode: Some(mode),
                config: Some(config),
                rego: form.rego.clone(),
            };
            policies::add(&state.ops, Actor::User(&user.user), input).await
        }
        Some(id) => {
            let current = state.ops.store.get_policy(id).await.map_err(problem)?;
            let change = PolicyChange {
                display_name: Some(display_name(&current.name)),
                category: Some(category),
                severity: Some(severity),
                mode: Some(mode),
                config: Some(config),
                rego: Some(form.rego.clone()),
                ..PolicyChange::default()
            };
            policies::change(&state.ops, Actor::User(&user.user), id, change).await
        }
    };
    saved.map_err(problem)
}

pub async fn create(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<PolicyForm>,
) -> Response {
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Member) {
        return refused;
    }
    match save(&state, &user, None, &form).await {
        Ok(p) => Redirect::to(&format!("/policies/{}", p.id)).into_response(),
        Err(error) => {
            let mut page = EditPage::of(&user, None);
            form.fill(&mut page);
            page.error = Some(error);
            let mut response = render(&page);
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            response
        }
    }
}

pub async fn update(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<PolicyId>,
    body: Bytes,
) -> Response {
    let Some((mut form, pairs)) = parse_form(&body) else {
        return not_understood();
    };
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Member) {
        return refused;
    }
    form.policy_id = Some(id);
    let current = match state.ops.store.get_policy(id).await {
        Ok(p) => p,
        Err(e) => return page_failure("policy", e),
    };
    let saved = match resolve_config(&state, &mut form, &pairs).await {
        Ok(()) => save(&state, &user, Some(id), &form).await,
        Err(error) => Err(error),
    };
    match saved {
        Ok(p) => {
            let mut page = EditPage::of(&user, Some(&p));
            page.notice = Some(format!("Saved (version {}).", p.version));
            render(&page)
        }
        Err(error) => {
            let mut page = EditPage::of(&user, Some(&current));
            form.fill(&mut page);
            page.error = Some(error);
            let mut response = render(&page);
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            response
        }
    }
}

#[derive(Template)]
#[template(path = "policy_result.html")]
struct ResultFragment {
    error: Option<String>,
    summary: String,
    lines: Vec<String>,
}

fn failed(error: String) -> Response {
    render(&ResultFragment {
        error: Some(error),
        summary: String::new(),
        lines: Vec::new(),
    })
}

pub async fn test(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((mut form, pairs)) = parse_form(&body) else {
        return not_understood();
    };
    // Running Rego is writing policy: Members and Admins only.
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Member) {
        return refused;
    }
    if let Err(error) = resolve_config(&state, &mut form, &pairs).await {
        return failed(error);
    }
    let config = match form.config() {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let input = match serde_json::from_str::<Value>(form.sample.as_deref().unwrap_or("{}")) {
        Ok(Value::Object(map)) => map,
        _ => return failed("The sample input must be a JSON object.".into()),
    };
    match policies::test(&state.ops, &form.rego, input, Some(config)).await {
        Ok(findings) => render(&ResultFragment {
            error: None,
            summary: match findings.len() {
                0 => "No violations on this input.".to_string(),
                1 => "1 violation:".to_string(),
                n => format!("{n} violations:"),
            },
            lines: findings
                .into_iter()
                .map(|f| format!("{}: {}", f.kind, f.message))
                .collect(),
        }),
        Err(e) => failed(problem(e)),
    }
}

pub async fn backtest(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((mut form, pairs)) = parse_form(&body) else {
        return not_understood();
    };
    // Running Rego is writing policy: Members and Admins only.
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Member) {
        return refused;
    }
    if let Err(error) = resolve_config(&state, &mut form, &pairs).await {
        return failed(error);
    }
    let config = match form.config() {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let range = Range::from_query(
        &RangeQuery {
            range: form.range.clone(),
            ..RangeQuery::default()
        },
        crate::now_ms(),
    );
    let request = HistoryRequest {
        rego: Some(form.rego.clone()),
        config: Some(config),
        from_ms: Some(range.from_ms),
        to_ms: Some(range.to_ms),
        samples: Some(5),
        ..HistoryRequest::default()
    };
    match policies::backtest(&state.ops, &user.user, &request).await {
        Ok(report) => {
            let mut lines: Vec<String> = report
                .by_type
                .iter()
                .map(|(kind, n)| format!("{kind}: {}", count(*n as i64)))
                .collect();
            lines.extend(report.samples.iter().map(|s| {
                format!(
                    "e.g. trace {} ({}, {})",
                    s.trace.id, s.trace.model, s.trace.created_at
                )
            }));
            render(&ResultFragment {
                error: None,
                summary: format!(
                    "Backtest: {} interactions evaluated, {} would be flagged ({} violations, {} evaluation errors). Nothing was stored.",
                    count(report.evaluated as i64),
                    count(report.flagged as i64),
                    count(report.violations as i64),
                    count(report.errors as i64)
                ),
                lines,
            })
        }
        Err(e) => failed(problem(e)),
    }
}
