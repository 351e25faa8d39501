//! What a budget stands at — spend so far in its period per group, read from the rollups, and
//! the forecast for the period's end — and the evaluator that, every minute with the alerts
//! (same lease), saves each group's figures and announces each threshold once per period.

use std::collections::{BTreeMap, HashMap};

use langguard_clock::format_ms;
use langguard_store::{Budget, BudgetGroup, GroupBy, OutgoingEvent, Scope, Store, WebhookEvent};
use serde::Serialize;
use serde_json::json;

use super::period::{self, Forecast};
use crate::alerts::evaluate::{group_label, integration_names, metrics_scope, scoped_traces_link};
use crate::{OpsError, OpsResult};

/// One group of a budget now.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStatus {
    /// `""` for an ungrouped budget.
    pub group: String,
    pub spent_usd: f64,
    pub percent: f64,
    pub forecast: Forecast,
}

/// A budget's period and its groups, most spent first.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetStatus {
    pub period_start_ms: i64,
    pub period_end_ms: i64,
    pub groups: Vec<GroupStatus>,
}

fn zone_of(budget: &Budget) -> OpsResult<chrono_tz::Tz> {
    period::zone(&budget.time_zone).map_err(|e| {
        OpsError::Internal(anyhow::anyhow!(
            "budget {} has a bad time zone: {e}",
            budget.id
        ))
    })
}

/// Cost per group over the scope: `""` for the whole scope when not grouped.
async fn cost_by_group(
    store: &dyn Store,
    scope: &Scope,
    group_by: Option<GroupBy>,
) -> OpsResult<BTreeMap<String, f64>> {
    Ok(match group_by {
        None => BTreeMap::from([(String::new(), store.metrics(scope).await?.cost_usd)]),
        Some(g) => store
            .metrics_by(scope, g)
            .await?
            .into_iter()
            .map(|m| (m.group, m.metrics.cost_usd))
            .collect(),
    })
}

/// The budget at `now_ms`: spend from the start of its period, and a forecast from the spend
/// over the trailing [`period::rate_window_ms`].
pub async fn status(store: &dyn Store, budget: &Budget, now_ms: i64) -> OpsResult<BudgetStatus> {
    let tz = zone_of(budget)?;
    let (start, end) = period::bounds(budget.period, tz, now_ms);
    let window = period::rate_window_ms(start, now_ms);
    let (so_far, lately) = (
        metrics_scope(&budget.scope, start, now_ms),
        metrics_scope(&budget.scope, now_ms - window, now_ms),
    );
    let (spent, recent) = tokio::try_join!(
        cost_by_group(store, &so_far, budget.group_by),
        cost_by_group(store, &lately, budget.group_by),
    )?;
    let mut groups: Vec<GroupStatus> = spent
        .iter()
        .map(|(group, &spent_usd)| GroupStatus {
            group: group.clone(),
            spent_usd,
            percent: percent(spent_usd, budget.amount_usd),
            forecast: period::forecast(
                budget.amount_usd,
                spent_usd,
                (now_ms, end),
                (recent.get(group).copied().unwrap_or(0.0), window),
            ),
        })
        .collect();
    groups.sort_by(|a, b| {
        b.spent_usd
            .total_cmp(&a.spent_usd)
            .then(a.group.cmp(&b.group))
    });
    Ok(BudgetStatus {
        period_start_ms: start,
        period_end_ms: end,
        groups,
    })
}

pub fn percent(spent_usd: f64, amount_usd: f64) -> f64 {
    if amount_usd > 0.0 {
        spent_usd * 100.0 / amount_usd
    } else {
        0.0
    }
}

/// The highest threshold `percent` has reached (0 for none).
pub fn reached(thresholds: &[u32], percent: f64) -> u32 {
    thresholds
        .iter()
        .copied()
        .filter(|t| percent >= f64::from(*t))
        .max()
        .unwrap_or(0)
}

/// What one evaluation did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetReport {
    pub budgets: usize,
    pub groups: usize,
    pub notified: usize,
}

/// Evaluates every enabled budget at `now_ms`: saves each group's spend and forecast and
/// queues a `budget.threshold` event for each group that reached a threshold not yet
/// announced this period (the highest one, when several were passed at once).
pub async fn evaluate(
    store: &dyn Store,
    now_ms: i64,
    public_url: Option<&str>,
) -> OpsResult<BudgetReport> {
    let budgets: Vec<Budget> = store
        .list_budgets()
        .await?
        .into_iter()
        .filter(|b| b.enabled)
        .collect();
    let mut report = BudgetReport {
        budgets: budgets.len(),
        ..BudgetReport::default()
    };
    if budgets.is_empty() {
        return Ok(report);
    }
    let saved: HashMap<(i64, String), BudgetGroup> = store
        .budget_groups()
        .await?
        .into_iter()
        .map(|g| ((g.budget_id, g.group.clone()), g))
        .collect();
    let names = integration_names(
        store,
        budgets
            .iter()
            .any(|b| b.group_by == Some(GroupBy::Integration)),
    )
    .await?;
    let base = public_url.unwrap_or("").trim_end_matches('/');
    let mut rows = Vec::new();
    let mut events = Vec::new();
    for budget in &budgets {
        let status = match status(store, budget, now_ms).await {
            Ok(status) => status,
            Err(e) => {
                // One broken budget doesn't hold the others back.
                tracing::warn!(budget_id = budget.id, error = %e, "a budget could not be evaluated");
                continue;
            }
        };
        let start = status.period_start_ms;
        let mut seen = Vec::new();
        for g in &status.groups {
            let before = saved
                .get(&(budget.id, g.group.clone()))
                .filter(|s| s.period_start_ms == start)
                .map(|s| s.notified_percent)
                .unwrap_or(0);
            let now_reached = reached(&budget.thresholds, g.percent);
            let notified = if now_reached > before {
                let label = group_label(budget.group_by, &g.group, &names);
                events.push(notice(budget, &status, g, now_reached, label, base));
                report.notified += 1;
                now_reached
            } else {
                before
            };
            seen.push(g.group.clone());
            rows.push(BudgetGroup {
                budget_id: budget.id,
                group: g.group.clone(),
                period_start_ms: start,
                spent_usd: g.spent_usd,
                forecast_usd: g.forecast.end_usd,
                notified_percent: notified,
                evaluated_at_ms: now_ms,
            });
        }
        // Groups without spend this period (a new month) start again from nothing.
        for ((id, group), _) in saved.iter().filter(|((id, _), _)| *id == budget.id) {
            if !seen.contains(group) {
                rows.push(BudgetGroup {
                    budget_id: *id,
                    group: group.clone(),
                    period_start_ms: start,
                    spent_usd: 0.0,
                    forecast_usd: 0.0,
                    notified_percent: 0,
                    evaluated_at_ms: now_ms,
                });
            }
        }
    }
    report.groups = rows.len();
    store.save_budget_groups(rows, events).await?;
    Ok(report)
}

fn notice(
    budget: &Budget,
    status: &BudgetStatus,
    g: &GroupStatus,
    threshold: u32,
    label: Option<String>,
    base: &str,
) -> OutgoingEvent {
    let tz = period::zone(&budget.time_zone).unwrap_or(chrono_tz::UTC);
    let window = (status.period_start_ms, status.period_end_ms);
    OutgoingEvent::new(
        WebhookEvent::BudgetThreshold,
        json!({
            "budgetId": budget.id,
            "budgetName": budget.name,
            "period": budget.period.as_str(),
            "timeZone": budget.time_zone,
            "periodStart": format_ms(status.period_start_ms),
            "periodEnd": format_ms(status.period_end_ms),
            "periodLabel": period::date_label(tz, status.period_start_ms),
            "groupBy": budget.group_by.map(GroupBy::as_str),
            "group": (!g.group.is_empty()).then_some(&g.group),
            "groupLabel": label,
            "amountUsd": budget.amount_usd,
            "spentUsd": g.spent_usd,
            "percent": (g.percent * 10.0).round() / 10.0,
            "threshold": threshold,
            "forecastUsd": g.forecast.end_usd,
            "crossesAt": g.forecast.crosses_at_ms.map(format_ms),
            "tracesUrl": format!("{base}{}", scoped_traces_link(&budget.scope, budget.group_by, &g.group, window, false)),
            "budgetsUrl": format!("{base}/budgets#budget-{}", budget.id),
        }),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_threshold_reached_counts() {
        assert_eq!(reached(&[50, 80, 100], 49.9), 0);
        assert_eq!(reached(&[50, 80, 100], 50.0), 50);
        assert_eq!(reached(&[50, 80, 100], 95.0), 80);
        assert_eq!(reached(&[50, 80, 100], 250.0), 100);
        assert_eq!(percent(25.0, 0.0), 0.0);
    }
}
