//! `GET /monitoring/overview`: what the Monitoring dashboard opens with — the range's figures
//! and health, each integration's health beside its sync state, and recent sync history.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use langguard_ops::monitoring::{self, OverviewView};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::routes::metrics::MetricsQuery;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/monitoring/overview", get(overview))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverviewQuery {
    /// RFC 3339; default 24 hours before `to`.
    from: Option<String>,
    /// RFC 3339; default now.
    to: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/monitoring/overview", operation_id = "get_monitoring_overview", tag = "metrics", params(OverviewQuery), responses((status = 200, description = "`{from, to, health, metrics, requests_per_hour, integrations: [{…, traffic: {requests, success_rate, health}}], recent_syncs: [sync run + integration_name], violations: {by_severity: {critical: {total, open}, …}, recent: [violation], policy_lag}}`", body = OverviewView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn overview(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<OverviewQuery>,
) -> Result<Json<OverviewView>, ApiError> {
    let scope = MetricsQuery::from_parts(q.from, q.to, None, None, None, None).scope()?;
    Ok(Json(monitoring::overview(&state.ops, &scope).await?))
}
