//! Budgets: an amount in USD per day, week or calendar month in a time zone, over a scope
//! (integration, gateway, provider, model), optionally one per group (each model, each
//! gateway gets the amount); thresholds that notify through the channels; a forecast of the
//! period's end; and `input.budgets` for policies (see `langguard_policy::budgets`).

pub mod evaluate;
pub mod period;

use std::collections::HashMap;

use langguard_clock::format_ms;
use langguard_store::{AlertScope, Budget, BudgetId, BudgetPeriod, GroupBy, NewBudget, Scope};
use serde::Serialize;
use serde_json::json;
use tracing::instrument;

use crate::alerts::evaluate::{
    group_label, integration_names, metrics_scope, narrowed, scoped_traces_link,
};
use crate::alerts::rules::{integration_exists, scope_text, who};
use crate::{Actor, OpsError, OpsResult, Services};

/// Thresholds when none are given: early warning, late warning, spent.
pub const DEFAULT_THRESHOLDS: [u32; 3] = [50, 80, 100];

/// One group of a budget as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BudgetGroupView {
    /// The group (a model, a gateway, an integration's id); null for an ungrouped budget.
    pub group: Option<String>,
    /// The group as people read it (an integration's name).
    pub group_label: Option<String>,
    pub spent_usd: f64,
    /// Spent, in % of the amount.
    pub percent: f64,
    /// Spend at the period's end if the rate of the last days holds.
    pub forecast_usd: f64,
    /// When the forecast reaches the amount (to the hour), if before the period ends.
    pub crosses_at: Option<String>,
    pub over: bool,
    /// The Trace Explorer filtered to the budget's scope, this group and the period.
    pub traces_url: String,
}

/// A budget with where it stands now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BudgetView {
    pub id: i64,
    pub name: String,
    pub amount_usd: f64,
    /// `day`, `week` (from Monday) or `month`.
    pub period: &'static str,
    /// IANA time zone the period's days begin in.
    pub time_zone: String,
    #[schema(value_type = Object)]
    pub scope: AlertScope,
    /// `integration`, `gateway`, `provider`, `model` or null.
    pub group_by: Option<&'static str>,
    /// Percentages of the amount that notify (`budget.threshold`) once per period.
    pub thresholds: Vec<u32>,
    pub enabled: bool,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub period_start: String,
    pub period_end: String,
    /// Spend per group this period, most spent first (the first 100).
    pub groups: Vec<BudgetGroupView>,
}

/// One local day of a burn-down.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BurndownDay {
    /// `YYYY-MM-DD` in the budget's time zone.
    pub date: String,
    /// Spent from the period's start to the end of this day (to now, today).
    pub spent_usd: f64,
    /// The even pace: the amount spread over the period, to the end of this day.
    pub pace_usd: f64,
    /// Days after today: where the forecast puts spend by the end of that day.
    pub forecast_usd: Option<f64>,
}

/// A budget with the burn-down of one of its groups.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BudgetDetail {
    #[serde(flatten)]
    pub budget: BudgetView,
    /// The group charted (the most spent unless asked for); null when ungrouped.
    pub burndown_group: Option<String>,
    pub burndown: Vec<BurndownDay>,
}

/// Integration names for the groups of `budgets`, read once for all of them.
async fn names_for(ops: &Services, budgets: &[Budget]) -> OpsResult<HashMap<String, String>> {
    let needed = budgets
        .iter()
        .any(|b| b.group_by == Some(GroupBy::Integration));
    Ok(integration_names(ops.store.as_ref(), needed).await?)
}

async fn view(
    ops: &Services,
    budget: &Budget,
    names: &HashMap<String, String>,
    now_ms: i64,
) -> OpsResult<BudgetView> {
    let status = evaluate::status(ops.store.as_ref(), budget, now_ms).await?;
    let window = (
        status.period_start_ms,
        status.period_end_ms.min(now_ms.max(status.period_start_ms)),
    );
    Ok(BudgetView {
        id: budget.id,
        name: budget.name.clone(),
        amount_usd: budget.amount_usd,
        period: budget.period.as_str(),
        time_zone: budget.time_zone.clone(),
        scope: budget.scope.clone(),
        group_by: budget.group_by.map(GroupBy::as_str),
        thresholds: budget.thresholds.clone(),
        enabled: budget.enabled,
        created_by: budget.created_by.clone(),
        created_at: format_ms(budget.created_at_ms),
        updated_at: format_ms(budget.updated_at_ms),
        period_start: format_ms(status.period_start_ms),
        period_end: format_ms(status.period_end_ms),
        groups: status
            .groups
            .iter()
            .take(100)
            .map(|g| BudgetGroupView {
                group: (!g.group.is_empty()).then(|| g.group.clone()),
                group_label: group_label(budget.group_by, &g.group, names),
                spent_usd: g.spent_usd,
                percent: g.percent,
                forecast_usd: g.forecast.end_usd,
                crosses_at: g.forecast.crosses_at_ms.map(format_ms),
                over: g.spent_usd >= budget.amount_usd,
                traces_url: scoped_traces_link(
                    &budget.scope,
                    budget.group_by,
                    &g.group,
                    window,
                    false,
                ),
            })
            .collect(),
    })
}

/// Every budget with where it stands at `now_ms`.
pub async fn list(ops: &Services, now_ms: i64) -> OpsResult<Vec<BudgetView>> {
    let budgets = ops.store.list_budgets().await?;
    let names = names_for(ops, &budgets).await?;
    let mut out = Vec::new();
    for budget in &budgets {
        out.push(view(ops, budget, &names, now_ms).await?);
    }
    Ok(out)
}

/// One budget, with the burn-down of `group` (or its most spent group).
pub async fn detail(
    ops: &Services,
    id: BudgetId,
    group: Option<&str>,
    now_ms: i64,
) -> OpsResult<BudgetDetail> {
    let budget = ops.store.get_budget(id).await?;
    let names = names_for(ops, std::slice::from_ref(&budget)).await?;
    let view = view(ops, &budget, &names, now_ms).await?;
    let group = match (budget.group_by, group) {
        (None, _) => String::new(),
        (Some(_), Some(g)) => g.to_owned(),
        (Some(_), None) => view
            .groups
            .first()
            .and_then(|g| g.group.clone())
            .unwrap_or_default(),
    };
    let burndown = burndown(ops, &budget, &group, now_ms).await?;
    Ok(BudgetDetail {
        budget: view,
        burndown_group: (!group.is_empty()).then_some(group),
        burndown,
    })
}

/// Cumulative spend by local day over the period, beside the even pace and, for the days
/// ahead, the forecast.
async fn burndown(
    ops: &Services,
    budget: &Budget,
    group: &str,
    now_ms: i64,
) -> OpsResult<Vec<BurndownDay>> {
    const DAY_MS: i64 = 86_400_000;
    let tz = period::zone(&budget.time_zone).map_err(|e| OpsError::invalid("invalid_budget", e))?;
    let (start, end) = period::bounds(budget.period, tz, now_ms);
    let scope: Scope = metrics_scope(
        &narrowed(&budget.scope, budget.group_by, group),
        start,
        now_ms.max(start),
    );
    let series = ops
        .store
        .metrics_series(&scope, langguard_store::Bucket::Hour, None)
        .await?;
    // Spend per local date (an hour is counted on the day it starts).
    let mut per_day: std::collections::BTreeMap<String, f64> = Default::default();
    for point in series.iter().flat_map(|s| s.points.iter()) {
        *per_day
            .entry(period::date_label(tz, point.t_ms.max(start)))
            .or_default() += point.metrics.cost_usd;
    }
    let spent_now: f64 = per_day.values().sum();
    let window = period::rate_window_ms(start, now_ms);
    let recent = ops
        .store
        .metrics(&Scope {
            from_ms: Some(now_ms - window),
            to_ms: Some(now_ms),
            ..scope.clone()
        })
        .await?
        .cost_usd;
    let per_ms = recent / window as f64;
    let mut days = Vec::new();
    let (mut day_start, mut spent) = (start, 0.0);
    while day_start < end {
        let date = period::date_label(tz, day_start);
        // The next day's start: 27 hours on is inside the next local day whatever the clock
        // does (days are 23 to 25 hours long).
        let next = period::bounds(BudgetPeriod::Day, tz, day_start + DAY_MS + 3 * 3_600_000).0;
        let day_end = if next > day_start { next.min(end) } else { end };
        let pace = budget.amount_usd * ((day_end - start) as f64 / (end - start).max(1) as f64);
        if day_start <= now_ms {
            spent += per_day.get(&date).copied().unwrap_or(0.0);
            days.push(BurndownDay {
                date,
                spent_usd: spent,
                pace_usd: pace,
                forecast_usd: None,
            });
        } else {
            days.push(BurndownDay {
                date,
                spent_usd: spent_now,
                pace_usd: pace,
                forecast_usd: Some(spent_now + per_ms * (day_end - now_ms) as f64),
            });
        }
        day_start = day_end;
    }
    Ok(days)
}

/// A budget as written by a client; `None` leaves a field as it is (or takes its default).
#[derive(Debug, Clone, Default)]
pub struct BudgetInput {
    pub name: Option<String>,
    pub amount_usd: Option<f64>,
    pub period: Option<String>,
    pub time_zone: Option<String>,
    pub scope: Option<AlertScope>,
    /// `Some(None)`: not grouped.
    pub group_by: Option<Option<String>>,
    pub thresholds: Option<Vec<u32>>,
    pub enabled: Option<bool>,
}

fn bad(message: impl Into<String>) -> OpsError {
    OpsError::invalid("invalid_budget", message.into())
}

/// `input` laid over `base` (a saved budget being changed), checked whole.
fn build(input: BudgetInput, base: Option<&Budget>) -> OpsResult<NewBudget> {
    let name = match (input.name, base) {
        (Some(n), _) => n.trim().to_owned(),
        (None, Some(b)) => b.name.clone(),
        (None, None) => String::new(),
    };
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(bad("give the budget a name of at most 100 characters"));
    }
    let amount_usd = match (input.amount_usd, base) {
        (Some(a), _) => a,
        (None, Some(b)) => b.amount_usd,
        (None, None) => return Err(bad("say how much: amount_usd, e.g. 2000")),
    };
    if !amount_usd.is_finite() || amount_usd <= 0.0 || amount_usd > 1e12 {
        return Err(bad("amount_usd is a positive number of dollars"));
    }
    let period = match (input.period.as_deref(), base) {
        (Some(p), _) => BudgetPeriod::parse(p.trim())
            .ok_or_else(|| bad(format!("unknown period {p:?}; use day, week or month")))?,
        (None, Some(b)) => b.period,
        (None, None) => BudgetPeriod::Month,
    };
    let time_zone = match (input.time_zone, base) {
        (Some(z), _) => z.trim().to_owned(),
        (None, Some(b)) => b.time_zone.clone(),
        (None, None) => "UTC".to_owned(),
    };
    period::zone(&time_zone).map_err(bad)?;
    let scope = match (input.scope, base) {
        (Some(s), _) => AlertScope {
            integration_id: s.integration_id,
            gateway: scope_text(s.gateway, "the gateway").map_err(|e| bad(e.to_string()))?,
            provider: scope_text(s.provider, "the provider").map_err(|e| bad(e.to_string()))?,
            model: scope_text(s.model, "the model").map_err(|e| bad(e.to_string()))?,
        },
        (None, Some(b)) => b.scope.clone(),
        (None, None) => AlertScope::default(),
    };
    let group_by = match (input.group_by, base) {
        (Some(Some(g)), _) if g.trim().is_empty() => None,
        (Some(Some(g)), _) => Some(GroupBy::parse(g.trim()).ok_or_else(|| {
            bad(format!(
                "unknown group_by {g:?}; use integration, gateway, provider or model"
            ))
        })?),
        (Some(None), _) => None,
        (None, Some(b)) => b.group_by,
        (None, None) => None,
    };
    let mut thresholds = match (input.thresholds, base) {
        (Some(t), _) => t,
        (None, Some(b)) => b.thresholds.clone(),
        (None, None) => DEFAULT_THRESHOLDS.to_vec(),
    };
    thresholds.sort_unstable();
    thresholds.dedup();
    if thresholds.len() > 10 || thresholds.iter().any(|t| *t == 0 || *t > 1_000) {
        return Err(bad(
            "thresholds are up to 10 percentages from 1 to 1000, e.g. [50, 80, 100]",
        ));
    }
    Ok(NewBudget {
        name,
        amount_usd,
        period,
        time_zone,
        scope,
        group_by,
        thresholds,
        enabled: input.enabled.or(base.map(|b| b.enabled)).unwrap_or(true),
        created_by: base.and_then(|b| b.created_by.clone()),
    })
}

#[instrument(skip_all)]
pub async fn add(ops: &Services, actor: Actor<'_>, input: BudgetInput) -> OpsResult<Budget> {
    let mut new = build(input, None)?;
    integration_exists(ops, &new.scope, "invalid_budget").await?;
    new.created_by = who(actor);
    let budget = ops.store.create_budget(new).await?;
    ops.audit(
        actor,
        "budget.created",
        Some(format!("budget:{}", budget.id)),
        json!({"name": budget.name, "amount_usd": budget.amount_usd, "period": budget.period.as_str()}),
        None,
    )
    .await;
    Ok(budget)
}

#[instrument(skip_all, fields(budget_id = id))]
pub async fn change(
    ops: &Services,
    actor: Actor<'_>,
    id: BudgetId,
    input: BudgetInput,
) -> OpsResult<Budget> {
    let current = ops.store.get_budget(id).await?;
    let budget = build(input, Some(&current))?;
    integration_exists(ops, &budget.scope, "invalid_budget").await?;
    let budget = ops.store.replace_budget(id, budget).await?;
    ops.audit(
        actor,
        "budget.updated",
        Some(format!("budget:{id}")),
        json!({"name": budget.name, "amount_usd": budget.amount_usd, "enabled": budget.enabled}),
        None,
    )
    .await;
    Ok(budget)
}

#[instrument(skip_all, fields(budget_id = id))]
pub async fn remove(ops: &Services, actor: Actor<'_>, id: BudgetId) -> OpsResult<()> {
    ops.store.delete_budget(id).await?;
    ops.audit(
        actor,
        "budget.deleted",
        Some(format!("budget:{id}")),
        json!({}),
        None,
    )
    .await;
    Ok(())
}

/// The view of a budget just saved.
pub async fn saved(ops: &Services, budget: &Budget, now_ms: i64) -> OpsResult<BudgetView> {
    let names = names_for(ops, std::slice::from_ref(budget)).await?;
    view(ops, budget, &names, now_ms).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_take_defaults_and_refuse_what_makes_no_sense() {
        let ok = build(
            BudgetInput {
                name: Some(" Team budgets ".into()),
                amount_usd: Some(2_000.0),
                group_by: Some(Some("model".into())),
                ..BudgetInput::default()
            },
            None,
        )
        .expect("valid");
        assert_eq!(ok.name, "Team budgets");
        assert_eq!(
            (ok.period, ok.time_zone.as_str()),
            (BudgetPeriod::Month, "UTC")
        );
        assert_eq!(ok.thresholds, DEFAULT_THRESHOLDS);
        for (input, says) in [
            (
                BudgetInput {
                    amount_usd: Some(10.0),
                    ..Default::default()
                },
                "name",
            ),
            (
                BudgetInput {
                    name: Some("x".into()),
                    ..Default::default()
                },
                "amount_usd",
            ),
            (
                BudgetInput {
                    name: Some("x".into()),
                    amount_usd: Some(-1.0),
                    ..Default::default()
                },
                "positive",
            ),
            (
                BudgetInput {
                    name: Some("x".into()),
                    amount_usd: Some(f64::NAN),
                    ..Default::default()
                },
                "positive",
            ),
            (
                BudgetInput {
                    name: Some("x".into()),
                    amount_usd: Some(1.0),
                    period: Some("year".into()),
                    ..Default::default()
                },
                "day, week or month",
            ),
            (
                BudgetInput {
                    name: Some("x".into()),
                    amount_usd: Some(1.0),
                    time_zone: Some("Moon/Base".into()),
                    ..Default::default()
                },
                "IANA",
            ),
            (
                BudgetInput {
                    name: Some("x".into()),
                    amount_usd: Some(1.0),
                    thresholds: Some(vec![0]),
                    ..Default::default()
                },
                "thresholds",
            ),
            (
                BudgetInput {
                    name: Some("x".into()),
                    amount_usd: Some(1.0),
                    group_by: Some(Some("team".into())),
                    ..Default::default()
                },
                "group_by",
            ),
        ] {
            let e = build(input, None).expect_err("refused").to_string();
            assert!(e.contains(says), "{e}");
        }
    }
}
