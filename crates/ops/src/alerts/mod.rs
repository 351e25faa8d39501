//! Alerting: rules that watch a metric over a window, the alerts they raise (`pending →
//! firing → resolved`), silences, the evaluator that runs every minute (budgets' thresholds
//! with it) and the backtest that replays a rule over the last week.

pub mod backtest;
pub mod evaluate;
pub mod machine;
pub mod rules;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use langguard_clock::{format_ms, parse_ms};
use langguard_store::lease::WorkerLease;
use langguard_store::{
    Alert, AlertQuery, AlertRule, AlertScope, AlertSilence, AlertState, NewAlertSilence, Store,
};
use serde::Serialize;
use serde_json::json;
use tracing::instrument;

use crate::{Actor, OpsError, OpsResult, Services};

/// How often rules are evaluated.
pub const EVERY: Duration = Duration::from_secs(60);

/// A rule as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertRuleView {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    /// `requests`, `errors`, `error_rate`, `rate_limited`, `latency_p50`, `latency_p95`,
    /// `latency_p99`, `cost_usd`, `tokens`, `cache_hit_rate`, `violations`, `coverage`,
    /// `import_lag_minutes` or `no_traffic`.
    pub metric: &'static str,
    /// What the value is counted in: `%`, `ms`, `USD`, `min`, `requests`, `tokens`, `violations`.
    pub unit: &'static str,
    /// For `violations`: the least severity counted.
    pub severity: Option<&'static str>,
    /// `above` or `below`.
    pub condition: &'static str,
    pub threshold: f64,
    pub window_minutes: i64,
    pub for_minutes: i64,
    pub min_requests: i64,
    pub renotify_minutes: Option<i64>,
    #[schema(value_type = Object)]
    pub scope: AlertScope,
    /// `integration`, `gateway`, `provider`, `model` or null.
    pub group_by: Option<&'static str>,
    /// The notification channels (webhook ids) its alerts go to; empty: every enabled channel
    /// subscribed to `alert.firing` / `alert.resolved`.
    pub channel_ids: Vec<i64>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Its alerts firing now.
    pub firing: usize,
}

impl AlertRuleView {
    pub fn new(rule: &AlertRule, firing: usize) -> Self {
        Self {
            id: rule.id,
            name: rule.name.clone(),
            description: rule.description.clone(),
            enabled: rule.enabled,
            metric: rule.metric.as_str(),
            unit: rules::unit(rule.metric),
            severity: rule.severity.map(|s| s.as_str()),
            condition: rule.condition.as_str(),
            threshold: rule.threshold,
            window_minutes: rule.window_minutes,
            for_minutes: rule.for_minutes,
            min_requests: rule.min_requests,
            renotify_minutes: rule.renotify_minutes,
            scope: rule.scope.clone(),
            group_by: rule.group_by.map(|g| g.as_str()),
            channel_ids: rule.channel_ids.clone(),
            created_by: rule.created_by.clone(),
            created_at: format_ms(rule.created_at_ms),
            updated_at: format_ms(rule.updated_at_ms),
            firing,
        }
    }
}

/// An alert as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    pub id: i64,
    pub rule_id: i64,
    pub rule_name: String,
    pub metric: &'static str,
    pub unit: &'static str,
    pub condition: &'static str,
    /// The group (a model, a gateway, an integration's id…); null for an ungrouped rule.
    pub group: Option<String>,
    /// The group as people read it (an integration's name).
    pub group_label: Option<String>,
    /// `pending`, `firing` or `resolved`.
    pub state: &'static str,
    /// The value at the last evaluation; null when there was too little traffic to judge.
    pub value: Option<f64>,
    pub threshold: f64,
    /// When the condition started to hold.
    pub started_at: String,
    pub fired_at: Option<String>,
    pub resolved_at: Option<String>,
    /// When people were last told; null while a silence holds it back.
    pub notified_at: Option<String>,
    pub evaluated_at: String,
    /// Whether a silence holds its notifications back now.
    pub silenced: bool,
    /// The Trace Explorer filtered to the rule's scope, the group and the window.
    pub traces_url: String,
}

/// Alerts, newest first, with the next page's cursor.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertPage {
    pub items: Vec<AlertView>,
    /// Pass as `before` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SilenceView {
    pub id: i64,
    /// Null: every rule.
    pub rule_id: Option<i64>,
    pub rule_name: Option<String>,
    /// Null: every group of the rule.
    pub group: Option<String>,
    pub starts_at: String,
    pub ends_at: String,
    pub reason: String,
    pub created_by: Option<String>,
    pub created_at: String,
    /// Whether it holds notifications back now.
    pub active: bool,
}

fn silence_view(s: &AlertSilence, names: &HashMap<i64, String>, now_ms: i64) -> SilenceView {
    SilenceView {
        id: s.id,
        rule_id: s.rule_id,
        rule_name: s.rule_id.and_then(|id| names.get(&id).cloned()),
        group: s.group.clone(),
        starts_at: format_ms(s.starts_at_ms),
        ends_at: format_ms(s.ends_at_ms),
        reason: s.reason.clone(),
        created_by: s.created_by.clone(),
        created_at: format_ms(s.created_at_ms),
        active: s.starts_at_ms <= now_ms && now_ms < s.ends_at_ms,
    }
}

/// Every rule, each with how many of its alerts fire now.
pub async fn list_rules(ops: &Services) -> OpsResult<Vec<AlertRuleView>> {
    let (rules, open) = tokio::try_join!(ops.store.list_alert_rules(), ops.store.open_alerts())?;
    Ok(rules
        .iter()
        .map(|r| {
            let firing = open
                .iter()
                .filter(|a| a.rule_id == r.id && a.state == AlertState::Firing)
                .count();
            AlertRuleView::new(r, firing)
        })
        .collect())
}

pub async fn rule(ops: &Services, id: i64) -> OpsResult<AlertRuleView> {
    let (rule, open) = tokio::try_join!(ops.store.get_alert_rule(id), ops.store.open_alerts())?;
    let firing = open
        .iter()
        .filter(|a| a.rule_id == id && a.state == AlertState::Firing)
        .count();
    Ok(AlertRuleView::new(&rule, firing))
}

/// Which alerts to list: `state` is `open` (pending and firing), `pending`, `firing`,
/// `resolved` or all.
pub fn query(
    rule_id: Option<i64>,
    state: Option<&str>,
    limit: Option<u32>,
    before: Option<&str>,
) -> OpsResult<AlertQuery> {
    let states = match state.map(str::trim) {
        None | Some("" | "all") => vec![],
        Some("open") => vec![AlertState::Pending, AlertState::Firing],
        Some(s) => vec![AlertState::parse(s).ok_or_else(|| {
            OpsError::invalid(
                "invalid_state",
                format!("unknown state {s:?}; use open, pending, firing, resolved or all"),
            )
        })?],
    };
    let before_id = before
        .map(|b| {
            b.parse::<i64>().map_err(|_| {
                OpsError::invalid("invalid_cursor", "before is a cursor this API gave")
            })
        })
        .transpose()?;
    Ok(AlertQuery {
        rule_id,
        states,
        limit: limit.unwrap_or(50).clamp(1, 500),
        before_id,
    })
}

/// A page of alerts with their rules' names, silences and links.
#[instrument(skip_all)]
pub async fn list(ops: &Services, query: &AlertQuery, now_ms: i64) -> OpsResult<AlertPage> {
    let (alerts, rules, silences, integrations) = tokio::try_join!(
        ops.store.list_alerts(query),
        ops.store.list_alert_rules(),
        ops.store.list_alert_silences(Some(now_ms)),
        ops.store.list_integrations(),
    )?;
    let rules: HashMap<i64, &AlertRule> = rules.iter().map(|r| (r.id, r)).collect();
    let names = evaluate::names_of(&integrations);
    let next_cursor = (alerts.len() == query.limit as usize)
        .then(|| alerts.last().map(|a| a.id.to_string()))
        .flatten();
    let items = alerts
        .iter()
        .filter_map(|a| {
            let rule = rules.get(&a.rule_id)?;
            Some(alert_view(a, rule, &silences, &names, now_ms))
        })
        .collect();
    Ok(AlertPage { items, next_cursor })
}

fn alert_view(
    a: &Alert,
    rule: &AlertRule,
    silences: &[AlertSilence],
    names: &HashMap<String, String>,
    now_ms: i64,
) -> AlertView {
    // The window that made it fire (or the last one judged).
    let end = a.fired_at_ms.unwrap_or(a.evaluated_at_ms);
    let (from, to) = evaluate::window(rule, end);
    AlertView {
        id: a.id,
        rule_id: rule.id,
        rule_name: rule.name.clone(),
        metric: rule.metric.as_str(),
        unit: rules::unit(rule.metric),
        condition: rule.condition.as_str(),
        group: (!a.group.is_empty()).then(|| a.group.clone()),
        group_label: evaluate::group_label(rule.group_by, &a.group, names),
        state: a.state.as_str(),
        value: a.value,
        threshold: a.threshold,
        started_at: format_ms(a.pending_since_ms),
        fired_at: a.fired_at_ms.map(format_ms),
        resolved_at: a.resolved_at_ms.map(format_ms),
        notified_at: a.notified_at_ms.map(format_ms),
        evaluated_at: format_ms(a.evaluated_at_ms),
        silenced: a.state != AlertState::Resolved
            && silences
                .iter()
                .any(|s| s.covers(a.rule_id, &a.group, now_ms)),
        traces_url: evaluate::traces_link(rule, &a.group, from, to),
    }
}

/// A silence as asked for: until a time (RFC 3339) or for some minutes, with a reason.
#[derive(Debug, Clone, Default)]
pub struct SilenceInput {
    pub rule_id: Option<i64>,
    pub group: Option<String>,
    pub until: Option<String>,
    pub minutes: Option<i64>,
    pub reason: Option<String>,
}

/// Longest a silence may last: a forgotten silence hides real trouble.
const MAX_SILENCE_MS: i64 = 30 * 86_400_000;

#[instrument(skip_all)]
pub async fn silence(
    ops: &Services,
    actor: Actor<'_>,
    input: SilenceInput,
    now_ms: i64,
) -> OpsResult<SilenceView> {
    let bad = |m: &str| OpsError::invalid("invalid_silence", m.to_owned());
    let ends_at_ms = match (input.until.as_deref(), input.minutes) {
        (Some(until), None) => parse_ms(until)
            .ok_or_else(|| bad("until is an RFC 3339 time, like 2026-12-01T18:00:00Z"))?,
        (None, Some(minutes)) if (1..=MAX_SILENCE_MS / 60_000).contains(&minutes) => {
            now_ms + minutes * 60_000
        }
        (None, Some(_)) => return Err(bad("minutes is 1 to 43,200 (30 days)")),
        _ => {
            return Err(bad(
                "say how long: until (a time) or minutes, one of the two",
            ))
        }
    };
    if ends_at_ms <= now_ms || ends_at_ms - now_ms > MAX_SILENCE_MS {
        return Err(bad("a silence ends in the future and within 30 days"));
    }
    let reason = input.reason.unwrap_or_default().trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(bad(
            "give a reason (up to 500 characters): the next person on call will read it",
        ));
    }
    let group = input
        .group
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty());
    if group.is_some() && input.rule_id.is_none() {
        return Err(bad("a group belongs to a rule: give rule_id too"));
    }
    if group.as_ref().is_some_and(|g| g.chars().count() > 200) {
        return Err(bad("the group is at most 200 characters"));
    }
    let who = match actor {
        Actor::User(u) => Some(u.email.clone()),
        Actor::Cli => Some("cli".into()),
        Actor::Nobody => None,
    };
    let created = ops
        .store
        .create_alert_silence(NewAlertSilence {
            rule_id: input.rule_id,
            group,
            starts_at_ms: now_ms,
            ends_at_ms,
            reason,
            created_by: who,
        })
        .await?;
    ops.audit(
        actor,
        "alert_silence.created",
        Some(format!("alert_silence:{}", created.id)),
        json!({"rule_id": created.rule_id, "group": created.group, "ends_at": format_ms(created.ends_at_ms), "reason": created.reason}),
        None,
    )
    .await;
    let names = rule_names(ops).await?;
    Ok(silence_view(&created, &names, now_ms))
}

async fn rule_names(ops: &Services) -> OpsResult<HashMap<i64, String>> {
    Ok(ops
        .store
        .list_alert_rules()
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect())
}

/// Silences still to end (`active_only`) or the newest 200.
pub async fn silences(
    ops: &Services,
    active_only: bool,
    now_ms: i64,
) -> OpsResult<Vec<SilenceView>> {
    let list = ops
        .store
        .list_alert_silences(active_only.then_some(now_ms))
        .await?;
    let names = rule_names(ops).await?;
    Ok(list
        .iter()
        .map(|s| silence_view(s, &names, now_ms))
        .collect())
}

#[instrument(skip_all, fields(silence_id = id))]
pub async fn end_silence(
    ops: &Services,
    actor: Actor<'_>,
    id: i64,
    now_ms: i64,
) -> OpsResult<SilenceView> {
    let ended = ops.store.end_alert_silence(id, now_ms).await?;
    ops.audit(
        actor,
        "alert_silence.ended",
        Some(format!("alert_silence:{id}")),
        json!({}),
        None,
    )
    .await;
    let names = rule_names(ops).await?;
    Ok(silence_view(&ended, &names, now_ms))
}

/// Replays a rule as written (saved or not) over the last week.
pub async fn backtest(
    ops: &Services,
    input: rules::RuleInput,
    now_ms: i64,
) -> OpsResult<backtest::BacktestView> {
    let new = rules::check(input)?;
    let rule = AlertRule {
        id: 0,
        name: new.name,
        description: new.description,
        enabled: true,
        metric: new.metric,
        severity: new.severity,
        condition: new.condition,
        threshold: new.threshold,
        window_minutes: new.window_minutes,
        for_minutes: new.for_minutes,
        min_requests: new.min_requests,
        renotify_minutes: None,
        scope: new.scope,
        group_by: new.group_by,
        channel_ids: new.channel_ids,
        created_by: None,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
    };
    backtest::backtest(ops.store.as_ref(), &rule, now_ms).await
}

/// Longest the people backfill runs each minute (it carries on the next).
const PEOPLE_UPKEEP_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// Evaluates every rule each minute, on the instance holding the `alerts` lease, until `stop`
/// (budgets and the people summary's upkeep on the same beat).
pub async fn run(
    store: Arc<dyn Store>,
    public_url: Option<String>,
    mut lease: WorkerLease,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        if !lease.hold(store.as_ref()).await {
            continue;
        }
        let started = std::time::Instant::now();
        match evaluate::evaluate(
            store.as_ref(),
            langguard_clock::now_ms(),
            public_url.as_deref(),
        )
        .await
        {
            Ok(report) => {
                metrics::histogram!("langguard_alert_evaluation_seconds")
                    .record(started.elapsed().as_secs_f64());
                if report.fired + report.resolved > 0 {
                    tracing::info!(
                        rules = report.rules,
                        fired = report.fired,
                        resolved = report.resolved,
                        notified = report.notified,
                        "alerts evaluated"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "alert evaluation failed; trying again next minute")
            }
        }
        // Budgets are evaluated on the same beat, under the same lease.
        if let Err(e) = crate::budgets::evaluate::evaluate(
            store.as_ref(),
            langguard_clock::now_ms(),
            public_url.as_deref(),
        )
        .await
        {
            tracing::warn!(error = %e, "budget evaluation failed; trying again next minute");
        }
        // And the people summary's upkeep: today's window, and keys named since backfilled.
        if let Err(e) = crate::people::upkeep(
            store.as_ref(),
            langguard_clock::now_ms(),
            PEOPLE_UPKEEP_BUDGET,
        )
        .await
        {
            tracing::warn!(error = %e, "people upkeep failed; trying again next minute");
        }
    }
}
