//! Settings for admins: API keys (`GET/POST /api-keys`, `DELETE /api-keys/{id}`) and the audit
//! log (`GET /audit`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use langguard_ops::audit;
use langguard_ops::keys::{self, ApiKeyView, CreatedApiKeyView};
use langguard_ops::lists::{ApiKeyList, AuditPage};
use langguard_ops::Actor;
use langguard_store::{ApiKeyScope, Role};
use serde::Deserialize;

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

#[utoipa::path(get, path = "/api/v1/api-keys", operation_id = "list_api_keys", tag = "api keys", responses((status = 200, description = "`{items: [api key]}` without secrets", body = ApiKeyList), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list_keys(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<ApiKeyList>, ApiError> {
    user.require(Role::Admin)?;
    let keys = state.ops.store.list_api_keys().await?;
    Ok(Json(ApiKeyList::from(
        keys.iter().map(ApiKeyView::from).collect::<Vec<_>>(),
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKeyRequest {
    name: String,
    /// `ingest`, `read`, `write` or `admin`.
    #[schema(value_type = String, example = "read")]
    scope: ApiKeyScope,
    /// One of the product's choices: 30, 60, 90, 180 or 365 days.
    expires_in_days: u32,
    /// Required for an `ingest` key: the one integration it may push data for.
    #[serde(default)]
    integration_id: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/api-keys", operation_id = "create_api_key", tag = "api keys", request_body = CreateApiKeyRequest, responses((status = 201, description = "The key, with its secret `key` shown this once", body = CreatedApiKeyView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create_key(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<CreatedApiKeyView>), ApiError> {
    user.require(Role::Admin)?;
    let (key, secret) = keys::add(
        &state.ops,
        &user.0,
        keys::NewKey {
            name: &body.name,
            scope: body.scope,
            expires_in_days: body.expires_in_days,
            integration_id: body.integration_id,
        },
    )
    .await?;
    // The only time the key is shown: it is stored hashed.
    let view = CreatedApiKeyView {
        api_key: ApiKeyView::from(&key),
        key: secret,
    };
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", operation_id = "revoke_api_key", tag = "api keys", params(("id" = i64, Path, description = "API key id")), responses((status = 200, description = "Revoked", body = ApiKeyView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
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
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/audit", operation_id = "list_audit_entries", tag = "audit", params(AuditQuery), responses((status = 200, description = "`{items, next_before}`, newest first", body = AuditPage), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn audit(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    user.require(Role::Admin)?;
    Ok(Json(audit::page(&state.ops, q.limit, q.before).await?))
}
