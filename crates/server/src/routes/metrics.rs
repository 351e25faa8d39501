//! `GET /metrics`: DESIGN's figures over a time range, from the rollups.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use langguard_cloudflare::time::{format_ms, parse_ms};
use langguard_store::Scope;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::{now_ms, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
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

fn time_param(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            parse_ms(v).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_time",
                    format!("{name} must be an RFC 3339 time, e.g. 2026-11-01T00:00:00Z"),
                )
            })
        })
        .transpose()
}

#[utoipa::path(get, path = "/api/v1/metrics", tag = "metrics", params(MetricsQuery), responses((status = 200, description = "Requests, errors, rates, cache hits, 429s, tokens, cost, latency percentiles"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn metrics(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    // The product's default range: the last 24 hours.
    let from = time_param("from", q.from.as_deref())?.unwrap_or(now - 24 * 3_600_000);
    let to = time_param("to", q.to.as_deref())?.unwrap_or(now);
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid_time",
            "from must be before to",
        ));
    }
    let metrics = state
        .store
        .metrics(&Scope {
            from_ms: Some(from),
            to_ms: Some(to),
            integration_id: q.integration_id,
            gateway: q.gateway,
            provider: q.provider,
            model: q.model,
        })
        .await?;
    let mut doc = serde_json::to_value(&metrics).map_err(anyhow::Error::from)?;
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("from".into(), format_ms(from).into());
        obj.insert("to".into(), format_ms(to).into());
    }
    Ok(Json(doc))
}
