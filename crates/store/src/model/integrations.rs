//! Integrations, their gateways and their sync runs.

use serde::{Deserialize, Serialize};

use super::{IngestSource, NewInteraction};

pub type IntegrationId = i64;

/// How far behind its cursor a sync looks again for late-visible logs unless the admin chose
/// otherwise. Cloudflare documents no bound on how late a log becomes visible; a gateway where
/// later ones are seen widens its own window (`GatewayState::late_window_ms`).
pub const DEFAULT_TRAILING_WINDOW_MINUTES: i64 = 30;
pub type SyncRunId = i64;

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

/// Every re-sealed credential of one rotation, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SealedSwaps {
    pub integration_tokens: Vec<SealedSwap>,
    pub webhook_secrets: Vec<SealedSwap>,
    pub push_keys: Vec<SealedSwap>,
    pub bucket_secrets: Vec<SealedSwap>,
}

impl SealedSwaps {
    pub fn len(&self) -> usize {
        self.integration_tokens.len()
            + self.webhook_secrets.len()
            + self.push_keys.len()
            + self.bucket_secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
    /// How far behind its cursor each sync looks again for logs that became visible late.
    pub trailing_window_minutes: i64,
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
    /// The public half of the integration's Logpush key pair (PEM), once made.
    pub push_public_key: Option<String>,
    /// Its private half, sealed (`Binding::PushPrivateKey`).
    #[serde(skip)]
    pub sealed_push_private_key: Option<Vec<u8>>,
    /// How far behind its cursor each sync looks again for logs that became visible late
    /// (a gateway where later ones were seen looks further: [`GatewayState::late_window_ms`]).
    pub trailing_window_minutes: i64,
    /// When the import was last compared with Cloudflare's analytics.
    pub coverage_checked_at_ms: Option<i64>,
    /// Why that comparison could not be made (coverage is then unknown), if it could not.
    pub coverage_error: Option<String>,
}

/// One gateway-hour of import coverage: Cloudflare's count against what LangGuard holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoverageHour {
    pub gateway: String,
    pub hour_ms: i64,
    /// Requests Cloudflare's analytics counted (sample-corrected for busy hours).
    pub cloudflare: i64,
    /// Interactions LangGuard holds for the hour, from any source.
    pub stored: i64,
    /// How often the hour was read again because it was short.
    pub rereads: i64,
    pub checked_at_ms: i64,
    /// When it was given up on as short after its re-reads.
    pub degraded_at_ms: Option<i64>,
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
    pub trailing_window_minutes: Option<i64>,
    pub bodies: Option<BodySettings>,
}

/// A gateway of an integration and how far its import has come.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayState {
    pub gateway_id: String,
    /// `created_at` of the newest imported log: everything up to it is stored.
    pub cursor_ms: Option<i64>,
    pub last_synced_at_ms: Option<i64>,
    /// The one source whose logs count for this gateway from `source_since_ms` on; before it,
    /// `previous_source`'s do. One counted source at a time means a request that arrives both
    /// pulled and pushed is stored once, and the handover instant means none is missed.
    pub source: IngestSource,
    pub source_since_ms: Option<i64>,
    pub previous_source: Option<IngestSource>,
    /// The trailing window this gateway's syncs use instead of the integration's, once logs
    /// later than that were seen (milliseconds; only ever widened).
    pub late_window_ms: Option<i64>,
}

impl GatewayState {
    /// Whether a log from `source` created at `at_ms` counts for this gateway.
    pub fn counts(&self, source: IngestSource, at_ms: i64) -> bool {
        match self.source_since_ms {
            Some(since) if at_ms < since => self.previous_source == Some(source),
            _ => self.source == source,
        }
    }

    /// Up to where (exclusive) the Logs API is this gateway's source: `None` while it is the
    /// current one, the handover instant once a push took over, or `Some(i64::MIN)` when it
    /// never was.
    pub fn pull_until_ms(&self) -> Option<i64> {
        if self.source == IngestSource::LogsApi {
            return None;
        }
        match (self.previous_source, self.source_since_ms) {
            (Some(IngestSource::LogsApi), Some(since)) => Some(since),
            _ => Some(i64::MIN),
        }
    }

    /// From where (inclusive) the Logs API is this gateway's source, when it took over from a
    /// push at an instant.
    pub fn pull_from_ms(&self) -> Option<i64> {
        (self.source == IngestSource::LogsApi)
            .then_some(self.source_since_ms)
            .flatten()
    }

    /// The gateway once an admin makes `to` its source at `now_ms` (setup, or a switch). From
    /// the Logs API the handover is right after the newest pulled log — the cursor, or a newer
    /// row a sync running now already stored (`newest_stored_ms`) — so pull keeps everything up
    /// to it, late-visible logs included, and the push everything after. When nothing was
    /// pulled yet, `handover` says: now, with the history before it still to pull (the Logs
    /// API has logs), or the beginning of time (it has none: an account on the new log
    /// system, whose pushes are everything). Between pushes, it is now.
    pub fn switched_to(
        &self,
        to: IngestSource,
        now_ms: i64,
        newest_stored_ms: Option<i64>,
        handover: Handover,
    ) -> GatewayState {
        let nothing_pulled = match handover {
            Handover::OnPush | Handover::CountEveryPush => None,
            Handover::PullHistory => Some(now_ms),
        };
        self.handed_over(to, now_ms, newest_stored_ms, nothing_pulled)
    }

    /// The gateway once a push from `source` arrives at `now_ms`: a push takes over from the
    /// Logs API on its own (the gateway was set up to push), but never from another push —
    /// switching between pushes is a choice made in setup. Taking over a gateway nothing was
    /// pulled for, it counts from the beginning of time: nobody chose a handover, and the
    /// pushes are all there is (an account on the new log system, an instrumented app).
    pub fn on_push(
        &self,
        source: IngestSource,
        now_ms: i64,
        newest_stored_ms: Option<i64>,
    ) -> GatewayState {
        if self.source == IngestSource::LogsApi {
            self.switched_to(source, now_ms, newest_stored_ms, Handover::OnPush)
        } else {
            self.clone()
        }
    }

    /// The gateway as `handover` moves it to `source` at `now_ms`.
    pub fn moved(
        &self,
        source: IngestSource,
        now_ms: i64,
        newest_stored_ms: Option<i64>,
        handover: Handover,
    ) -> GatewayState {
        match handover {
            Handover::OnPush => self.on_push(source, now_ms, newest_stored_ms),
            chosen => self.switched_to(source, now_ms, newest_stored_ms, chosen),
        }
    }

    fn handed_over(
        &self,
        to: IngestSource,
        now_ms: i64,
        newest_stored_ms: Option<i64>,
        when_nothing_pulled: Option<i64>,
    ) -> GatewayState {
        if to == self.source {
            return self.clone();
        }
        let since = match self.source {
            IngestSource::LogsApi => self
                .cursor_ms
                .max(newest_stored_ms)
                .map(|c| c.saturating_add(1))
                .or(when_nothing_pulled),
            _ => Some(now_ms),
        };
        GatewayState {
            source: to,
            source_since_ms: since,
            previous_source: Some(self.source),
            ..self.clone()
        }
    }

    /// The logs of a batch from `source` this gateway counts, and how many it leaves out.
    pub fn counted<B>(
        &self,
        source: IngestSource,
        batch: Vec<(NewInteraction, B)>,
    ) -> (Vec<(NewInteraction, B)>, u64) {
        let (kept, left): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|(log, _)| self.counts(source, log.created_at_ms));
        (kept, left.len() as u64)
    }

    /// Whether a pull's writes must be held to the counted source: a push holds, or held, this
    /// gateway.
    pub fn pull_is_limited(&self) -> bool {
        self.pull_until_ms().is_some() || self.pull_from_ms().is_some()
    }

    /// Whether moving to `to` hands over from the Logs API (and so needs the newest stored
    /// log's time).
    pub fn hands_over_from_pull(&self, to: IngestSource) -> bool {
        self.source == IngestSource::LogsApi && to != IngestSource::LogsApi
    }

    /// The cursor a pull may move to: never past the handover.
    pub fn pull_cursor(&self, cursor_ms: Option<i64>) -> Option<i64> {
        match self.pull_until_ms() {
            Some(until) => cursor_ms.map(|c| c.min(until.saturating_sub(1))),
            None => cursor_ms,
        }
    }
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

pub type BucketId = i64;

/// An S3-compatible bucket (R2, S3, MinIO) a Logpush job writes to and LangGuard imports from,
/// for sites Cloudflare cannot reach.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushBucket {
    pub id: BucketId,
    pub integration_id: IntegrationId,
    /// `https://<account>.r2.cloudflarestorage.com`, `https://s3.<region>.amazonaws.com`, …
    pub endpoint: String,
    pub bucket: String,
    /// Only objects under this prefix are imported ("" for the whole bucket).
    pub prefix: String,
    pub region: String,
    pub access_key_id: String,
    /// The secret access key, sealed for this row (`Binding::BucketSecret`).
    #[serde(skip)]
    pub sealed_secret: Vec<u8>,
    pub enabled: bool,
    pub created_at_ms: i64,
    /// When the bucket was last listed, and what went wrong then (`None`: it worked).
    pub last_listed_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub files_imported: i64,
    pub records_imported: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewPushBucket {
    pub integration_id: IntegrationId,
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: SealFor,
}

/// One object imported from a bucket (or given up on, with why).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedObject {
    pub key: String,
    pub records: i64,
    pub error: Option<String>,
    pub imported_at_ms: i64,
}

/// Days of push history kept.
pub const PUSH_HISTORY_DAYS: i64 = 30;

/// What pushes brought an integration in one minute from one source (requests are OTLP
/// requests, Logpush files over HTTP or from a bucket).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PushMinute {
    /// The minute's start (Unix ms).
    pub minute_ms: i64,
    pub source: String,
    pub requests: i64,
    pub received: i64,
    pub stored: i64,
    pub duplicates: i64,
    /// Left out: the gateway counts another source at their time.
    pub other_source: i64,
    pub rejected: i64,
}

/// Why a gateway's counted source moves, which decides the handover of a gateway nothing was
/// pulled for yet (see [`GatewayState::switched_to`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// A push arrived for a gateway still counting the Logs API: it takes over on its own.
    OnPush,
    /// An admin chose the source; the Logs API has this gateway's history: pull it up to now.
    PullHistory,
    /// An admin chose the source; the Logs API has nothing (new log system): pushes count all.
    CountEveryPush,
}
