//! `GET /monitoring/overview`: what the Monitoring dashboard opens with — the range's figures
//! and health, each integration's health beside its sync state, and recent sync history.

use std::collections::HashMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use langguard_clock::format_ms;
use langguard_store::{GroupBy, Metrics, Severity, ViolationQuery, ViolationStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::routes::metrics::MetricsQuery;
use crate::AppState;
use langguard_ops::views::{IntegrationView, SyncRunView, ViolationView};

/// Sync runs listed in the overview's history.
const RECENT_SYNCS: u32 = 20;
/// Violations listed in the overview.
const RECENT_VIOLATIONS: u32 = 10;

pub fn router() -> Router<AppState> {
    Router::new().route("/monitoring/overview", get(overview))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverviewQuery {
    /// RFC 3339; default 24 hours before `to`.
    from: Option<String>,
    /// RFC 3339; default now.
    to: Option<String>,
}

use langguard_ops::monitoring::health;

#[utoipa::path(get, path = "/api/v1/monitoring/overview", tag = "metrics", params(OverviewQuery), responses((status = 200, description = "`{from, to, health, metrics, requests_per_hour, integrations: [{…, traffic: {requests, success_rate, health}}], recent_syncs: [sync run + integration_name], violations: {by_severity: {critical: {total, open}, …}, recent: [violation], policy_lag}}`"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn overview(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<OverviewQuery>,
) -> Result<Json<Value>, ApiError> {
    let scope = MetricsQuery::from_parts(q.from, q.to, None, None, None, None).scope()?;
    let recent_violations = ViolationQuery {
        from_ms: scope.from_ms,
        to_ms: scope.to_ms,
        limit: RECENT_VIOLATIONS,
        ..ViolationQuery::default()
    };
    let (metrics, by_integration, integrations, runs, counts, recent, progress) = tokio::try_join!(
        state.ops.store.metrics(&scope),
        state.ops.store.metrics_by(&scope, GroupBy::Integration),
        state.ops.store.list_integrations(),
        state.ops.store.recent_sync_runs(RECENT_SYNCS),
        state.ops.store.violation_counts(&scope),
        state.ops.store.violations(&recent_violations),
        state.ops.store.policy_progress(),
    )?;
    let mut by_severity: serde_json::Map<String, Value> = Severity::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), json!({"total": 0, "open": 0})))
        .collect();
    for (severity, status, n) in counts {
        if let Some(entry) = by_severity.get_mut(severity.as_str()) {
            entry["total"] = json!(entry["total"].as_u64().unwrap_or(0) + n);
            if status != ViolationStatus::Resolved {
                entry["open"] = json!(entry["open"].as_u64().unwrap_or(0) + n);
            }
        }
    }
    let recent: Vec<ViolationView> = recent.items.iter().map(ViolationView::from).collect();
    let traffic: HashMap<String, Metrics> = by_integration
        .into_iter()
        .map(|g| (g.group, g.metrics))
        .collect();
    let names: HashMap<i64, &str> = integrations
        .iter()
        .map(|i| (i.id, i.name.as_str()))
        .collect();
    let integrations: Vec<Value> = integrations
        .iter()
        .map(|i| {
            let m = traffic.get(&i.id.to_string()).cloned().unwrap_or_default();
            let mut doc = serde_json::to_value(IntegrationView::from(i)).unwrap_or_default();
            if let Some(obj) = doc.as_object_mut() {
                obj.insert(
                    "traffic".into(),
                    json!({
                        "requests": m.requests,
                        "errors": m.errors,
                        "success_rate": m.success_rate,
                        "health": health(&m),
                    }),
                );
            }
            doc
        })
        .collect();
    let recent_syncs: Vec<Value> = runs
        .iter()
        .map(|r| {
            let mut doc = serde_json::to_value(SyncRunView::from(r)).unwrap_or_default();
            if let Some(obj) = doc.as_object_mut() {
                obj.insert(
                    "integration_name".into(),
                    names.get(&r.integration_id).copied().into(),
                );
            }
            doc
        })
        .collect();
    let hours = match (scope.from_ms, scope.to_ms) {
        (Some(from), Some(to)) => (to - from) as f64 / 3_600_000.0,
        _ => 0.0,
    };
    Ok(Json(json!({
        "from": scope.from_ms.map(format_ms),
        "to": scope.to_ms.map(format_ms),
        "health": health(&metrics),
        "requests_per_hour": (hours > 0.0).then(|| metrics.requests as f64 / hours),
        "metrics": metrics,
        "integrations": integrations,
        "recent_syncs": recent_syncs,
        "violations": {
            "by_severity": by_severity,
            "recent": recent,
            "policy_lag": progress.lag(),
        },
    })))
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
