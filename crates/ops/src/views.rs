//! The JSON shapes LangGuard shows the outside world (the REST API and the CLI's `--json`):
//! times as RFC 3339 UTC, money in USD, durations in milliseconds, and never a credential.

use langguard_store::{
    Integration, Interaction, Policy, PolicyMode, SortKey, SortOrder, SyncRun, TraceCursor,
    TraceSort, Violation,
};
use serde::Serialize;
use serde_json::Value;

use langguard_clock::format_ms;
use langguard_store::{IngestSource, LogDetails, User};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntegrationView {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub account_id: String,
    /// The token itself never leaves the server.
    pub api_token_set: bool,
    pub enabled: bool,
    pub status: &'static str,
    pub status_label: &'static str,
    pub status_message: Option<String>,
    pub last_sync_at: Option<String>,
    pub next_sync_at: Option<String>,
    pub interactions_synced: i64,
    pub sync_interval_minutes: i64,
    pub lookback_days: Option<i64>,
    /// Minutes behind its cursor each sync looks again for logs that became visible late.
    pub trailing_window_minutes: i64,
    pub created_at: String,
    /// `off`, `sampled` or `all`: request and response bodies fetched for policies.
    pub bodies: &'static str,
    pub bodies_sample_percent: i64,
    pub bodies_retention_days: i64,
}

impl From<&Integration> for IntegrationView {
    fn from(i: &Integration) -> Self {
        Self {
            id: i.id,
            kind: i.kind.clone(),
            name: i.name.clone(),
            account_id: i.account_id.clone(),
            api_token_set: !i.sealed_api_token.is_empty(),
            enabled: i.enabled,
            status: i.status.as_str(),
            status_label: i.status.label(),
            status_message: i.status_message.clone(),
            last_sync_at: i.last_sync_at_ms.map(format_ms),
            next_sync_at: i.enabled.then(|| {
                format_ms(
                    i.last_sync_at_ms.unwrap_or(i.created_at_ms) + i.sync_interval_minutes * 60_000,
                )
            }),
            interactions_synced: i.interactions_synced,
            sync_interval_minutes: i.sync_interval_minutes,
            lookback_days: i.lookback_days,
            trailing_window_minutes: i.trailing_window_minutes,
            created_at: format_ms(i.created_at_ms),
            bodies: i.bodies.mode.as_str(),
            bodies_sample_percent: i.bodies.sample_percent,
            bodies_retention_days: i.bodies.retention_days,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SyncRunView {
    pub id: i64,
    pub integration_id: i64,
    pub trigger: &'static str,
    pub status: &'static str,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub gateways: i64,
    pub api_calls: i64,
    pub items_fetched: i64,
    pub items_ingested: i64,
    pub duplicates_skipped: i64,
    pub rate_limit_waits: i64,
    pub retries: i64,
    pub error: Option<String>,
    pub hint: Option<String>,
}

impl From<&SyncRun> for SyncRunView {
    fn from(r: &SyncRun) -> Self {
        Self {
            id: r.id,
            integration_id: r.integration_id,
            trigger: r.trigger.as_str(),
            status: r.status.as_str(),
            started_at: format_ms(r.started_at_ms),
            finished_at: r.finished_at_ms.map(format_ms),
            duration_ms: r.finished_at_ms.map(|f| f - r.started_at_ms),
            gateways: r.counts.gateways,
            api_calls: r.counts.api_calls,
            items_fetched: r.counts.items_fetched,
            items_ingested: r.counts.items_ingested,
            duplicates_skipped: r.counts.duplicates_skipped,
            rate_limit_waits: r.counts.rate_limit_waits,
            retries: r.counts.retries,
            error: r.error.clone(),
            hint: r.hint.clone(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TraceItem {
    pub id: i64,
    pub integration_id: i64,
    pub gateway: String,
    pub log_id: String,
    pub created_at: String,
    pub provider: String,
    /// The model that served the request.
    pub model: String,
    /// The model the caller asked for, when another one served it (pushed logs say).
    pub requested_model: Option<String>,
    /// How the log arrived: `logs_api`, `otlp` or `logpush`.
    pub source: &'static str,
    pub path: Option<String>,
    pub status: &'static str,
    pub status_code: Option<i64>,
    pub cached: bool,
    pub duration_ms: i64,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub cost_usd: Option<f64>,
    pub cost_source: Option<&'static str>,
    /// Custom metadata the gateway's caller attached.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Cloudflare's fields beyond the ones above, each present only when the log carried it.
    #[serde(flatten)]
    pub details: LogDetails,
}

impl From<&Interaction> for TraceItem {
    fn from(i: &Interaction) -> Self {
        let log = &i.log;
        Self {
            id: i.id,
            integration_id: i.integration_id,
            gateway: i.gateway.clone(),
            log_id: log.log_id.clone(),
            created_at: format_ms(log.created_at_ms),
            provider: log.provider.clone(),
            model: log.model.clone(),
            requested_model: log.requested_model.clone(),
            source: IngestSource::of_log_id(&log.log_id).as_str(),
            path: log.path.clone(),
            status: if log.success { "success" } else { "error" },
            status_code: log.status_code,
            cached: log.cached,
            duration_ms: log.duration_ms,
            tokens_in: log.tokens_in,
            tokens_out: log.tokens_out,
            cost_usd: log.cost_usd,
            cost_source: log.cost_source.map(|s| s.as_str()),
            metadata: log
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok())
                .unwrap_or_else(|| Value::Object(Default::default())),
            details: log.details.clone(),
        }
    }
}

/// Trace pages continue from an opaque `next_cursor`:
/// `<sort letter><order letter>_<sort key>_<id>_<snapshot id>`, e.g. `td_1732000000000_812_9000`.
pub fn encode_cursor(c: &TraceCursor) -> String {
    let sort = match c.sort {
        TraceSort::Time => 't',
        TraceSort::Duration => 'd',
        TraceSort::Cost => 'c',
        TraceSort::Tokens => 'k',
    };
    let order = match c.order {
        SortOrder::Desc => 'd',
        SortOrder::Asc => 'a',
    };
    // f64's Display is the shortest text that parses back to the same value.
    let key = match c.key {
        SortKey::Int(v) => v.to_string(),
        SortKey::Real(v) => v.to_string(),
    };
    format!("{sort}{order}_{key}_{}_{}", c.id, c.snapshot_id)
}

pub fn decode_cursor(s: &str) -> Option<TraceCursor> {
    let mut parts = s.split('_');
    let head = parts.next()?;
    let (key, id, snapshot_id) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let mut letters = head.chars();
    let sort = match letters.next()? {
        't' => TraceSort::Time,
        'd' => TraceSort::Duration,
        'c' => TraceSort::Cost,
        'k' => TraceSort::Tokens,
        _ => return None,
    };
    let order = match letters.next()? {
        'd' => SortOrder::Desc,
        'a' => SortOrder::Asc,
        _ => return None,
    };
    if letters.next().is_some() {
        return None;
    }
    let key = match sort {
        TraceSort::Cost => SortKey::Real(key.parse().ok().filter(|v: &f64| v.is_finite())?),
        _ => SortKey::Int(key.parse().ok()?),
    };
    Some(TraceCursor {
        sort,
        order,
        key,
        id: id.parse().ok()?,
        snapshot_id: snapshot_id.parse().ok()?,
    })
}

/// Violation pages continue from `<occurred_at ms>_<id>`.
pub fn encode_violation_cursor((occurred_at_ms, id): (i64, i64)) -> String {
    format!("{occurred_at_ms}_{id}")
}

pub fn decode_violation_cursor(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('_')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// CSV export columns: the trace item's fields; metadata, `dlp_profiles` and `guardrails` as
/// their JSON text.
pub const TRACE_CSV_HEADER: [&str; 33] = [
    "id",
    "integration_id",
    "gateway",
    "log_id",
    "created_at",
    "provider",
    "model",
    "requested_model",
    "source",
    "path",
    "status",
    "status_code",
    "cached",
    "duration_ms",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "cost_source",
    "metadata",
    "event_id",
    "request_type",
    "model_type",
    "step",
    "feedback",
    "score",
    "dlp_action",
    "dlp_profiles",
    "guardrails",
    "user_agent",
    "tokens_cached",
    "tokens_reasoning",
    "byok",
    "cost_estimate_usd",
];

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub role: &'static str,
    pub created_at: String,
    pub last_active_at: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            role: u.role.as_str(),
            created_at: format_ms(u.created_at_ms),
            last_active_at: u.last_active_at_ms.map(format_ms),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub category: &'static str,
    pub severity: &'static str,
    pub mode: &'static str,
    /// `mode` is not `disabled` (the legacy toggle).
    pub enabled: bool,
    /// `input.config` for the policy.
    #[schema(value_type = Object)]
    pub config: Value,
    pub rego: String,
    /// The product's id for a built-in (`pii-detection`), `null` for one of yours.
    pub builtin_id: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Why the policy worker disabled it (it kept crossing its time or memory limits); `null`
    /// unless quarantined. Changing the policy or turning it back on clears it.
    pub quarantine_reason: Option<String>,
    pub quarantined_at: Option<String>,
}

impl From<&Policy> for PolicyView {
    fn from(p: &Policy) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            display_name: p.display_name.clone(),
            description: p.description.clone(),
            category: p.category.as_str(),
            severity: p.severity.as_str(),
            mode: p.mode.as_str(),
            enabled: p.mode != PolicyMode::Disabled,
            config: serde_json::from_str(&p.config).unwrap_or_else(|_| serde_json::json!({})),
            rego: p.rego.clone(),
            builtin_id: p.builtin_id.clone(),
            version: p.version,
            created_at: format_ms(p.created_at_ms),
            updated_at: format_ms(p.updated_at_ms),
            quarantine_reason: p.quarantine_reason.clone(),
            quarantined_at: p.quarantined_at_ms.map(format_ms),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ViolationView {
    pub id: i64,
    pub policy_id: i64,
    pub policy_name: String,
    pub severity: &'static str,
    /// The interaction (`GET /api/v1/traces/{trace_id}`).
    pub trace_id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    /// The policy's whole result: type, message and evidence keys.
    #[schema(value_type = Object)]
    pub evidence: Value,
    pub status: &'static str,
    pub notes: Option<String>,
    /// When the interaction happened.
    pub created_at: String,
    pub detected_at: String,
    pub updated_at: String,
    pub model: String,
    pub gateway: String,
}

impl From<&Violation> for ViolationView {
    fn from(v: &Violation) -> Self {
        Self {
            id: v.id,
            policy_id: v.policy_id,
            policy_name: v.policy_name.clone(),
            severity: v.severity.as_str(),
            trace_id: v.interaction_id,
            kind: v.kind.clone(),
            message: v.message.clone(),
            evidence: serde_json::from_str(&v.evidence).unwrap_or(Value::Null),
            status: v.status.as_str(),
            notes: v.notes.clone(),
            created_at: format_ms(v.occurred_at_ms),
            detected_at: format_ms(v.detected_at_ms),
            updated_at: format_ms(v.updated_at_ms),
            model: v.model.clone(),
            gateway: v.gateway.clone(),
        }
    }
}
