//! `input.budgets`: the budgets an interaction counts against, as the budget evaluator last
//! saw them (at most a minute old), so a policy can flag the traffic of a team that is over
//! its budget. One entry per budget whose scope holds the interaction, for the interaction's
//! own group of a grouped budget.

use std::collections::HashMap;

use langguard_store::{Budget, BudgetGroup, GroupBy, Interaction, Store, StoreResult};
use serde::{Deserialize, Serialize};

/// One budget as a policy reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetInput {
    pub id: i64,
    pub name: String,
    /// `day`, `week` or `month`.
    pub period: String,
    /// `integration`, `gateway`, `provider` or `model`; absent when not grouped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    /// The interaction's group ("" when not grouped).
    pub group: String,
    pub amount_usd: f64,
    pub spent_usd: f64,
    pub percent: f64,
    pub forecast_usd: f64,
    /// Spend has reached the amount.
    pub over: bool,
}

fn holds(budget: &Budget, i: &Interaction) -> bool {
    let s = &budget.scope;
    s.integration_id.is_none_or(|id| id == i.integration_id)
        && s.gateway.as_ref().is_none_or(|g| *g == i.gateway)
        && s.provider.as_ref().is_none_or(|p| *p == i.log.provider)
        && s.model.as_ref().is_none_or(|m| *m == i.log.model)
}

/// The interaction's group under `group_by`, as the metrics queries name groups.
fn group_of(group_by: Option<GroupBy>, i: &Interaction) -> String {
    match group_by {
        None => String::new(),
        Some(GroupBy::Integration) => i.integration_id.to_string(),
        Some(GroupBy::Gateway) => i.gateway.clone(),
        Some(GroupBy::Provider) => i.log.provider.clone(),
        Some(GroupBy::Model) => i.log.model.clone(),
    }
}

/// Each interaction's budgets, from the enabled budgets and their groups' saved spend.
pub fn budgets_of(
    budgets: &[Budget],
    groups: &[BudgetGroup],
    interactions: &[Interaction],
) -> HashMap<i64, Vec<BudgetInput>> {
    let saved: HashMap<(i64, &str), &BudgetGroup> = groups
        .iter()
        .map(|g| ((g.budget_id, g.group.as_str()), g))
        .collect();
    let enabled: Vec<&Budget> = budgets.iter().filter(|b| b.enabled).collect();
    interactions
        .iter()
        .map(|i| {
            let entries = enabled
                .iter()
                .filter(|b| holds(b, i))
                .map(|b| {
                    let group = group_of(b.group_by, i);
                    let (spent, forecast) = saved
                        .get(&(b.id, group.as_str()))
                        .map(|g| (g.spent_usd, g.forecast_usd))
                        .unwrap_or((0.0, 0.0));
                    let percent = if b.amount_usd > 0.0 {
                        spent * 100.0 / b.amount_usd
                    } else {
                        0.0
                    };
                    BudgetInput {
                        id: b.id,
                        name: b.name.clone(),
                        period: b.period.as_str().to_owned(),
                        group_by: b.group_by.map(|g| g.as_str().to_owned()),
                        group,
                        amount_usd: b.amount_usd,
                        spent_usd: spent,
                        percent,
                        forecast_usd: forecast,
                        over: spent >= b.amount_usd,
                    }
                })
                .collect();
            (i.id, entries)
        })
        .collect()
}

/// Reads the budgets and their saved groups once for a batch.
pub async fn load(
    store: &dyn Store,
    interactions: &[Interaction],
) -> StoreResult<HashMap<i64, Vec<BudgetInput>>> {
    let budgets = store.list_budgets().await?;
    if budgets.is_empty() {
        return Ok(interactions.iter().map(|i| (i.id, Vec::new())).collect());
    }
    let groups = store.budget_groups().await?;
    Ok(budgets_of(&budgets, &groups, interactions))
}
