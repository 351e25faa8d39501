//! The Budgets page: each budget with spend per group against its amount, the forecast and
//! the burn-down of one group (spend, the even pace, the forecast); create, enable/disable and
//! delete. Members and Admins write; Viewers read.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use langguard_ops::budgets::{self, BudgetDetail, BudgetInput};
use langguard_ops::Actor;
use langguard_store::{AlertScope, Role};
use serde::Deserialize;

use super::chart::{line_chart, Line};
use super::form::{button, given, not_understood};
use super::policies::writer;
use super::session::WebUser;
use super::{page_failure, problem, refuse, render, Frame};
use crate::{now_ms, AppState};

fn usd(v: f64) -> String {
    if v >= 10_000.0 {
        format!("${v:.0}")
    } else {
        format!("${v:.2}")
    }
}

fn date(t: &str) -> String {
    t.get(..10).unwrap_or(t).to_owned()
}

struct GroupRow {
    label: String,
    spent: String,
    percent: f64,
    percent_text: String,
    forecast: String,
    crosses: String,
    over: bool,
    traces_url: String,
    chart_url: String,
}

struct BudgetCard {
    id: i64,
    name: String,
    amount: String,
    terms: String,
    enabled: bool,
    groups: Vec<GroupRow>,
    chart_title: String,
    chart: String,
}

fn terms(detail: &BudgetDetail) -> String {
    let b = &detail.budget;
    let scope = [
        b.scope.integration_id.map(|i| format!("integration {i}")),
        b.scope.gateway.clone().map(|g| format!("gateway {g}")),
        b.scope.provider.clone(),
        b.scope.model.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    // The period's first and last local days (its instants are UTC).
    let (first, last) = match (detail.burndown.first(), detail.burndown.last()) {
        (Some(f), Some(l)) => (f.date.clone(), l.date.clone()),
        _ => (date(&b.period_start), date(&b.period_end)),
    };
    let mut text = format!("per {} in {}, {first} to {last}", b.period, b.time_zone);
    if let Some(g) = b.group_by {
        text.push_str(&format!(", each {g} gets the whole amount"));
    }
    if !scope.is_empty() {
        text.push_str(&format!("; only {}", scope.join(", ")));
    }
    let thresholds: Vec<String> = b.thresholds.iter().map(|t| format!("{t} %")).collect();
    text.push_str(&format!("; notifies at {}", thresholds.join(", ")));
    text
}

fn card(detail: &BudgetDetail) -> BudgetCard {
    let b = &detail.budget;
    let groups = b
        .groups
        .iter()
        .map(|g| GroupRow {
            label: g
                .group_label
                .clone()
                .or_else(|| g.group.clone())
                .unwrap_or_else(|| "Everything in scope".into()),
            spent: usd(g.spent_usd),
            percent: g.percent.min(100.0),
            percent_text: format!("{:.1} %", g.percent),
            forecast: usd(g.forecast_usd),
            crosses: g
                .crosses_at
                .as_deref()
                .map(date)
                .unwrap_or_else(|| "—".into()),
            over: g.over,
            traces_url: g.traces_url.clone(),
            chart_url: match &g.group {
                Some(group) => format!(
                    "/budgets?budget={}&group={}#budget-{}",
                    b.id,
                    percent_encoding::utf8_percent_encode(
                        group,
                        percent_encoding::NON_ALPHANUMERIC
                    ),
                    b.id
                ),
                None => String::new(),
            },
        })
        .collect();
    let times: Vec<String> = detail.burndown.iter().map(|d| d.date.clone()).collect();
    let today = detail
        .burndown
        .iter()
        .rposition(|d| d.forecast_usd.is_none());
    let chart_title = match &detail.burndown_group {
        Some(g) => format!("Burn-down of {}: {g}", b.name),
        None => format!("Burn-down of {}", b.name),
    };
    let chart = line_chart(
        &chart_title,
        &times,
        &[
            Line {
                label: "Spent",
                class: "s1",
                values: detail
                    .burndown
                    .iter()
                    .map(|d| d.forecast_usd.is_none().then_some(d.spent_usd))
                    .collect(),
            },
            Line {
                label: "Even pace",
                class: "s3",
                values: detail.burndown.iter().map(|d| Some(d.pace_usd)).collect(),
            },
            Line {
                label: "Forecast",
                class: "s2",
                // The forecast line starts from today's spend so the two lines join.
                values: detail
                    .burndown
                    .iter()
                    .enumerate()
                    .map(|(i, d)| match d.forecast_usd {
                        Some(f) => Some(f),
                        None if Some(i) == today => Some(d.spent_usd),
                        None => None,
                    })
                    .collect(),
            },
        ],
        usd,
    );
    BudgetCard {
        id: b.id,
        name: b.name.clone(),
        amount: usd(b.amount_usd),
        terms: terms(detail),
        enabled: b.enabled,
        groups,
        chart_title,
        chart,
    }
}

#[derive(Template)]
#[template(path = "budgets.html")]
struct BudgetsPage {
    frame: Frame,
    writer: bool,
    budgets: Vec<BudgetCard>,
    integrations: Vec<(i64, String)>,
}

#[derive(Deserialize)]
pub struct ChartQuery {
    /// Chart `group` for this budget; the others chart their most spent group.
    budget: Option<i64>,
    group: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<ChartQuery>,
) -> Response {
    let now = now_ms();
    let list = match state.ops.store.list_budgets().await {
        Ok(list) => list,
        Err(e) => return page_failure("Budgets", e),
    };
    let mut cards = Vec::new();
    for budget in list {
        let group = (q.budget == Some(budget.id))
            .then_some(q.group.as_deref())
            .flatten();
        match budgets::detail(&state.ops, budget.id, group, now).await {
            Ok(detail) => cards.push(card(&detail)),
            Err(e) => return page_failure("Budgets", e),
        }
    }
    let integrations = match state.ops.store.list_integrations().await {
        Ok(list) => list.into_iter().map(|i| (i.id, i.name)).collect(),
        Err(e) => return page_failure("Budgets", e),
    };
    render(&BudgetsPage {
        frame: Frame::new(&user, "Budgets", "budgets"),
        writer: writer(&user),
        budgets: cards,
        integrations,
    })
}

#[derive(Deserialize, Default)]
struct BudgetForm {
    csrf: Option<String>,
    name: Option<String>,
    amount_usd: Option<String>,
    period: Option<String>,
    time_zone: Option<String>,
    group_by: Option<String>,
    thresholds: Option<String>,
    integration_id: Option<String>,
    gateway: Option<String>,
    provider: Option<String>,
    model: Option<String>,
}

impl BudgetForm {
    fn input(&self) -> Result<BudgetInput, String> {
        let amount = given(&self.amount_usd)
            .map(|a| {
                a.trim_start_matches('$')
                    .replace(',', "")
                    .parse::<f64>()
                    .map_err(|_| "Amount must be a number of dollars, e.g. 2000".to_owned())
            })
            .transpose()?;
        let thresholds = given(&self.thresholds)
            .map(|t| {
                t.split(',')
                    .map(|p| p.trim().trim_end_matches('%').trim().parse::<u32>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        "Thresholds are percentages separated by commas, e.g. 50, 80, 100"
                            .to_owned()
                    })
            })
            .transpose()?;
        let integration_id = given(&self.integration_id)
            .map(|i| {
                i.parse::<i64>()
                    .map_err(|_| "Pick an integration from the list".to_owned())
            })
            .transpose()?;
        Ok(BudgetInput {
            name: given(&self.name),
            amount_usd: amount,
            period: given(&self.period),
            time_zone: given(&self.time_zone),
            scope: Some(AlertScope {
                integration_id,
                gateway: given(&self.gateway),
                provider: given(&self.provider),
                model: given(&self.model),
            }),
            group_by: Some(given(&self.group_by)),
            thresholds,
            enabled: Some(true),
        })
    }
}

pub async fn create(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = serde_html_form::from_bytes::<BudgetForm>(&body) else {
        return not_understood();
    };
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Member) {
        return refused;
    }
    let input = match form.input() {
        Ok(input) => input,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    match budgets::add(&state.ops, Actor::User(&user.user), input).await {
        Ok(b) => Redirect::to(&format!("/budgets#budget-{}", b.id)).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, problem(e)).into_response(),
    }
}

/// Enable or disable (`/toggle`) or delete (`/delete`) a budget.
pub async fn action(
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
        "toggle" => match state.ops.store.get_budget(id).await {
            Ok(budget) => budgets::change(
                &state.ops,
                actor,
                id,
                BudgetInput {
                    enabled: Some(!budget.enabled),
                    ..BudgetInput::default()
                },
            )
            .await
            .map(|_| ()),
            Err(e) => Err(e.into()),
        },
        "delete" => budgets::remove(&state.ops, actor, id).await,
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    };
    match done {
        Ok(()) => Redirect::to("/budgets").into_response(),
        Err(e) => page_failure("Budgets", e),
    }
}
