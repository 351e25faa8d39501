//! Notification channels (admins only) — signed webhooks, Slack, Microsoft Teams, PagerDuty and
//! email — for `policy.violation`, `sync.failed`, `integration.status_changed`,
//! `policy.quarantined`, `coverage.degraded`, `alert.firing` and `alert.resolved`, each with its
//! delivery log and a test send. Credentials are sealed; a generated signing secret is shown
//! once and never again.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use langguard_store::{ChannelKind, Role, Severity, WebhookId};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::AppState;
use langguard_ops::lists::{DeliveryList, WebhookList};
use langguard_ops::webhooks::{
    self, CreatedWebhookView, DeliveryView, EmailSettings, WebhookChange, WebhookInput, WebhookView,
};
use langguard_ops::Actor;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", get(read).patch(update).delete(remove))
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route("/webhooks/{id}/test", post(test))
}

#[utoipa::path(get, path = "/api/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks", responses((status = 200, description = "`{items: [webhook]}` (never the secret)", body = WebhookList), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<WebhookList>, ApiError> {
    user.require(Role::Admin)?;
    let items: Vec<WebhookView> = state
        .ops
        .store
        .list_webhooks()
        .await?
        .iter()
        .map(WebhookView::from)
        .collect();
    Ok(Json(WebhookList::from(items)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateWebhookRequest {
    /// `webhook` (default: a signed JSON POST), `slack`, `teams`, `pagerduty` or `email`.
    #[schema(value_type = Option<String>)]
    kind: Option<ChannelKind>,
    /// What people call it ("#ops on Slack").
    name: Option<String>,
    /// The receiver (`webhook`), the incoming-webhook URL (`slack`, `teams`; sealed, shown by
    /// its host only), the Events API URL (`pagerduty`; default
    /// https://events.pagerduty.com/v2/enqueue); none for `email`.
    url: Option<String>,
    /// `webhook`: the signing secret, 16–256 characters, generated (and shown once) when left
    /// out. `pagerduty`: the integration's routing key. `email`: the SMTP password, if any.
    secret: Option<String>,
    /// `email`: `{host, port (587), tls (starttls|tls|none), username, from, to: [..], ca_pem}`.
    email: Option<EmailSettings>,
    /// `policy.violation`, `sync.failed`, `integration.status_changed`, `policy.quarantined`,
    /// `coverage.degraded`, `alert.firing`, `alert.resolved`.
    events: Vec<String>,
    /// `policy.violation` events below this severity are not sent (default `low`: all).
    #[schema(value_type = Option<String>)]
    min_severity: Option<Severity>,
    enabled: Option<bool>,
}

#[utoipa::path(post, path = "/api/v1/webhooks", operation_id = "create_webhook", tag = "webhooks", request_body = CreateWebhookRequest, responses((status = 201, description = "Created; `secret` is in the response only when generated", body = CreatedWebhookView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateWebhookRequest>,
) -> Result<(StatusCode, Json<CreatedWebhookView>), ApiError> {
    user.require(Role::Admin)?;
    let input = WebhookInput {
        kind: body.kind.unwrap_or(ChannelKind::Webhook),
        name: body.name,
        url: body.url,
        email: body.email,
        secret: body.secret,
        events: body.events,
        min_severity: body.min_severity.unwrap_or(Severity::Low),
        enabled: body.enabled.unwrap_or(true),
    };
    let (webhook, generated) = webhooks::add(&state.ops, Actor::User(&user.0), input).await?;
    let created = CreatedWebhookView {
        webhook: WebhookView::from(&webhook),
        secret: generated,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks", params(("id" = i64, Path, description = "Webhook id")), responses((status = 200, description = "The webhook", body = WebhookView), (status = 404, description = "No such webhook", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<Json<WebhookView>, ApiError> {
    user.require(Role::Admin)?;
    Ok(Json(WebhookView::from(
        &state.ops.store.get_webhook(id).await?,
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateWebhookRequest {
    name: Option<String>,
    url: Option<String>,
    secret: Option<String>,
    /// `email` channels: the new settings, whole.
    email: Option<EmailSettings>,
    events: Option<Vec<String>>,
    #[schema(value_type = Option<String>)]
    min_severity: Option<Severity>,
    /// Re-enabling a webhook disabled after failures clears its failure count.
    enabled: Option<bool>,
}

#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", operation_id = "update_webhook", tag = "webhooks", params(("id" = i64, Path, description = "Webhook id")), request_body = UpdateWebhookRequest, responses((status = 200, description = "Updated", body = WebhookView), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<WebhookId>,
    ApiJson(body): ApiJson<UpdateWebhookRequest>,
) -> Result<Json<WebhookView>, ApiError> {
    user.require(Role::Admin)?;
    let change = WebhookChange {
        name: body.name,
        url: body.url,
        email: body.email,
        secret: body.secret,
        events: body.events,
        min_severity: body.min_severity,
        enabled: body.enabled,
    };
    let webhook = webhooks::change(&state.ops, Actor::User(&user.0), id, change).await?;
    Ok(Json(WebhookView::from(&webhook)))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks", params(("id" = i64, Path, description = "Webhook id")), responses((status = 204, description = "Deleted with its delivery log"), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Admin)?;
    webhooks::remove(&state.ops, Actor::User(&user.0), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", operation_id = "list_webhook_deliveries", tag = "webhooks", params(("id" = i64, Path, description = "Webhook id")), responses((status = 200, description = "`{items: [{id, event, status, attempts, response_code, error, created_at, next_attempt_at, delivered_at, body}]}`, newest first (the last 200)", body = DeliveryList), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn deliveries(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<Json<DeliveryList>, ApiError> {
    user.require(Role::Admin)?;
    let items: Vec<DeliveryView> = state
        .ops
        .store
        .list_deliveries(id, 200)
        .await?
        .iter()
        .map(DeliveryView::from)
        .collect();
    Ok(Json(DeliveryList::from(items)))
}

/// `{delivery_id}`: the test message queued for the channel.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct TestQueued {
    delivery_id: i64,
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", operation_id = "test_webhook", tag = "webhooks", params(("id" = i64, Path, description = "Webhook id")), responses((status = 202, description = "A test message is queued; follow it in the delivery log", body = TestQueued), (status = 403, description = "Admins only", body = crate::error::ErrorBody), (status = 404, description = "No such webhook", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn test(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<(StatusCode, Json<TestQueued>), ApiError> {
    user.require(Role::Admin)?;
    let delivery_id = webhooks::send_test(&state.ops, Actor::User(&user.0), id).await?;
    Ok((StatusCode::ACCEPTED, Json(TestQueued { delivery_id })))
}
