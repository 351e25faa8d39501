//! Webhooks (admins only): endpoints for `policy.violation`, `sync.failed`,
//! `integration.status_changed` and `policy.quarantined`, and each one's delivery log. The signing secret is shown once,
//! when generated, and never again.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use langguard_clock::format_ms;
use langguard_secrets::Binding;
use langguard_store::{
    Delivery, NewWebhook, Role, SealFor, Severity, User, Webhook, WebhookEvent, WebhookId,
    WebhookPatch,
};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::webhook_target::TargetPolicy;
use crate::AppState;

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

/// HTTPS, or plain HTTP to this machine (a local receiver, or tests).
/// A webhook URL as the audit log keeps it: scheme, host and port only. Chat tools' incoming
/// webhook URLs carry their credential in the path or query (`/services/T0/B0/secret`), and
/// the audit log is read by more people than the webhook settings.
pub(crate) fn redacted_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("");
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if url.path() != "/" || url.query().is_some() {
                "/…"
            } else {
                "/"
            };
            format!("{}://{host}{port}{rest}", url.scheme())
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// Which non-public receivers this server allows (none unless an admin said so).
fn targets(state: &AppState) -> TargetPolicy {
    state
        .config
        .webhooks
        .as_ref()
        .map(|w| w.targets.clone())
        .unwrap_or_default()
}

fn check_url(policy: &TargetPolicy, raw: &str) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::bad_request("invalid_url", why.to_string());
    if raw.len() > 2_000 {
        return Err(bad("the URL is longer than 2,000 characters"));
    }
    let url = url::Url::parse(raw.trim())
        .map_err(|_| bad("the URL doesn't parse; give a full https:// URL"))?;
    let local = matches!(
        url.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    policy
        .check_url(&url)
        .map_err(|e| ApiError::bad_request("invalid_url", e.to_string()))?;
    match url.scheme() {
        "https" => Ok(url.to_string()),
        "http" if local => Ok(url.to_string()),
        _ => Err(bad(
            "webhook URLs must use https:// (plain http:// only to localhost)",
        )),
    }
}

fn check_events(events: &[String]) -> Result<Vec<WebhookEvent>, ApiError> {
    if events.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_events",
            "subscribe to at least one event: policy.violation, sync.failed, integration.status_changed, policy.quarantined",
        ));
    }
    let mut out = Vec::new();
    for name in events {
        let event = WebhookEvent::parse(name).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_events",
                format!(
                    "unknown event {name:?}; events are policy.violation, sync.failed, integration.status_changed and policy.quarantined"
                ),
            )
        })?;
        if !out.contains(&event) {
            out.push(event);
        }
    }
    Ok(out)
}

fn check_secret(secret: &str) -> Result<String, ApiError> {
    if secret.len() < 16 || secret.len() > 256 {
        return Err(ApiError::bad_request(
            "invalid_secret",
            "a webhook secret is 16 to 256 characters; leave it out to have one generated",
        ));
    }
    Ok(secret.to_string())
}

fn generate_secret() -> String {
    let bytes: [u8; 24] = rand::thread_rng().gen();
    format!("lgw_{}", crate::hex(&bytes))
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", responses((status = 200, description = "`{items: [webhook]}` (never the secret)"), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let items: Vec<Value> = state
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
    let (webhook, generated) = add(
        &state,
        &user.0,
        &body.url,
        body.secret.as_deref(),
        &body.events,
        body.min_severity.unwrap_or(Severity::Low),
        body.enabled.unwrap_or(true),
    )
    .await?;
    let mut doc = view(&webhook);
    if let Some(secret) = generated {
        doc["secret"] = json!(secret);
    }
    Ok((StatusCode::CREATED, Json(doc)))
}

/// Checks, seals the secret, saves and audits a new webhook; returns it with the secret when
/// one was generated (to be shown once).
pub(crate) async fn add(
    state: &AppState,
    actor: &User,
    url: &str,
    secret: Option<&str>,
    events: &[String],
    min_severity: Severity,
    enabled: bool,
) -> Result<(Webhook, Option<String>), ApiError> {
    let url = check_url(&targets(state), url)?;
    let events = check_events(events)?;
    let (secret, generated) = match secret {
        Some(s) => (check_secret(s)?, false),
        None => (generate_secret(), true),
    };
    let webhook = state
        .store
        .create_webhook(NewWebhook {
            url,
            secret: SealFor::new(state.sealer.sealing(secret.clone(), Binding::WebhookSecret)),
            events,
            min_severity,
            enabled,
        })
        .await?;
    state
        .audit(
            Some(actor),
            "webhook.created",
            Some(format!("webhook:{}", webhook.id)),
            json!({"url": redacted_url(&webhook.url)}),
            None,
        )
        .await;
    Ok((webhook, generated.then_some(secret)))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path, description = "Webhook id")), responses((status = 200, description = "The webhook"), (status = 404, description = "No such webhook", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    Ok(Json(view(&state.store.get_webhook(id).await?)))
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
    let webhook = state
        .store
        .update_webhook(
            id,
            WebhookPatch {
                url: body
                    .url
                    .as_deref()
                    .map(|u| check_url(&targets(&state), u))
                    .transpose()?,
                sealed_secret: body
                    .secret
                    .as_deref()
                    .map(|s| {
                        check_secret(s).map(|s| state.sealer.seal(&s, Binding::WebhookSecret(id)))
                    })
                    .transpose()?,
                events: body.events.as_deref().map(check_events).transpose()?,
                min_severity: body.min_severity,
                enabled: body.enabled,
            },
        )
        .await?;
    state
        .audit(
            Some(&user.0),
            "webhook.updated",
            Some(format!("webhook:{id}")),
            json!({"url": redacted_url(&webhook.url), "enabled": webhook.enabled, "secret_changed": body.secret.is_some()}),
            None,
        )
        .await;
    Ok(Json(view(&webhook)))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path, description = "Webhook id")), responses((status = 204, description = "Deleted with its delivery log"), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Admin)?;
    state.store.delete_webhook(id).await?;
    state
        .audit(
            Some(&user.0),
            "webhook.deleted",
            Some(format!("webhook:{id}")),
            json!({}),
            None,
        )
        .await;
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
        .store
        .list_deliveries(id, 200)
        .await?
        .iter()
        .map(delivery_view)
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audited_urls_keep_only_scheme_host_and_port() {
        assert_eq!(
            redacted_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redacted_url("https://user:pass@example.com:8443/x?token=abc#f"),
            "https://example.com:8443/…"
        );
        assert_eq!(redacted_url("https://example.com"), "https://example.com/");
        assert_eq!(redacted_url("nonsense"), "(not a URL)");
    }

    #[test]
    fn urls_must_be_https_except_to_this_machine_which_must_be_allowed() {
        let open = TargetPolicy::parse("true").expect("policy");
        let strict = TargetPolicy::default();
        assert!(check_url(&strict, "https://hooks.example.com/lg").is_ok());
        assert!(check_url(&open, "http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url(&open, "http://localhost/hook").is_ok());
        for private in [
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "https://10.0.0.5/hook",
            "https://169.254.169.254/latest/meta-data",
        ] {
            assert!(check_url(&strict, private).is_err(), "{private}");
        }
        assert!(check_url(&open, "http://hooks.example.com/lg").is_err());
        assert!(check_url(&open, "ftp://example.com").is_err());
        assert!(check_url(&open, "not a url").is_err());
    }
}
