//! The PostgreSQL backend of [`Store`], for companies that run several LangGuard instances
//! on one database: every piece of state (sessions, cursors, leases, the policy worker's and
//! the webhook dispatcher's progress) lives in the database, so any instance serves any
//! request and background work is shared through leases.
//!
//! Built on tokio-postgres with a deadpool pool. Queries are the SQLite backend's, in
//! PostgreSQL's dialect, and answer identically (the store and API test suites run against
//! both). Where PostgreSQL's concurrency differs from SQLite's single writer, it is said
//! where it matters: rows whose ids feed a cursor are inserted under an advisory lock, so ids
//! become visible in order and no cursor skips a row committed late.

mod access;
mod conditions;
mod governance;
mod ingest;
mod leases;
mod migrate;
mod queries;
mod records;
mod runs;
pub mod testing;
mod traces;
mod users;
mod webhooks;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Client, Manager, ManagerConfig, Pool, RecyclingMethod};
use langguard_store::*;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use records::RowExt;

/// Advisory lock keys (`pg_advisory_xact_lock`). Each serialises the inserts whose ids a
/// cursor follows, so an id is never committed after a larger one was read.
pub(crate) mod locks {
    /// Interactions (the policy worker's and trace snapshots' cursor).
    pub const INTERACTIONS: i64 = 0x4c47_0001;
    /// Violations (webhook event detection's cursor).
    pub const VIOLATIONS: i64 = 0x4c47_0002;
    /// Finished sync runs (`(finished_at, id)`, webhook event detection).
    pub const RUN_FINISH: i64 = 0x4c47_0003;
}

/// The database's clock in Unix milliseconds: instances' clocks needn't agree for leases and
/// finish times to order correctly.
pub(crate) const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// A finishing run's time: now by the database's clock, but always after every run finished
/// before it (two in one millisecond, or a clock step back), so the `(finished_at, id)` order
/// webhook detection follows is the order runs finished in. Used under `locks::RUN_FINISH`.
pub(crate) const FINISHED_AT: &str =
    "GREATEST((extract(epoch FROM clock_timestamp()) * 1000)::bigint, \
     (SELECT COALESCE(MAX(finished_at), 0) + 1 FROM sync_runs))";

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// A connection of its own for lease renewals: a busy query pool (dashboards, a long
    /// export) must never make this instance miss a renewal and lose its sync to another.
    lease_pool: Pool,
    /// The URL without its password, for messages.
    display_url: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.display_url)
            .finish()
    }
}

pub(crate) fn db_err(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        return StoreError::Conflict {
            what: e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
        };
    }
    StoreError::Database(Box::new(e))
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Database(format!("no database connection: {e}").into())
}

pub(crate) use langguard_clock::now_ms;

pub(crate) fn not_found(what: String) -> StoreError {
    StoreError::NotFound { what }
}

/// Connections per instance, opened as needed: queries run concurrently (dashboard folds
/// split in two, the policy worker, the dispatcher, request handlers), and PostgreSQL's
/// default of 100 connections leaves room for several instances. `LANGGUARD_DB_POOL_SIZE`
/// changes it.
fn pool_size() -> usize {
    std::env::var("LANGGUARD_DB_POOL_SIZE")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or(16)
}

impl PgStore {
    /// Connects to a `postgres://` URL and applies pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Invalid(format!(
                "LANGGUARD_DATABASE_URL is not a PostgreSQL URL ({e}); expected postgres://user:password@host:5432/database"
            ))
        })?;
        let display_url = redact(url);
        let build = |size: usize| {
            let manager = Manager::from_config(
                config.clone(),
                NoTls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            Pool::builder(manager)
                .max_size(size)
                .wait_timeout(Some(Duration::from_secs(30)))
                .create_timeout(Some(Duration::from_secs(10)))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(|e| StoreError::Invalid(format!("cannot set up the connection pool: {e}")))
        };
        let store = Self {
            pool: build(pool_size())?,
            lease_pool: build(1)?,
            display_url,
        };
        let mut client = store.pool.get().await.map_err(|e| {
            StoreError::Database(
                format!(
                    "cannot connect to {}: {e}; check that PostgreSQL runs there and the URL's user, password and database are right",
                    store.display_url
                )
                .into(),
            )
        })?;
        migrate::apply(&mut client).await?;
        Ok(store)
    }

    /// The URL with its password replaced, fit for logs.
    pub fn display_url(&self) -> &str {
        &self.display_url
    }

    pub(crate) async fn client(&self) -> StoreResult<Client> {
        self.pool.get().await.map_err(pool_err)
    }

    async fn lease_client(&self) -> StoreResult<Client> {
        self.lease_pool.get().await.map_err(pool_err)
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.pool.close();
        self.lease_pool.close();
    }

    /// Folds the rollups of `scope` into cells; a range of more than a day is folded as two
    /// halves on two connections at once (as the SQLite backend does, for the same reason).
    async fn fold(
        &self,
        scope: &Scope,
        group_by: Option<GroupBy>,
        bucket: Option<Bucket>,
    ) -> StoreResult<fold::Cells> {
        let Some((early, late)) = fold::fold_split(scope) else {
            let client = self.client().await?;
            return queries::fold(&client, scope, group_by, bucket).await;
        };
        let a = self.client().await?;
        // A second connection only when the pool has one to spare: requests each holding one
        // while waiting for another could otherwise exhaust the pool between them.
        let status = self.pool.status();
        if status.available == 0 && status.size >= status.max_size {
            let mut cells = queries::fold(&a, &early, group_by, bucket).await?;
            fold::merge_cells(
                &mut cells,
                queries::fold(&a, &late, group_by, bucket).await?,
            );
            return Ok(cells);
        }
        let b = self.client().await?;
        let (mut cells, late) = tokio::try_join!(
            queries::fold(&a, &early, group_by, bucket),
            queries::fold(&b, &late, group_by, bucket),
        )?;
        fold::merge_cells(&mut cells, late);
        Ok(cells)
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "the PostgreSQL database".to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[async_trait]
impl Store for PgStore {
    async fn create_integration(&self, new: NewIntegration) -> StoreResult<Integration> {
        runs::create_integration(&self.client().await?, &new).await
    }

    async fn list_integrations(&self) -> StoreResult<Vec<Integration>> {
        runs::list_integrations(&self.client().await?).await
    }

    async fn get_integration(&self, id: IntegrationId) -> StoreResult<Integration> {
        runs::get_integration(&self.client().await?, id).await
    }

    async fn find_integration_by_name(&self, name: &str) -> StoreResult<Option<Integration>> {
        runs::find_integration_by_name(&self.client().await?, name).await
    }

    async fn delete_integration(&self, id: IntegrationId) -> StoreResult<()> {
        runs::delete_integration(&mut self.client().await?, id).await
    }

    async fn update_integration(
        &self,
        id: IntegrationId,
        patch: IntegrationPatch,
    ) -> StoreResult<Integration> {
        runs::update_integration(&self.client().await?, id, &patch).await
    }

    async fn replace_sealed_tokens(
        &self,
        tokens: Vec<SealedSwap>,
        webhook_secrets: Vec<SealedSwap>,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        webhooks::replace_secrets(&tx, &webhook_secrets).await?;
        for swap in &tokens {
            let changed = tx
                .execute(
                    "UPDATE integrations SET api_token_sealed = $1 WHERE id = $2 \
                     AND api_token_sealed = $3",
                    &[&swap.new, &swap.id, &swap.old],
                )
                .await
                .map_err(db_err)?;
            if changed == 0 {
                return Err(swap.changed("integration"));
            }
        }
        tx.commit().await.map_err(db_err)
    }

    async fn set_integration_status(
        &self,
        id: IntegrationId,
        status: IntegrationStatus,
        message: Option<&str>,
    ) -> StoreResult<()> {
        runs::set_integration_status(&self.client().await?, id, status, message).await
    }

    async fn upsert_gateways(&self, id: IntegrationId, gateway_ids: &[String]) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO gateways (integration_id, gateway_id, discovered_at) \
                 SELECT $1::bigint, g, $3::bigint FROM UNNEST($2::text[]) AS g \
                 ON CONFLICT (integration_id, gateway_id) DO NOTHING",
                &[&id, &gateway_ids, &now_ms()],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_gateways(&self, id: IntegrationId) -> StoreResult<Vec<GatewayState>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT gateway_id, cursor_ms, last_synced_at FROM gateways \
                 WHERE integration_id = $1 ORDER BY gateway_id COLLATE \"C\"",
                &[&id],
            )
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(GatewayState {
                    gateway_id: r.at(0)?,
                    cursor_ms: r.at(1)?,
                    last_synced_at_ms: r.at(2)?,
                })
            })
            .collect()
    }

    async fn ingest_batch(
        &self,
        id: IntegrationId,
        gateway: &str,
        batch: Vec<NewInteraction>,
        cursor_ms: Option<i64>,
    ) -> StoreResult<IngestOutcome> {
        ingest::ingest_batch(&mut self.client().await?, id, gateway, batch, cursor_ms).await
    }

    async fn count_gateway_interactions(
        &self,
        id: IntegrationId,
        gateway: &str,
        after_ms: i64,
        until_ms: i64,
    ) -> StoreResult<u64> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM interactions WHERE created_at > $1 AND created_at <= $2 \
                 AND integration_id = $3 AND gateway = $4",
                &[&after_ms, &until_ms, &id, &gateway],
            )
            .await
            .map_err(db_err)?
            .at(0)?;
        Ok(n.max(0) as u64)
    }

    async fn update_sync_run_counts(&self, run: SyncRunId, counts: &SyncCounts) -> StoreResult<()> {
        runs::save_counts(&self.client().await?, run, counts).await
    }

    async fn finish_sync_run(&self, run: SyncRunId, outcome: &SyncRunOutcome) -> StoreResult<()> {
        runs::finish_sync_run(&mut self.client().await?, run, outcome).await
    }

    async fn get_sync_run(&self, run: SyncRunId) -> StoreResult<SyncRun> {
        runs::get_sync_run(&self.client().await?, run).await
    }

    async fn list_sync_runs(&self, id: IntegrationId, limit: u32) -> StoreResult<Vec<SyncRun>> {
        runs::list_sync_runs(&self.client().await?, Some(id), limit).await
    }

    async fn recent_sync_runs(&self, limit: u32) -> StoreResult<Vec<SyncRun>> {
        runs::list_sync_runs(&self.client().await?, None, limit).await
    }

    async fn fail_abandoned_sync_runs(&self, reason: &str) -> StoreResult<u64> {
        leases::fail_abandoned(&mut self.client().await?, reason).await
    }

    async fn claim_sync(
        &self,
        id: IntegrationId,
        trigger: SyncTrigger,
        holder: &str,
        ttl_ms: i64,
    ) -> StoreResult<SyncClaim> {
        leases::claim_sync(&mut self.client().await?, id, trigger, holder, ttl_ms).await
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
        leases::acquire(&self.lease_client().await?, name, holder, ttl_ms).await
    }

    async fn renew_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
        leases::renew(&self.lease_client().await?, name, holder, ttl_ms).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        leases::release(&self.lease_client().await?, name, holder).await
    }

    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        users::create_user(&self.client().await?, &new).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        users::list_users(&self.client().await?).await
    }

    async fn get_user(&self, id: UserId) -> StoreResult<User> {
        users::get_user(&self.client().await?, id).await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        users::find_user_by_email(&self.client().await?, email).await
    }

    async fn update_user(&self, id: UserId, patch: UserPatch) -> StoreResult<User> {
        users::update_user(&mut self.client().await?, id, &patch).await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        users::delete_user(&self.client().await?, id).await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let n: i64 = self
            .client()
            .await?
            .query_one("SELECT COUNT(*) FROM users", &[])
            .await
            .map_err(db_err)?
            .at(0)?;
        Ok(n.max(0) as u64)
    }

    async fn create_session(
        &self,
        token_hash: &[u8],
        user: UserId,
        expires_at_ms: i64,
    ) -> StoreResult<()> {
        users::create_session(&self.client().await?, token_hash, user, expires_at_ms).await
    }

    async fn session_user(&self, token_hash: &[u8], now_ms: i64) -> StoreResult<Option<User>> {
        users::session_user(&self.client().await?, token_hash, now_ms).await
    }

    async fn delete_session(&self, token_hash: &[u8]) -> StoreResult<()> {
        self.client()
            .await?
            .execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn count_login_attempt(
        &self,
        keys: &[String],
        max: i64,
        window_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Result<(), i64>> {
        users::count_login_attempt(&mut self.client().await?, keys, max, window_ms, now_ms).await
    }

    async fn clear_login_attempts(&self, keys: &[String]) -> StoreResult<()> {
        users::clear_login_attempts(&self.client().await?, keys).await
    }

    async fn record_audit(&self, entry: NewAuditEntry) -> StoreResult<()> {
        access::record_audit(&self.client().await?, &entry).await
    }

    async fn list_audit(&self, limit: u32, before_id: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
        access::list_audit(&self.client().await?, limit, before_id).await
    }

    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey> {
        access::create_api_key(&self.client().await?, &new).await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        access::list_api_keys(&self.client().await?).await
    }

    async fn revoke_api_key(&self, id: i64) -> StoreResult<ApiKey> {
        access::revoke_api_key(&self.client().await?, id).await
    }

    async fn api_key_user(
        &self,
        token_hash: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<(ApiKey, User)>> {
        access::api_key_user(&self.client().await?, token_hash, now_ms).await
    }

    async fn metrics(&self, scope: &Scope) -> StoreResult<Metrics> {
        Ok(fold::metrics(&self.fold(scope, None, None).await?))
    }

    async fn metrics_by(&self, scope: &Scope, group_by: GroupBy) -> StoreResult<Vec<GroupMetrics>> {
        Ok(fold::metrics_by(
            self.fold(scope, Some(group_by), None).await?,
        ))
    }

    async fn metrics_series(
        &self,
        scope: &Scope,
        bucket: Bucket,
        group_by: Option<GroupBy>,
    ) -> StoreResult<Vec<Series>> {
        let cells = self.fold(scope, group_by, Some(bucket)).await?;
        Ok(fold::metrics_series(cells, group_by))
    }

    async fn get_interaction(&self, id: i64) -> StoreResult<Interaction> {
        queries::get_interaction(&self.client().await?, id).await
    }

    async fn traces(&self, query: &TraceQuery) -> StoreResult<TracePage> {
        traces::traces(&self.client().await?, query).await
    }

    fn export_traces(
        &self,
        filter: TraceFilter,
        sort: TraceSort,
        order: SortOrder,
    ) -> tokio::sync::mpsc::Receiver<StoreResult<Vec<Interaction>>> {
        // A few batches in flight, as in the SQLite backend.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let store = self.clone();
        tokio::spawn(async move {
            let result = async {
                let mut client = store.client().await?;
                traces::export(&mut client, &filter, sort, order, &tx).await
            }
            .await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }

    async fn count_interactions(&self, scope: &Scope) -> StoreResult<u64> {
        queries::count_interactions(&self.client().await?, scope).await
    }

    async fn bodies(
        &self,
        interaction_ids: Vec<i64>,
    ) -> StoreResult<std::collections::HashMap<i64, Bodies>> {
        governance::bodies(&mut self.client().await?, &interaction_ids).await
    }

    async fn store_bodies(&self, bodies: Vec<(i64, IntegrationId, Bodies)>) -> StoreResult<()> {
        governance::store_bodies(&mut self.client().await?, &bodies).await
    }

    async fn prune_bodies(&self, now_ms: i64) -> StoreResult<u64> {
        governance::prune_bodies(&mut self.client().await?, now_ms).await
    }

    async fn delete_interactions_before(&self, before_ms: i64, batch: u32) -> StoreResult<u64> {
        governance::delete_interactions_before(&mut self.client().await?, before_ms, batch).await
    }

    async fn interactions_after(&self, after_id: i64, limit: u32) -> StoreResult<Vec<Interaction>> {
        governance::interactions_after(&mut self.client().await?, after_id, limit).await
    }

    async fn minute_spend(
        &self,
        integration_id: IntegrationId,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<MinuteSpend>> {
        governance::minute_spend(&mut self.client().await?, integration_id, from_ms, to_ms).await
    }

    async fn create_policy(&self, new: NewPolicy) -> StoreResult<Policy> {
        governance::create_policy(&mut self.client().await?, &new).await
    }

    async fn list_policies(&self) -> StoreResult<Vec<Policy>> {
        governance::list_policies(&mut self.client().await?).await
    }

    async fn get_policy(&self, id: PolicyId) -> StoreResult<Policy> {
        governance::get_policy(&mut self.client().await?, id).await
    }

    async fn update_policy(&self, id: PolicyId, patch: PolicyPatch) -> StoreResult<Policy> {
        governance::update_policy(&mut self.client().await?, id, &patch).await
    }

    async fn quarantine_policy(
        &self,
        id: PolicyId,
        version: i64,
        reason: &str,
        event: OutgoingEvent,
    ) -> StoreResult<Option<Policy>> {
        governance::quarantine_policy(&mut self.client().await?, id, version, reason, &event).await
    }

    async fn delete_policy(&self, id: PolicyId) -> StoreResult<()> {
        governance::delete_policy(&mut self.client().await?, id).await
    }

    async fn policy_versions(&self, id: PolicyId) -> StoreResult<Vec<PolicyVersion>> {
        governance::policy_versions(&mut self.client().await?, id).await
    }

    async fn install_builtins(&self, builtins: Vec<NewPolicy>) -> StoreResult<Vec<Policy>> {
        governance::install_builtins(&mut self.client().await?, &builtins).await
    }

    async fn record_evaluations(
        &self,
        violations: Vec<NewViolation>,
        cursor: Option<i64>,
    ) -> StoreResult<Vec<i64>> {
        governance::record_evaluations(&mut self.client().await?, &violations, cursor).await
    }

    async fn policy_progress(&self) -> StoreResult<PolicyProgress> {
        governance::policy_progress(&mut self.client().await?).await
    }

    async fn violations(&self, query: &ViolationQuery) -> StoreResult<ViolationPage> {
        governance::violations(&mut self.client().await?, query).await
    }

    async fn get_violation(&self, id: i64) -> StoreResult<Violation> {
        governance::get_violation(&mut self.client().await?, id).await
    }

    async fn update_violations(
        &self,
        ids: Vec<i64>,
        status: ViolationStatus,
        notes: Option<String>,
    ) -> StoreResult<Vec<Violation>> {
        governance::update_violations(&mut self.client().await?, &ids, status, notes.as_deref())
            .await
    }

    async fn violations_after(&self, after_id: i64, limit: u32) -> StoreResult<Vec<Violation>> {
        governance::violations_after(&mut self.client().await?, after_id, limit).await
    }

    async fn violation_counts(
        &self,
        scope: &Scope,
    ) -> StoreResult<Vec<(Severity, ViolationStatus, u64)>> {
        governance::violation_counts(&mut self.client().await?, scope).await
    }

    async fn list_model_prices(&self) -> StoreResult<Vec<ModelPrice>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT model, input_per_1k, output_per_1k, updated_at FROM model_prices \
                 ORDER BY model COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(ModelPrice {
                    model: r.at(0)?,
                    input_per_1k: r.at(1)?,
                    output_per_1k: r.at(2)?,
                    updated_at_ms: r.at(3)?,
                })
            })
            .collect()
    }

    async fn set_model_price(
        &self,
        model: &str,
        input_per_1k: f64,
        output_per_1k: f64,
    ) -> StoreResult<ModelPrice> {
        let now = now_ms();
        self.client()
            .await?
            .execute(
                "INSERT INTO model_prices (model, input_per_1k, output_per_1k, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (model) DO UPDATE SET \
                 input_per_1k = excluded.input_per_1k, output_per_1k = excluded.output_per_1k, \
                 updated_at = excluded.updated_at",
                &[&model, &input_per_1k, &output_per_1k, &now],
            )
            .await
            .map_err(db_err)?;
        Ok(ModelPrice {
            model: model.to_owned(),
            input_per_1k,
            output_per_1k,
            updated_at_ms: now,
        })
    }

    async fn delete_model_price(&self, model: &str) -> StoreResult<()> {
        let deleted = self
            .client()
            .await?
            .execute("DELETE FROM model_prices WHERE model = $1", &[&model])
            .await
            .map_err(db_err)?;
        if deleted == 0 {
            return Err(not_found(format!("a price for {model:?}")));
        }
        Ok(())
    }

    async fn create_webhook(&self, new: NewWebhook) -> StoreResult<Webhook> {
        webhooks::create_webhook(&mut self.client().await?, &new).await
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        webhooks::list_webhooks(&mut self.client().await?).await
    }

    async fn get_webhook(&self, id: WebhookId) -> StoreResult<Webhook> {
        webhooks::get_webhook(&mut self.client().await?, id).await
    }

    async fn update_webhook(&self, id: WebhookId, patch: WebhookPatch) -> StoreResult<Webhook> {
        webhooks::update_webhook(&mut self.client().await?, id, &patch).await
    }

    async fn delete_webhook(&self, id: WebhookId) -> StoreResult<()> {
        webhooks::delete_webhook(&mut self.client().await?, id).await
    }

    async fn event_progress(&self) -> StoreResult<EventProgress> {
        webhooks::event_progress(&self.client().await?).await
    }

    async fn sync_runs_finished_after(
        &self,
        after: (i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<SyncRun>> {
        webhooks::sync_runs_finished_after(&mut self.client().await?, after, limit).await
    }

    async fn enqueue_events(
        &self,
        events: Vec<OutgoingEvent>,
        from: EventProgress,
        progress: EventProgress,
    ) -> StoreResult<u64> {
        webhooks::enqueue_events(&mut self.client().await?, &events, &from, &progress).await
    }

    async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
        claim_until_ms: i64,
    ) -> StoreResult<Vec<(Delivery, Webhook)>> {
        webhooks::due_deliveries(&mut self.client().await?, now_ms, limit, claim_until_ms).await
    }

    async fn record_delivery(
        &self,
        id: i64,
        attempt: DeliveryAttempt,
        disable_after: i64,
    ) -> StoreResult<()> {
        webhooks::record_delivery(&mut self.client().await?, id, &attempt, disable_after).await
    }

    async fn list_deliveries(
        &self,
        webhook_id: WebhookId,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        webhooks::list_deliveries(&mut self.client().await?, webhook_id, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://lg:s3cret@db.internal:5432/langguard"),
            "postgres://lg:***@db.internal:5432/langguard"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(redact("host=db password=x"), "the PostgreSQL database");
    }
}
