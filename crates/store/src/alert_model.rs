//! Alert rules, the alerts they raise and silences: the records the alert evaluator keeps.
//! What a rule means and how its state moves lives in `langguard-ops` (`alerts`); the store
//! only keeps it.

use serde::{Deserialize, Serialize};

use crate::{GroupBy, IntegrationId, Severity, WebhookId};

pub type AlertRuleId = i64;

wire_enum!(
    /// What a rule watches, each over the rule's window: counts of requests, errors and 429s;
    /// error and cache-hit rates and coverage in percent; latency percentiles in ms; cost in
    /// USD; tokens in and out; violations at or above the rule's severity; minutes since the
    /// integration last took in data; "no traffic" (no request at all); and user sessions
    /// with traffic in the window flagged as spend anomalies (People).
    AlertMetric {
        Requests => "requests",
        Errors => "errors",
        ErrorRate => "error_rate",
        RateLimited => "rate_limited",
        LatencyP50 => "latency_p50",
        LatencyP95 => "latency_p95",
        LatencyP99 => "latency_p99",
        CostUsd => "cost_usd",
        Tokens => "tokens",
        CacheHitRate => "cache_hit_rate",
        Violations => "violations",
        Coverage => "coverage",
        ImportLagMinutes => "import_lag_minutes",
        NoTraffic => "no_traffic",
        SpendAnomalies => "spend_anomalies",
    }
);

wire_enum!(
    /// Which side of the threshold is trouble.
    AlertCondition {
        Above => "above",
        Below => "below",
    }
);

wire_enum!(
    /// An alert's life: `pending` while the condition holds for less than the rule's `for`,
    /// `firing` after, `resolved` once it no longer holds.
    AlertState {
        Pending => "pending",
        Firing => "firing",
        Resolved => "resolved",
    }
);

/// Which traffic a rule (or budget) looks at; `None` is all of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertScope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<IntegrationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub id: AlertRuleId,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub metric: AlertMetric,
    /// For [`AlertMetric::Violations`]: the least severity counted.
    pub severity: Option<Severity>,
    pub condition: AlertCondition,
    pub threshold: f64,
    pub window_minutes: i64,
    /// How long the condition must hold before the alert fires.
    pub for_minutes: i64,
    /// Windows with fewer requests than this are not judged (quiet hours page nobody).
    pub min_requests: i64,
    /// While firing, notify again this often; `None`: once.
    pub renotify_minutes: Option<i64>,
    pub scope: AlertScope,
    /// One alert per group (per model, per gateway, …) instead of one for the whole scope.
    pub group_by: Option<GroupBy>,
    /// The notification channels its alerts go to; empty: every enabled channel subscribed
    /// to `alert.firing`/`alert.resolved`.
    pub channel_ids: Vec<WebhookId>,
    pub created_by: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A rule to create; checked by the caller (the alert operations).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlertRule {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub metric: AlertMetric,
    pub severity: Option<Severity>,
    pub condition: AlertCondition,
    pub threshold: f64,
    pub window_minutes: i64,
    pub for_minutes: i64,
    pub min_requests: i64,
    pub renotify_minutes: Option<i64>,
    pub scope: AlertScope,
    pub group_by: Option<GroupBy>,
    pub channel_ids: Vec<WebhookId>,
    pub created_by: Option<String>,
}

impl NewAlertRule {
    /// The rule as saved, for checking a whole rule after a change.
    pub fn from_rule(rule: &AlertRule) -> Self {
        Self {
            name: rule.name.clone(),
            description: rule.description.clone(),
            enabled: rule.enabled,
            metric: rule.metric,
            severity: rule.severity,
            condition: rule.condition,
            threshold: rule.threshold,
            window_minutes: rule.window_minutes,
            for_minutes: rule.for_minutes,
            min_requests: rule.min_requests,
            renotify_minutes: rule.renotify_minutes,
            scope: rule.scope.clone(),
            group_by: rule.group_by,
            channel_ids: rule.channel_ids.clone(),
            created_by: rule.created_by.clone(),
        }
    }
}

/// One alert: a rule's condition holding for one group (`""` when the rule isn't grouped),
/// from when it started to hold until it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: i64,
    pub rule_id: AlertRuleId,
    pub group: String,
    pub state: AlertState,
    /// The metric's value at the last evaluation (`None`: too little traffic to judge).
    pub value: Option<f64>,
    pub threshold: f64,
    pub pending_since_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    /// When a notification about it was last queued (`None`: nobody told yet, e.g. silenced).
    pub notified_at_ms: Option<i64>,
    pub evaluated_at_ms: i64,
}

/// What one evaluation does to an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertChange {
    /// A new alert (its `id` is ignored).
    Open(Alert),
    /// An open alert as it now is (a resolved one is kept, as history).
    Update(Alert),
    /// A pending alert whose condition stopped holding before it fired: forgotten.
    Drop(i64),
}

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertQuery {
    pub rule_id: Option<AlertRuleId>,
    /// Any of these states; empty: all.
    pub states: Vec<AlertState>,
    pub limit: u32,
    /// Newest first; continue below this id.
    pub before_id: Option<i64>,
}

/// Notifications of a rule (or one of its groups) held back until `ends_at_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSilence {
    pub id: i64,
    /// `None`: every rule.
    pub rule_id: Option<AlertRuleId>,
    /// `None`: every group of the rule.
    pub group: Option<String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub reason: String,
    pub created_by: Option<String>,
    pub created_at_ms: i64,
}

impl AlertSilence {
    /// Whether it holds back notifications of `rule`'s `group` at `at_ms`.
    pub fn covers(&self, rule: AlertRuleId, group: &str, at_ms: i64) -> bool {
        self.starts_at_ms <= at_ms
            && at_ms < self.ends_at_ms
            && self.rule_id.is_none_or(|r| r == rule)
            && self.group.as_deref().is_none_or(|g| g == group)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAlertSilence {
    pub rule_id: Option<AlertRuleId>,
    pub group: Option<String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub reason: String,
    pub created_by: Option<String>,
}
