//! Settings for admins: API keys (`GET/POST /api-keys`, `DELETE /api-keys/{id}`) and the audit
//! log (`GET /audit`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use langguard_clock::format_ms;
use langguard_ops::keys::{self, ApiKeyView};
use langguard_ops::Actor;
use langguard_store::{ApiKeyScope, Role};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api-keys", get(list_keys).post(create_key))
        .route("/api-keys/{id}", delete(revoke_key))
        .route("/audit", get(audit))
}

#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api keys", responses((status = 200, description = "`{items: [api key]}` without secrets"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list_keys(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let keys = state.ops.store.list_api_keys().await?;
    let items: Vec<ApiKeyView> = keys.iter().map(ApiKeyView::from).collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    name: String,
    /// `ingest`, `read`, `write` or `admin`.
    #[schema(value_type = String, example = "read")]
    scope: ApiKeyScope,
    /// One of the product's choices: 30, 60, 90, 180 or 365 days.
    expires_in_days: u32,
}

#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api keys", request_body = CreateKey, responses((status = 201, description = "The key, with its secret `key` shown this once"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create_key(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    user.require(Role::Admin)?;
    let (key, secret) = keys::add(
        &state.ops,
        &user.0,
        &body.name,
        body.scope,
        body.expires_in_days,
    )
    .await?;
    let mut view = serde_json::to_value(ApiKeyView::from(&key)).map_err(anyhow::Error::from)?;
    if let Some(obj) = view.as_object_mut() {
        // The only time the key is shown: it is stored hashed.
        obj.insert("key".into(), secret.into());
    }
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api keys", params(("id" = i64, Path, description = "API key id")), responses((status = 200, description = "Revoked", body = ApiKeyView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn revoke_key(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ApiKeyView>, ApiError> {
    user.require(Role::Admin)?;
    let key = keys::revoke(&state.ops, Actor::User(&user.0), id).await?;
    Ok(Json(ApiKeyView::from(&key)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, description = "`{items, next_before}`, newest first"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn audit(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1_000);
    let entries = state.ops.store.list_audit(limit, q.before).await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "timestamp": format_ms(e.at_ms), "user_id": e.user_id,
                "user": e.user_email, "action": e.action, "resource": e.resource,
                "details": e.details, "address": e.address,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items, "next_before": next })))
}
