//! `/healthz` (the process answers) and `/readyz` (it can reach its database).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// What the health checks answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct HealthView {
    /// `ok` (`/healthz`) or `ready` (`/readyz`).
    status: &'static str,
}

#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "health", responses((status = 200, description = "OK", body = HealthView)))]
async fn healthz() -> Json<HealthView> {
    Json(HealthView { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "health", responses((status = 200, description = "Ready", body = HealthView), (status = 503, description = "Database unreachable", body = crate::error::ErrorBody)))]
async fn readyz(State(state): State<AppState>) -> Result<Json<HealthView>, ApiError> {
    state.ops.store.count_users().await.map_err(|e| {
        tracing::error!(error = %e, "readiness check: the database does not answer");
        ApiError::Unavailable("the database does not answer; the server log says why".into())
    })?;
    Ok(Json(HealthView { status: "ready" }))
}
