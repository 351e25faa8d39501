//! Monitoring: the health of traffic, and the overview the dashboard's API gives — figures,
//! each integration's traffic beside its sync state, recent syncs and violations.

use std::collections::{BTreeMap, HashMap};

use langguard_clock::format_ms;
use langguard_store::{GroupBy, Metrics, Scope, Severity, ViolationQuery, ViolationStatus};
use serde::Serialize;
use tracing::instrument;

use crate::views::{IntegrationView, SyncRunView, ViolationView};
use crate::{OpsResult, Services};

/// Sync runs listed in the overview's history.
const RECENT_SYNCS: u32 = 20;
/// Violations listed in the overview.
const RECENT_VIOLATIONS: u32 = 10;

/// PRODUCT-SPEC §3's health of traffic over a range: Healthy at ≥ 95 % success, Warning from
/// 85 %, Critical below, Inactive without traffic.
pub fn health(metrics: &Metrics) -> &'static str {
    match metrics.success_rate {
        None => "inactive",
        Some(rate) if rate >= 0.95 => "healthy",
        Some(rate) if rate >= 0.85 => "warning",
        Some(_) => "critical",
    }
}

/// An integration's traffic over the range.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrafficView {
    pub requests: i64,
    pub errors: i64,
    pub success_rate: Option<f64>,
    /// `healthy`, `warning`, `critical` or `inactive`.
    pub health: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntegrationTrafficView {
    #[serde(flatten)]
    pub integration: IntegrationView,
    pub traffic: TrafficView,
    /// What it holds of what Cloudflare counted over the range.
    pub coverage: crate::coverage::CoverageSummary,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecentSyncView {
    #[serde(flatten)]
    pub run: SyncRunView,
    pub integration_name: Option<String>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct SeverityCount {
    pub total: u64,
    /// Not resolved.
    pub open: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ViolationSummary {
    /// `critical`, `high`, `medium` and `low`.
    pub by_severity: BTreeMap<String, SeverityCount>,
    pub recent: Vec<ViolationView>,
    /// Interactions the policy worker has not evaluated yet.
    pub policy_lag: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OverviewView {
    pub from: Option<String>,
    pub to: Option<String>,
    /// `healthy`, `warning`, `critical` or `inactive`.
    pub health: &'static str,
    pub requests_per_hour: Option<f64>,
    pub metrics: Metrics,
    pub integrations: Vec<IntegrationTrafficView>,
    pub recent_syncs: Vec<RecentSyncView>,
    pub violations: ViolationSummary,
}

#[instrument(skip_all)]
pub async fn overview(ops: &Services, scope: &Scope) -> OpsResult<OverviewView> {
    let recent_violations = ViolationQuery {
        from_ms: scope.from_ms,
        to_ms: scope.to_ms,
        limit: RECENT_VIOLATIONS,
        ..ViolationQuery::default()
    };
    let store = &ops.store;
    let (metrics, by_integration, integrations, runs, counts, recent, progress) = tokio::try_join!(
        store.metrics(scope),
        store.metrics_by(scope, GroupBy::Integration),
        store.list_integrations(),
        store.recent_sync_runs(RECENT_SYNCS),
        store.violation_counts(scope),
        store.violations(&recent_violations),
        store.policy_progress(),
    )?;
    let mut by_severity: BTreeMap<String, SeverityCount> = Severity::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), SeverityCount::default()))
        .collect();
    for (severity, status, n) in counts {
        if let Some(entry) = by_severity.get_mut(severity.as_str()) {
            entry.total += n;
            if status != ViolationStatus::Resolved {
                entry.open += n;
            }
        }
    }
    let traffic: HashMap<String, Metrics> = by_integration
        .into_iter()
        .map(|g| (g.group, g.metrics))
        .collect();
    let names: HashMap<i64, &str> = integrations
        .iter()
        .map(|i| (i.id, i.name.as_str()))
        .collect();
    let (from_ms, to_ms) = (
        scope.from_ms.unwrap_or_default(),
        scope.to_ms.unwrap_or_else(langguard_clock::now_ms),
    );
    let coverage = crate::coverage::summaries(ops, &integrations, from_ms, to_ms).await?;
    let hours = match (scope.from_ms, scope.to_ms) {
        (Some(from), Some(to)) => (to - from) as f64 / 3_600_000.0,
        _ => 0.0,
    };
    Ok(OverviewView {
        from: scope.from_ms.map(format_ms),
        to: scope.to_ms.map(format_ms),
        health: health(&metrics),
        requests_per_hour: (hours > 0.0).then(|| metrics.requests as f64 / hours),
        integrations: integrations
            .iter()
            .zip(coverage)
            .map(|(i, coverage)| {
                let m = traffic.get(&i.id.to_string()).cloned().unwrap_or_default();
                IntegrationTrafficView {
                    integration: IntegrationView::from(i),
                    traffic: TrafficView {
                        requests: m.requests,
                        errors: m.errors,
                        success_rate: m.success_rate,
                        health: health(&m),
                    },
                    coverage,
                }
            })
            .collect(),
        recent_syncs: runs
            .iter()
            .map(|r| RecentSyncView {
                run: SyncRunView::from(r),
                integration_name: names.get(&r.integration_id).map(|n| n.to_string()),
            })
            .collect(),
        metrics,
        violations: ViolationSummary {
            by_severity,
            recent: recent.items.iter().map(ViolationView::from).collect(),
            policy_lag: progress.lag(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_the_product_thresholds() {
        let with = |requests: i64, errors: i64| Metrics {
            requests,
            errors,
            success_rate: (requests > 0).then(|| (requests - errors) as f64 / requests as f64),
            ..Metrics::default()
        };
        assert_eq!(health(&with(0, 0)), "inactive");
        assert_eq!(health(&with(100, 5)), "healthy");
        assert_eq!(health(&with(100, 6)), "warning");
        assert_eq!(health(&with(100, 15)), "warning");
        assert_eq!(health(&with(100, 16)), "critical");
    }
}
