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
}

impl CostSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CostSource::Gateway => "gateway",
            CostSource::Custom => "custom",
            CostSource::Estimated => "estimated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gateway" => Some(CostSource::Gateway),
            "custom" => Some(CostSource::Custom),
            "estimated" => Some(CostSource::Estimated),
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
}

impl NewInteraction {
    /// Cloudflare marks rate-limited calls with HTTP status 429.
    pub fn is_rate_limited(&self) -> bool {
        self.status_code == Some(429)
    }
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
    /// The newly stored interactions, summed per provider and model (for traffic counters).
    pub traffic: Vec<Traffic>,
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
