//! The embedded SQLite backend of [`Store`], on rusqlite: WAL mode, migrations applied at open,
//! one writer connection (SQLite has one writer anyway; one connection turns lock contention
//! into an orderly queue) and a small pool of read-only connections for queries. Blocking
//! SQLite calls run on tokio's blocking pool.
//!
//! Why rusqlite rather than sqlx here: on this schema, prepared single-row statements through
//! rusqlite inserted ~375k rows/s against ~180k rows/s for sqlx's multi-row inserts (see
//! docs/BENCHMARKS.md); the ingest path is what this backend is for.

mod access;
mod conditions;
mod connection;
mod functions;
mod governance;
mod ingest;
mod leases;
mod migrate;
mod queries;
mod records;
mod traces;
mod users;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use langguard_store::*;
use rusqlite::{params, Connection, OptionalExtension};

use records::{integration_from_row, sync_run_from_row, INTEGRATION_COLUMNS};

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

/// Readers kept open between queries.
const MAX_IDLE_READERS: usize = 4;

pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            StoreError::Conflict {
                what: e.to_string(),
            }
        }
        _ => StoreError::Database(Box::new(e)),
    }
}

pub(crate) use langguard_clock::now_ms;

/// `sqlite://path`, `sqlite:path` or a plain path; a query string (`?mode=rwc`) is ignored.
fn path_of(url_or_path: &str) -> PathBuf {
    let rest = url_or_path
        .strip_prefix("sqlite://")
        .or_else(|| url_or_path.strip_prefix("sqlite:"))
        .unwrap_or(url_or_path);
    let rest = rest.split('?').next().unwrap_or(rest);
    PathBuf::from(rest)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at a `sqlite://path` URL or a plain path, and
    /// applies pending migrations.
    pub async fn open(url_or_path: &str) -> StoreResult<Self> {
        let path = path_of(url_or_path);
        if path.as_os_str().is_empty() {
            return Err(StoreError::Invalid(format!(
                "the SQLite URL {url_or_path:?} names no file"
            )));
        }
        let open_path = path.clone();
        let writer = tokio::task::spawn_blocking(move || -> StoreResult<Connection> {
            if let Some(dir) = open_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Invalid(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mut conn = connection::open_writer(&open_path)?;
            migrate::apply(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(join_err)??;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Writes a consistent copy of the database to `dest` while LangGuard keeps running
    /// (SQLite's online backup, a few thousand pages at a time so writers keep their turn).
    pub async fn backup_to(&self, dest: &Path) -> StoreResult<()> {
        let inner = self.inner.clone();
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || -> StoreResult<()> {
            if dest.exists() {
                return Err(StoreError::Invalid(format!(
                    "{} exists already; choose a new file for the backup",
                    dest.display()
                )));
            }
            let source = connection::open_reader(&inner.path)?;
            connection::private_file(&dest)?;
            let mut target = Connection::open(&dest).map_err(db_err)?;
            let backup = rusqlite::backup::Backup::new(&source, &mut target).map_err(db_err)?;
            backup
                .run_to_completion(4_096, std::time::Duration::from_millis(5), None)
                .map_err(db_err)
        })
        .await
        .map_err(join_err)?
    }

    /// Nothing to flush: every write commits. Kept so callers can end cleanly.
    pub async fn close(&self) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || {
            inner
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        })
        .await;
    }

    /// Runs `f` on the writer connection on the blocking pool.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(join_err)?
    }

    /// Runs `f` on a read-only connection from the pool.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop();
            let conn = match pooled {
                Some(c) => c,
                None => connection::open_reader(&inner.path)?,
            };
            let result = f(&conn);
            let mut readers = inner.readers.lock().unwrap_or_else(|e| e.into_inner());
            if readers.len() < MAX_IDLE_READERS {
                readers.push(conn);
            }
            result
        })
        .await
        .map_err(join_err)?
    }
}

impl SqliteStore {
    /// Folds the rollups of `scope` into cells. A range of more than a day is folded as two
    /// halves on two connections at once — a dashboard's wait is one user's, and the machine
    /// has more than one core; the halves' cells merge exactly.
    async fn fold(
        &self,
        scope: &Scope,
        group_by: Option<GroupBy>,
        bucket: Option<Bucket>,
    ) -> StoreResult<fold::Cells> {
        let Some((early, late)) = fold::fold_split(scope) else {
            let scope = scope.clone();
            return self
                .read(move |conn| queries::fold(conn, &scope, group_by, bucket))
                .await;
        };
        let (mut cells, late) = tokio::try_join!(
            self.read(move |conn| queries::fold(conn, &early, group_by, bucket)),
            self.read(move |conn| queries::fold(conn, &late, group_by, bucket)),
        )?;
        fold::merge_cells(&mut cells, late);
        Ok(cells)
    }
}

fn join_err(e: tokio::task::JoinError) -> StoreError {
    StoreError::Database(format!("a database task failed: {e}").into())
}

fn not_found(what: String) -> StoreError {
    StoreError::NotFound { what }
}

pub(crate) fn get_integration_on(conn: &Connection, id: IntegrationId) -> StoreResult<Integration> {
    conn.query_row(
        &format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = ?1"),
        [id],
        integration_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| not_found(format!("integration {id}")))
}

pub(crate) fn get_sync_run_on(conn: &Connection, run: SyncRunId) -> StoreResult<SyncRun> {
    conn.query_row(
        "SELECT * FROM sync_runs WHERE id = ?1",
        [run],
        sync_run_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| not_found(format!("sync run {run}")))
}

fn save_counts(conn: &Connection, run: SyncRunId, c: &SyncCounts) -> StoreResult<usize> {
    conn.execute(
        "UPDATE sync_runs SET gateways = ?1, api_calls = ?2, items_fetched = ?3, \
         items_ingested = ?4, duplicates_skipped = ?5, rate_limit_waits = ?6, retries = ?7 \
         WHERE id = ?8",
        params![
            c.gateways,
            c.api_calls,
            c.items_fetched,
            c.items_ingested,
            c.duplicates_skipped,
            c.rate_limit_waits,
            c.retries,
            run
        ],
    )
    .map_err(db_err)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_integration(&self, new: NewIntegration) -> StoreResult<Integration> {
        if new.name.trim().is_empty() {
            return Err(StoreError::Invalid("an integration needs a name".into()));
        }
        self.write(move |conn| {
            let now = now_ms();
            let tx = conn.transaction().map_err(db_err)?;
            let inserted = tx.execute(
                "INSERT INTO integrations (name, account_id, api_token_sealed, enabled, \
                 sync_interval_minutes, lookback_days, created_at, updated_at) \
                 VALUES (?1, ?2, X'', ?3, ?4, ?5, ?6, ?6)",
                params![
                    new.name,
                    new.account_id,
                    new.enabled,
                    new.sync_interval_minutes,
                    new.lookback_days,
                    now
                ],
            );
            match inserted.map_err(db_err) {
                Err(StoreError::Conflict { .. }) => Err(StoreError::Conflict {
                    what: format!("an integration named {:?}", new.name),
                }),
                Err(e) => Err(e),
                Ok(_) => {
                    // The token is sealed for this row's id, in the transaction that made it.
                    let id = tx.last_insert_rowid();
                    tx.execute(
                        "UPDATE integrations SET api_token_sealed = ?2 WHERE id = ?1",
                        params![id, new.api_token.seal(id)],
                    )
                    .map_err(db_err)?;
                    tx.commit().map_err(db_err)?;
                    get_integration_on(conn, id)
                }
            }
        })
        .await
    }

    async fn list_integrations(&self) -> StoreResult<Vec<Integration>> {
        self.write(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {INTEGRATION_COLUMNS} FROM integrations ORDER BY name"
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], integration_from_row)
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            rows.into_iter().collect()
        })
        .await
    }

    async fn get_integration(&self, id: IntegrationId) -> StoreResult<Integration> {
        self.write(move |conn| get_integration_on(conn, id)).await
    }

    async fn find_integration_by_name(&self, name: &str) -> StoreResult<Option<Integration>> {
        let name = name.to_owned();
        self.write(move |conn| {
            conn.query_row(
                &format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE name = ?1"),
                [name],
                integration_from_row,
            )
            .optional()
            .map_err(db_err)?
            .transpose()
        })
        .await
    }

    async fn delete_integration(&self, id: IntegrationId) -> StoreResult<()> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            tx.execute("DELETE FROM violations WHERE integration_id = ?1", [id])
                .map_err(db_err)?;
            tx.execute(
                "DELETE FROM interaction_bodies WHERE integration_id = ?1",
                [id],
            )
            .map_err(db_err)?;
            tx.execute("DELETE FROM interactions WHERE integration_id = ?1", [id])
                .map_err(db_err)?;
            tx.execute("DELETE FROM rollups_minute WHERE integration_id = ?1", [id])
                .map_err(db_err)?;
            tx.execute("DELETE FROM rollups_hour WHERE integration_id = ?1", [id])
                .map_err(db_err)?;
            let deleted = tx
                .execute("DELETE FROM integrations WHERE id = ?1", [id])
                .map_err(db_err)?;
            if deleted == 0 {
                return Err(not_found(format!("integration {id}")));
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn update_integration(
        &self,
        id: IntegrationId,
        patch: IntegrationPatch,
    ) -> StoreResult<Integration> {
        self.write(move |conn| users::update_integration(conn, id, &patch))
            .await
    }

    async fn replace_sealed_tokens(
        &self,
        tokens: Vec<SealedSwap>,
        webhook_secrets: Vec<SealedSwap>,
    ) -> StoreResult<()> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            webhooks::replace_secrets(&tx, &webhook_secrets)?;
            for swap in &tokens {
                let changed = tx
                    .execute(
                        "UPDATE integrations SET api_token_sealed = ?1 WHERE id = ?2 \
                         AND api_token_sealed = ?3",
                        params![swap.new, swap.id, swap.old],
                    )
                    .map_err(db_err)?;
                if changed == 0 {
                    return Err(swap.changed("integration"));
                }
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn set_integration_status(
        &self,
        id: IntegrationId,
        status: IntegrationStatus,
        message: Option<&str>,
    ) -> StoreResult<()> {
        let message = message.map(str::to_owned);
        self.write(move |conn| {
            let now = now_ms();
            let synced = matches!(
                status,
                IntegrationStatus::Connected
                    | IntegrationStatus::Warning
                    | IntegrationStatus::Failed
            );
            let changed = conn
                .execute(
                    "UPDATE integrations SET status = ?1, status_message = ?2, updated_at = ?3, \
                     last_sync_at = CASE WHEN ?4 THEN ?3 ELSE last_sync_at END WHERE id = ?5",
                    params![status.as_str(), message, now, synced, id],
                )
                .map_err(db_err)?;
            if changed == 0 {
                return Err(not_found(format!("integration {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn upsert_gateways(&self, id: IntegrationId, gateway_ids: &[String]) -> StoreResult<()> {
        let gateway_ids = gateway_ids.to_vec();
        self.write(move |conn| {
            let now = now_ms();
            let tx = conn.transaction().map_err(db_err)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO gateways (integration_id, gateway_id, discovered_at) \
                         VALUES (?1, ?2, ?3) ON CONFLICT (integration_id, gateway_id) DO NOTHING",
                    )
                    .map_err(db_err)?;
                for gateway in &gateway_ids {
                    stmt.execute(params![id, gateway, now]).map_err(db_err)?;
                }
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn list_gateways(&self, id: IntegrationId) -> StoreResult<Vec<GatewayState>> {
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT gateway_id, cursor_ms, last_synced_at FROM gateways \
                     WHERE integration_id = ?1 ORDER BY gateway_id",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([id], |r| {
                    Ok(GatewayState {
                        gateway_id: r.get(0)?,
                        cursor_ms: r.get(1)?,
                        last_synced_at_ms: r.get(2)?,
                    })
                })
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            Ok(rows)
        })
        .await
    }

    async fn ingest_batch(
        &self,
        id: IntegrationId,
        gateway: &str,
        batch: Vec<NewInteraction>,
        cursor_ms: Option<i64>,
    ) -> StoreResult<IngestOutcome> {
        let gateway = gateway.to_owned();
        self.write(move |conn| ingest::ingest_batch(conn, id, &gateway, batch, cursor_ms))
            .await
    }

    async fn count_gateway_interactions(
        &self,
        id: IntegrationId,
        gateway: &str,
        after_ms: i64,
        until_ms: i64,
    ) -> StoreResult<u64> {
        let gateway = gateway.to_owned();
        self.write(move |conn| {
            let n: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM interactions WHERE created_at > ?1 AND created_at <= ?2 \
                     AND integration_id = ?3 AND gateway = ?4",
                    params![after_ms, until_ms, id, gateway],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn update_sync_run_counts(&self, run: SyncRunId, counts: &SyncCounts) -> StoreResult<()> {
        let counts = counts.clone();
        self.write(move |conn| save_counts(conn, run, &counts).map(|_| ()))
            .await
    }

    async fn finish_sync_run(&self, run: SyncRunId, outcome: &SyncRunOutcome) -> StoreResult<()> {
        let outcome = outcome.clone();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            save_counts(&tx, run, &outcome.counts)?;
            tx.execute(
                "UPDATE sync_runs SET status = ?1, error = ?3, hint = ?4, finished_at = \
                 MAX(?2, (SELECT IFNULL(MAX(finished_at), 0) + 1 FROM sync_runs)) WHERE id = ?5",
                params![
                    outcome.status.as_str(),
                    now_ms(),
                    outcome.error,
                    outcome.hint,
                    run
                ],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn get_sync_run(&self, run: SyncRunId) -> StoreResult<SyncRun> {
        self.write(move |conn| get_sync_run_on(conn, run)).await
    }

    async fn recent_sync_runs(&self, limit: u32) -> StoreResult<Vec<SyncRun>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT * FROM sync_runs ORDER BY id DESC LIMIT ?1")
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![i64::from(limit)], sync_run_from_row)
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            rows.into_iter().collect()
        })
        .await
    }

    async fn list_sync_runs(&self, id: IntegrationId, limit: u32) -> StoreResult<Vec<SyncRun>> {
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT * FROM sync_runs WHERE integration_id = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![id, i64::from(limit)], sync_run_from_row)
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            rows.into_iter().collect()
        })
        .await
    }

    async fn fail_abandoned_sync_runs(&self, reason: &str) -> StoreResult<u64> {
        let reason = reason.to_owned();
        self.write(move |conn| leases::fail_abandoned(conn, &reason))
            .await
    }

    async fn claim_sync(
        &self,
        id: IntegrationId,
        trigger: SyncTrigger,
        holder: &str,
        ttl_ms: i64,
    ) -> StoreResult<SyncClaim> {
        let holder = holder.to_owned();
        self.write(move |conn| leases::claim_sync(conn, id, trigger, &holder, ttl_ms))
            .await
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |conn| leases::acquire(conn, &name, &holder, ttl_ms))
            .await
    }

    async fn renew_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |conn| leases::renew(conn, &name, &holder, ttl_ms))
            .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |conn| leases::release(conn, &name, &holder))
            .await
    }

    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        self.write(move |conn| users::create_user(conn, &new)).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.write(|conn| users::list_users(conn)).await
    }

    async fn get_user(&self, id: UserId) -> StoreResult<User> {
        self.write(move |conn| users::get_user(conn, id)).await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let email = email.to_owned();
        self.write(move |conn| users::find_user_by_email(conn, &email))
            .await
    }

    async fn update_user(&self, id: UserId, patch: UserPatch) -> StoreResult<User> {
        self.write(move |conn| users::update_user(conn, id, &patch))
            .await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        self.write(move |conn| users::delete_user(conn, id)).await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        self.write(|conn| {
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
                .map_err(db_err)?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn create_session(
        &self,
        token_hash: &[u8],
        user: UserId,
        expires_at_ms: i64,
    ) -> StoreResult<()> {
        let token_hash = token_hash.to_vec();
        self.write(move |conn| {
            let now = now_ms();
            // Expired sessions are dropped as new ones are made: no sweeper needed.
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])
                .map_err(db_err)?;
            conn.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![token_hash, user, now, expires_at_ms],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn session_user(&self, token_hash: &[u8], now_ms: i64) -> StoreResult<Option<User>> {
        let token_hash = token_hash.to_vec();
        self.write(move |conn| users::session_user(conn, &token_hash, now_ms))
            .await
    }

    async fn delete_session(&self, token_hash: &[u8]) -> StoreResult<()> {
        let token_hash = token_hash.to_vec();
        self.write(move |conn| {
            conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn count_login_attempt(
        &self,
        keys: &[String],
        max: i64,
        window_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Result<(), i64>> {
        let keys = keys.to_vec();
        self.write(move |conn| users::count_login_attempt(conn, &keys, max, window_ms, now_ms))
            .await
    }

    async fn clear_login_attempts(&self, keys: &[String]) -> StoreResult<()> {
        let keys = keys.to_vec();
        self.write(move |conn| users::clear_login_attempts(conn, &keys))
            .await
    }

    async fn record_audit(&self, entry: NewAuditEntry) -> StoreResult<()> {
        self.write(move |conn| access::record_audit(conn, &entry))
            .await
    }

    async fn list_audit(&self, limit: u32, before_id: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
        self.write(move |conn| access::list_audit(conn, limit, before_id))
            .await
    }

    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey> {
        self.write(move |conn| access::create_api_key(conn, &new))
            .await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.write(|conn| access::list_api_keys(conn)).await
    }

    async fn revoke_api_key(&self, id: i64) -> StoreResult<ApiKey> {
        self.write(move |conn| access::revoke_api_key(conn, id))
            .await
    }

    async fn api_key_user(
        &self,
        token_hash: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<(ApiKey, User)>> {
        let token_hash = token_hash.to_vec();
        self.write(move |conn| access::api_key_user(conn, &token_hash, now_ms))
            .await
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
        self.read(move |conn| queries::get_interaction(conn, id))
            .await
    }

    async fn traces(&self, query: &TraceQuery) -> StoreResult<TracePage> {
        let query = query.clone();
        self.read(move |conn| traces::traces(conn, &query)).await
    }

    fn export_traces(
        &self,
        filter: TraceFilter,
        sort: TraceSort,
        order: SortOrder,
    ) -> tokio::sync::mpsc::Receiver<StoreResult<Vec<Interaction>>> {
        // A few batches in flight: the reader stays ahead of the writer without the export
        // ever holding much more than one batch per slot.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let path = self.inner.path.clone();
        // Its own connection, so a long export never holds one the dashboard's queries need.
        tokio::task::spawn_blocking(move || match connection::open_reader(&path) {
            Ok(conn) => traces::export(&conn, &filter, sort, order, &tx),
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
            }
        });
        rx
    }

    async fn count_interactions(&self, scope: &Scope) -> StoreResult<u64> {
        let scope = scope.clone();
        self.read(move |conn| queries::count_interactions(conn, &scope))
            .await
    }

    async fn bodies(
        &self,
        interaction_ids: Vec<i64>,
    ) -> StoreResult<std::collections::HashMap<i64, Bodies>> {
        self.read(move |conn| governance::bodies(conn, &interaction_ids))
            .await
    }

    async fn store_bodies(&self, bodies: Vec<(i64, IntegrationId, Bodies)>) -> StoreResult<()> {
        self.write(move |conn| governance::store_bodies(conn, &bodies))
            .await
    }

    async fn prune_bodies(&self, now_ms: i64) -> StoreResult<u64> {
        self.write(move |conn| governance::prune_bodies(conn, now_ms))
            .await
    }

    async fn delete_interactions_before(&self, before_ms: i64, batch: u32) -> StoreResult<u64> {
        self.write(move |conn| governance::delete_interactions_before(conn, before_ms, batch))
            .await
    }

    async fn interactions_after(&self, after_id: i64, limit: u32) -> StoreResult<Vec<Interaction>> {
        self.read(move |conn| governance::interactions_after(conn, after_id, limit))
            .await
    }

    async fn minute_spend(
        &self,
        integration_id: IntegrationId,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<MinuteSpend>> {
        self.read(move |conn| governance::minute_spend(conn, integration_id, from_ms, to_ms))
            .await
    }

    async fn create_policy(&self, new: NewPolicy) -> StoreResult<Policy> {
        self.write(move |conn| governance::create_policy(conn, &new))
            .await
    }

    async fn list_policies(&self) -> StoreResult<Vec<Policy>> {
        self.read(governance::list_policies).await
    }

    async fn get_policy(&self, id: PolicyId) -> StoreResult<Policy> {
        self.read(move |conn| governance::get_policy(conn, id))
            .await
    }

    async fn update_policy(&self, id: PolicyId, patch: PolicyPatch) -> StoreResult<Policy> {
        self.write(move |conn| governance::update_policy(conn, id, &patch))
            .await
    }

    async fn quarantine_policy(
        &self,
        id: PolicyId,
        version: i64,
        reason: &str,
        event: OutgoingEvent,
    ) -> StoreResult<Option<Policy>> {
        let reason = reason.to_owned();
        self.write(move |conn| governance::quarantine_policy(conn, id, version, &reason, &event))
            .await
    }

    async fn delete_policy(&self, id: PolicyId) -> StoreResult<()> {
        self.write(move |conn| governance::delete_policy(conn, id))
            .await
    }

    async fn policy_versions(&self, id: PolicyId) -> StoreResult<Vec<PolicyVersion>> {
        self.read(move |conn| governance::policy_versions(conn, id))
            .await
    }

    async fn install_builtins(&self, builtins: Vec<NewPolicy>) -> StoreResult<Vec<Policy>> {
        self.write(move |conn| governance::install_builtins(conn, &builtins))
            .await
    }

    async fn record_evaluations(
        &self,
        violations: Vec<NewViolation>,
        cursor: Option<i64>,
    ) -> StoreResult<Vec<i64>> {
        self.write(move |conn| governance::record_evaluations(conn, &violations, cursor))
            .await
    }

    async fn policy_progress(&self) -> StoreResult<PolicyProgress> {
        self.read(governance::policy_progress).await
    }

    async fn violations(&self, query: &ViolationQuery) -> StoreResult<ViolationPage> {
        let query = query.clone();
        self.read(move |conn| governance::violations(conn, &query))
            .await
    }

    async fn get_violation(&self, id: i64) -> StoreResult<Violation> {
        self.read(move |conn| governance::get_violation(conn, id))
            .await
    }

    async fn update_violations(
        &self,
        ids: Vec<i64>,
        status: ViolationStatus,
        notes: Option<String>,
    ) -> StoreResult<Vec<Violation>> {
        self.write(move |conn| governance::update_violations(conn, &ids, status, notes.as_deref()))
            .await
    }

    async fn violation_counts(
        &self,
        scope: &Scope,
    ) -> StoreResult<Vec<(Severity, ViolationStatus, u64)>> {
        let scope = scope.clone();
        self.read(move |conn| governance::violation_counts(conn, &scope))
            .await
    }

    async fn violations_after(&self, after_id: i64, limit: u32) -> StoreResult<Vec<Violation>> {
        self.read(move |conn| governance::violations_after(conn, after_id, limit))
            .await
    }

    async fn list_model_prices(&self) -> StoreResult<Vec<ModelPrice>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT model, input_per_1k, output_per_1k, updated_at FROM model_prices \
                     ORDER BY model",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(ModelPrice {
                        model: r.get(0)?,
                        input_per_1k: r.get(1)?,
                        output_per_1k: r.get(2)?,
                        updated_at_ms: r.get(3)?,
                    })
                })
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            Ok(rows)
        })
        .await
    }

    async fn set_model_price(
        &self,
        model: &str,
        input_per_1k: f64,
        output_per_1k: f64,
    ) -> StoreResult<ModelPrice> {
        let model = model.to_owned();
        self.write(move |conn| {
            let now = now_ms();
            conn.execute(
                "INSERT INTO model_prices (model, input_per_1k, output_per_1k, updated_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (model) DO UPDATE SET \
                 input_per_1k = excluded.input_per_1k, output_per_1k = excluded.output_per_1k, \
                 updated_at = excluded.updated_at",
                params![model, input_per_1k, output_per_1k, now],
            )
            .map_err(db_err)?;
            Ok(ModelPrice {
                model,
                input_per_1k,
                output_per_1k,
                updated_at_ms: now,
            })
        })
        .await
    }

    async fn delete_model_price(&self, model: &str) -> StoreResult<()> {
        let model = model.to_owned();
        self.write(move |conn| {
            let deleted = conn
                .execute("DELETE FROM model_prices WHERE model = ?1", [&model])
                .map_err(db_err)?;
            if deleted == 0 {
                return Err(not_found(format!("a price for {model:?}")));
            }
            Ok(())
        })
        .await
    }

    async fn create_webhook(&self, new: NewWebhook) -> StoreResult<Webhook> {
        self.write(move |conn| webhooks::create_webhook(conn, &new))
            .await
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.read(webhooks::list_webhooks).await
    }

    async fn get_webhook(&self, id: WebhookId) -> StoreResult<Webhook> {
        self.read(move |conn| webhooks::get_webhook(conn, id)).await
    }

    async fn update_webhook(&self, id: WebhookId, patch: WebhookPatch) -> StoreResult<Webhook> {
        self.write(move |conn| webhooks::update_webhook(conn, id, &patch))
            .await
    }

    async fn delete_webhook(&self, id: WebhookId) -> StoreResult<()> {
        self.write(move |conn| webhooks::delete_webhook(conn, id))
            .await
    }

    async fn event_progress(&self) -> StoreResult<EventProgress> {
        self.read(webhooks::event_progress).await
    }

    async fn sync_runs_finished_after(
        &self,
        after: (i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<SyncRun>> {
        self.read(move |conn| webhooks::sync_runs_finished_after(conn, after, limit))
            .await
    }

    async fn enqueue_events(
        &self,
        events: Vec<OutgoingEvent>,
        from: EventProgress,
        progress: EventProgress,
    ) -> StoreResult<u64> {
        self.write(move |conn| webhooks::enqueue_events(conn, &events, &from, &progress))
            .await
    }

    async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
        claim_until_ms: i64,
    ) -> StoreResult<Vec<(Delivery, Webhook)>> {
        self.write(move |conn| webhooks::due_deliveries(conn, now_ms, limit, claim_until_ms))
            .await
    }

    async fn record_delivery(
        &self,
        id: i64,
        attempt: DeliveryAttempt,
        disable_after: i64,
    ) -> StoreResult<()> {
        self.write(move |conn| webhooks::record_delivery(conn, id, &attempt, disable_after))
            .await
    }

    async fn list_deliveries(
        &self,
        webhook_id: WebhookId,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        self.read(move |conn| webhooks::list_deliveries(conn, webhook_id, limit))
            .await
    }
}
