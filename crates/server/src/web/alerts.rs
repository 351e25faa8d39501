//! The Alerts page: what fires now (with Silence), the rules (create, Test against the last
//! week, enable/disable, delete), silences and recent history. Members and Admins write;
//! Viewers read.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use langguard_ops::alerts::rules::{self, RuleInput};
use langguard_ops::alerts::{self, AlertRuleView, AlertView, SilenceInput, SilenceView};
use langguard_ops::Actor;
use langguard_store::{AlertMetric, AlertScope, Role};
use serde::Deserialize;

use super::form::{button, given, not_understood};
use super::format::count;
use super::policies::writer;
use super::session::WebUser;
use super::{page_failure, problem, refuse, render, Frame};
use crate::{now_ms, AppState};

/// An RFC 3339 time as the page prints it: to the minute, UTC.
fn short(t: &str) -> String {
    format!("{} UTC", t.get(..16).unwrap_or(t).replace('T', " "))
}

fn figure(value: Option<f64>, unit: &str) -> String {
    match value {
        None => "—".into(),
        Some(v) if unit == "USD" => format!("${v:.2}"),
        Some(v) if v.fract() == 0.0 => format!("{} {unit}", count(v as i64)),
        Some(v) => format!("{v:.1} {unit}"),
    }
}

struct AlertRow {
    rule: String,
    group: String,
    state: &'static str,
    value: String,
    threshold: String,
    since: String,
    silenced: bool,
    traces_url: String,
    rule_id: i64,
    raw_group: String,
}

impl From<&AlertView> for AlertRow {
    fn from(a: &AlertView) -> Self {
        Self {
            rule: a.rule_name.clone(),
            group: a.group_label.clone().unwrap_or_else(|| "—".into()),
            state: a.state,
            value: figure(a.value, a.unit),
            threshold: format!("{} {}", a.condition, figure(Some(a.threshold), a.unit)),
            since: short(a.fired_at.as_deref().unwrap_or(&a.started_at)),
            silenced: a.silenced,
            traces_url: a.traces_url.clone(),
            rule_id: a.rule_id,
            raw_group: a.group.clone().unwrap_or_default(),
        }
    }
}

struct RuleRow {
    id: i64,
    name: String,
    watches: String,
    group_by: String,
    enabled: bool,
    firing: usize,
}

impl From<&AlertRuleView> for RuleRow {
    fn from(r: &AlertRuleView) -> Self {
        let scope = [
            r.scope.integration_id.map(|i| format!("integration {i}")),
            r.scope.gateway.clone().map(|g| format!("gateway {g}")),
            r.scope.provider.clone(),
            r.scope.model.clone(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let condition = if r.metric == AlertMetric::NoTraffic.as_str() {
            "no request".to_string()
        } else {
            format!(
                "{} {} {}",
                r.metric,
                r.condition,
                figure(Some(r.threshold), r.unit)
            )
        };
        let mut watches = format!("{condition} over {} min", r.window_minutes);
        if r.for_minutes > 0 {
            watches.push_str(&format!(" for {} min", r.for_minutes));
        }
        if r.min_requests > 0 {
            watches.push_str(&format!(", at least {} requests", count(r.min_requests)));
        }
        if !scope.is_empty() {
            watches.push_str(&format!(" ({scope})"));
        }
        Self {
            id: r.id,
            name: r.name.clone(),
            watches,
            group_by: r.group_by.unwrap_or("—").to_string(),
            enabled: r.enabled,
            firing: r.firing,
        }
    }
}

struct SilenceRow {
    id: i64,
    what: String,
    until: String,
    reason: String,
    by: String,
}

impl From<&SilenceView> for SilenceRow {
    fn from(s: &SilenceView) -> Self {
        let rule = s.rule_name.clone().unwrap_or_else(|| "Every rule".into());
        Self {
            id: s.id,
            what: match &s.group {
                Some(g) => format!("{rule} — {g}"),
                None => rule,
            },
            until: short(&s.ends_at),
            reason: s.reason.clone(),
            by: s.created_by.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    frame: Frame,
    writer: bool,
    open: Vec<AlertRow>,
    rules: Vec<RuleRow>,
    silences: Vec<SilenceRow>,
    history: Vec<AlertRow>,
    metrics: Vec<&'static str>,
    integrations: Vec<(i64, String)>,
    /// Notification channels a rule can name.
    channels: Vec<(i64, String)>,
}

pub async fn page(State(state): State<AppState>, user: WebUser) -> Response {
    let now = now_ms();
    let open_query = alerts::query(None, Some("open"), Some(200), None);
    let history_query = alerts::query(None, Some("resolved"), Some(20), None);
    let (Ok(open_query), Ok(history_query)) = (open_query, history_query) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "bad alert query").into_response();
    };
    let loaded = tokio::try_join!(
        alerts::list(&state.ops, &open_query, now),
        alerts::list(&state.ops, &history_query, now),
        alerts::list_rules(&state.ops),
        alerts::silences(&state.ops, true, now),
    );
    let (open, history, rules, silences) = match loaded {
        Ok(found) => found,
        Err(e) => return page_failure("Alerts", e),
    };
    let integrations = match state.ops.store.list_integrations().await {
        Ok(list) => list.into_iter().map(|i| (i.id, i.name)).collect(),
        Err(e) => return page_failure("Alerts", e),
    };
    let channels = match state.ops.store.list_webhooks().await {
        Ok(list) => list.into_iter().map(|w| (w.id, w.name)).collect(),
        Err(e) => return page_failure("Alerts", e),
    };
    render(&AlertsPage {
        frame: Frame::new(&user, "Alerts", "alerts"),
        writer: writer(&user),
        open: open.items.iter().map(AlertRow::from).collect(),
        rules: rules.iter().map(RuleRow::from).collect(),
        silences: silences.iter().map(SilenceRow::from).collect(),
        history: history.items.iter().map(AlertRow::from).collect(),
        metrics: AlertMetric::ALL.iter().map(|m| m.as_str()).collect(),
        integrations,
        channels,
    })
}

#[derive(Deserialize, Default)]
struct RuleForm {
    csrf: Option<String>,
    name: Option<String>,
    metric: Option<String>,
    condition: Option<String>,
    threshold: Option<String>,
    window_minutes: Option<String>,
    for_minutes: Option<String>,
    min_requests: Option<String>,
    renotify_minutes: Option<String>,
    severity: Option<String>,
    group_by: Option<String>,
    integration_id: Option<String>,
    gateway: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    #[serde(default)]
    channel_ids: Vec<String>,
}

/// A number field: empty is "not given"; anything else must parse.
fn number<T: std::str::FromStr>(v: &Option<String>, what: &str) -> Result<Option<T>, String> {
    given(v)
        .map(|v| v.parse().map_err(|_| format!("{what} must be a number")))
        .transpose()
}

impl RuleForm {
    fn input(&self) -> Result<RuleInput, String> {
        Ok(RuleInput {
            name: given(&self.name),
            description: None,
            enabled: Some(true),
            metric: given(&self.metric),
            severity: given(&self.severity),
            condition: given(&self.condition),
            threshold: number(&self.threshold, "Threshold")?,
            window_minutes: number(&self.window_minutes, "Window")?,
            for_minutes: number(&self.for_minutes, "For")?,
            min_requests: number(&self.min_requests, "Minimum requests")?,
            renotify_minutes: Some(number(&self.renotify_minutes, "Remind every")?),
            scope: Some(AlertScope {
                integration_id: number(&self.integration_id, "Integration")?,
                gateway: given(&self.gateway),
                provider: given(&self.provider),
                model: given(&self.model),
            }),
            group_by: Some(given(&self.group_by)),
            channel_ids: Some(
                self.channel_ids
                    .iter()
                    .map(|id| id.parse().map_err(|_| "Notify: not a channel".to_owned()))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

pub async fn create_rule(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = serde_html_form::from_bytes::<RuleForm>(&body) else {
        return not_understood();
    };
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Member) {
        return refused;
    }
    let input = match form.input() {
        Ok(input) => input,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    match rules::add(&state.ops, Actor::User(&user.user), input).await {
        Ok(_) => Redirect::to("/alerts").into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, problem(e)).into_response(),
    }
}

#[derive(Template)]
#[template(path = "policy_result.html")]
struct ResultFragment {
    error: Option<String>,
    summary: String,
    lines: Vec<String>,
}

/// Test: would the rule as filled in have fired in the last 7 days?
pub async fn backtest(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = serde_html_form::from_bytes::<RuleForm>(&body) else {
        return not_understood();
    };
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Member) {
        return refused;
    }
    let failed = |error: String| {
        render(&ResultFragment {
            error: Some(error),
            summary: String::new(),
            lines: vec![],
        })
    };
    let mut input = match form.input() {
        Ok(input) => input,
        Err(message) => return failed(message),
    };
    input.name.get_or_insert_with(|| "test".into());
    match alerts::backtest(&state.ops, input, now_ms()).await {
        Ok(report) => render(&ResultFragment {
            error: None,
            summary: format!(
                "In the last 7 days it would have fired {} ({} minutes firing in all), stepped every {} min over {}. Nothing was saved or sent.",
                match report.fired {
                    0 => "never".to_string(),
                    1 => "once".to_string(),
                    n => format!("{} times", count(n as i64)),
                },
                count(report.firing_minutes),
                report.step_minutes,
                match report.groups {
                    1 => "1 group".to_string(),
                    n => format!("{n} groups"),
                }
            ),
            lines: report
                .episodes
                .iter()
                .take(20)
                .map(|e| {
                    format!(
                        "{}{} → {}",
                        e.group.as_ref().map(|g| format!("{g}: ")).unwrap_or_default(),
                        short(&e.fired_at),
                        e.resolved_at
                            .as_deref()
                            .map(short)
                            .unwrap_or_else(|| "still firing".into())
                    )
                })
                .collect(),
        }),
        Err(e) => failed(problem(e)),
    }
}

/// Enable or disable (`/toggle`) or delete (`/delete`) a rule.
pub async fn rule_action(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    body: Bytes,
) -> Response {
    if let Some(refused) = button(&user, &headers, &body, Role::Member) {
        return refused;
    }
    let actor = Actor::User(&user.user);
    let done = match action.as_str() {
        "toggle" => match state.ops.store.get_alert_rule(id).await {
            Ok(rule) => rules::change(
                &state.ops,
                actor,
                id,
                RuleInput {
                    enabled: Some(!rule.enabled),
                    ..RuleInput::default()
                },
            )
            .await
            .map(|_| ()),
            Err(e) => Err(e.into()),
        },
        "delete" => rules::remove(&state.ops, actor, id).await,
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    };
    match done {
        Ok(()) => Redirect::to("/alerts").into_response(),
        Err(e) => page_failure("Alerts", e),
    }
}

#[derive(Deserialize)]
struct SilenceForm {
    csrf: Option<String>,
    rule_id: Option<String>,
    group: Option<String>,
    minutes: Option<String>,
    reason: Option<String>,
}

pub async fn silence(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = serde_html_form::from_bytes::<SilenceForm>(&body) else {
        return not_understood();
    };
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Member) {
        return refused;
    }
    let input = match (
        number::<i64>(&form.rule_id, "Rule"),
        number::<i64>(&form.minutes, "For"),
    ) {
        (Ok(rule_id), Ok(minutes)) => SilenceInput {
            rule_id,
            group: given(&form.group),
            until: None,
            minutes,
            reason: given(&form.reason),
        },
        (Err(m), _) | (_, Err(m)) => return (StatusCode::BAD_REQUEST, m).into_response(),
    };
    match alerts::silence(&state.ops, Actor::User(&user.user), input, now_ms()).await {
        Ok(_) => Redirect::to("/alerts").into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, problem(e)).into_response(),
    }
}

pub async fn end_silence(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    if let Some(refused) = button(&user, &headers, &body, Role::Member) {
        return refused;
    }
    match alerts::end_silence(&state.ops, Actor::User(&user.user), id, now_ms()).await {
        Ok(_) => Redirect::to("/alerts").into_response(),
        Err(e) => page_failure("Alerts", e),
    }
}
