//! "Would it have fired in the last 7 days?": a rule replayed over the rollups, stepping the
//! same state machine the evaluator does — each minute for windows under two hours, each hour
//! for longer ones (latency rules, which merge sketches at each step, every 5 minutes).

use std::collections::BTreeMap;

use langguard_clock::format_ms;
use langguard_store::{
    fold::Cells, minute_of, Alert, AlertMetric, AlertRule, AlertState, Bucket, RollupTotals, Store,
};
use serde::Serialize;

use super::evaluate::{judge, value_of};
use super::machine::{self, Step, Timing};
use crate::{OpsError, OpsResult};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
/// Days a backtest looks back.
pub const DAYS: i64 = 7;
/// Groups replayed at most (the busiest).
pub const MAX_GROUPS: usize = 50;
/// Episodes listed at most (all are counted).
const MAX_EPISODES: usize = 200;

/// One time the rule would have fired.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EpisodeView {
    pub group: Option<String>,
    pub fired_at: String,
    /// `null`: still firing at the end of the replay.
    pub resolved_at: Option<String>,
    /// The worst value while it fired.
    pub peak_value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BacktestView {
    pub from: String,
    pub to: String,
    /// How often the rule was stepped.
    pub step_minutes: i64,
    pub evaluations: u64,
    /// Groups replayed (the busiest, up to 50).
    pub groups: usize,
    /// Times it would have fired.
    pub fired: usize,
    /// Minutes it would have spent firing.
    pub firing_minutes: i64,
    pub episodes: Vec<EpisodeView>,
}

/// Replays `rule` (saved or not) over the `DAYS` before `now_ms`.
pub async fn backtest(store: &dyn Store, rule: &AlertRule, now_ms: i64) -> OpsResult<BacktestView> {
    if !super::rules::from_rollups(rule.metric) {
        return Err(OpsError::invalid(
            "not_backtestable",
            format!(
                "backtests replay the traffic rollups; {} is not kept per minute, so it can't be replayed",
                rule.metric.as_str()
            ),
        ));
    }
    let by_hour = rule.window_minutes >= 120;
    let (bucket, bucket_ms) = if by_hour {
        (Bucket::Hour, HOUR_MS)
    } else {
        (Bucket::Minute, MINUTE_MS)
    };
    let latency = matches!(
        rule.metric,
        AlertMetric::LatencyP50 | AlertMetric::LatencyP95 | AlertMetric::LatencyP99
    );
    let step_ms = match (by_hour, latency) {
        (true, _) => HOUR_MS,
        (false, true) => 5 * MINUTE_MS,
        (false, false) => MINUTE_MS,
    };
    let window_buckets = (rule.window_minutes * MINUTE_MS + bucket_ms - 1) / bucket_ms;
    let end = bucket.start_of(minute_of(now_ms));
    let start = end - DAYS * 86_400_000;
    let read_from = start - window_buckets * bucket_ms;
    let scope = langguard_store::Scope {
        from_ms: Some(read_from),
        to_ms: Some(end),
        integration_id: rule.scope.integration_id,
        gateway: rule.scope.gateway.clone(),
        provider: rule.scope.provider.clone(),
        model: rule.scope.model.clone(),
    };
    let cells = store.rollup_cells(&scope, rule.group_by, bucket).await?;
    let groups = busiest_groups(&cells);
    let timing = Timing {
        for_ms: rule.for_minutes * MINUTE_MS,
        renotify_ms: None,
    };
    let mut view = BacktestView {
        from: format_ms(start),
        to: format_ms(end),
        step_minutes: step_ms / MINUTE_MS,
        evaluations: 0,
        groups: groups.len(),
        fired: 0,
        firing_minutes: 0,
        episodes: Vec::new(),
    };
    for group in groups {
        let series: BTreeMap<i64, &RollupTotals> = cells
            .range((group.clone(), i64::MIN)..=(group.clone(), i64::MAX))
            .map(|((_, t), totals)| (*t, totals))
            .collect();
        let mut open: Option<Alert> = None;
        let mut peak: Option<f64> = None;
        let mut t = start + step_ms;
        while t <= end {
            view.evaluations += 1;
            // The window ending at `t`: the buckets starting in [t - window, t).
            let mut totals = RollupTotals::default();
            for (_, cell) in series.range(t - window_buckets * bucket_ms..t) {
                if latency {
                    totals.merge(cell);
                } else {
                    add_counts(&mut totals, cell);
                }
            }
            let m = totals.to_metrics();
            let reading = judge(rule, value_of(rule.metric, &m), Some(m.requests));
            match machine::step(
                (rule.id, &group),
                timing,
                rule.threshold,
                open.as_ref(),
                reading,
                t,
            ) {
                Step::Quiet => {}
                Step::Drop(_) => open = None,
                Step::Open(alert) | Step::Update { alert, .. } => {
                    if alert.state == AlertState::Firing {
                        peak = worst(rule, peak, reading.value);
                    }
                    if alert.state == AlertState::Resolved {
                        record(&mut view, &group, &alert, peak);
                        open = None;
                        peak = None;
                    } else {
                        open = Some(Alert { id: 1, ..alert });
                    }
                }
            }
            t += step_ms;
        }
        if let Some(alert) = open.filter(|a| a.state == AlertState::Firing) {
            record(&mut view, &group, &alert, peak);
            view.firing_minutes += (end - alert.fired_at_ms.unwrap_or(end)) / MINUTE_MS;
        }
    }
    view.episodes.sort_by(|a, b| a.fired_at.cmp(&b.fired_at));
    Ok(view)
}

/// Every figure but the latency sketch (what count and rate rules read, and far cheaper to
/// add up than sketches are to merge).
fn add_counts(into: &mut RollupTotals, cell: &RollupTotals) {
    into.requests += cell.requests;
    into.errors += cell.errors;
    into.cache_hits += cell.cache_hits;
    into.rate_limited += cell.rate_limited;
    into.tokens_in += cell.tokens_in;
    into.tokens_out += cell.tokens_out;
    into.cost_usd += cell.cost_usd;
    into.unpriced += cell.unpriced;
    into.duration_ms_sum += cell.duration_ms_sum;
}

fn worst(rule: &AlertRule, peak: Option<f64>, value: Option<f64>) -> Option<f64> {
    match (peak, value) {
        (Some(p), Some(v)) => Some(match rule.condition {
            langguard_store::AlertCondition::Above => p.max(v),
            langguard_store::AlertCondition::Below => p.min(v),
        }),
        (p, v) => p.or(v),
    }
}

fn record(view: &mut BacktestView, group: &str, alert: &Alert, peak: Option<f64>) {
    let Some(fired) = alert.fired_at_ms else {
        return;
    };
    view.fired += 1;
    if let Some(resolved) = alert.resolved_at_ms {
        view.firing_minutes += (resolved - fired) / MINUTE_MS;
    }
    if view.episodes.len() < MAX_EPISODES {
        view.episodes.push(EpisodeView {
            group: (!group.is_empty()).then(|| group.to_owned()),
            fired_at: format_ms(fired),
            resolved_at: alert.resolved_at_ms.map(format_ms),
            peak_value: peak,
        });
    }
}

/// The groups with the most requests, busiest first (at most [`MAX_GROUPS`]); an ungrouped
/// rule has the one group `""`, traffic or not (a "no traffic" rule needs it).
fn busiest_groups(cells: &Cells) -> Vec<String> {
    let mut requests: BTreeMap<&str, i64> = BTreeMap::new();
    for ((group, _), totals) in cells {
        *requests.entry(group).or_default() += totals.requests;
    }
    if requests.is_empty() {
        return vec![String::new()];
    }
    let mut groups: Vec<(&str, i64)> = requests.into_iter().collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    groups
        .into_iter()
        .take(MAX_GROUPS)
        .map(|(g, _)| g.to_owned())
        .collect()
}
