//! The sync engine (DESIGN §3): per integration, discover the account's gateways, then import
//! each gateway's logs since its cursor — no gap and no duplicate, whatever the network and the
//! API do — and record the run.

pub mod bodies;
pub mod coverage;
mod credentials;
mod gateway;
mod instance;
pub use instance::holder_is_gone;
mod normalize;
mod telemetry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use langguard_cloudflare::{
    ClientConfig, ClientStats, CloudflareClient, CloudflareError, TokenKind,
};
use langguard_pricing::Pricer;
use langguard_secrets::Sealer;
use langguard_store::{
    sync_lease_name, Integration, IntegrationId, IntegrationStatus, Store, StoreError, SyncClaim,
    SyncCounts, SyncRun, SyncRunId, SyncRunOutcome, SyncRunStatus, SyncTrigger,
};

pub use credentials::{client_for, integration_token, ClientForError};
pub use normalize::{normalize, Rejected};
pub use telemetry::{describe_metrics, record_traffic};

use gateway::GatewayImport;

#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Rows per store transaction. Bigger transactions amortise SQLite's commit and rollup
    /// work (1,000 → 5,000 rows: 105k → 125k logs/s in `bench ingest` over 30 days); memory
    /// stays a few megabytes.
    pub flush_rows: usize,
    /// How long an instance's claim on an integration lasts without renewal (renewed every
    /// third of it while the sync runs). Another instance takes over a sync this long after
    /// the one running it died.
    pub lease_ttl: Duration,
    /// How often each gateway's feedback and scores are read again (see
    /// [`GatewayImport::refresh_feedback`]); zero for every sync.
    pub feedback_refresh_every: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            flush_rows: 5_000,
            lease_ttl: Duration::from_secs(30),
            feedback_refresh_every: Duration::from_secs(3_600),
        }
    }
}

/// Where a running sync has got to, for progress displays.
#[derive(Debug, Clone)]
pub struct SyncProgress {
    pub gateway: String,
    pub counts: SyncCounts,
}

pub type ProgressFn<'a> = &'a (dyn Fn(&SyncProgress) + Send + Sync);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Only one sync per integration runs at a time; this one is in progress.
    #[error("a sync of this integration is already running{}", run_id.map(|id| format!(" (run {id})")).unwrap_or_default())]
    AlreadyRunning { run_id: Option<SyncRunId> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a run failed; recorded in the run, not returned.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error(transparent)]
    Cloudflare(#[from] CloudflareError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored API token cannot be decrypted: {0}")]
    Credentials(String),
    #[error("another LangGuard instance took over this sync (this one could not renew its lease in time)")]
    LeaseLost,
    /// Cloudflare's listings did not add up to its own counts, even read again.
    #[error("the import is incomplete: {0}")]
    Incomplete(String),
    #[error("gateway {gateway}: {error}")]
    InGateway {
        gateway: String,
        error: Box<RunError>,
    },
}

impl From<ClientForError> for RunError {
    fn from(e: ClientForError) -> Self {
        match e {
            ClientForError::Credentials(message) => RunError::Credentials(message),
            ClientForError::Cloudflare(e) => RunError::Cloudflare(e),
        }
    }
}

impl RunError {
    fn hint(&self) -> &'static str {
        match self {
            RunError::Cloudflare(e) => e.hint(),
            RunError::Store(_) => {
                "LangGuard could not write to its database: check free disk space and the data directory's permissions."
            }
            RunError::Credentials(_) => {
                "Start LangGuard with the encryption key the token was saved under (LANGGUARD_ENCRYPTION_KEY or the data dir's encryption.key), or add the integration again."
            }
            RunError::LeaseLost => {
                "Nothing to do: the instance that took over carries on from the last stored log. If this happens often, check the database's latency or raise LANGGUARD_LEASE_TTL_SECONDS."
            }
            RunError::Incomplete(_) => {
                "Nothing was skipped silently: the next sync reads the range again. If this keeps happening, Cloudflare's Logs API is answering inconsistently; check status.cloudflare.com."
            }
            RunError::InGateway { error, .. } => error.hint(),
        }
    }

    /// Errors that every other gateway of the integration would hit too.
    fn affects_all_gateways(&self) -> bool {
        match self {
            RunError::Cloudflare(e) => matches!(
                e,
                CloudflareError::AuthFailed { .. } | CloudflareError::PermissionDenied { .. }
            ),
            RunError::Store(_) | RunError::Credentials(_) | RunError::LeaseLost => true,
            RunError::Incomplete(_) => false,
            RunError::InGateway { error, .. } => error.affects_all_gateways(),
        }
    }
}

/// What a connection test found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConnectionCheck {
    pub token_kind: TokenKind,
    pub gateways: Vec<String>,
}

/// Verifies the token and lists the account's gateways: what "Test Connection" does.
pub async fn test_connection(
    config: &ClientConfig,
    account_id: &str,
    api_token: &str,
) -> Result<ConnectionCheck, CloudflareError> {
    let client = CloudflareClient::new(config, account_id, api_token)?;
    let (token_kind, _) = client.verify_token().await?;
    let gateways = client
        .list_gateways()
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect();
    Ok(ConnectionCheck {
        token_kind,
        gateways,
    })
}

pub struct SyncEngine {
    store: Arc<dyn Store>,
    sealer: Sealer,
    client_config: ClientConfig,
    settings: SyncSettings,
    running: Mutex<HashMap<IntegrationId, SyncRunId>>,
    /// Names this process in leases.
    holder: String,
    /// Prices this engine's logs: the bundled table under the admin's overrides, which each
    /// sync refreshes from the store (the engine's own, not process-wide state).
    pricer: Pricer,
    /// When each gateway's feedback was last read again (Unix ms), by this process: after a
    /// restart the first sync reads it again, which costs a call and loses nothing.
    feedback_read_at: Mutex<HashMap<(IntegrationId, String), i64>>,
}

impl SyncEngine {
    pub fn new(
        store: Arc<dyn Store>,
        sealer: Sealer,
        client_config: ClientConfig,
        settings: SyncSettings,
    ) -> Self {
        Self {
            store,
            sealer,
            client_config,
            settings,
            running: Mutex::new(HashMap::new()),
            holder: instance_id(),
            pricer: Pricer::new(),
            feedback_read_at: Mutex::new(HashMap::new()),
        }
    }

    /// How this process is named in the database's leases.
    /// The prices every ingest path uses (the table plus the admin's prices).
    pub fn pricer(&self) -> &Pricer {
        &self.pricer
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Runs one sync of an integration to the end and returns its record. Cloudflare trouble
    /// does not make this an `Err`: it is recorded in the run (status `failed`, error, hint) and
    /// in the integration's status.
    pub async fn sync(
        &self,
        integration_id: IntegrationId,
        trigger: SyncTrigger,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<SyncRun, SyncError> {
        let integration = self.store.get_integration(integration_id).await?;
        let run = self.claim(integration_id, trigger).await?;
        // Released however this ends, even if the caller drops the future mid-sync.
        let (renewal, lost) = self.keep_lease(integration_id);
        let _claim = Claim {
            engine: self,
            integration_id,
            renewal,
        };
        self.run_claimed(&integration, run.id, progress, lost).await
    }

    /// Starts a sync in the background and returns its run at once (Sync Now, the scheduler).
    /// When one is already running, `AlreadyRunning` names it.
    pub async fn start(
        self: &Arc<Self>,
        integration_id: IntegrationId,
        trigger: SyncTrigger,
    ) -> Result<SyncRun, SyncError> {
        let integration = self.store.get_integration(integration_id).await?;
        let run = self.claim(integration_id, trigger).await?;
        let engine = Arc::clone(self);
        let run_id = run.id;
        tokio::spawn(async move {
            let (renewal, lost) = engine.keep_lease(integration_id);
            let _claim = Claim {
                engine: &engine,
                integration_id,
                renewal,
            };
            if let Err(e) = engine.run_claimed(&integration, run_id, None, lost).await {
                tracing::error!(integration_id, run_id, error = %e, "could not record a sync run");
            }
        });
        Ok(run)
    }

    /// Integrations with a sync in progress in this process.
    pub fn running(&self) -> Vec<(IntegrationId, SyncRunId)> {
        self.lock_running().iter().map(|(i, r)| (*i, *r)).collect()
    }

    /// Waits until no sync runs in this process, or `limit` passes; true when idle. Every
    /// batch commits with its cursor, so stopping after `limit` loses nothing either.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        self.wait_until(limit, |running| running.is_empty()).await
    }

    /// Waits until this integration has no sync running here, or `limit` passes.
    pub async fn wait_for(&self, integration_id: IntegrationId, limit: Duration) -> bool {
        self.wait_until(limit, |running| !running.contains_key(&integration_id))
            .await
    }

    async fn wait_until(
        &self,
        limit: Duration,
        done: impl Fn(&HashMap<IntegrationId, SyncRunId>) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if done(&self.lock_running()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn claim(&self, id: IntegrationId, trigger: SyncTrigger) -> Result<SyncRun, SyncError> {
        if let Some(run_id) = self.lock_running().get(&id) {
            return Err(SyncError::AlreadyRunning {
                run_id: Some(*run_id),
            });
        }
        // The database decides between processes and instances: one lease per integration.
        let ttl_ms = duration_ms(self.settings.lease_ttl);
        let mut claim = self
            .store
            .claim_sync(id, trigger, &self.holder, ttl_ms)
            .await?;
        if let SyncClaim::Busy { holder, .. } = &claim {
            // A process of this machine that is gone (a `langguard sync` killed a moment ago)
            // can't renew: no need to wait out its lease.
            if holder_is_gone(holder) {
                self.store
                    .release_lease(&sync_lease_name(id), holder)
                    .await?;
                claim = self
                    .store
                    .claim_sync(id, trigger, &self.holder, ttl_ms)
                    .await?;
            }
        }
        let run = match claim {
            SyncClaim::Claimed(run) => run,
            SyncClaim::Busy { run_id, .. } => return Err(SyncError::AlreadyRunning { run_id }),
        };
        let raced = {
            let mut running = self.lock_running();
            match running.get(&id) {
                Some(other) => Some(*other),
                None => {
                    running.insert(id, run.id);
                    None
                }
            }
        };
        if let Some(other) = raced {
            // Another caller of this process claimed it between our check and our insert (the
            // lease is this process's either way; it renewed it).
            let outcome = SyncRunOutcome {
                status: SyncRunStatus::Failed,
                counts: SyncCounts::default(),
                error: Some(format!("another sync (run {other}) was already running")),
                hint: None,
            };
            self.store.finish_sync_run(run.id, &outcome).await?;
            return Err(SyncError::AlreadyRunning {
                run_id: Some(other),
            });
        }
        Ok(run)
    }

    /// Renews this process's lease on the integration while its sync runs. A renewal that
    /// finds the lease gone (this process stalled past its expiry and another instance took
    /// over) says so on the returned channel, and the sync stops: the other instance carries
    /// on from the stored cursor.
    fn keep_lease(
        &self,
        id: IntegrationId,
    ) -> (
        tokio::task::JoinHandle<()>,
        tokio::sync::watch::Receiver<bool>,
    ) {
        let store = Arc::clone(&self.store);
        let holder = self.holder.clone();
        let ttl = self.settings.lease_ttl;
        let (lost_tx, lost) = tokio::sync::watch::channel(false);
        let renewal = tokio::spawn(async move {
            let name = sync_lease_name(id);
            loop {
                tokio::time::sleep(ttl / 3).await;
                match store.renew_lease(&name, &holder, duration_ms(ttl)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            integration_id = id,
                            "another instance took over this sync's lease; stopping here"
                        );
                        let _ = lost_tx.send(true);
                        // Kept open until the sync has seen it.
                        std::future::pending::<()>().await;
                    }
                    Err(e) => {
                        tracing::warn!(integration_id = id, error = %e, "could not renew a sync lease")
                    }
                }
            }
        });
        (renewal, lost)
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<IntegrationId, SyncRunId>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run_claimed(
        &self,
        integration: &Integration,
        run_id: SyncRunId,
        progress: Option<ProgressFn<'_>>,
        mut lost: tokio::sync::watch::Receiver<bool>,
    ) -> Result<SyncRun, SyncError> {
        let mut counts = SyncCounts::default();
        let mut rejected = 0u64;
        let mut stats = ClientStats::default();
        // Every batch commits with its cursor, so stopping between awaits loses nothing.
        let lease_lost = async {
            if lost.wait_for(|lost| *lost).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let result = tokio::select! {
            result = self.import_all(
                integration,
                run_id,
                &mut counts,
                &mut rejected,
                &mut stats,
                progress,
            ) => result,
            () = lease_lost => Err(RunError::LeaseLost),
        };
        let taken_over = matches!(result, Err(RunError::LeaseLost));
        let notices = result.as_ref().map(Vec::as_slice).unwrap_or_default();
        apply_client_stats(&mut counts, &stats);
        telemetry::record_run(
            &integration.name,
            if result.is_ok() {
                "succeeded"
            } else {
                "failed"
            },
            stats.requests,
            stats.rate_limited,
        );

        let (status, integration_status, message, hint) = match &result {
            Ok(_) if !notices.is_empty() => (
                SyncRunStatus::Succeeded,
                IntegrationStatus::Warning,
                Some(notices.join(" ")),
                None,
            ),
            Ok(_) if rejected > 0 => (
                SyncRunStatus::Succeeded,
                IntegrationStatus::Warning,
                Some(format!(
                    "{rejected} logs could not be read and were skipped"
                )),
                None,
            ),
            Ok(_) if stats.rate_limited > 0 => (
                SyncRunStatus::Succeeded,
                IntegrationStatus::Warning,
                Some(format!(
                    "rate limited by Cloudflare {} times; consider a longer sync interval",
                    stats.rate_limited
                )),
                None,
            ),
            Ok(_) => (
                SyncRunStatus::Succeeded,
                IntegrationStatus::Connected,
                None,
                None,
            ),
            Err(e) => (
                SyncRunStatus::Failed,
                IntegrationStatus::Failed,
                Some(e.to_string()),
                Some(e.hint().to_owned()),
            ),
        };
        let outcome = SyncRunOutcome {
            status,
            counts,
            error: message.clone(),
            hint,
        };
        self.store.finish_sync_run(run_id, &outcome).await?;
        if taken_over {
            // The integration's status is the new holder's to report.
            return Ok(self.store.get_sync_run(run_id).await?);
        }
        self.store
            .release_lease(&sync_lease_name(integration.id), &self.holder)
            .await?;
        let integration_status = if integration.enabled {
            integration_status
        } else {
            IntegrationStatus::Disabled
        };
        self.store
            .set_integration_status(integration.id, integration_status, message.as_deref())
            .await?;
        Ok(self.store.get_sync_run(run_id).await?)
    }

    async fn import_all(
        &self,
        integration: &Integration,
        run_id: SyncRunId,
        counts: &mut SyncCounts,
        rejected: &mut u64,
        stats: &mut ClientStats,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Vec<String>, RunError> {
        let client = client_for(&self.sealer, &self.client_config, integration)?;
        let result = self
            .import_gateways(&client, integration, run_id, counts, rejected, progress)
            .await;
        *stats = client.stats();
        result
    }

    async fn import_gateways(
        &self,
        client: &CloudflareClient,
        integration: &Integration,
        run_id: SyncRunId,
        counts: &mut SyncCounts,
        rejected: &mut u64,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Vec<String>, RunError> {
        let ids: Vec<String> = client
            .list_gateways()
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        self.store.upsert_gateways(integration.id, &ids).await?;
        counts.gateways = ids.len() as i64;

        let floor_ms = integration
            .lookback_days
            .map(|days| now_ms() - days.max(0) * 86_400_000);
        let states = self.store.list_gateways(integration.id).await?;
        // The admin's prices as they are now price this sync's logs.
        let prices = self.store.list_model_prices().await?;
        self.pricer.set_overrides(
            &prices
                .into_iter()
                .map(|p| langguard_pricing::PriceOverride {
                    model: p.model,
                    input_per_1k: p.input_per_1k,
                    output_per_1k: p.output_per_1k,
                })
                .collect::<Vec<_>>(),
        );
        let sync_started_ms = now_ms();
        let mut first_error: Option<RunError> = None;
        for state in states.iter().filter(|s| ids.contains(&s.gateway_id)) {
            // A gateway whose logs arrive by push is pulled only up to the handover (and one
            // that took the Logs API back, only from it): one counted source at a time.
            let until_ms = state.pull_until_ms();
            let from_ms = state.pull_from_ms().map(|f| f.saturating_sub(1));
            let cursor = state.cursor_ms.max(from_ms);
            let floor = floor_ms.max(from_ms);
            if let Some(until) = until_ms {
                let window_ms = trailing_window_ms(integration, state);
                let settled = sync_started_ms.saturating_sub(window_ms) > until;
                if until == i64::MIN || (settled && cursor.is_some_and(|c| c >= until - 1)) {
                    continue;
                }
            }
            let mut import = self.gateway_import(
                client,
                integration,
                state,
                until_ms.map_or(sync_started_ms, |u| u.min(sync_started_ms)),
                &mut *counts,
                &mut *rejected,
                progress,
            );
            let result = import.run(cursor, floor).await;
            // A first import has just read every log as it is now: nothing to refresh yet.
            if result.is_ok() && cursor.is_none() {
                self.lock_feedback()
                    .insert((integration.id, state.gateway_id.clone()), sync_started_ms);
            } else if result.is_ok() && self.feedback_due(integration.id, &state.gateway_id) {
                let since = (sync_started_ms - FEEDBACK_DAYS * 86_400_000).max(floor.unwrap_or(0));
                // The import itself succeeded: a refresh that fails is tried again in an hour,
                // never a failed sync.
                match import.refresh_feedback(since).await {
                    Ok(0) => {}
                    Ok(changed) => {
                        tracing::info!(gateway = %state.gateway_id, changed, "feedback refreshed")
                    }
                    Err(error) => {
                        tracing::warn!(gateway = %state.gateway_id, %error, "could not refresh feedback")
                    }
                }
                self.lock_feedback()
                    .insert((integration.id, state.gateway_id.clone()), sync_started_ms);
            }
            // The run's figures are saved after every gateway, so a crash leaves honest ones.
            apply_client_stats(counts, &client.stats());
            self.store.update_sync_run_counts(run_id, counts).await?;
            if let Err(error) = result {
                tracing::warn!(gateway = %state.gateway_id, %error, "gateway import failed");
                let stop = error.affects_all_gateways();
                first_error.get_or_insert(RunError::InGateway {
                    gateway: state.gateway_id.clone(),
                    error: Box::new(error),
                });
                // Otherwise the other gateways still import: one broken gateway must not
                // starve the rest.
                if stop {
                    break;
                }
            }
        }
        // Coverage is judged on a complete import: after a failure the next sync catches up
        // first (and a rate-limited token would only wait).
        let mut notices = Vec::new();
        if first_error.is_none() {
            notices = self
                .check_coverage(
                    client,
                    integration,
                    &states,
                    sync_started_ms,
                    counts,
                    rejected,
                    progress,
                )
                .await?;
            apply_client_stats(counts, &client.stats());
        }
        first_error.map_or(Ok(notices), Err)
    }

    /// Whether a gateway's feedback is due to be read again.
    fn feedback_due(&self, integration_id: IntegrationId, gateway: &str) -> bool {
        let every = duration_ms(self.settings.feedback_refresh_every);
        self.lock_feedback()
            .get(&(integration_id, gateway.to_owned()))
            .is_none_or(|at| now_ms() - at >= every)
    }

    fn lock_feedback(&self) -> std::sync::MutexGuard<'_, HashMap<(IntegrationId, String), i64>> {
        self.feedback_read_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The import of one gateway by this sync, up to `until_ms` (exclusive).
    #[allow(clippy::too_many_arguments)]
    fn gateway_import<'a>(
        &'a self,
        client: &'a CloudflareClient,
        integration: &'a Integration,
        state: &'a langguard_store::GatewayState,
        until_ms: i64,
        counts: &'a mut SyncCounts,
        rejected: &'a mut u64,
        progress: Option<ProgressFn<'a>>,
    ) -> GatewayImport<'a> {
        GatewayImport {
            client,
            integration_name: &integration.name,
            store: self.store.as_ref(),
            pricer: &self.pricer,
            integration_id: integration.id,
            gateway: &state.gateway_id,
            trailing_window_ms: trailing_window_ms(integration, state),
            flush_rows: self.settings.flush_rows.max(1),
            sync_started_ms: until_ms,
            counts,
            rejected,
            progress,
            fine_time: false,
            oldest_inserted: None,
        }
    }
}

/// Releases an integration's claim when a sync ends or is dropped.
struct Claim<'a> {
    engine: &'a SyncEngine,
    integration_id: IntegrationId,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        // A sync dropped mid-way leaves its lease to expire: its run is failed by whoever
        // claims the integration next.
        self.renewal.abort();
        self.engine.lock_running().remove(&self.integration_id);
    }
}

/// How far back feedback and scores given after the call are looked for: people rate an
/// answer soon after it, rarely a week later.
const FEEDBACK_DAYS: i64 = 7;

/// How far behind its cursor a sync of the gateway looks for late-visible logs: the
/// integration's window, or the gateway's own once late logs widened it.
fn trailing_window_ms(integration: &Integration, state: &langguard_store::GatewayState) -> i64 {
    (integration.trailing_window_minutes.max(1) * 60_000).max(state.late_window_ms.unwrap_or(0))
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn apply_client_stats(counts: &mut SyncCounts, stats: &ClientStats) {
    counts.api_calls = stats.requests as i64;
    counts.retries = stats.retries as i64;
    counts.rate_limit_waits = stats.rate_limited as i64;
}

use instance::instance_id;
use langguard_clock::now_ms;
