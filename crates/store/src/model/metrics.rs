//! The figures of a time range, and how they are grouped and bucketed.

use serde::{Deserialize, Serialize};

use super::*;

/// Which interactions a metrics or trace query covers. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    /// Inclusive start (Unix ms). Metrics round it down to its minute.
    pub from_ms: Option<i64>,
    /// Exclusive end (Unix ms). Metrics round it up to a whole minute.
    pub to_ms: Option<i64>,
    pub integration_id: Option<IntegrationId>,
    pub gateway: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Integration,
    Gateway,
    Provider,
    Model,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "integration" => Some(Self::Integration),
            "gateway" => Some(Self::Gateway),
            "provider" => Some(Self::Provider),
            "model" => Some(Self::Model),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Integration => "integration",
            Self::Gateway => "gateway",
            Self::Provider => "provider",
            Self::Model => "model",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LatencySummary {
    pub avg: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// The figures of DESIGN's metrics call. Rates are `None` when there were no requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Metrics {
    pub requests: i64,
    pub errors: i64,
    pub error_rate: Option<f64>,
    pub success_rate: Option<f64>,
    pub cache_hits: i64,
    pub cache_hit_rate: Option<f64>,
    pub rate_limited: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub unpriced_requests: i64,
    pub latency_ms: LatencySummary,
}

/// Width of a time-series bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    pub fn millis(self) -> i64 {
        match self {
            Bucket::Minute => 60_000,
            Bucket::Hour => 3_600_000,
            Bucket::Day => 86_400_000,
        }
    }

    /// Start of the bucket (UTC) that `ms` falls in.
    pub fn start_of(self, ms: i64) -> i64 {
        ms.div_euclid(self.millis()) * self.millis()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    pub t_ms: i64,
    pub metrics: Metrics,
}

/// One line of a chart: a group's figures per bucket (`group` is `None` when not grouped).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub group: Option<String>,
    pub points: Vec<SeriesPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupMetrics {
    pub group: String,
    #[serde(flatten)]
    pub metrics: Metrics,
}
