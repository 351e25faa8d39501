//! `GET /metrics`: DESIGN's figures over a time range, from the rollups.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use langguard_clock::format_ms;
use langguard_store::{Bucket, GroupBy, Scope};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{time_param, ApiQuery};
use crate::{now_ms, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/metrics/timeseries", get(timeseries))
        .route("/metrics/breakdown", get(breakdown))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsQuery {
    from: Option<String>,
    to: Option<String>,
    integration_id: Option<i64>,
    gateway: Option<String>,
    provider: Option<String>,
    model: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/metrics", tag = "metrics", params(MetricsQuery), responses((status = 200, description = "Requests, errors, rates, cache hits, 429s, tokens, cost, latency percentiles"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn metrics(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> Result<Json<Value>, ApiError> {
    let scope = q.scope()?;
    let metrics = state.ops.store.metrics(&scope).await?;
    let mut doc = serde_json::to_value(&metrics).map_err(anyhow::Error::from)?;
    range(&mut doc, &scope);
    Ok(Json(doc))
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
        let now = now_ms();
        let from = time_param("from", self.from.as_deref())?.unwrap_or(now - 24 * 3_600_000);
        let to = time_param("to", self.to.as_deref())?.unwrap_or(now);
        if from >= to {
            return Err(ApiError::bad_request(
                "invalid_time",
                "from must be before to",
            ));
        }
        Ok(Scope {
            from_ms: Some(from),
            to_ms: Some(to),
            integration_id: self.integration_id,
            gateway: self.gateway,
            provider: self.provider,
            model: self.model,
        })
    }
}

fn range(doc: &mut Value, scope: &Scope) {
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("from".into(), scope.from_ms.map(format_ms).into());
        obj.insert("to".into(), scope.to_ms.map(format_ms).into());
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
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

#[utoipa::path(get, path = "/api/v1/metrics/timeseries", tag = "metrics", params(SeriesQuery), responses((status = 200, description = "`{bucket, series: [{group, points: [{t, requests, errors, …, latency_ms}]}]}`"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn timeseries(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<SeriesQuery>,
) -> Result<Json<Value>, ApiError> {
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
    if let (Some(from), Some(to)) = (scope.from_ms, scope.to_ms) {
        // A chart of more than ~10,000 points helps nobody; ask for a wider bucket instead.
        if (to - from) / bucket.millis() > 10_000 {
            return Err(ApiError::bad_request(
                "too_many_buckets",
                "the range holds more than 10,000 buckets; use a wider bucket",
            ));
        }
    }
    let series = state
        .ops
        .store
        .metrics_series(&scope, bucket, group_by)
        .await?;
    let series: Vec<Value> = series
        .into_iter()
        .map(|s| {
            let points: Vec<Value> = s
                .points
                .into_iter()
                .map(|p| {
                    let mut point = serde_json::to_value(&p.metrics).unwrap_or_default();
                    if let Some(obj) = point.as_object_mut() {
                        obj.insert("t".into(), format_ms(p.t_ms).into());
                    }
                    point
                })
                .collect();
            json!({"group": s.group, "points": points})
        })
        .collect();
    let mut doc = json!({"bucket": bucket, "group_by": group_by, "series": series});
    range(&mut doc, &scope);
    Ok(Json(doc))
}

#[derive(Deserialize, utoipa::IntoParams)]
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

#[utoipa::path(get, path = "/api/v1/metrics/breakdown", tag = "metrics", params(BreakdownQuery), responses((status = 200, description = "`{group_by, groups: [{group, requests, …}]}`, busiest first"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn breakdown(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<BreakdownQuery>,
) -> Result<Json<Value>, ApiError> {
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
    let groups = state.ops.store.metrics_by(&scope, group_by).await?;
    let mut doc = json!({"group_by": group_by, "groups": groups});
    range(&mut doc, &scope);
    Ok(Json(doc))
}
