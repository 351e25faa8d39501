//! Budgets and what the budget evaluator keeps of each budget's groups. What a period is, how
//! spend is read and forecast, and when a threshold notifies live in `langguard-ops`
//! (`budgets`); the store only keeps them.

use serde::{Deserialize, Serialize};

use crate::{AlertScope, GroupBy};

pub type BudgetId = i64;

wire_enum!(
    /// The span a budget's amount covers: a calendar day, an ISO week (from Monday) or a
    /// calendar month, each in the budget's time zone.
    BudgetPeriod {
        Day => "day",
        Week => "week",
        Month => "month",
    }
);

#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub id: BudgetId,
    pub name: String,
    pub amount_usd: f64,
    pub period: BudgetPeriod,
    /// IANA name ("Europe/Berlin"): where the period's days begin.
    pub time_zone: String,
    pub scope: AlertScope,
    /// One budget of `amount_usd` per group (each team, each model) instead of one in all.
    pub group_by: Option<GroupBy>,
    /// Percentages of the amount that notify when spend reaches them, ascending.
    pub thresholds: Vec<u32>,
    pub enabled: bool,
    pub created_by: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A budget to create or what to replace one with; checked by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBudget {
    pub name: String,
    pub amount_usd: f64,
    pub period: BudgetPeriod,
    pub time_zone: String,
    pub scope: AlertScope,
    pub group_by: Option<GroupBy>,
    pub thresholds: Vec<u32>,
    pub enabled: bool,
    pub created_by: Option<String>,
}

/// One group of a budget (`group` is `""` when the budget has no `group_by`) as the last
/// evaluation left it: the period it was in, what had been spent, the forecast for the
/// period's end, and the highest threshold people were told of in that period.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetGroup {
    pub budget_id: BudgetId,
    pub group: String,
    pub period_start_ms: i64,
    pub spent_usd: f64,
    pub forecast_usd: f64,
    /// 0 while no threshold has been announced this period.
    pub notified_percent: u32,
    pub evaluated_at_ms: i64,
}
