//! How data reaches LangGuard for an integration, per gateway, and what to configure for
//! pushes: the OTLP endpoint and headers, the Logpush `destination_conf`, and the public key
//! of the integration's Logpush key pair (made on first look) — and [`set_up`], which does it
//! through Cloudflare's API with the integration's saved token.

use langguard_clock::format_ms;
use langguard_cloudflare::{CloudflareClient, CloudflareError, LogQuery};
use langguard_store::{ApiKeyScope, Handover, IngestSource, IntegrationId, User};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ingest::ensure_push_key;
use crate::keys::NewKey;
use crate::{Actor, OpsError, OpsResult, Services};

/// One minute of an integration's push history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushMinuteView {
    /// The minute (RFC 3339).
    pub minute: String,
    /// `otlp` or `logpush` (over HTTP or from a bucket).
    pub source: String,
    /// OTLP requests or Logpush files.
    pub requests: i64,
    pub received: i64,
    pub stored: i64,
    pub duplicates: i64,
    /// Left out: the gateway counts another source at their time.
    pub other_source: i64,
    pub rejected: i64,
}

/// What pushes brought the integration, newest minute first (at most `limit` rows, 1–1,440).
pub async fn history(
    ops: &Services,
    id: IntegrationId,
    limit: u32,
) -> OpsResult<Vec<PushMinuteView>> {
    ops.store.get_integration(id).await?;
    Ok(ops
        .store
        .push_history(id, limit.clamp(1, 1_440))
        .await?
        .into_iter()
        .map(|m| PushMinuteView {
            minute: format_ms(m.minute_ms),
            source: m.source,
            requests: m.requests,
            received: m.received,
            stored: m.stored,
            duplicates: m.duplicates,
            other_source: m.other_source,
            rejected: m.rejected,
        })
        .collect())
}

/// Logpush's dataset of AI Gateway requests.
pub const LOGPUSH_DATASET: &str = "ai_gateway_events";
/// Where Logpush posts files, after the public URL.
const LOGPUSH_PATH: &str = "/api/v1/ingest/logpush";
/// Ingest keys made by "Set up push" last this long; set up again to replace them.
const PUSH_KEY_DAYS: u32 = 365;

/// Where a pusher's ingest key goes in the examples (keys are stored hashed: LangGuard can
/// show a key only when it is created).
pub const KEY_PLACEHOLDER: &str = "<ingest key>";

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushSetupView {
    pub integration_id: i64,
    /// `LANGGUARD_PUBLIC_URL`; without it the URLs below are paths to put after the address
    /// Cloudflare reaches LangGuard at.
    pub public_url: Option<String>,
    pub otlp: OtlpSetup,
    pub logpush: LogpushSetup,
    /// The public half of the integration's Logpush key pair (PEM), for the gateway's
    /// `logpush_public_key`.
    pub public_key: String,
    /// The integration's ingest keys (by prefix; the secret is shown only at creation).
    pub ingest_keys: Vec<IngestKeyView>,
    pub gateways: Vec<GatewayPushView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OtlpSetup {
    /// The OTLP/HTTP traces endpoint (also what an exporter's base URL + `/v1/traces` gives).
    pub url: String,
    /// Headers every export sends; add `X-LangGuard-Gateway` per gateway (see `gateways`).
    #[schema(value_type = Object)]
    pub headers: serde_json::Value,
    /// `json` or `protobuf` (Cloudflare's `content_type`); both work.
    pub content_types: Vec<&'static str>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogpushSetup {
    pub dataset: &'static str,
    /// The job's `destination_conf` (an HTTP destination with the key as a header).
    pub destination_conf: String,
    /// For sites Cloudflare can't reach: write the job to R2/S3 and let LangGuard read it.
    pub note: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestKeyView {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub expires_at: String,
    pub revoked: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GatewayPushView {
    pub gateway: String,
    /// How its data arrives now: `logs_api`, `otlp` or `logpush`.
    pub source: String,
    /// The same for a person: "Logs API", "OpenTelemetry", "Logpush".
    pub source_label: &'static str,
    /// Since when that source counts (earlier logs are the previous source's).
    pub source_since: Option<String>,
    pub previous_source: Option<String>,
    /// When the gateway last received data (a sync or a push).
    pub last_received_at: Option<String>,
    /// The OTLP headers for this gateway.
    #[schema(value_type = Object)]
    pub otlp_headers: serde_json::Value,
}

pub async fn setup(
    ops: &Services,
    id: IntegrationId,
    public_url: Option<&url::Url>,
) -> OpsResult<PushSetupView> {
    let integration = ops.store.get_integration(id).await?;
    let integration = ensure_push_key(ops, integration).await?;
    let base = public_url
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let bearer = format!("Bearer {KEY_PLACEHOLDER}");
    let gateways = ops
        .store
        .list_gateways(id)
        .await?
        .into_iter()
        .map(gateway_view)
        .collect();
    let ingest_keys = ops
        .store
        .list_api_keys()
        .await?
        .into_iter()
        .filter(|k| k.scope == ApiKeyScope::Ingest && k.integration_id == Some(id))
        .map(|k| IngestKeyView {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            expires_at: format_ms(k.expires_at_ms),
            revoked: k.revoked_at_ms.is_some(),
        })
        .collect();
    Ok(PushSetupView {
        integration_id: id,
        public_url: public_url.map(|u| u.to_string()),
        otlp: OtlpSetup {
            url: format!("{base}/v1/traces"),
            headers: serde_json::json!({ "Authorization": bearer }),
            content_types: vec!["protobuf", "json"],
        },
        logpush: LogpushSetup {
            dataset: "ai_gateway_events",
            destination_conf: format!(
                "{base}/api/v1/ingest/logpush?header_Authorization=Bearer%20{KEY_PLACEHOLDER}"
            ),
            note: "Cloudflare must reach this URL over HTTPS; otherwise push to an R2 or S3 \
                   bucket and add it as a Logpush bucket source",
        },
        public_key: integration.push_public_key.unwrap_or_default(),
        ingest_keys,
        gateways,
    })
}

/// Makes `source` the one a gateway counts from now on (creating the gateway if LangGuard has
/// not seen it): the handover instant is set so nothing is counted twice or missed — after the
/// newest pulled log when leaving the Logs API, now otherwise. Audited.
pub async fn set_source(
    ops: &Services,
    actor: crate::Actor<'_>,
    id: IntegrationId,
    gateway: &str,
    source: &str,
) -> OpsResult<GatewayPushView> {
    let gateway = crate::ingest::check_gateway(gateway.trim())?;
    let source = langguard_store::IngestSource::parse(source).ok_or_else(|| {
        crate::OpsError::invalid("invalid_source", "source must be logs_api, otlp or logpush")
    })?;
    let integration = ops.store.get_integration(id).await?;
    let handover = match langguard_sync::client_for(&ops.sealer, &ops.client_config, &integration) {
        Ok(client) => history_on_cloudflare(&client, gateway)
            .await
            // Cloudflare unreachable: keep pulling up to now, the choice that loses nothing
            // a legacy account has.
            .unwrap_or(Handover::PullHistory),
        Err(_) => Handover::PullHistory,
    };
    let g = ops
        .store
        .set_gateway_source(id, gateway, source, handover)
        .await?;
    ops.audit(
        actor,
        "gateway.source_changed",
        Some(format!("integration:{id}")),
        serde_json::json!({"gateway": gateway, "source": source.as_str(),
            "since": g.source_since_ms.map(format_ms)}),
        None,
    )
    .await;
    Ok(gateway_view(g))
}

fn gateway_view(g: langguard_store::GatewayState) -> GatewayPushView {
    GatewayPushView {
        otlp_headers: serde_json::json!({
            "Authorization": format!("Bearer {KEY_PLACEHOLDER}"),
            "X-LangGuard-Gateway": g.gateway_id,
        }),
        source: g.source.as_str().to_owned(),
        source_label: g.source.label(),
        source_since: g.source_since_ms.map(format_ms),
        previous_source: g.previous_source.map(|s| s.as_str().to_owned()),
        last_received_at: g.last_synced_at_ms.map(format_ms),
        gateway: g.gateway_id,
    }
}

/// What "Set up push" is asked to do for one gateway.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushSetupRequest {
    /// The Cloudflare gateway id.
    pub gateway: String,
    /// Add LangGuard as an OpenTelemetry exporter of the gateway (default true).
    #[serde(default = "yes")]
    pub otlp: bool,
    /// Turn on Logpush for the gateway (its public key) and make sure the account has a
    /// Logpush job (`ai_gateway_events`) posting to LangGuard (default true).
    #[serde(default = "yes")]
    pub logpush: bool,
    /// Which of the two counts for the gateway from now on: `otlp` or `logpush` (default:
    /// Logpush when it is set up, which carries every request even when OTLP export is off).
    #[serde(default)]
    pub count: Option<String>,
    /// `protobuf` (default) or `json`: what the OTLP exporter sends.
    #[serde(default)]
    pub content_type: Option<String>,
}

fn yes() -> bool {
    true
}

/// What "Set up push" did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushSetupDone {
    /// The gateway's counted source, with its handover instant.
    pub gateway: GatewayPushView,
    /// The OTLP exporter URL now in the gateway's `otel` list.
    pub otlp_url: Option<String>,
    /// The Logpush job posting to LangGuard.
    pub logpush_job_id: Option<i64>,
    /// `true` when the job was made now (else an existing one was pointed at the new key).
    pub logpush_job_created: bool,
    /// The ingest key made for Cloudflare to push with (by prefix; the secret went to
    /// Cloudflare only).
    pub ingest_key_prefix: String,
}

/// Sets up push for one gateway through Cloudflare's API, with the integration's saved token
/// (it needs *AI Gateway: Edit*, and *Logs: Edit* for Logpush): makes an ingest key; adds
/// LangGuard to the gateway's `otel` exporters and/or turns on Logpush with the integration's
/// public key; creates (or repoints) the account's `ai_gateway_events` Logpush job — Cloudflare
/// checks the destination with a validation upload to LangGuard first; then makes the chosen
/// source the gateway's counted one, with a handover instant. Audited.
pub async fn set_up(
    ops: &Services,
    owner: &User,
    id: IntegrationId,
    request: PushSetupRequest,
    public_url: Option<&url::Url>,
) -> OpsResult<PushSetupDone> {
    let public_url = public_url.ok_or_else(|| {
        OpsError::invalid(
            "public_url_required",
            "set LANGGUARD_PUBLIC_URL to the HTTPS address Cloudflare reaches LangGuard at: \
             Cloudflare pushes to it",
        )
    })?;
    let base = public_url.as_str().trim_end_matches('/').to_owned();
    let gateway = crate::ingest::check_gateway(request.gateway.trim())?.to_owned();
    if !request.otlp && !request.logpush {
        return Err(OpsError::invalid(
            "nothing_to_set_up",
            "choose OpenTelemetry (otlp), Logpush (logpush) or both",
        ));
    }
    let content_type = match request.content_type.as_deref().unwrap_or("protobuf") {
        t @ ("protobuf" | "json") => t,
        _ => {
            return Err(OpsError::invalid(
                "invalid_content_type",
                "content_type must be protobuf or json",
            ))
        }
    };
    let count = match request.count.as_deref() {
        None if request.logpush => IngestSource::Logpush,
        None => IngestSource::Otlp,
        Some("logpush") if request.logpush => IngestSource::Logpush,
        Some("otlp") if request.otlp => IngestSource::Otlp,
        Some(_) => {
            return Err(OpsError::invalid(
                "invalid_count",
                "count must be otlp or logpush, and set up in the same request",
            ))
        }
    };

    let integration = ops.store.get_integration(id).await?;
    let integration = ensure_push_key(ops, integration).await?;
    let public_key = integration.push_public_key.clone().unwrap_or_default();
    let client = langguard_sync::client_for(&ops.sealer, &ops.client_config, &integration)
        .map_err(|e| OpsError::Internal(anyhow::anyhow!("{e}")))?;
    // Read first: a token without access fails here, before any key is made.
    let settings = client
        .gateway_settings(&gateway)
        .await
        .map_err(cloudflare_refused)?;

    let key_name = format!("Cloudflare push: {gateway}");
    let (key, secret) = crate::keys::add(
        ops,
        owner,
        NewKey {
            name: &key_name,
            scope: ApiKeyScope::Ingest,
            expires_in_days: PUSH_KEY_DAYS,
            integration_id: Some(id),
        },
    )
    .await?;
    let otlp_url = format!("{base}/v1/traces");
    let exporter = request.otlp.then(|| {
        json!({
            "url": otlp_url,
            "headers": {"Authorization": format!("Bearer {secret}"), "X-LangGuard-Gateway": gateway},
            "content_type": content_type,
        })
    });
    let logpush_key = request.logpush.then_some(public_key.as_str());
    // Once the gateway holds the new key in its exporter, the key is in use even if the job
    // step fails after it: only a key Cloudflare never got is revoked on failure.
    let mut gateway_written = false;
    let configured = async {
        let updated = gateway_update(settings, exporter, logpush_key);
        client
            .update_gateway(&gateway, &updated)
            .await
            .map_err(cloudflare_refused)?;
        gateway_written = request.otlp;
        match request.logpush {
            true => ensure_logpush_job(&client, &base, &secret).await.map(Some),
            false => Ok(None),
        }
    }
    .await
    // Cloudflare may quote the destination back, and it carries the key.
    .map_err(|e| redacted(e, &secret));
    let job = match configured {
        Ok(job) => job,
        Err(e) => {
            if !gateway_written {
                if let Err(revoke) = crate::keys::revoke(ops, Actor::User(owner), key.id).await {
                    tracing::warn!(error = %revoke, "could not revoke the unused push key");
                }
            }
            return Err(e);
        }
    };
    if request.otlp && request.logpush {
        // The old key's two users, this gateway's exporter and the job, both moved on.
        revoke_superseded(ops, owner, id, &key_name, key.id).await;
    }
    // The gateway is Cloudflare's (its settings were just read): known to LangGuard as a
    // pulled gateway first, so the switch hands over from the Logs API — at now when its
    // history has not been pulled yet, or from the beginning when there is none to pull.
    let handover = history_on_cloudflare(&client, &gateway)
        .await
        .unwrap_or(Handover::PullHistory);
    if handover == Handover::PullHistory {
        ops.store
            .upsert_gateways(id, std::slice::from_ref(&gateway))
            .await?;
    }
    let state = ops
        .store
        .set_gateway_source(id, &gateway, count, handover)
        .await?;
    ops.audit(
        Actor::User(owner),
        "integration.push_set_up",
        Some(format!("integration:{id}")),
        json!({"gateway": gateway, "otlp": request.otlp, "logpush": request.logpush,
            "count": count.as_str(), "ingest_key_id": key.id,
            "logpush_job_id": job.as_ref().map(|(id, _)| *id)}),
        None,
    )
    .await;
    Ok(PushSetupDone {
        gateway: gateway_view(state),
        otlp_url: request.otlp.then_some(otlp_url),
        logpush_job_id: job.as_ref().map(|(id, _)| *id),
        logpush_job_created: job.is_some_and(|(_, created)| created),
        ingest_key_prefix: key.prefix,
    })
}

/// Whether the Logs API holds the gateway's history (a Legacy Logs account) — then a switch
/// made before it was pulled still pulls it, up to the handover — or holds nothing (an account
/// on the new log system, or a gateway that never logged) and the pushes are everything.
async fn history_on_cloudflare(
    client: &CloudflareClient,
    gateway: &str,
) -> Result<Handover, CloudflareError> {
    let probe = LogQuery {
        // The smallest page the API's schema allows.
        per_page: 5,
        ..LogQuery::default()
    };
    match client.list_logs(gateway, &probe).await {
        Ok(page) if page.logs.is_empty() && page.rejected.is_empty() => {
            Ok(Handover::CountEveryPush)
        }
        Ok(_) => Ok(Handover::PullHistory),
        Err(CloudflareError::NotFound { .. }) => Ok(Handover::CountEveryPush),
        Err(e) => Err(e),
    }
}

/// The gateway's settings with LangGuard's exporter and/or Logpush key, everything else as it
/// was. Cloudflare's update replaces the whole object, so the read-only fields go and the rest
/// goes back unchanged; an earlier LangGuard exporter (same URL) is replaced, not repeated.
fn gateway_update(
    mut settings: Value,
    exporter: Option<Value>,
    logpush_key: Option<&str>,
) -> Value {
    if let Some(object) = settings.as_object_mut() {
        for read_only in [
            "id",
            "created_at",
            "modified_at",
            "is_default",
            "account_id",
            "account_tag",
            "internal_id",
        ] {
            object.remove(read_only);
        }
        if let Some(exporter) = exporter {
            let url = exporter.get("url").cloned();
            let mut otel: Vec<Value> = object
                .get("otel")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            otel.retain(|e| e.get("url") != url.as_ref());
            otel.push(exporter);
            object.insert("otel".into(), Value::Array(otel));
        }
        if let Some(key) = logpush_key {
            object.insert("logpush".into(), Value::Bool(true));
            object.insert("logpush_public_key".into(), Value::String(key.to_owned()));
        }
    }
    settings
}

/// The account's `ai_gateway_events` job posting to this LangGuard, pointed at `secret`:
/// an existing one is updated, else one is created. Returns its id and whether it is new.
async fn ensure_logpush_job(
    client: &CloudflareClient,
    base: &str,
    secret: &str,
) -> OpsResult<(i64, bool)> {
    let endpoint = format!("{base}{LOGPUSH_PATH}");
    let mut destination = url::Url::parse(&endpoint)
        .map_err(|e| OpsError::invalid("invalid_public_url", e.to_string()))?;
    destination
        .query_pairs_mut()
        .append_pair("header_Authorization", &format!("Bearer {secret}"));
    let destination = destination.to_string();
    let jobs = client
        .list_logpush_jobs()
        .await
        .map_err(cloudflare_refused)?;
    let ours = jobs.into_iter().find(|job| {
        job.dataset.as_deref() == Some(LOGPUSH_DATASET)
            && job.destination_conf.starts_with(&endpoint)
    });
    if let Some(job) = ours {
        client
            .update_logpush_job(
                job.id,
                &json!({"destination_conf": destination, "enabled": true}),
            )
            .await
            .map_err(cloudflare_refused)?;
        return Ok((job.id, false));
    }
    let job = client
        .create_logpush_job(&json!({
            "name": "langguard",
            "dataset": LOGPUSH_DATASET,
            "destination_conf": destination,
            "enabled": true,
            "output_options": {"output_type": "ndjson", "timestamp_format": "unixnano"},
        }))
        .await
        .map_err(cloudflare_refused)?;
    Ok((job.id, true))
}

/// The error with every occurrence of `secret` replaced (an API's message may quote a
/// destination that carries it).
fn redacted(e: OpsError, secret: &str) -> OpsError {
    let clean = |m: String| m.replace(secret, KEY_PLACEHOLDER);
    match e {
        OpsError::Unprocessable {
            code,
            message,
            line,
            column,
        } => OpsError::Unprocessable {
            code,
            message: clean(message),
            line,
            column,
        },
        OpsError::Unavailable(m) => OpsError::Unavailable(clean(m)),
        OpsError::Invalid { code, message } => OpsError::Invalid {
            code,
            message: clean(message),
        },
        other => other,
    }
}

/// Revokes the keys an earlier setup of this gateway made, once its exporter and the Logpush
/// job carry the new one. Keys of other gateways' exporters stay.
async fn revoke_superseded(ops: &Services, owner: &User, id: IntegrationId, name: &str, keep: i64) {
    let keys = match ops.store.list_api_keys().await {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!(error = %e, "could not list the push keys to revoke the old ones");
            return;
        }
    };
    for old in keys.into_iter().filter(|k| {
        k.integration_id == Some(id) && k.name == name && k.id != keep && k.revoked_at_ms.is_none()
    }) {
        if let Err(e) = crate::keys::revoke(ops, Actor::User(owner), old.id).await {
            tracing::warn!(error = %e, key = old.id, "could not revoke a superseded push key");
        }
    }
}

/// Cloudflare's refusal in setup's words: what to fix, or that it is worth retrying.
fn cloudflare_refused(e: CloudflareError) -> OpsError {
    let code = match &e {
        CloudflareError::AuthFailed { .. } => "cloudflare_auth_failed",
        CloudflareError::PermissionDenied { .. } => "cloudflare_permission_denied",
        CloudflareError::NotFound { .. } => "cloudflare_not_found",
        CloudflareError::Validation { .. } => "cloudflare_refused",
        CloudflareError::RateLimited { .. }
        | CloudflareError::Upstream { .. }
        | CloudflareError::Network(_)
        | CloudflareError::Decode(_) => {
            return OpsError::Unavailable(format!("{e}; try again"));
        }
    };
    let hint = match &e {
        CloudflareError::PermissionDenied { .. } => {
            "The saved API token needs AI Gateway: Edit (and Logs: Edit for Logpush) to set up \
             push. Add them to the token in the Cloudflare dashboard, or enter the values shown \
             under How data arrives in Cloudflare yourself."
        }
        CloudflareError::Validation { .. } => {
            "Cloudflare refused the settings. For Logpush, Cloudflare must reach \
             LANGGUARD_PUBLIC_URL over HTTPS to accept the job."
        }
        other => other.hint(),
    };
    OpsError::unprocessable(code, format!("{e}. {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_update_keeps_other_settings_and_replaces_langguards_exporter() {
        let settings = json!({
            "id": "gw", "created_at": "x", "modified_at": "y", "cache_ttl": 300,
            "collect_logs": true,
            "otel": [
                {"url": "https://other.example/v1/traces", "headers": {}},
                {"url": "https://lg.example/v1/traces", "headers": {"Authorization": "Bearer old"}},
            ],
        });
        let exporter = json!({"url": "https://lg.example/v1/traces", "headers": {"Authorization": "Bearer new"}});
        let updated = gateway_update(settings, Some(exporter), Some("-----BEGIN PUBLIC KEY-----"));
        assert!(updated.get("id").is_none() && updated.get("modified_at").is_none());
        assert_eq!(updated["cache_ttl"], 300);
        let otel = updated["otel"].as_array().expect("otel");
        assert_eq!(otel.len(), 2);
        assert_eq!(otel[1]["headers"]["Authorization"], "Bearer new");
        assert_eq!(updated["logpush"], true);
    }
}
