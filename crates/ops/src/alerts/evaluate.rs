//! The alert evaluator: once a minute (one instance at a time, under the `alerts` lease) every
//! enabled rule is read from the rollups over its window ending at the current minute, each
//! of its groups stepped through the state machine, and the changes saved with their
//! notifications in one transaction. All state is in the database, so a restart — or another
//! instance taking over — carries on from the same alerts; evaluating a minute twice changes
//! nothing a second time.

use std::collections::{BTreeMap, HashMap};

use langguard_clock::format_ms;
use langguard_store::{
    minute_of, Alert, AlertChange, AlertCondition, AlertMetric, AlertRule, AlertScope,
    AlertSilence, AlertState, GroupBy, Integration, Metrics, OutgoingEvent, Scope, Store,
    StoreResult, SyncRunStatus, WebhookEvent,
};
use serde::Serialize;
use serde_json::json;

use super::machine::{self, Reading, Step, Timing};
use super::rules::{from_rollups, unit};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// Rollup reads in flight at once during an evaluation.
const READS_AT_ONCE: usize = 4;

/// What one evaluation did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct EvaluationReport {
    pub rules: usize,
    pub opened: usize,
    pub fired: usize,
    pub resolved: usize,
    /// Notifications queued (silenced ones are not).
    pub notified: usize,
}

/// The window a rule reads at `now_ms`: whole minutes, ending at the start of the current one
/// (its rollups are still filling).
pub fn window(rule: &AlertRule, now_ms: i64) -> (i64, i64) {
    let to = minute_of(now_ms);
    (to - rule.window_minutes * MINUTE_MS, to)
}

fn scope_of(rule: &AlertRule, from_ms: i64, to_ms: i64) -> Scope {
    metrics_scope(&rule.scope, from_ms, to_ms)
}

/// A rule's or budget's scope as the metrics queries take it, over `[from_ms, to_ms)`.
pub fn metrics_scope(scope: &AlertScope, from_ms: i64, to_ms: i64) -> Scope {
    Scope {
        from_ms: Some(from_ms),
        to_ms: Some(to_ms),
        integration_id: scope.integration_id,
        gateway: scope.gateway.clone(),
        provider: scope.provider.clone(),
        model: scope.model.clone(),
    }
}

/// The metric's value in a window's figures (`None`: nothing to measure, e.g. a percentile of
/// no requests). Rates are percentages.
pub fn value_of(metric: AlertMetric, m: &Metrics) -> Option<f64> {
    match metric {
        AlertMetric::Requests | AlertMetric::NoTraffic => Some(m.requests as f64),
        AlertMetric::Errors => Some(m.errors as f64),
        AlertMetric::ErrorRate => m.error_rate.map(|r| r * 100.0),
        AlertMetric::RateLimited => Some(m.rate_limited as f64),
        AlertMetric::LatencyP50 => m.latency_ms.p50,
        AlertMetric::LatencyP95 => m.latency_ms.p95,
        AlertMetric::LatencyP99 => m.latency_ms.p99,
        AlertMetric::CostUsd => Some(m.cost_usd),
        AlertMetric::Tokens => Some((m.tokens_in + m.tokens_out) as f64),
        AlertMetric::CacheHitRate => m.cache_hit_rate.map(|r| r * 100.0),
        AlertMetric::Violations
        | AlertMetric::Coverage
        | AlertMetric::ImportLagMinutes
        | AlertMetric::SpendAnomalies => None,
    }
}

/// Judges a value against the rule. `volume` is the traffic behind it (requests, or what
/// Cloudflare counted for coverage); below the rule's minimum nothing is judged.
pub fn judge(rule: &AlertRule, value: Option<f64>, volume: Option<i64>) -> Reading {
    if rule.metric == AlertMetric::NoTraffic {
        return Reading {
            value,
            breached: value.map(|v| v == 0.0),
        };
    }
    let enough = volume.is_none_or(|v| v >= rule.min_requests);
    let breached = value.filter(|_| enough).map(|v| match rule.condition {
        AlertCondition::Above => v > rule.threshold,
        AlertCondition::Below => v < rule.threshold,
    });
    Reading { value, breached }
}

/// Reads every rule's groups; repeated reads of one scope and window are made once.
struct Reader<'a> {
    store: &'a dyn Store,
    integrations: Vec<Integration>,
    cells: HashMap<(Scope, Option<GroupBy>), BTreeMap<String, Metrics>>,
    /// Minutes of each integration's lag, at `now`.
    lags: Option<BTreeMap<String, f64>>,
    now_ms: i64,
}

impl Reader<'_> {
    /// Reads every rollup figure the rules will ask for, `READS_AT_ONCE` at a time (each read
    /// is its own query; the database runs them side by side), so the rules' loop finds them
    /// all in the cache.
    async fn prefetch(&mut self, rules: &[&AlertRule]) -> StoreResult<()> {
        use futures::{StreamExt, TryStreamExt};
        let mut keys: Vec<(Scope, Option<GroupBy>)> = Vec::new();
        for rule in rules {
            if !from_rollups(rule.metric) {
                continue;
            }
            let (from, to) = window(rule, self.now_ms);
            keys.push((scope_of(rule, from, to), rule.group_by));
            if rule.metric == AlertMetric::NoTraffic && rule.group_by.is_some() {
                keys.push((scope_of(rule, from - DAY_MS, to), rule.group_by));
            }
        }
        keys.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        keys.dedup();
        let store = self.store;
        let read = keys.into_iter().map(|(scope, group_by)| async move {
            let figures: BTreeMap<String, Metrics> = match group_by {
                Some(g) => store
                    .metrics_by(&scope, g)
                    .await?
                    .into_iter()
                    .map(|g| (g.group, g.metrics))
                    .collect(),
                None => BTreeMap::from([(String::new(), store.metrics(&scope).await?)]),
            };
            Ok::<_, langguard_store::StoreError>(((scope, group_by), figures))
        });
        let read: Vec<_> = futures::stream::iter(read)
            .buffer_unordered(READS_AT_ONCE)
            .try_collect()
            .await?;
        self.cells.extend(read);
        Ok(())
    }

    async fn figures(
        &mut self,
        scope: Scope,
        group_by: Option<GroupBy>,
    ) -> StoreResult<&BTreeMap<String, Metrics>> {
        let key = (scope, group_by);
        if !self.cells.contains_key(&key) {
            let figures = match group_by {
                Some(g) => self
                    .store
                    .metrics_by(&key.0, g)
                    .await?
                    .into_iter()
                    .map(|g| (g.group, g.metrics))
                    .collect(),
                None => BTreeMap::from([(String::new(), self.store.metrics(&key.0).await?)]),
            };
            self.cells.insert(key.clone(), figures);
        }
        Ok(&self.cells[&key])
    }

    /// The rule's reading per group at `now`, with the groups of its open alerts (a group
    /// gone quiet reads as no traffic).
    async fn read(
        &mut self,
        rule: &AlertRule,
        open: &[&Alert],
    ) -> StoreResult<BTreeMap<String, Reading>> {
        let (from, to) = window(rule, self.now_ms);
        let mut out = BTreeMap::new();
        match rule.metric {
            AlertMetric::Violations => {
                let counts = self
                    .store
                    .violation_counts(&scope_of(rule, from, to))
                    .await?;
                let least = rule.severity.unwrap_or(langguard_store::Severity::Low);
                let n: u64 = counts
                    .iter()
                    .filter(|(s, _, _)| *s <= least)
                    .map(|(_, _, n)| n)
                    .sum();
                out.insert(String::new(), judge(rule, Some(n as f64), None));
            }
            AlertMetric::SpendAnomalies => {
                let n = self.store.count_spend_anomalies(from, to).await?;
                out.insert(String::new(), judge(rule, Some(n as f64), None));
            }
            AlertMetric::Coverage => {
                for (group, (held, counted)) in self.coverage(rule, from, to).await? {
                    let value = (counted > 0).then(|| held as f64 / counted as f64 * 100.0);
                    out.insert(group, judge(rule, value, Some(counted)));
                }
            }
            AlertMetric::ImportLagMinutes => {
                let lags = self.lags().await?.clone();
                let wanted = |id: &str| {
                    rule.scope
                        .integration_id
                        .is_none_or(|want| want.to_string() == id)
                };
                if rule.group_by.is_some() {
                    for (id, lag) in lags.iter().filter(|(id, _)| wanted(id)) {
                        out.insert(id.clone(), judge(rule, Some(*lag), None));
                    }
                } else {
                    let worst = lags
                        .iter()
                        .filter(|(id, _)| wanted(id))
                        .map(|(_, lag)| *lag)
                        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
                    out.insert(String::new(), judge(rule, worst, None));
                }
            }
            metric => {
                let figures = self
                    .figures(scope_of(rule, from, to), rule.group_by)
                    .await?
                    .clone();
                for (group, m) in &figures {
                    out.insert(
                        group.clone(),
                        judge(rule, value_of(metric, m), Some(m.requests)),
                    );
                }
                if metric == AlertMetric::NoTraffic && rule.group_by.is_some() {
                    // A group can only fall silent if it spoke: those heard in the day before.
                    let seen = self
                        .figures(scope_of(rule, from - DAY_MS, to), rule.group_by)
                        .await?
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>();
                    for group in seen {
                        out.entry(group)
                            .or_insert_with(|| judge(rule, Some(0.0), Some(0)));
                    }
                }
                let quiet = Metrics::default();
                for alert in open {
                    out.entry(alert.group.clone())
                        .or_insert_with(|| judge(rule, value_of(metric, &quiet), Some(0)));
                }
                return Ok(out);
            }
        }
        for alert in open {
            out.entry(alert.group.clone()).or_insert(Reading {
                value: None,
                breached: None,
            });
        }
        Ok(out)
    }

    /// Held and counted requests of the settled hours overlapping the window, per integration
    /// (or summed, when the rule isn't grouped).
    async fn coverage(
        &mut self,
        rule: &AlertRule,
        from: i64,
        to: i64,
    ) -> StoreResult<BTreeMap<String, (i64, i64)>> {
        let mut out = BTreeMap::new();
        for integration in &self.integrations {
            if rule
                .scope
                .integration_id
                .is_some_and(|id| id != integration.id)
                || integration.coverage_error.is_some()
            {
                continue;
            }
            let from_hour = from - from.rem_euclid(langguard_sync::coverage::HOUR_MS);
            let rows = self
                .store
                .coverage_hours(integration.id, from_hour, to)
                .await?;
            let (mut held, mut counted) = (0, 0);
            for hour in rows.iter().filter(|h| {
                h.hour_ms + langguard_sync::coverage::HOUR_MS + langguard_sync::coverage::SETTLE_MS
                    <= h.checked_at_ms
                    && rule.scope.gateway.as_deref().is_none_or(|g| g == h.gateway)
            }) {
                held += hour.stored.min(hour.cloudflare);
                counted += hour.cloudflare;
            }
            let group = match rule.group_by {
                Some(_) => integration.id.to_string(),
                None => String::new(),
            };
            let entry = out.entry(group).or_insert((0, 0));
            entry.0 += held;
            entry.1 += counted;
        }
        Ok(out)
    }

    /// Minutes since each enabled integration last took in data: its last successful sync or
    /// its last push, whichever is later (since it was added, when neither happened).
    async fn lags(&mut self) -> StoreResult<&BTreeMap<String, f64>> {
        if self.lags.is_none() {
            let mut lags = BTreeMap::new();
            for integration in self.integrations.iter().filter(|i| i.enabled) {
                let synced = self
                    .store
                    .list_sync_runs(integration.id, 50)
                    .await?
                    .into_iter()
                    .find(|r| r.status == SyncRunStatus::Succeeded)
                    .and_then(|r| r.finished_at_ms);
                let pushed = self
                    .store
                    .push_history(integration.id, 1)
                    .await?
                    .first()
                    .map(|p| p.minute_ms + MINUTE_MS);
                let last = synced
                    .max(pushed)
                    .unwrap_or(integration.created_at_ms)
                    .min(self.now_ms);
                lags.insert(
                    integration.id.to_string(),
                    ((self.now_ms - last) / MINUTE_MS) as f64,
                );
            }
            self.lags = Some(lags);
        }
        Ok(self.lags.get_or_insert_with(BTreeMap::new))
    }
}

/// Evaluates every rule at `now_ms` and saves what changed. `public_url` makes the links in
/// notifications absolute.
pub async fn evaluate(
    store: &dyn Store,
    now_ms: i64,
    public_url: Option<&str>,
) -> StoreResult<EvaluationReport> {
    let rules = store.list_alert_rules().await?;
    let open = store.open_alerts().await?;
    let silences = store.list_alert_silences(Some(now_ms)).await?;
    let mut reader = Reader {
        store,
        integrations: store.list_integrations().await?,
        cells: HashMap::new(),
        lags: None,
        now_ms,
    };
    let names = names_of(&reader.integrations);
    // States move on whole minutes (the rollups' grain): evaluating a minute twice, or a
    // few seconds late, makes the same decisions.
    let at = minute_of(now_ms);
    let mut report = EvaluationReport::default();
    let mut changes = Vec::new();
    let mut events = Vec::new();
    let by_id: HashMap<i64, &AlertRule> = rules.iter().map(|r| (r.id, r)).collect();
    let enabled: Vec<&AlertRule> = rules.iter().filter(|r| r.enabled).collect();
    reader.prefetch(&enabled).await?;

    for rule in enabled {
        report.rules += 1;
        let open_of: Vec<&Alert> = open.iter().filter(|a| a.rule_id == rule.id).collect();
        let readings = reader.read(rule, &open_of).await?;
        let timing = Timing {
            for_ms: rule.for_minutes * MINUTE_MS,
            renotify_ms: rule.renotify_minutes.map(|m| m * MINUTE_MS),
        };
        for (group, reading) in readings {
            let current = open_of.iter().find(|a| a.group == group).copied();
            let step = machine::step(
                (rule.id, &group),
                timing,
                rule.threshold,
                current,
                reading,
                at,
            );
            let notice = Notice {
                rule,
                names: &names,
                silences: &silences,
                public_url,
                now_ms,
            };
            match step {
                machine::Step::Quiet => {}
                Step::Open(mut alert) => {
                    report.opened += 1;
                    if alert.state == AlertState::Firing {
                        report.fired += 1;
                        if let Some(event) = notice.event(&alert, false) {
                            alert.notified_at_ms = Some(at);
                            events.push(event);
                            report.notified += 1;
                        }
                    }
                    changes.push(AlertChange::Open(alert));
                }
                Step::Update { mut alert, notify } => {
                    let was = current.map(|a| a.state);
                    if alert.state == AlertState::Firing && was == Some(AlertState::Pending) {
                        report.fired += 1;
                    }
                    if alert.state == AlertState::Resolved {
                        report.resolved += 1;
                    }
                    if notify {
                        let reminder = was == Some(AlertState::Firing)
                            && alert.state == AlertState::Firing
                            && current.is_some_and(|a| a.notified_at_ms.is_some());
                        if let Some(event) = notice.event(&alert, reminder) {
                            if alert.state == AlertState::Firing {
                                alert.notified_at_ms = Some(at);
                            }
                            events.push(event);
                            report.notified += 1;
                        }
                    }
                    changes.push(AlertChange::Update(alert));
                }
                Step::Drop(id) => changes.push(AlertChange::Drop(id)),
            }
        }
    }

    // Alerts of rules disabled (or deleted) since: resolved, and said so if anyone was told.
    for alert in open
        .iter()
        .filter(|a| by_id.get(&a.rule_id).is_none_or(|r| !r.enabled))
    {
        if alert.state == AlertState::Pending {
            changes.push(AlertChange::Drop(alert.id));
            continue;
        }
        let mut resolved = alert.clone();
        resolved.state = AlertState::Resolved;
        resolved.resolved_at_ms = Some(at);
        resolved.evaluated_at_ms = at;
        report.resolved += 1;
        if let (Some(rule), Some(_)) = (by_id.get(&alert.rule_id), alert.notified_at_ms) {
            let notice = Notice {
                rule,
                names: &names,
                silences: &silences,
                public_url,
                now_ms,
            };
            if let Some(event) = notice.event(&resolved, false) {
                events.push(event);
                report.notified += 1;
            }
        }
        changes.push(AlertChange::Update(resolved));
    }

    store.save_alert_changes(changes, events).await?;
    Ok(report)
}

/// What a notification needs besides the alert.
struct Notice<'a> {
    rule: &'a AlertRule,
    names: &'a HashMap<String, String>,
    silences: &'a [AlertSilence],
    public_url: Option<&'a str>,
    now_ms: i64,
}

impl Notice<'_> {
    /// The `alert.firing` / `alert.resolved` event, or `None` while a silence covers it.
    fn event(&self, alert: &Alert, reminder: bool) -> Option<OutgoingEvent> {
        if self
            .silences
            .iter()
            .any(|s| s.covers(alert.rule_id, &alert.group, self.now_ms))
        {
            return None;
        }
        let rule = self.rule;
        let kind = match alert.state {
            AlertState::Resolved => WebhookEvent::AlertResolved,
            _ => WebhookEvent::AlertFiring,
        };
        let (from, to) = window(rule, self.now_ms);
        let base = self.public_url.unwrap_or("").trim_end_matches('/');
        let group_label = group_label(rule.group_by, &alert.group, self.names);
        let event = OutgoingEvent::new(
            kind,
            json!({
                // A new alert has no id until it is saved with this event: null then; the
                // alert is the rule, the group and `startedAt`.
                "alertId": (alert.id > 0).then_some(alert.id),
                "ruleId": rule.id,
                "ruleName": rule.name,
                "metric": rule.metric.as_str(),
                "unit": unit(rule.metric),
                "condition": rule.condition.as_str(),
                "threshold": rule.threshold,
                "value": alert.value,
                "windowMinutes": rule.window_minutes,
                "groupBy": rule.group_by.map(GroupBy::as_str),
                "group": (!alert.group.is_empty()).then_some(&alert.group),
                "groupLabel": group_label,
                "state": alert.state.as_str(),
                "reminder": reminder,
                "startedAt": format_ms(alert.pending_since_ms),
                "firedAt": alert.fired_at_ms.map(format_ms),
                "resolvedAt": alert.resolved_at_ms.map(format_ms),
                "tracesUrl": format!("{base}{}", traces_link(rule, &alert.group, from, to)),
                "alertsUrl": format!("{base}/alerts?rule_id={}", rule.id),
            }),
            None,
        );
        // A rule that names its channels notifies those only.
        Some(if rule.channel_ids.is_empty() {
            event
        } else {
            event.to_channels(rule.channel_ids.clone())
        })
    }
}

/// Integration ids (as groups name them) to names, for [`group_label`].
pub fn names_of(integrations: &[Integration]) -> HashMap<String, String> {
    integrations
        .iter()
        .map(|i| (i.id.to_string(), i.name.clone()))
        .collect()
}

/// [`names_of`] the stored integrations, read only when some group is an integration.
pub async fn integration_names(
    store: &dyn Store,
    needed: bool,
) -> StoreResult<HashMap<String, String>> {
    if !needed {
        return Ok(HashMap::new());
    }
    Ok(names_of(&store.list_integrations().await?))
}

/// A group as people read it: an integration's name rather than its id.
pub fn group_label(
    group_by: Option<GroupBy>,
    group: &str,
    names: &HashMap<String, String>,
) -> Option<String> {
    if group.is_empty() {
        return None;
    }
    Some(match group_by {
        Some(GroupBy::Integration) => names.get(group).cloned().unwrap_or_else(|| group.into()),
        _ => group.to_owned(),
    })
}

/// The Trace Explorer filtered to the rule's scope, the alert's group and the window — and to
/// failures, for the metrics that count them.
pub fn traces_link(rule: &AlertRule, group: &str, from_ms: i64, to_ms: i64) -> String {
    let failures = matches!(
        rule.metric,
        AlertMetric::Errors | AlertMetric::ErrorRate | AlertMetric::RateLimited
    );
    scoped_traces_link(
        &rule.scope,
        rule.group_by,
        group,
        (from_ms, to_ms),
        failures,
    )
}

/// `scope` narrowed to one of its groups (`""`: the whole scope).
pub fn narrowed(scope: &AlertScope, group_by: Option<GroupBy>, group: &str) -> AlertScope {
    let mut scope = scope.clone();
    if !group.is_empty() {
        match group_by {
            Some(GroupBy::Integration) => scope.integration_id = group.parse().ok(),
            Some(GroupBy::Gateway) => scope.gateway = Some(group.into()),
            Some(GroupBy::Provider) => scope.provider = Some(group.into()),
            Some(GroupBy::Model) => scope.model = Some(group.into()),
            None => {}
        }
    }
    scope
}

/// The Trace Explorer filtered to a scope, one of its groups and a time range, optionally to
/// failures only.
pub fn scoped_traces_link(
    scope: &AlertScope,
    group_by: Option<GroupBy>,
    group: &str,
    (from_ms, to_ms): (i64, i64),
    failures: bool,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("from", &format_ms(from_ms));
    query.append_pair("to", &format_ms(to_ms));
    let scope = narrowed(scope, group_by, group);
    if let Some(id) = scope.integration_id {
        query.append_pair("integration_id", &id.to_string());
    }
    for (key, value) in [
        ("gateway", &scope.gateway),
        ("provider", &scope.provider),
        ("model", &scope.model),
    ] {
        if let Some(value) = value {
            query.append_pair(key, value);
        }
    }
    if failures {
        query.append_pair("status", "error");
    }
    format!("/traces?{}", query.finish())
}
