//! Notification channels — signed webhooks, Slack and Microsoft Teams incoming webhooks,
//! PagerDuty Events API v2, email over SMTP — kept as webhook rows of a kind, so they share the
//! outbox (retries, backoff, the delivery log). Adding, changing and removing them: addresses
//! checked against the SSRF guard, credentials sealed before they are stored, audit entries
//! that never hold one.

use langguard_clock::format_ms;
use langguard_secrets::Binding;
use langguard_store::{
    ChannelKind, Delivery, NewWebhook, SealFor, Severity, Webhook, WebhookEvent, WebhookId,
    WebhookPatch,
};
use rand::Rng;
use serde::{Deserialize, Serialize};
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
            "subscribe to at least one event: policy.violation, sync.failed, integration.status_changed, policy.quarantined, coverage.degraded, alert.firing, alert.resolved, budget.threshold",
        ));
    }
    let mut out = Vec::new();
    for name in events {
        let event = WebhookEvent::parse(name).filter(|e| *e != WebhookEvent::Test).ok_or_else(|| {
            OpsError::invalid(
                "invalid_events",
                format!(
                    "unknown event {name:?}; events are policy.violation, sync.failed, integration.status_changed, policy.quarantined, coverage.degraded, alert.firing, alert.resolved and budget.threshold"
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
    /// `webhook`, `slack`, `teams`, `pagerduty` or `email`.
    pub kind: &'static str,
    pub name: String,
    /// Where it delivers: the receiver (webhook, PagerDuty), scheme and host only (Slack and
    /// Teams: their URL is the credential), the SMTP server (email).
    pub url: String,
    /// Whether a credential is stored (signing secret, incoming-webhook URL, routing key, SMTP
    /// password); never the credential.
    pub secret_set: bool,
    /// Email channels: the server and addresses (never the password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSettings>,
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
            kind: w.kind.as_str(),
            name: w.name.clone(),
            url: w.url.clone(),
            secret_set: !w.sealed_secret.is_empty(),
            email: (w.kind == ChannelKind::Email)
                .then(|| serde_json::from_str(&w.settings).ok())
                .flatten(),
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

/// How an email channel reaches its SMTP server, and whom it writes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub host: String,
    /// Default 587.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `starttls` (default: upgrade after connecting), `tls` (TLS from the start, usually port
    /// 465) or `none` (plain; only without a password, or to this machine).
    #[serde(default = "default_smtp_tls")]
    pub tls: String,
    /// Sign in as this user (with the channel's `secret` as the password).
    #[serde(default)]
    pub username: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    /// A CA certificate (PEM) to trust for the server besides the public ones: an internal
    /// relay's private CA.
    #[serde(default)]
    pub ca_pem: Option<String>,
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_tls() -> String {
    "starttls".into()
}

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

fn bad_email(message: impl Into<String>) -> OpsError {
    OpsError::invalid("invalid_email", message.into())
}

/// An address as SMTP takes it: `name@host`, no spaces or control characters.
fn check_address(address: &str, what: &str) -> OpsResult<String> {
    let address = address.trim();
    let ok = address.len() <= 254
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        && address.split_once('@').is_some_and(|(local, host)| {
            !local.is_empty() && (host.contains('.') || host == "localhost")
        });
    if !ok {
        return Err(bad_email(format!(
            "{what} {address:?} is not an email address (name@example.com)"
        )));
    }
    Ok(address.to_owned())
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]")
}

fn check_email(
    policy: &TargetPolicy,
    email: EmailSettings,
    has_password: bool,
) -> OpsResult<EmailSettings> {
    let host = email.host.trim().trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return Err(bad_email(
            "host is the SMTP server's name or address, e.g. smtp.example.com",
        ));
    }
    if email.port == 0 {
        return Err(bad_email(
            "port is 1 to 65535 (587 for STARTTLS, 465 for TLS)",
        ));
    }
    let tls = email.tls.trim().to_ascii_lowercase();
    if !matches!(tls.as_str(), "starttls" | "tls" | "none") {
        return Err(bad_email("tls is starttls, tls or none"));
    }
    if tls == "none" && has_password && !is_loopback(&host) {
        return Err(bad_email(
            "a password would cross the network in clear text: use starttls or tls",
        ));
    }
    // `smtp:` is not a special scheme to the URL parser, which would keep an address as an
    // opaque name: an address is checked as one here, a name at each connection.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let address = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) if bare == "localhost" || bare.ends_with(".localhost") => {
            Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        }
        Err(_) => None,
    };
    if let Some(ip) = address {
        policy
            .check(&host, ip)
            .map_err(|e| OpsError::invalid("invalid_url", e.to_string()))?;
    }
    if email.to.is_empty() || email.to.len() > 50 {
        return Err(bad_email("to lists 1 to 50 recipients"));
    }
    let username = email
        .username
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    if username
        .as_ref()
        .is_some_and(|u| u.len() > 254 || u.chars().any(char::is_control))
    {
        return Err(bad_email("username is at most 254 characters"));
    }
    let ca_pem = email.ca_pem.filter(|p| !p.trim().is_empty());
    if let Some(pem) = &ca_pem {
        if pem.len() > 20_000 || !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(bad_email(
                "ca_pem is a PEM certificate (-----BEGIN CERTIFICATE-----)",
            ));
        }
    }
    Ok(EmailSettings {
        host,
        port: email.port,
        tls,
        username,
        from: check_address(&email.from, "from")?,
        to: email
            .to
            .iter()
            .map(|t| check_address(t, "to"))
            .collect::<OpsResult<_>>()?,
        ca_pem,
    })
}

/// A stored credential is never sent to a new destination unasked: whoever changes where a
/// channel delivers gives the credential again (else an admin could read it off a server of
/// their own).
fn credential_again(destination: &str, credential: &str) -> OpsError {
    OpsError::invalid(
        "invalid_secret",
        format!("the {destination} changed: give the {credential} again in secret"),
    )
}

/// A PagerDuty integration key: 32 letters and digits.
fn check_routing_key(key: &str) -> OpsResult<String> {
    let key = key.trim();
    if key.len() != 32 || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(OpsError::invalid(
            "invalid_secret",
            "a PagerDuty routing key is the 32-character integration key of an Events API v2 integration",
        ));
    }
    Ok(key.to_owned())
}

fn check_name(name: Option<&str>) -> OpsResult<String> {
    let name = name.unwrap_or("").trim();
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(OpsError::invalid(
            "invalid_name",
            "a channel name is at most 100 characters",
        ));
    }
    Ok(name.to_owned())
}

/// A new channel.
/// Not `Debug`: it may hold a credential.
#[derive(Clone)]
pub struct WebhookInput {
    pub kind: ChannelKind,
    pub name: Option<String>,
    /// The receiver (webhook), the incoming-webhook URL (Slack, Teams), the Events API URL
    /// (PagerDuty; its default when left out); none for email.
    pub url: Option<String>,
    /// The signing secret (webhook; generated when `None`), the routing key (PagerDuty), the
    /// SMTP password (email; optional).
    pub secret: Option<String>,
    pub email: Option<EmailSettings>,
    pub events: Vec<String>,
    pub min_severity: Severity,
    pub enabled: bool,
}

/// What a channel keeps: the URL shown, the credential to seal, the settings, and the
/// generated signing secret to show once.
struct Checked {
    url: String,
    secret: String,
    settings: String,
    generated: bool,
}

fn check_channel(
    policy: &TargetPolicy,
    kind: ChannelKind,
    url: Option<&str>,
    secret: Option<&str>,
    email: Option<EmailSettings>,
) -> OpsResult<Checked> {
    let need_url = || {
        url.ok_or_else(|| {
            OpsError::invalid(
                "invalid_url",
                format!("a {} channel needs its url", kind.as_str()),
            )
        })
    };
    Ok(match kind {
        ChannelKind::Webhook => {
            let url = check_url(policy, need_url()?)?;
            let (secret, generated) = match secret {
                Some(s) => (check_secret(s)?, false),
                None => (generate_secret(), true),
            };
            Checked {
                url,
                secret,
                settings: "{}".into(),
                generated,
            }
        }
        ChannelKind::Slack | ChannelKind::Teams => {
            // The incoming-webhook URL is the credential: sealed, and shown by its host only.
            let url = check_url(policy, need_url()?)?;
            Checked {
                url: redacted_url(&url),
                secret: url,
                settings: "{}".into(),
                generated: false,
            }
        }
        ChannelKind::PagerDuty => {
            let url = check_url(policy, url.unwrap_or(PAGERDUTY_EVENTS_URL))?;
            let key = secret.ok_or_else(|| {
                OpsError::invalid(
                    "invalid_secret",
                    "a PagerDuty channel needs its routing key as secret",
                )
            })?;
            Checked {
                url,
                secret: check_routing_key(key)?,
                settings: "{}".into(),
                generated: false,
            }
        }
        ChannelKind::Email => {
            let email = email.ok_or_else(|| {
                bad_email("an email channel needs email: {host, port, tls, username, from, to}")
            })?;
            let password = secret.unwrap_or("");
            if password.len() > 1_000 {
                return Err(OpsError::invalid(
                    "invalid_secret",
                    "the SMTP password is at most 1,000 characters",
                ));
            }
            let email = check_email(policy, email, !password.is_empty())?;
            Checked {
                url: format!("smtp://{}:{}", email.host, email.port),
                secret: password.to_owned(),
                settings: serde_json::to_string(&email).unwrap_or_else(|_| "{}".into()),
                generated: false,
            }
        }
    })
}

/// Checks, seals the credential, saves and audits a new channel; returns it with the signing
/// secret when one was generated (to be shown once).
#[instrument(skip_all)]
pub async fn add(
    ops: &Services,
    actor: Actor<'_>,
    input: WebhookInput,
) -> OpsResult<(Webhook, Option<String>)> {
    let checked = check_channel(
        &ops.config.webhook_targets,
        input.kind,
        input.url.as_deref(),
        input.secret.as_deref(),
        input.email,
    )?;
    let events = check_events(&input.events)?;
    let name = check_name(input.name.as_deref())?;
    let secret = checked.secret;
    // An email channel without a password keeps no sealed value (`secret_set` false).
    let sealing = if secret.is_empty() {
        SealFor::new(|_| Vec::new())
    } else {
        SealFor::new(ops.sealer.sealing(secret.clone(), Binding::WebhookSecret))
    };
    let webhook = ops
        .store
        .create_webhook(NewWebhook {
            url: checked.url,
            secret: sealing,
            kind: input.kind,
            name,
            settings: checked.settings,
            events,
            min_severity: input.min_severity,
            enabled: input.enabled,
        })
        .await?;
    ops.audit(
        actor,
        "webhook.created",
        Some(format!("webhook:{}", webhook.id)),
        json!({"kind": webhook.kind.as_str(), "url": redacted_url(&webhook.url)}),
        None,
    )
    .await;
    Ok((webhook, checked.generated.then_some(secret)))
}

/// A change to a channel; `None` leaves a field as it is. Its kind stays.
/// Not `Debug`: it may hold a credential.
#[derive(Clone, Default)]
pub struct WebhookChange {
    pub name: Option<String>,
    pub url: Option<String>,
    pub secret: Option<String>,
    pub email: Option<EmailSettings>,
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
    let current = ops.store.get_webhook(id).await?;
    let policy = &ops.config.webhook_targets;
    let seal = |s: &str| ops.sealer.seal(s, Binding::WebhookSecret(id));
    let (url, sealed_secret, settings) = match current.kind {
        ChannelKind::Webhook => (
            change
                .url
                .as_deref()
                .map(|u| check_url(policy, u))
                .transpose()?,
            change
                .secret
                .as_deref()
                .map(|s| check_secret(s).map(|s| seal(&s)))
                .transpose()?,
            None,
        ),
        ChannelKind::Slack | ChannelKind::Teams => match change.url.as_deref() {
            Some(u) => {
                let url = check_url(policy, u)?;
                (Some(redacted_url(&url)), Some(seal(&url)), None)
            }
            None => (None, None, None),
        },
        ChannelKind::PagerDuty => (
            {
                let url = change
                    .url
                    .as_deref()
                    .map(|u| check_url(policy, u))
                    .transpose()?;
                if url.as_ref().is_some_and(|u| *u != current.url) && change.secret.is_none() {
                    return Err(credential_again("PagerDuty endpoint", "routing key"));
                }
                url
            },
            change
                .secret
                .as_deref()
                .map(|k| check_routing_key(k).map(|k| seal(&k)))
                .transpose()?,
            None,
        ),
        ChannelKind::Email => {
            let has_password = match &change.secret {
                Some(p) => !p.is_empty(),
                None => !current.sealed_secret.is_empty(),
            };
            let email = match change.email {
                Some(e) => {
                    let e = check_email(policy, e, has_password)?;
                    let saved: Option<EmailSettings> = serde_json::from_str(&current.settings).ok();
                    let moved = saved.is_none_or(|s| s.host != e.host || s.port != e.port);
                    if moved && change.secret.is_none() && !current.sealed_secret.is_empty() {
                        return Err(credential_again("SMTP server", "password"));
                    }
                    Some(e)
                }
                None if change.secret.is_some() => {
                    // A new password is checked against the settings it will be used with.
                    let saved: EmailSettings =
                        serde_json::from_str(&current.settings).map_err(|_| {
                            bad_email("the saved settings are unreadable; send email settings too")
                        })?;
                    check_email(policy, saved, has_password)?;
                    None
                }
                None => None,
            };
            (
                email
                    .as_ref()
                    .map(|e| format!("smtp://{}:{}", e.host, e.port)),
                // No password is no sealed value (`secret_set` false), not a sealed "".
                change
                    .secret
                    .as_deref()
                    .map(|p| if p.is_empty() { Vec::new() } else { seal(p) }),
                email.map(|e| serde_json::to_string(&e).unwrap_or_else(|_| "{}".into())),
            )
        }
    };
    let webhook = ops
        .store
        .update_webhook(
            id,
            WebhookPatch {
                url,
                sealed_secret,
                name: change
                    .name
                    .as_deref()
                    .map(|n| check_name(Some(n)))
                    .transpose()?,
                settings,
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
        json!({"kind": webhook.kind.as_str(), "url": redacted_url(&webhook.url), "enabled": webhook.enabled, "secret_changed": change.secret.is_some()}),
        None,
    )
    .await;
    Ok(webhook)
}

#[instrument(skip_all, fields(webhook_id = id))]
pub async fn remove(ops: &Services, actor: Actor<'_>, id: WebhookId) -> OpsResult<()> {
    ops.store.delete_webhook(id).await?;
    // Rules that named it notify the channels they have left (all subscribed ones if none).
    for rule in ops.store.list_alert_rules().await? {
        if rule.channel_ids.contains(&id) {
            let mut changed = langguard_store::NewAlertRule::from_rule(&rule);
            changed.channel_ids.retain(|c| *c != id);
            ops.store.replace_alert_rule(rule.id, changed).await?;
        }
    }
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

/// "Send test": queues a test message to the channel through the outbox (so it is sent, retried
/// and logged like any other); returns the delivery's id.
#[instrument(skip_all, fields(webhook_id = id))]
pub async fn send_test(ops: &Services, actor: Actor<'_>, id: WebhookId) -> OpsResult<i64> {
    let webhook = ops.store.get_webhook(id).await?;
    let by = match actor {
        Actor::User(u) => Some(u.email.clone()),
        _ => None,
    };
    let event = langguard_store::OutgoingEvent::new(
        WebhookEvent::Test,
        json!({
            "message": "A test from LangGuard: this channel works.",
            "channel": webhook.name,
            "sentBy": by,
        }),
        None,
    );
    let delivery = ops.store.queue_delivery(id, event).await?;
    ops.audit(
        actor,
        "webhook.tested",
        Some(format!("webhook:{id}")),
        json!({"delivery": delivery}),
        None,
    )
    .await;
    Ok(delivery)
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

    #[test]
    fn smtp_servers_at_private_addresses_are_refused_unless_allowed() {
        let email = |host: &str| EmailSettings {
            host: host.into(),
            port: 587,
            tls: "starttls".into(),
            username: None,
            from: "lg@example.com".into(),
            to: vec!["ops@example.com".into()],
            ca_pem: None,
        };
        let strict = TargetPolicy::default();
        for private in [
            "10.1.2.3",
            "127.0.0.1",
            "localhost",
            "[::1]",
            "169.254.169.254",
        ] {
            let refused = check_email(&strict, email(private), false).expect_err(private);
            assert!(
                matches!(
                    refused,
                    OpsError::Invalid {
                        code: "invalid_url",
                        ..
                    }
                ),
                "{private}: {refused:?}"
            );
        }
        assert!(check_email(&strict, email("smtp.example.com"), false).is_ok());
        let local = TargetPolicy::parse("127.0.0.1").expect("policy");
        assert!(check_email(&local, email("127.0.0.1"), true).is_ok());
        assert!(check_email(&local, email("10.1.2.3"), true).is_err());
    }
}
