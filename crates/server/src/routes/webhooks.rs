//! Webhooks (admins only): endpoints for `policy.violation`, `sync.failed`,
//! `integration.status_changed` and `policy.quarantined`, and each one's delivery log. The signing secret is shown once,
//! when generated, and never again.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use langguard_clock::format_ms;
use langguard_store::{Delivery, Role, Severity, Webhook, WebhookId};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::AppState;
use langguard_ops::webhooks::{self, WebhookChange, WebhookInput};
use langguard_ops::Actor;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", get(read).patch(update).delete(remove))
        .route("/webhooks/{id}/deliveries", get(deliveries))
}

fn view(w: &Webhook) -> Value {
    json!({
        "id": w.id,
        "url": w.url,
        "secret_set": !w.sealed_secret.is_empty(),
        "events": w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "min_severity": w.min_severity.as_str(),
        "enabled": w.enabled,
        "consecutive_failures": w.consecutive_failures,
        "disabled_reason": w.disabled_reason,
        "created_at": format_ms(w.created_at_ms),
        "updated_at": format_ms(w.updated_at_ms),
    })
}

fn delivery_view(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "event": d.event.as_str(),
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "response_code": d.response_code,
        "error": d.error,
        "created_at": format_ms(d.created_at_ms),
        "next_attempt_at": d.next_attempt_at_ms.map(format_ms),
        "delivered_at": d.delivered_at_ms.map(format_ms),
        "body": serde_json::from_str::<Value>(&d.body).unwrap_or(Value::Null),
    })
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", responses((status = 200, description = "`{items: [webhook]}` (never the secret)"), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let items: Vec<Value> = state
        .ops
        .store
        .list_webhooks()
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    url: String,
    /// 16–256 characters; generated (and shown once) when left out.
    secret: Option<String>,
    /// `policy.violation`, `sync.failed`, `integration.status_changed`, `policy.quarantined`.
    events: Vec<String>,
    /// `policy.violation` events below this severity are not sent (default `low`: all).
    #[schema(value_type = Option<String>)]
    min_severity: Option<Severity>,
    enabled: Option<bool>,
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateBody, responses((status = 201, description = "Created; `secret` is in the response only when generated"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    user.require(Role::Admin)?;
    let input = WebhookInput {
        url: body.url,
        secret: body.secret,
        events: body.events,
        min_severity: body.min_severity.unwrap_or(Severity::Low),
        enabled: body.enabled.unwrap_or(true),
    };
    let (webhook, generated) = webhooks::add(&state.ops, Actor::User(&user.0), input).await?;
    let mut doc = view(&webhook);
    if let Some(secret) = generated {
        doc["secret"] = json!(secret);
    }
    Ok((StatusCode::CREATED, Json(doc)))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path, description = "Webhook id")), responses((status = 200, description = "The webhook"), (status = 404, description = "No such webhook", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    Ok(Json(view(&state.ops.store.get_webhook(id).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateBody {
    url: Option<String>,
    secret: Option<String>,
    events: Option<Vec<String>>,
    #[schema(value_type = Option<String>)]
    min_severity: Option<Severity>,
    /// Re-enabling a webhook disabled after failures clears its failure count.
    enabled: Option<bool>,
}

#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path, description = "Webhook id")), request_body = UpdateBody, responses((status = 200, description = "Updated"), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<WebhookId>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let change = WebhookChange {
        url: body.url,
        secret: body.secret,
        events: body.events,
        min_severity: body.min_severity,
        enabled: body.enabled,
    };
    let webhook = webhooks::change(&state.ops, Actor::User(&user.0), id, change).await?;
    Ok(Json(view(&webhook)))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path, description = "Webhook id")), responses((status = 204, description = "Deleted with its delivery log"), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Admin)?;
    webhooks::remove(&state.ops, Actor::User(&user.0), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = i64, Path, description = "Webhook id")), responses((status = 200, description = "`{items: [{id, event, status, attempts, response_code, error, created_at, next_attempt_at, delivered_at, body}]}`, newest first (the last 200)"), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn deliveries(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let items: Vec<Value> = state
        .ops
        .store
        .list_deliveries(id, 200)
        .await?
        .iter()
        .map(delivery_view)
        .collect();
    Ok(Json(json!({ "items": items })))
}
