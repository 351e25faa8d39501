//! Alert rules: what makes one valid, and adding, changing and removing them (audited).

use langguard_store::{
    AlertCondition, AlertMetric, AlertRule, AlertRuleId, AlertScope, GroupBy, NewAlertRule,
    Severity,
};
use serde_json::json;
use tracing::instrument;

use crate::{Actor, OpsError, OpsResult, Services};

/// Shortest and longest window a rule may look over.
pub const WINDOW_MINUTES: std::ops::RangeInclusive<i64> = 5..=1_440;
/// Longest `for` a rule may wait before firing.
pub const MAX_FOR_MINUTES: i64 = 1_440;
/// Reminders no more often than this, no rarer than weekly.
pub const RENOTIFY_MINUTES: std::ops::RangeInclusive<i64> = 5..=10_080;

/// Whether the metric is a percentage (0–100).
pub fn is_percent(metric: AlertMetric) -> bool {
    matches!(
        metric,
        AlertMetric::ErrorRate | AlertMetric::CacheHitRate | AlertMetric::Coverage
    )
}

/// The metric's unit, as the UI and notifications print it.
pub fn unit(metric: AlertMetric) -> &'static str {
    match metric {
        AlertMetric::ErrorRate | AlertMetric::CacheHitRate | AlertMetric::Coverage => "%",
        AlertMetric::LatencyP50 | AlertMetric::LatencyP95 | AlertMetric::LatencyP99 => "ms",
        AlertMetric::CostUsd => "USD",
        AlertMetric::ImportLagMinutes => "min",
        AlertMetric::Requests | AlertMetric::NoTraffic => "requests",
        AlertMetric::Errors | AlertMetric::RateLimited => "requests",
        AlertMetric::Tokens => "tokens",
        AlertMetric::Violations => "violations",
        AlertMetric::SpendAnomalies => "sessions",
    }
}

/// Whether the metric is read from the traffic rollups (the others — violations, coverage,
/// import lag, spend anomalies — have their own reads and can't be replayed by a backtest).
pub fn from_rollups(metric: AlertMetric) -> bool {
    !matches!(
        metric,
        AlertMetric::Violations
            | AlertMetric::Coverage
            | AlertMetric::ImportLagMinutes
            | AlertMetric::SpendAnomalies
    )
}

/// Which groupings a metric can be split by: coverage and lag are figures of an
/// integration; violations are counted over the whole scope.
fn groupable(metric: AlertMetric, group_by: GroupBy) -> bool {
    match metric {
        AlertMetric::Coverage | AlertMetric::ImportLagMinutes => group_by == GroupBy::Integration,
        AlertMetric::Violations | AlertMetric::SpendAnomalies => false,
        _ => true,
    }
}

fn metric_names() -> String {
    AlertMetric::ALL
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A rule as a person or client wrote it; anything left out takes its default.
#[derive(Debug, Clone, Default)]
pub struct RuleInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub metric: Option<String>,
    pub severity: Option<String>,
    pub condition: Option<String>,
    pub threshold: Option<f64>,
    pub window_minutes: Option<i64>,
    pub for_minutes: Option<i64>,
    pub min_requests: Option<i64>,
    /// `Some(None)`: notify once (clears a reminder interval on change).
    pub renotify_minutes: Option<Option<i64>>,
    pub scope: Option<AlertScope>,
    /// `Some(None)`: not grouped.
    pub group_by: Option<Option<String>>,
    /// The channels its alerts go to; empty: every channel subscribed to alert events.
    pub channel_ids: Option<Vec<i64>>,
}

/// The most channels one rule names.
pub const MAX_RULE_CHANNELS: usize = 20;

fn text(value: &str, what: &str, max: usize) -> OpsResult<String> {
    let value = value.trim();
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(OpsError::invalid(
            "invalid_rule",
            format!("{what} is at most {max} characters, without control characters"),
        ));
    }
    Ok(value.to_owned())
}

pub(crate) fn scope_text(value: Option<String>, what: &str) -> OpsResult<Option<String>> {
    value
        .map(|v| text(&v, what, 200))
        .transpose()
        .map(|v| v.filter(|v| !v.is_empty()))
}

/// `input` laid over `base` (a saved rule being changed, or the defaults), checked whole.
fn build(input: RuleInput, base: Option<&AlertRule>) -> OpsResult<NewAlertRule> {
    let bad = |message: String| OpsError::invalid("invalid_rule", message);
    let name = match (input.name, base) {
        (Some(name), _) => text(&name, "the name", 100)?,
        (None, Some(rule)) => rule.name.clone(),
        (None, None) => String::new(),
    };
    if name.is_empty() {
        return Err(bad("give the rule a name".into()));
    }
    let description = match (input.description, base) {
        (Some(d), _) => text(&d, "the description", 1_000)?,
        (None, Some(rule)) => rule.description.clone(),
        (None, None) => String::new(),
    };
    let metric = match (input.metric.as_deref(), base) {
        (Some(m), _) => AlertMetric::parse(m.trim()).ok_or_else(|| {
            bad(format!(
                "unknown metric {m:?}; metrics are {}",
                metric_names()
            ))
        })?,
        (None, Some(rule)) => rule.metric,
        (None, None) => {
            return Err(bad(format!(
                "say which metric to watch: {}",
                metric_names()
            )))
        }
    };
    let condition = match (input.condition.as_deref(), base) {
        (Some(c), _) => AlertCondition::parse(c.trim())
            .ok_or_else(|| bad(format!("unknown condition {c:?}; use above or below")))?,
        (None, Some(rule)) => rule.condition,
        // Too little coverage is the trouble; too much of anything else.
        (None, None) if metric == AlertMetric::Coverage => AlertCondition::Below,
        (None, None) => AlertCondition::Above,
    };
    let threshold = match (input.threshold, base) {
        (Some(t), _) => t,
        (None, Some(rule)) => rule.threshold,
        (None, None) if metric == AlertMetric::NoTraffic => 0.0,
        (None, None) => return Err(bad("give a threshold".into())),
    };
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(bad("the threshold is a number of 0 or more".into()));
    }
    if is_percent(metric) && threshold > 100.0 {
        return Err(bad(format!(
            "{} is a percentage: the threshold is 0 to 100",
            metric.as_str()
        )));
    }
    let window_minutes = input
        .window_minutes
        .or(base.map(|r| r.window_minutes))
        .unwrap_or(15);
    if !WINDOW_MINUTES.contains(&window_minutes) {
        return Err(bad("the window is 5 to 1,440 minutes (24 hours)".into()));
    }
    let for_minutes = input
        .for_minutes
        .or(base.map(|r| r.for_minutes))
        .unwrap_or(0);
    if !(0..=MAX_FOR_MINUTES).contains(&for_minutes) {
        return Err(bad("for is 0 to 1,440 minutes".into()));
    }
    let min_requests = input
        .min_requests
        .or(base.map(|r| r.min_requests))
        .unwrap_or(0);
    if !(0..=1_000_000_000).contains(&min_requests) {
        return Err(bad("min_requests is 0 to 1,000,000,000".into()));
    }
    let renotify_minutes = match input.renotify_minutes {
        Some(r) => r,
        None => base.and_then(|r| r.renotify_minutes),
    };
    if renotify_minutes.is_some_and(|r| !RENOTIFY_MINUTES.contains(&r)) {
        return Err(bad(
            "renotify_minutes is 5 to 10,080 (a week), or null to notify once".into(),
        ));
    }
    let severity = match (input.severity.as_deref(), base) {
        (Some(s), _) => Some(Severity::parse(s.trim()).ok_or_else(|| {
            bad(format!(
                "unknown severity {s:?}; use critical, high, medium or low"
            ))
        })?),
        (None, Some(rule)) => rule.severity,
        (None, None) => None,
    };
    let severity = match metric {
        AlertMetric::Violations => Some(severity.unwrap_or(Severity::Low)),
        _ => None,
    };
    let scope = match (input.scope, base) {
        (Some(scope), _) => AlertScope {
            integration_id: scope.integration_id,
            gateway: scope_text(scope.gateway, "the gateway")?,
            provider: scope_text(scope.provider, "the provider")?,
            model: scope_text(scope.model, "the model")?,
        },
        (None, Some(rule)) => rule.scope.clone(),
        (None, None) => AlertScope::default(),
    };
    if metric == AlertMetric::SpendAnomalies && scope != AlertScope::default() {
        return Err(bad(
            "spend anomalies are judged per user session across all traffic: leave the scope out"
                .into(),
        ));
    }
    let group_by = match (input.group_by, base) {
        (Some(Some(g)), _) if g.trim().is_empty() => None,
        (Some(Some(g)), _) => Some(GroupBy::parse(g.trim()).ok_or_else(|| {
            bad(format!(
                "unknown group_by {g:?}; use integration, gateway, provider or model"
            ))
        })?),
        (Some(None), _) => None,
        (None, Some(rule)) => rule.group_by,
        (None, None) => None,
    };
    if let Some(g) = group_by {
        if !groupable(metric, g) {
            return Err(bad(match metric {
                AlertMetric::Violations => {
                    "violations are counted over the whole scope: leave group_by out".into()
                }
                AlertMetric::SpendAnomalies => {
                    "spend anomalies are counted over all users: leave group_by out".into()
                }
                _ => format!(
                    "{} is a figure of an integration: group it by integration or not at all",
                    metric.as_str()
                ),
            }));
        }
    }
    let mut channel_ids = input
        .channel_ids
        .or(base.map(|r| r.channel_ids.clone()))
        .unwrap_or_default();
    channel_ids.sort_unstable();
    channel_ids.dedup();
    if channel_ids.len() > MAX_RULE_CHANNELS {
        return Err(bad(format!(
            "a rule names at most {MAX_RULE_CHANNELS} channels"
        )));
    }
    Ok(NewAlertRule {
        name,
        description,
        enabled: input.enabled.or(base.map(|r| r.enabled)).unwrap_or(true),
        metric,
        severity,
        condition,
        threshold,
        window_minutes,
        for_minutes,
        min_requests,
        renotify_minutes,
        scope,
        group_by,
        channel_ids,
        created_by: base.and_then(|r| r.created_by.clone()),
    })
}

/// Checks that the scope's integration exists (a rule watching nothing helps nobody) and that
/// each channel named does (an alert sent nowhere helps nobody either).
async fn check_scope(ops: &Services, rule: &NewAlertRule) -> OpsResult<()> {
    integration_exists(ops, &rule.scope, "invalid_rule").await?;
    for id in &rule.channel_ids {
        ops.store.get_webhook(*id).await.map_err(|_| {
            OpsError::invalid(
                "invalid_rule",
                format!("there is no notification channel {id} (see GET /api/v1/webhooks)"),
            )
        })?;
    }
    Ok(())
}

/// `code` naming the scope's integration when there is no such integration.
pub(crate) async fn integration_exists(
    ops: &Services,
    scope: &AlertScope,
    code: &'static str,
) -> OpsResult<()> {
    if let Some(id) = scope.integration_id {
        ops.store
            .get_integration(id)
            .await
            .map_err(|_| OpsError::invalid(code, format!("there is no integration {id}")))?;
    }
    Ok(())
}

pub(crate) fn who(actor: Actor<'_>) -> Option<String> {
    match actor {
        Actor::User(user) => Some(user.email.clone()),
        Actor::Cli => Some("cli".into()),
        Actor::Nobody => None,
    }
}

/// Checks the rule as written, without saving it (what a backtest runs).
pub fn check(input: RuleInput) -> OpsResult<NewAlertRule> {
    build(input, None)
}

#[instrument(skip_all)]
pub async fn add(ops: &Services, actor: Actor<'_>, input: RuleInput) -> OpsResult<AlertRule> {
    let mut new = build(input, None)?;
    check_scope(ops, &new).await?;
    new.created_by = who(actor);
    let rule = ops.store.create_alert_rule(new).await?;
    ops.audit(
        actor,
        "alert_rule.created",
        Some(format!("alert_rule:{}", rule.id)),
        json!({"name": rule.name, "metric": rule.metric.as_str(), "threshold": rule.threshold}),
        None,
    )
    .await;
    Ok(rule)
}

#[instrument(skip_all, fields(rule_id = id))]
pub async fn change(
    ops: &Services,
    actor: Actor<'_>,
    id: AlertRuleId,
    input: RuleInput,
) -> OpsResult<AlertRule> {
    let current = ops.store.get_alert_rule(id).await?;
    let rule = build(input, Some(&current))?;
    check_scope(ops, &rule).await?;
    let rule = ops.store.replace_alert_rule(id, rule).await?;
    ops.audit(
        actor,
        "alert_rule.updated",
        Some(format!("alert_rule:{id}")),
        json!({"name": rule.name, "enabled": rule.enabled, "threshold": rule.threshold}),
        None,
    )
    .await;
    Ok(rule)
}

#[instrument(skip_all, fields(rule_id = id))]
pub async fn remove(ops: &Services, actor: Actor<'_>, id: AlertRuleId) -> OpsResult<()> {
    ops.store.delete_alert_rule(id).await?;
    ops.audit(
        actor,
        "alert_rule.deleted",
        Some(format!("alert_rule:{id}")),
        json!({}),
        None,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(metric: &str) -> RuleInput {
        RuleInput {
            name: Some("r".into()),
            metric: Some(metric.into()),
            threshold: Some(5.0),
            ..RuleInput::default()
        }
    }

    #[test]
    fn defaults_fill_what_was_left_out() {
        let rule = check(input("error_rate")).expect("valid");
        assert_eq!(rule.window_minutes, 15);
        assert_eq!(rule.for_minutes, 0);
        assert_eq!(rule.condition, AlertCondition::Above);
        assert!(rule.enabled);
        let coverage = check(RuleInput {
            threshold: Some(99.0),
            ..input("coverage")
        })
        .expect("valid");
        assert_eq!(coverage.condition, AlertCondition::Below);
        let quiet = check(RuleInput {
            threshold: None,
            ..input("no_traffic")
        })
        .expect("valid");
        assert_eq!(quiet.threshold, 0.0);
        let violations = check(input("violations")).expect("valid");
        assert_eq!(violations.severity, Some(Severity::Low));
    }

    #[test]
    fn bad_rules_say_what_to_fix() {
        let message = |input: RuleInput| match check(input) {
            Err(OpsError::Invalid { message, .. }) => message,
            other => panic!("expected invalid, got {other:?}"),
        };
        assert!(message(input("p95")).contains("latency_p95"));
        assert!(message(RuleInput {
            threshold: Some(150.0),
            ..input("error_rate")
        })
        .contains("0 to 100"));
        assert!(message(RuleInput {
            threshold: Some(f64::NAN),
            ..input("requests")
        })
        .contains("threshold"));
        assert!(message(RuleInput {
            window_minutes: Some(2),
            ..input("requests")
        })
        .contains("5 to 1,440"));
        assert!(message(RuleInput {
            group_by: Some(Some("model".into())),
            ..input("violations")
        })
        .contains("group_by"));
        assert!(message(RuleInput {
            group_by: Some(Some("model".into())),
            ..input("import_lag_minutes")
        })
        .contains("integration"));
        assert!(message(RuleInput {
            renotify_minutes: Some(Some(1)),
            ..input("requests")
        })
        .contains("renotify"));
        assert!(message(RuleInput {
            name: Some("  ".into()),
            ..input("requests")
        })
        .contains("name"));
    }

    #[test]
    fn a_change_keeps_what_it_does_not_mention() {
        let saved = check(RuleInput {
            group_by: Some(Some("model".into())),
            renotify_minutes: Some(Some(60)),
            ..input("latency_p95")
        })
        .expect("valid");
        let saved = AlertRule {
            id: 1,
            name: saved.name,
            description: saved.description,
            enabled: saved.enabled,
            metric: saved.metric,
            severity: saved.severity,
            condition: saved.condition,
            threshold: saved.threshold,
            window_minutes: saved.window_minutes,
            for_minutes: saved.for_minutes,
            min_requests: saved.min_requests,
            renotify_minutes: saved.renotify_minutes,
            scope: saved.scope,
            group_by: saved.group_by,
            channel_ids: vec![3],
            created_by: Some("a@example.com".into()),
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        let changed = build(
            RuleInput {
                threshold: Some(900.0),
                renotify_minutes: Some(None),
                ..RuleInput::default()
            },
            Some(&saved),
        )
        .expect("valid");
        assert_eq!(changed.threshold, 900.0);
        assert_eq!(changed.group_by, Some(GroupBy::Model));
        assert_eq!(changed.renotify_minutes, None);
        assert_eq!(changed.created_by.as_deref(), Some("a@example.com"));
    }
}
