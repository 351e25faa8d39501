//! Settings for admins: API keys (`GET/POST /api-keys`, `DELETE /api-keys/{id}`) and the audit
//! log (`GET /audit`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use langguard_clock::format_ms;
use langguard_store::{ApiKey, ApiKeyScope, NewApiKey, Role, User};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::{new_api_key, CurrentUser};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{now_ms, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api-keys", get(list_keys).post(create_key))
        .route("/api-keys/{id}", delete(revoke_key))
        .route("/audit", get(audit))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ApiKeyView {
    id: i64,
    name: String,
    prefix: String,
    #[schema(value_type = String, example = "read")]
    scope: ApiKeyScope,
    created_at: String,
    expires_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    user_id: i64,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scope: k.scope,
            created_at: format_ms(k.created_at_ms),
            expires_at: format_ms(k.expires_at_ms),
            last_used_at: k.last_used_at_ms.map(format_ms),
            revoked_at: k.revoked_at_ms.map(format_ms),
            user_id: k.user_id,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api keys", responses((status = 200, description = "`{items: [api key]}` without secrets"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list_keys(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let keys = state.store.list_api_keys().await?;
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
    let (key, secret) = add_key(
        &state,
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
    let key = revoke(&state, &user.0, id).await?;
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
    let entries = state.store.list_audit(limit, q.before).await?;
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

/// Checks, creates and audits an API key; returns it with its secret (shown once).
pub(crate) async fn add_key(
    state: &AppState,
    actor: &User,
    name: &str,
    scope: ApiKeyScope,
    expires_in_days: u32,
) -> Result<(ApiKey, String), ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be 1 to 100 characters",
        ));
    }
    if ![30, 60, 90, 180, 365].contains(&expires_in_days) {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            "expires_in_days must be 30, 60, 90, 180 or 365",
        ));
    }
    let (secret, hash) = new_api_key();
    let key = state
        .store
        .create_api_key(NewApiKey {
            user_id: actor.id,
            name: name.to_owned(),
            prefix: secret.chars().take(12).collect(),
            token_hash: hash,
            scope,
            expires_at_ms: now_ms() + i64::from(expires_in_days) * 86_400_000,
        })
        .await?;
    state
        .audit(
            Some(actor),
            "api_key.created",
            Some(format!("api_key:{}", key.id)),
            json!({"name": key.name, "scope": key.scope}),
            None,
        )
        .await;
    Ok((key, secret))
}

pub(crate) async fn revoke(state: &AppState, actor: &User, id: i64) -> Result<ApiKey, ApiError> {
    let key = state.store.revoke_api_key(id).await?;
    state
        .audit(
            Some(actor),
            "api_key.revoked",
            Some(format!("api_key:{id}")),
            json!({"name": key.name}),
            None,
        )
        .await;
    Ok(key)
}
