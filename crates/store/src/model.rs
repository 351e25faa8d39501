//! Domain records the store keeps. Times are Unix milliseconds (UTC) throughout: they sort,
//! compare and bucket cheaply, and every caller converts at its edge.

use serde::{Deserialize, Serialize};

use crate::search::SearchExpr;

pub type IntegrationId = i64;
pub type SyncRunId = i64;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    /// Added, never synced yet.
    Pending,
    Connected,
    /// The last sync finished but had trouble worth a look (rate limits, retries).
    Warning,
    Failed,
    Disabled,
}

impl IntegrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationStatus::Pending => "pending",
            IntegrationStatus::Connected => "connected",
            IntegrationStatus::Warning => "warning",
            IntegrationStatus::Failed => "failed",
            IntegrationStatus::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "connected" => Some(Self::Connected),
            "warning" => Some(Self::Warning),
            "failed" => Some(Self::Failed),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }

    /// The label people see ("Connected", …).
    pub fn label(self) -> &'static str {
        match self {
            IntegrationStatus::Pending => "Pending",
            IntegrationStatus::Connected => "Connected",
            IntegrationStatus::Warning => "Warning",
            IntegrationStatus::Failed => "Failed",
            IntegrationStatus::Disabled => "Disabled",
        }
    }
}

/// Seals a new row's credential once its id is known (the id is sealed into it), inside the
/// transaction that creates the row: the store never sees plaintext, and never a credential
/// sealed for another row.
#[derive(Clone)]
pub struct SealFor(std::sync::Arc<dyn Fn(i64) -> Vec<u8> + Send + Sync>);

impl SealFor {
    pub fn new(seal: impl Fn(i64) -> Vec<u8> + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(seal))
    }

    /// The sealed value for the row `id`.
    pub fn seal(&self, id: i64) -> Vec<u8> {
        (self.0)(id)
    }
}

impl std::fmt::Debug for SealFor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealFor(<sealed on insert>)")
    }
}

impl PartialEq for SealFor {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A stored credential re-sealed (key rotation, re-sealing at start): the row, the value it was
/// read with, and the one replacing it.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedSwap {
    pub id: i64,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

impl SealedSwap {
    /// Why a swap could not be made.
    pub fn changed(&self, what: &str) -> crate::StoreError {
        crate::StoreError::Invalid(format!(
            "the credential of {what} {} changed or was deleted meanwhile; nothing was \
             re-sealed — run it again",
            self.id
        ))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewIntegration {
    pub name: String,
    pub account_id: String,
    /// Seals the API token for the new row (the caller's sealer; the store never sees
    /// plaintext).
    pub api_token: SealFor,
    pub enabled: bool,
    pub sync_interval_minutes: i64,
    /// `None` imports all history on the first sync.
    pub lookback_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Integration {
    pub id: IntegrationId,
    pub kind: String,
    pub name: String,
    pub account_id: String,
    #[serde(skip)]
    pub sealed_api_token: Vec<u8>,
    pub enabled: bool,
    pub sync_interval_minutes: i64,
    pub lookback_days: Option<i64>,
    pub status: IntegrationStatus,
    pub status_message: Option<String>,
    pub last_sync_at_ms: Option<i64>,
    pub interactions_synced: i64,
    pub created_at_ms: i64,
    /// Whether request and response bodies are fetched for policies.
    pub bodies: BodySettings,
}

/// Which logs' bodies are fetched from Cloudflare (two API calls per log, inside the shared
/// rate budget) for the policies that read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyMode {
    Off,
    /// A deterministic `sample_percent` of logs (by log id).
    Sampled,
    All,
}

impl BodyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyMode::Off => "off",
            BodyMode::Sampled => "sampled",
            BodyMode::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "sampled" => Some(Self::Sampled),
            "all" => Some(Self::All),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BodySettings {
    pub mode: BodyMode,
    /// 1–100, for `sampled`.
    pub sample_percent: i64,
    /// Stored bodies older than this are deleted.
    pub retention_days: i64,
}

impl Default for BodySettings {
    fn default() -> Self {
        Self {
            mode: BodyMode::Off,
            sample_percent: 10,
            retention_days: 30,
        }
    }
}

impl BodySettings {
    /// Whether a log's bodies are wanted: a stable choice by log id, so a sample stays the same
    /// sample however often it is looked at.
    pub fn wants(&self, log_id: &str) -> bool {
        match self.mode {
            BodyMode::Off => false,
            BodyMode::All => true,
            BodyMode::Sampled => {
                // FNV-1a: stable across versions and platforms, unlike std's hasher.
                let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
                for b in log_id.bytes() {
                    hash ^= u64::from(b);
                    hash = hash.wrapping_mul(0x0100_0000_01b3);
                }
                (hash % 100) < self.sample_percent.clamp(0, 100) as u64
            }
        }
    }
}

/// Stored request and response bodies of one interaction (`None`: no payload kept).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bodies {
    pub request: Option<String>,
    pub response: Option<String>,
}

/// What an integration PATCH changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntegrationPatch {
    pub name: Option<String>,
    pub account_id: Option<String>,
    pub sealed_api_token: Option<Vec<u8>>,
    pub enabled: Option<bool>,
    pub sync_interval_minutes: Option<i64>,
    /// `Some(None)` switches to "all history".
    pub lookback_days: Option<Option<i64>>,
    pub bodies: Option<BodySettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Member,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }
}

pub type UserId = i64;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at_ms: i64,
    pub last_active_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub email: String,
    /// An Argon2id PHC string; the store never sees a password.
    pub password_hash: String,
    pub role: Role,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub password_hash: Option<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub user_id: Option<UserId>,
    pub user_email: Option<String>,
    /// `area.verb`, e.g. `integration.created`, `auth.login_failed`.
    pub action: String,
    /// `kind:id`, e.g. `integration:3`.
    pub resource: Option<String>,
    pub details: serde_json::Value,
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub user_id: Option<UserId>,
    pub user_email: Option<String>,
    pub action: String,
    pub resource: Option<String>,
    pub details: serde_json::Value,
    pub address: Option<String>,
}

/// What an API key may do (PRODUCT-SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyScope {
    /// Pushing traces only; no access to the rest of the API.
    Ingest,
    Read,
    Write,
    Admin,
}

impl ApiKeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyScope::Ingest => "ingest",
            ApiKeyScope::Read => "read",
            ApiKeyScope::Write => "write",
            ApiKeyScope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ingest" => Some(Self::Ingest),
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    pub user_id: UserId,
    pub name: String,
    /// The key's first characters, to recognise it in a list.
    pub prefix: String,
    pub scope: ApiKeyScope,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub token_hash: Vec<u8>,
    pub scope: ApiKeyScope,
    pub expires_at_ms: i64,
}

/// A gateway of an integration and how far its import has come.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayState {
    pub gateway_id: String,
    /// `created_at` of the newest imported log: everything up to it is stored.
    pub cursor_ms: Option<i64>,
    pub last_synced_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncTrigger {
    Manual,
    Schedule,
    Cli,
}

impl SyncTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncTrigger::Manual => "manual",
            SyncTrigger::Schedule => "schedule",
            SyncTrigger::Cli => "cli",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manual" => Some(Self::Manual),
            "schedule" => Some(Self::Schedule),
            "cli" => Some(Self::Cli),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncRunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl SyncRunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncRunStatus::Queued => "queued",
            SyncRunStatus::Running => "running",
            SyncRunStatus::Succeeded => "succeeded",
            SyncRunStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(Self::Queued),
            "running" => Some(Self::Running),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Counters a sync run accumulates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCounts {
    pub gateways: i64,
    pub api_calls: i64,
    pub items_fetched: i64,
    pub items_ingested: i64,
    pub duplicates_skipped: i64,
    pub rate_limit_waits: i64,
    pub retries: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncRun {
    pub id: SyncRunId,
    pub integration_id: IntegrationId,
    pub trigger: SyncTrigger,
    pub status: SyncRunStatus,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    #[serde(flatten)]
    pub counts: SyncCounts,
    pub error: Option<String>,
    pub hint: Option<String>,
}

/// How a finished run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRunOutcome {
    pub status: SyncRunStatus,
    pub counts: SyncCounts,
    pub error: Option<String>,
    pub hint: Option<String>,
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

/// Which interactions a metrics or trace query covers. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceStatus {
    Success,
    Error,
}

/// Which interactions a trace listing or export covers. Every filter is ANDed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceFilter {
    pub scope: Scope,
    pub status: Option<TraceStatus>,
    pub cached: Option<bool>,
    pub duration_ms: Range<i64>,
    /// Tokens in plus tokens out (a log without token counts has 0).
    pub tokens: Range<i64>,
    /// Unpriced interactions never match a cost range.
    pub cost_usd: Range<f64>,
    /// Custom metadata `key = value` pairs that must all hold (values compared as written:
    /// `tier=pro`, `user_id=42`, `beta=true`).
    pub metadata: Vec<(String, String)>,
    /// Only interactions with (true) or without (false) a recorded violation.
    pub has_violations: Option<bool>,
    pub search: Option<SearchExpr>,
}

/// Inclusive bounds; `None` leaves that side open.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Range<T> {
    pub min: Option<T>,
    pub max: Option<T>,
}

impl<T: PartialOrd + Copy> Range<T> {
    pub fn is_empty(&self) -> bool {
        matches!((self.min, self.max), (Some(a), Some(b)) if a > b)
    }
}

/// What a trace listing is ordered by; ties are broken by id, so the order is total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceSort {
    #[default]
    Time,
    Duration,
    Cost,
    Tokens,
}

impl TraceSort {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceSort::Time => "time",
            TraceSort::Duration => "duration",
            TraceSort::Cost => "cost",
            TraceSort::Tokens => "tokens",
        }
    }

    /// An interaction's key in this sort, as a cursor records it. Unpriced rows sort as −1 by
    /// cost, rows without token counts as 0 by tokens — no key is ever missing, which keyset
    /// comparisons need (each backend's SQL sort expression says the same).
    pub fn key_of(self, i: &Interaction) -> SortKey {
        let log = &i.log;
        match self {
            TraceSort::Time => SortKey::Int(log.created_at_ms),
            TraceSort::Duration => SortKey::Int(log.duration_ms),
            TraceSort::Cost => SortKey::Real(log.cost_usd.unwrap_or(-1.0)),
            TraceSort::Tokens => {
                SortKey::Int(log.tokens_in.unwrap_or(0) + log.tokens_out.unwrap_or(0))
            }
        }
    }
}

impl SortOrder {
    /// The SQL direction keyword.
    pub fn sql(self) -> &'static str {
        match self {
            SortOrder::Desc => "DESC",
            SortOrder::Asc => "ASC",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    #[default]
    Desc,
    Asc,
}

/// A sort key value: whole numbers for time, duration and tokens, USD for cost (an unpriced
/// interaction sorts as −1, below every price).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SortKey {
    Int(i64),
    Real(f64),
}

/// Where the next page starts: after `(key, id)` in the listing's order, among rows with
/// `id <= snapshot_id` — rows stored after the first page never shift later pages, so paging
/// neither skips nor repeats while new data arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceCursor {
    pub sort: TraceSort,
    pub order: SortOrder,
    pub key: SortKey,
    pub id: i64,
    pub snapshot_id: i64,
}

/// A page of a trace listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceQuery {
    pub filter: TraceFilter,
    pub sort: TraceSort,
    pub order: SortOrder,
    pub limit: u32,
    /// From a previous page's `next_cursor`; must have this query's sort and order.
    pub after: Option<TraceCursor>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TracePage {
    pub items: Vec<Interaction>,
    pub next_cursor: Option<TraceCursor>,
}
