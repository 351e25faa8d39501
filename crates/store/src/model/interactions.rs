//! Interactions: a gateway log as it is stored, what a batch write did, and bodies.

use serde::{Deserialize, Serialize};

use super::*;

/// Where an interaction's cost came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// Cloudflare's own estimate, from its `cost` field.
    Gateway,
    /// Priced by the customer with `cf-aig-custom-cost` (`custom_cost: true`).
    Custom,
    /// Estimated by LangGuard from its bundled price table.
    Estimated,
    /// Cloudflare reported 0 for a call made with the customer's own provider key (BYOK): the
    /// provider bills it directly. The 0 is kept; `details.cost_estimate_usd` says what the
    /// price table makes of it.
    Byok,
}

impl CostSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CostSource::Gateway => "gateway",
            CostSource::Custom => "custom",
            CostSource::Estimated => "estimated",
            CostSource::Byok => "byok",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gateway" => Some(CostSource::Gateway),
            "custom" => Some(CostSource::Custom),
            "estimated" => Some(CostSource::Estimated),
            "byok" => Some(CostSource::Byok),
            _ => None,
        }
    }
}

/// One gateway log, normalised and ready to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewInteraction {
    pub log_id: String,
    pub created_at_ms: i64,
    pub provider: String,
    pub model: String,
    pub path: Option<String>,
    pub status_code: Option<i64>,
    pub success: bool,
    pub cached: bool,
    pub duration_ms: i64,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub cost_usd: Option<f64>,
    pub cost_source: Option<CostSource>,
    /// Custom metadata as a JSON object's text (decoded from Cloudflare's JSON string).
    pub metadata: Option<String>,
    /// The model the caller asked for, when it differs from the one that served the request
    /// (`model`), e.g. `cloudflare/auto` routed to `gpt-4o-mini`. Only pushed logs say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_model: Option<String>,
    /// Cloudflare's fields beyond the ones above (DLP, guardrails, feedback, …).
    #[serde(default, skip_serializing_if = "LogDetails::is_empty")]
    pub details: LogDetails,
}

impl NewInteraction {
    /// Cloudflare marks rate-limited calls with HTTP status 429.
    pub fn is_rate_limited(&self) -> bool {
        self.status_code == Some(429)
    }
}

/// How a log reached LangGuard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestSource {
    /// Pulled from Cloudflare's REST Logs API ("Legacy Logs").
    LogsApi,
    /// Pushed as OpenTelemetry spans to `/v1/traces`.
    Otlp,
    /// Pushed by Workers Logpush (`ai_gateway_events`), over HTTP or through a bucket.
    Logpush,
}

impl IngestSource {
    pub const ALL: [IngestSource; 3] = [Self::LogsApi, Self::Otlp, Self::Logpush];

    pub fn as_str(self) -> &'static str {
        match self {
            IngestSource::LogsApi => "logs_api",
            IngestSource::Otlp => "otlp",
            IngestSource::Logpush => "logpush",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|source| source.as_str() == s)
    }

    /// The name people see.
    pub fn label(self) -> &'static str {
        match self {
            IngestSource::LogsApi => "Logs API",
            IngestSource::Otlp => "OpenTelemetry",
            IngestSource::Logpush => "Logpush",
        }
    }

    /// The prefix of the log ids this source makes; Cloudflare's own ids (ULIDs, 64-hex) never
    /// contain a `:`, so a stored log id says where it came from without a column of its own.
    fn log_id_prefix(self) -> &'static str {
        match self {
            IngestSource::LogsApi => "",
            IngestSource::Otlp => "otlp:",
            IngestSource::Logpush => "logpush:",
        }
    }

    /// The log id a pushed record is stored under.
    pub fn log_id(self, key: &str) -> String {
        format!("{}{key}", self.log_id_prefix())
    }

    /// Where the log stored as `log_id` came from.
    pub fn of_log_id(log_id: &str) -> Self {
        [Self::Otlp, Self::Logpush]
            .into_iter()
            .find(|source| log_id.starts_with(source.log_id_prefix()))
            .unwrap_or(Self::LogsApi)
    }
}

/// A pushed log with the bodies it carried (stored with it, in its transaction).
#[derive(Debug, Clone, PartialEq)]
pub struct PushedInteraction {
    pub interaction: NewInteraction,
    pub bodies: Option<Bodies>,
}

/// A stored interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    pub id: i64,
    pub integration_id: IntegrationId,
    pub gateway: String,
    #[serde(flatten)]
    pub log: NewInteraction,
}

/// Stored request and response bodies of one interaction (`None`: no payload kept).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bodies {
    pub request: Option<String>,
    pub response: Option<String>,
}

/// What one batch write did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestOutcome {
    pub inserted: u64,
    pub duplicates: u64,
    /// Pushed logs left out because the gateway counts another source at their time (see
    /// [`GatewayState::counts`]).
    pub other_source: u64,
    /// The newly stored interactions, summed per provider and model (for traffic counters).
    pub traffic: Vec<Traffic>,
    /// `created_at` of the oldest newly stored interaction (how late a late log was).
    pub oldest_inserted_ms: Option<i64>,
}

/// Newly stored traffic of one provider and model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    pub provider: String,
    pub model: String,
    pub requests: i64,
    pub errors: i64,
    pub rate_limited: i64,
    pub cache_hits: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
}
