//! `GET /metrics`, `/metrics/timeseries` and `/metrics/breakdown`: DESIGN's figures over a
//! time range, from the rollups (`ops::metrics`).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use langguard_ops::metrics::{self, BreakdownView, MetricsView, SeriesView};
use langguard_store::{Bucket, GroupBy, Scope};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{time_param, ApiQuery};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/metrics/timeseries", get(timeseries))
        .route("/metrics/breakdown", get(breakdown))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsQuery {
    from: Option<String>,
    to: Option<String>,
    integration_id: Option<i64>,
    gateway: Option<String>,
    provider: Option<String>,
    model: Option<String>,
}

impl MetricsQuery {
    /// The scope part of the series and breakdown queries (their own structs, because
    /// serde's `flatten` can't read numbers from a query string).
    pub(crate) fn from_parts(
        from: Option<String>,
        to: Option<String>,
        integration_id: Option<i64>,
        gateway: Option<String>,
        provider: Option<String>,
        model: Option<String>,
    ) -> Self {
        Self {
            from,
            to,
            integration_id,
            gateway,
            provider,
            model,
        }
    }

    /// The scope, with the product's default range: the last 24 hours.
    pub(crate) fn scope(self) -> Result<Scope, ApiError> {
        Ok(metrics::scope(
            time_param("from", self.from.as_deref())?,
            time_param("to", self.to.as_deref())?,
            self.integration_id,
            self.gateway,
            self.provider,
            self.model,
        )?)
    }
}

#[utoipa::path(get, path = "/api/v1/metrics", operation_id = "get_metrics", tag = "metrics", params(MetricsQuery), responses((status = 200, description = "Requests, errors, rates, cache hits, 429s, tokens, cost, latency percentiles", body = MetricsView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn metrics(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> Result<Json<MetricsView>, ApiError> {
    Ok(Json(metrics::summary(&state.ops, &q.scope()?).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeriesQuery {
    from: Option<String>,
    to: Option<String>,
    integration_id: Option<i64>,
    gateway: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    /// `minute`, `hour` (default) or `day`.
    #[param(value_type = Option<String>)]
    bucket: Option<Bucket>,
    /// `integration`, `gateway`, `provider` or `model`; one series per group.
    #[param(value_type = Option<String>)]
    group_by: Option<GroupBy>,
}

#[utoipa::path(get, path = "/api/v1/metrics/timeseries", operation_id = "get_metrics_timeseries", tag = "metrics", params(SeriesQuery), responses((status = 200, description = "`{bucket, series: [{group, points: [{t, requests, errors, …, latency_ms}]}]}`", body = SeriesView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn timeseries(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<SeriesQuery>,
) -> Result<Json<SeriesView>, ApiError> {
    let bucket = q.bucket.unwrap_or(Bucket::Hour);
    let group_by = q.group_by;
    let scope = MetricsQuery::from_parts(
        q.from,
        q.to,
        q.integration_id,
        q.gateway,
        q.provider,
        q.model,
    )
    .scope()?;
    Ok(Json(
        metrics::series(&state.ops, &scope, bucket, group_by).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct BreakdownQuery {
    from: Option<String>,
    to: Option<String>,
    integration_id: Option<i64>,
    gateway: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    /// `integration`, `gateway`, `provider` or `model`.
    #[param(value_type = String)]
    group_by: GroupBy,
}

#[utoipa::path(get, path = "/api/v1/metrics/breakdown", operation_id = "get_metrics_breakdown", tag = "metrics", params(BreakdownQuery), responses((status = 200, description = "`{group_by, groups: [{group, requests, …}]}`, busiest first", body = BreakdownView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn breakdown(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<BreakdownQuery>,
) -> Result<Json<BreakdownView>, ApiError> {
    let group_by: GroupBy = q.group_by;
    let scope = MetricsQuery::from_parts(
        q.from,
        q.to,
        q.integration_id,
        q.gateway,
        q.provider,
        q.model,
    )
    .scope()?;
    Ok(Json(
        metrics::breakdown(&state.ops, &scope, group_by).await?,
    ))
}
