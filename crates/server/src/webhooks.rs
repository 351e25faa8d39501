//! Webhook events and their delivery.
//!
//! Events are derived from stored state — new violations, sync runs that finished failed,
//! integration status changes — and queued as deliveries in the transaction that records how
//! far detection has come; a dispatcher then POSTs each due delivery, signed, retrying with
//! exponential backoff. Nothing is lost when the process stops between the two steps, and
//! a receiver that keeps failing is disabled rather than retried forever.

use std::collections::HashMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use langguard_clock::format_ms;
use langguard_secrets::Sealer;
use langguard_store::lease::WorkerLease;
use langguard_store::{
    ChannelKind, Delivery, DeliveryAttempt, OutgoingEvent, Store, StoreResult, SyncRunStatus,
    Webhook, WebhookEvent,
};
use serde_json::json;
use sha2::Sha256;

use crate::channels;

/// The header carrying the hex HMAC-SHA256 of the raw body, keyed by the webhook's secret.
pub const SIGNATURE_HEADER: &str = "X-LangGuard-Signature";

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// How often events are looked for and due deliveries sent.
    pub tick: Duration,
    /// Wait before the first retry; each further retry doubles it.
    pub retry_base: Duration,
    /// Retries after the first attempt.
    pub max_retries: i64,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// Failed deliveries in a row that disable a webhook.
    pub disable_after: i64,
    /// Which non-public addresses receivers may have (`LANGGUARD_WEBHOOK_ALLOW_PRIVATE`).
    pub targets: langguard_ops::webhook_target::TargetPolicy,
    /// How receivers' host names are looked up.
    pub lookup: langguard_ops::webhook_target::Lookup,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            retry_base: Duration::from_secs(10),
            max_retries: 3,
            timeout: Duration::from_secs(5),
            disable_after: 20,
            targets: Default::default(),
            lookup: Default::default(),
        }
    }
}

/// Hex HMAC-SHA256 of `body` keyed by `secret` (what receivers recompute to verify).
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    crate::hex(&mac.finalize().into_bytes())
}

/// Finds what happened since the last look and queues deliveries for it.
pub async fn detect_events(store: &dyn Store) -> StoreResult<u64> {
    let before = store.event_progress().await?;
    let mut progress = before.clone();
    let mut events = Vec::new();

    for v in store.violations_after(progress.violation_id, 1_000).await? {
        progress.violation_id = v.id;
        events.push(OutgoingEvent::new(
            WebhookEvent::PolicyViolation,
            json!({
                "violationId": v.id,
                "traceId": v.interaction_id.to_string(),
                "policyId": v.policy_id,
                "policyName": v.policy_name,
                "severity": v.severity.as_str(),
                "type": v.kind,
                "message": v.message,
                "model": v.model,
                "gateway": v.gateway,
                "occurredAt": format_ms(v.occurred_at_ms),
            }),
            Some(v.severity),
        ));
    }

    let integrations = store.list_integrations().await?;
    let names: HashMap<i64, &str> = integrations
        .iter()
        .map(|i| (i.id, i.name.as_str()))
        .collect();
    for run in store
        .sync_runs_finished_after(progress.sync_finished, 500)
        .await?
    {
        progress.sync_finished = (run.finished_at_ms.unwrap_or(0), run.id);
        if run.status == SyncRunStatus::Failed {
            events.push(OutgoingEvent::new(
                WebhookEvent::SyncFailed,
                json!({
                    "integrationId": run.integration_id,
                    "integrationName": names.get(&run.integration_id),
                    "runId": run.id,
                    "trigger": run.trigger.as_str(),
                    "error": run.error,
                    "hint": run.hint,
                    "startedAt": format_ms(run.started_at_ms),
                    "finishedAt": run.finished_at_ms.map(format_ms),
                }),
                None,
            ));
        }
    }

    let seen: HashMap<i64, &str> = before
        .statuses
        .iter()
        .map(|(id, status)| (*id, status.as_str()))
        .collect();
    for i in &integrations {
        let now = i.status.as_str();
        // A new integration's first status is where it starts, not a change.
        if let Some(&was) = seen.get(&i.id) {
            if was != now {
                events.push(OutgoingEvent::new(
                    WebhookEvent::IntegrationStatusChanged,
                    json!({
                        "integrationId": i.id,
                        "integrationName": i.name,
                        "from": was,
                        "to": now,
                        "message": i.status_message,
                    }),
                    None,
                ));
            }
        }
    }
    progress.statuses = integrations
        .iter()
        .map(|i| (i.id, i.status.as_str().to_string()))
        .collect();

    if events.is_empty() && progress == before {
        return Ok(0);
    }
    store.enqueue_events(events, before, progress).await
}

/// Sends every due delivery once; returns how many were attempted.
/// Sends the deliveries that are due, until `budget` has passed (the rest wait for the next
/// round): a round never outlasts the dispatcher's lease, so another instance never takes
/// over while this one is still sending.
pub async fn deliver_due(
    store: &dyn Store,
    sealer: &Sealer,
    http: &reqwest::Client,
    settings: &WebhookSettings,
    budget: std::time::Duration,
) -> StoreResult<usize> {
    let started = std::time::Instant::now();
    // Claimed for the round plus one receiver's time to answer: a round that stops at its
    // budget leaves the rest to come due again shortly after.
    let now = crate::now_ms();
    let claim_ms = i64::try_from((budget + settings.timeout).as_millis()).unwrap_or(i64::MAX);
    let due = store
        .due_deliveries(now, 100, now.saturating_add(claim_ms))
        .await?;
    let mut count = 0;
    for (delivery, webhook) in due {
        if started.elapsed() >= budget {
            break;
        }
        count += 1;
        let attempt = send(sealer, http, settings, &delivery, &webhook).await;
        metrics::counter!(
            "langguard_webhook_deliveries_total",
            "result" => if attempt.succeeded { "succeeded" } else if attempt.retry_at_ms.is_some() { "retrying" } else { "failed" }
        )
        .increment(1);
        store
            .record_delivery(delivery.id, attempt, settings.disable_after)
            .await?;
    }
    Ok(count)
}

async fn send(
    sealer: &Sealer,
    http: &reqwest::Client,
    settings: &WebhookSettings,
    delivery: &Delivery,
    webhook: &Webhook,
) -> DeliveryAttempt {
    let retry_at = || {
        (delivery.attempts < settings.max_retries).then(|| {
            let wait =
                settings.retry_base * 2u32.saturating_pow(delivery.attempts.clamp(0, 16) as u32);
            crate::now_ms() + wait.as_millis() as i64
        })
    };
    let failed = |error: String, retry_at_ms: Option<i64>| DeliveryAttempt {
        response_code: None,
        error: Some(error),
        succeeded: false,
        retry_at_ms,
    };
    let opened = if webhook.sealed_secret.is_empty() && webhook.kind == ChannelKind::Email {
        // An SMTP server without authentication: no password was given.
        Ok(String::new())
    } else {
        sealer.open(
            &webhook.sealed_secret,
            langguard_secrets::Binding::WebhookSecret(webhook.id),
        )
    };
    let credential = match opened {
        Ok(credential) => credential,
        Err(_) => {
            return failed(
                "the channel's credential can't be opened with the current encryption key; set it again"
                    .into(),
                None,
            )
        }
    };
    let message = || channels::message(delivery.event, &delivery.body);
    let request = match webhook.kind {
        ChannelKind::Webhook => http
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header(
                SIGNATURE_HEADER,
                sign(&credential, delivery.body.as_bytes()),
            )
            .header("X-LangGuard-Event", delivery.event.as_str())
            .header("X-LangGuard-Delivery", delivery.id.to_string())
            .body(delivery.body.clone()),
        // The incoming-webhook URL is the sealed credential; `webhook.url` shows its host.
        ChannelKind::Slack => http
            .post(credential.as_str())
            .json(&channels::slack(&message())),
        ChannelKind::Teams => http
            .post(credential.as_str())
            .json(&channels::teams(&message())),
        ChannelKind::PagerDuty => {
            http.post(&webhook.url)
                .json(&channels::pagerduty(&credential, delivery, &message()))
        }
        ChannelKind::Email => {
            let email = match serde_json::from_str(&webhook.settings) {
                Ok(email) => email,
                Err(_) => {
                    return failed(
                        "the channel's email settings are unreadable; save them again".into(),
                        None,
                    )
                }
            };
            let sent = channels::send_email(
                &email,
                &credential,
                &settings.targets,
                settings.timeout,
                &message(),
            )
            .await;
            return match sent {
                Ok(()) => DeliveryAttempt {
                    response_code: None,
                    error: None,
                    succeeded: true,
                    retry_at_ms: None,
                },
                Err(error) => failed(error, retry_at()),
            };
        }
    };
    // An address written in the URL never reaches the resolver that guards host names.
    let target = match webhook.kind {
        ChannelKind::Slack | ChannelKind::Teams => credential.as_str(),
        _ => webhook.url.as_str(),
    };
    let refused = url::Url::parse(target)
        .map_err(|_| "the channel's URL does not parse; set a new one".to_owned())
        .and_then(|url| settings.targets.check_url(&url).map_err(|e| e.to_string()));
    if let Err(error) = refused {
        return failed(error, None);
    }
    match request.timeout(settings.timeout).send().await {
        Ok(response) if response.status().is_success() => DeliveryAttempt {
            response_code: Some(i64::from(response.status().as_u16())),
            error: None,
            succeeded: true,
            retry_at_ms: None,
        },
        Ok(response) => DeliveryAttempt {
            response_code: Some(i64::from(response.status().as_u16())),
            error: Some(format!("the receiver answered {}", response.status())),
            succeeded: false,
            retry_at_ms: retry_at(),
        },
        Err(e) => failed(
            langguard_ops::webhook_target::describe(&e, settings.timeout),
            retry_at(),
        ),
    }
}

/// Looks for events and sends due deliveries every tick until `stop` turns true.
pub async fn run(
    store: std::sync::Arc<dyn Store>,
    sealer: Sealer,
    settings: WebhookSettings,
    mut lease: WorkerLease,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let http = match langguard_ops::webhook_target::client(&settings.targets, &settings.lookup) {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks are off");
            return;
        }
    };
    loop {
        if *stop.borrow() {
            lease.release(store.as_ref()).await;
            return;
        }
        // One instance dispatches; the outbox and detection progress are in the database, so
        // the one that takes over sends nothing twice and misses nothing.
        if lease.hold(store.as_ref()).await {
            if let Err(e) = detect_events(store.as_ref()).await {
                tracing::warn!(error = %e, "webhook event detection failed; retrying");
            }
            let budget = lease.retry_after();
            if let Err(e) = deliver_due(store.as_ref(), &sealer, &http, &settings, budget).await {
                tracing::warn!(error = %e, "webhook delivery failed; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.tick) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
