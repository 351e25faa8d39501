//! Webhooks: add, change and remove receivers (the URL checked against the SSRF guard, the
//! secret sealed before it is stored), with audit entries that never hold a credential.

use langguard_clock::format_ms;
use langguard_secrets::Binding;
use langguard_store::{
    Delivery, NewWebhook, SealFor, Severity, Webhook, WebhookEvent, WebhookId, WebhookPatch,
};
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use tracing::instrument;

use crate::webhook_target::TargetPolicy;
use crate::{Actor, OpsError, OpsResult, Services};

/// A webhook URL as the audit log keeps it: scheme, host and port only. Chat tools' incoming
/// webhook URLs carry their credential in the path or query (`/services/T0/B0/secret`), and
/// the audit log is read by more people than the webhook settings.
pub fn redacted_url(raw: &str) -> String {
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

/// HTTPS, or plain HTTP to this machine (a local receiver, or tests).
fn check_url(policy: &TargetPolicy, raw: &str) -> OpsResult<String> {
    let bad = |why: &str| OpsError::invalid("invalid_url", why.to_string());
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
        .map_err(|e| OpsError::invalid("invalid_url", e.to_string()))?;
    match url.scheme() {
        "https" => Ok(url.to_string()),
        "http" if local => Ok(url.to_string()),
        _ => Err(bad(
            "webhook URLs must use https:// (plain http:// only to localhost)",
        )),
    }
}

fn check_events(events: &[String]) -> OpsResult<Vec<WebhookEvent>> {
    if events.is_empty() {
        return Err(OpsError::invalid(
            "invalid_events",
            "subscribe to at least one event: policy.violation, sync.failed, integration.status_changed, policy.quarantined, coverage.degraded, alert.firing, alert.resolved",
        ));
    }
    let mut out = Vec::new();
    for name in events {
        let event = WebhookEvent::parse(name).ok_or_else(|| {
            OpsError::invalid(
                "invalid_events",
                format!(
                    "unknown event {name:?}; events are policy.violation, sync.failed, integration.status_changed, policy.quarantined, coverage.degraded, alert.firing and alert.resolved"
                ),
            )
        })?;
        if !out.contains(&event) {
            out.push(event);
        }
    }
    Ok(out)
}

fn check_secret(secret: &str) -> OpsResult<String> {
    if secret.len() < 16 || secret.len() > 256 {
        return Err(OpsError::invalid(
            "invalid_secret",
            "a webhook secret is 16 to 256 characters; leave it out to have one generated",
        ));
    }
    Ok(secret.to_string())
}

fn generate_secret() -> String {
    let bytes: [u8; 24] = rand::thread_rng().gen();
    format!(
        "lgw_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A webhook as shown: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    pub secret_set: bool,
    /// `policy.violation`, `sync.failed`, `integration.status_changed`, `policy.quarantined`,
    /// `coverage.degraded`, `alert.firing`, `alert.resolved`.
    pub events: Vec<&'static str>,
    /// `policy.violation` events below this severity are not sent.
    pub min_severity: &'static str,
    pub enabled: bool,
    pub consecutive_failures: i64,
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id,
            url: w.url.clone(),
            secret_set: !w.sealed_secret.is_empty(),
            events: w.events.iter().map(|e| e.as_str()).collect(),
            min_severity: w.min_severity.as_str(),
            enabled: w.enabled,
            consecutive_failures: w.consecutive_failures,
            disabled_reason: w.disabled_reason.clone(),
            created_at: format_ms(w.created_at_ms),
            updated_at: format_ms(w.updated_at_ms),
        }
    }
}

/// A new webhook, with its secret when one was generated (shown this once).
/// Not `Debug`: it may hold the secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedWebhookView {
    #[serde(flatten)]
    pub webhook: WebhookView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One delivery of an event to a webhook, with its attempts so far.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub event: &'static str,
    /// `pending`, `delivered` or `failed`.
    pub status: &'static str,
    pub attempts: i64,
    pub response_code: Option<i64>,
    pub error: Option<String>,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    /// The JSON document sent.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id,
            event: d.event.as_str(),
            status: d.status.as_str(),
            attempts: d.attempts,
            response_code: d.response_code,
            error: d.error.clone(),
            created_at: format_ms(d.created_at_ms),
            next_attempt_at: d.next_attempt_at_ms.map(format_ms),
            delivered_at: d.delivered_at_ms.map(format_ms),
            body: serde_json::from_str(&d.body).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A new webhook receiver.
/// Not `Debug`: it may hold the secret.
#[derive(Clone)]
pub struct WebhookInput {
    pub url: String,
    /// Generated (and returned once) when `None`.
    pub secret: Option<String>,
    pub events: Vec<String>,
    pub min_severity: Severity,
    pub enabled: bool,
}

/// Checks, seals the secret, saves and audits a new webhook; returns it with the secret when
/// one was generated (to be shown once).
#[instrument(skip_all)]
pub async fn add(
    ops: &Services,
    actor: Actor<'_>,
    input: WebhookInput,
) -> OpsResult<(Webhook, Option<String>)> {
    let url = check_url(&ops.config.webhook_targets, &input.url)?;
    let events = check_events(&input.events)?;
    let (secret, generated) = match input.secret.as_deref() {
        Some(s) => (check_secret(s)?, false),
        None => (generate_secret(), true),
    };
    let webhook = ops
        .store
        .create_webhook(NewWebhook {
            url,
            secret: SealFor::new(ops.sealer.sealing(secret.clone(), Binding::WebhookSecret)),
            events,
            min_severity: input.min_severity,
            enabled: input.enabled,
        })
        .await?;
    ops.audit(
        actor,
        "webhook.created",
        Some(format!("webhook:{}", webhook.id)),
        json!({"url": redacted_url(&webhook.url)}),
        None,
    )
    .await;
    Ok((webhook, generated.then_some(secret)))
}

/// A change to a webhook; `None` leaves a field as it is.
/// Not `Debug`: it may hold a secret.
#[derive(Clone, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub secret: Option<String>,
    pub events: Option<Vec<String>>,
    pub min_severity: Option<Severity>,
    /// Re-enabling a webhook disabled after failures clears its failure count.
    pub enabled: Option<bool>,
}

#[instrument(skip_all, fields(webhook_id = id))]
pub async fn change(
    ops: &Services,
    actor: Actor<'_>,
    id: WebhookId,
    change: WebhookChange,
) -> OpsResult<Webhook> {
    let webhook = ops
        .store
        .update_webhook(
            id,
            WebhookPatch {
                url: change
                    .url
                    .as_deref()
                    .map(|u| check_url(&ops.config.webhook_targets, u))
                    .transpose()?,
                sealed_secret: change
                    .secret
                    .as_deref()
                    .map(|s| {
                        check_secret(s).map(|s| ops.sealer.seal(&s, Binding::WebhookSecret(id)))
                    })
                    .transpose()?,
                events: change.events.as_deref().map(check_events).transpose()?,
                min_severity: change.min_severity,
                enabled: change.enabled,
            },
        )
        .await?;
    ops.audit(
        actor,
        "webhook.updated",
        Some(format!("webhook:{id}")),
        json!({"url": redacted_url(&webhook.url), "enabled": webhook.enabled, "secret_changed": change.secret.is_some()}),
        None,
    )
    .await;
    Ok(webhook)
}

#[instrument(skip_all, fields(webhook_id = id))]
pub async fn remove(ops: &Services, actor: Actor<'_>, id: WebhookId) -> OpsResult<()> {
    ops.store.delete_webhook(id).await?;
    ops.audit(
        actor,
        "webhook.deleted",
        Some(format!("webhook:{id}")),
        json!({}),
        None,
    )
    .await;
    Ok(())
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
