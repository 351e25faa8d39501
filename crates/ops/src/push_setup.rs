//! How data reaches LangGuard for an integration, per gateway, and what to configure for
//! pushes: the OTLP endpoint and headers, the Logpush `destination_conf`, and the public key
//! of the integration's Logpush key pair (made on first look).

use langguard_clock::format_ms;
use langguard_store::{ApiKeyScope, IntegrationId};
use serde::Serialize;

use crate::ingest::ensure_push_key;
use crate::{OpsResult, Services};

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
    ops.store.get_integration(id).await?;
    let g = ops.store.set_gateway_source(id, gateway, source).await?;
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
