//! The embedded SQLite backend of [`Store`]: WAL mode, migrations applied at open, one writer
//! connection (SQLite has one writer anyway; a single connection turns lock contention into an
//! orderly queue) and a small pool of readers.

mod ingest;
mod queries;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use langguard_store::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound { what: "row".into() },
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict {
            what: d.message().to_owned(),
        },
        _ => StoreError::Database(Box::new(e)),
    }
}

pub(crate) fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(now).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at a `sqlite://path` URL or a plain path, and
    /// applies pending migrations.
    pub async fn open(url_or_path: &str) -> StoreResult<Self> {
        let options = if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path)
                .map_err(|e| StoreError::Invalid(format!("bad SQLite URL {url_or_path:?}: {e}")))?
        } else {
            SqliteConnectOptions::new().filename(Path::new(url_or_path))
        }
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL is durable across process crashes in WAL mode (only an OS crash can lose the
        // last commits), which is what an importer that re-reads a window needs.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30))
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "memory");

        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(db_err)?;
        MIGRATIONS
            .run(&writer)
            .await
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(db_err)?;
        Ok(Self { writer, reader })
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

fn integration_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Integration> {
    let status: String = row.get("status");
    Ok(Integration {
        id: row.get("id"),
        kind: row.get("kind"),
        name: row.get("name"),
        account_id: row.get("account_id"),
        sealed_api_token: row.get("api_token_sealed"),
        enabled: row.get("enabled"),
        sync_interval_minutes: row.get("sync_interval_minutes"),
        lookback_days: row.get("lookback_days"),
        status: IntegrationStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("integration status {status:?}")))?,
        status_message: row.get("status_message"),
        last_sync_at_ms: row.get("last_sync_at"),
        interactions_synced: row.get("interactions_synced"),
        created_at_ms: row.get("created_at"),
    })
}

fn sync_run_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<SyncRun> {
    let trigger: String = row.get("trigger");
    let status: String = row.get("status");
    Ok(SyncRun {
        id: row.get("id"),
        integration_id: row.get("integration_id"),
        trigger: SyncTrigger::parse(&trigger)
            .ok_or_else(|| StoreError::Corrupt(format!("sync trigger {trigger:?}")))?,
        status: SyncRunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("sync status {status:?}")))?,
        started_at_ms: row.get("started_at"),
        finished_at_ms: row.get("finished_at"),
        counts: SyncCounts {
            gateways: row.get("gateways"),
            api_calls: row.get("api_calls"),
            items_fetched: row.get("items_fetched"),
            items_ingested: row.get("items_ingested"),
            duplicates_skipped: row.get("duplicates_skipped"),
            rate_limit_waits: row.get("rate_limit_waits"),
            retries: row.get("retries"),
        },
        error: row.get("error"),
        hint: row.get("hint"),
    })
}

const INTEGRATION_COLUMNS: &str = "id, kind, name, account_id, api_token_sealed, enabled, \
    sync_interval_minutes, lookback_days, status, status_message, last_sync_at, \
    interactions_synced, created_at";

#[async_trait]
impl Store for SqliteStore {
    async fn create_integration(&self, new: NewIntegration) -> StoreResult<Integration> {
        if new.name.trim().is_empty() {
            return Err(StoreError::Invalid("an integration needs a name".into()));
        }
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO integrations (name, account_id, api_token_sealed, enabled, \
             sync_interval_minutes, lookback_days, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.name)
        .bind(&new.account_id)
        .bind(&new.sealed_api_token)
        .bind(new.enabled)
        .bind(new.sync_interval_minutes)
        .bind(new.lookback_days)
        .bind(now)
        .bind(now)
        .fetch_one(&self.writer)
        .await
        .map_err(|e| match db_err(e) {
            StoreError::Conflict { .. } => StoreError::Conflict {
                what: format!("an integration named {:?}", new.name),
            },
            other => other,
        })?;
        self.get_integration(id).await
    }

    async fn list_integrations(&self) -> StoreResult<Vec<Integration>> {
        let rows = sqlx::query(&format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations ORDER BY name"
        ))
        .fetch_all(&self.writer)
        .await
        .map_err(db_err)?;
        rows.iter().map(integration_from_row).collect()
    }

    async fn get_integration(&self, id: IntegrationId) -> StoreResult<Integration> {
        let row = sqlx::query(&format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.writer)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("integration {id}"),
        })?;
        integration_from_row(&row)
    }

    async fn find_integration_by_name(&self, name: &str) -> StoreResult<Option<Integration>> {
        let row = sqlx::query(&format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE name = ?"
        ))
        .bind(name)
        .fetch_optional(&self.writer)
        .await
        .map_err(db_err)?;
        row.as_ref().map(integration_from_row).transpose()
    }

    async fn delete_integration(&self, id: IntegrationId) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for sql in [
            "DELETE FROM interactions WHERE integration_id = ?",
            "DELETE FROM rollups_minute WHERE integration_id = ?",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let deleted = sqlx::query("DELETE FROM integrations WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound {
                what: format!("integration {id}"),
            });
        }
        tx.commit().await.map_err(db_err)
    }

    async fn set_integration_status(
        &self,
        id: IntegrationId,
        status: IntegrationStatus,
        message: Option<&str>,
    ) -> StoreResult<()> {
        let now = now_ms();
        let changed = sqlx::query(
            "UPDATE integrations SET status = ?, status_message = ?, updated_at = ?, \
             last_sync_at = CASE WHEN ? IN ('connected', 'warning', 'failed') THEN ? ELSE last_sync_at END \
             WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(message)
        .bind(now)
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(db_err)?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: format!("integration {id}"),
            });
        }
        Ok(())
    }

    async fn upsert_gateways(&self, id: IntegrationId, gateway_ids: &[String]) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for gateway in gateway_ids {
            sqlx::query(
                "INSERT INTO gateways (integration_id, gateway_id, discovered_at) VALUES (?, ?, ?) \
                 ON CONFLICT (integration_id, gateway_id) DO NOTHING",
            )
            .bind(id)
            .bind(gateway)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn list_gateways(&self, id: IntegrationId) -> StoreResult<Vec<GatewayState>> {
        let rows = sqlx::query(
            "SELECT gateway_id, cursor_ms, last_synced_at FROM gateways \
             WHERE integration_id = ? ORDER BY gateway_id",
        )
        .bind(id)
        .fetch_all(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| GatewayState {
                gateway_id: r.get("gateway_id"),
                cursor_ms: r.get("cursor_ms"),
                last_synced_at_ms: r.get("last_synced_at"),
            })
            .collect())
    }

    async fn ingest_batch(
        &self,
        id: IntegrationId,
        gateway: &str,
        batch: &[NewInteraction],
        cursor_ms: Option<i64>,
    ) -> StoreResult<IngestOutcome> {
        ingest::ingest_batch(&self.writer, id, gateway, batch, cursor_ms).await
    }

    async fn count_gateway_interactions(
        &self,
        id: IntegrationId,
        gateway: &str,
        after_ms: i64,
        until_ms: i64,
    ) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM interactions WHERE integration_id = ? AND gateway = ? \
             AND created_at > ? AND created_at <= ?",
        )
        .bind(id)
        .bind(gateway)
        .bind(after_ms)
        .bind(until_ms)
        .fetch_one(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(n.max(0) as u64)
    }

    async fn create_sync_run(
        &self,
        id: IntegrationId,
        trigger: SyncTrigger,
        status: SyncRunStatus,
    ) -> StoreResult<SyncRun> {
        let run: i64 = sqlx::query_scalar(
            "INSERT INTO sync_runs (integration_id, trigger, status, started_at) \
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(id)
        .bind(trigger.as_str())
        .bind(status.as_str())
        .bind(now_ms())
        .fetch_one(&self.writer)
        .await
        .map_err(db_err)?;
        self.get_sync_run(run).await
    }

    async fn mark_sync_run_running(&self, run: SyncRunId) -> StoreResult<()> {
        sqlx::query("UPDATE sync_runs SET status = 'running', started_at = ? WHERE id = ?")
            .bind(now_ms())
            .bind(run)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn update_sync_run_counts(&self, run: SyncRunId, c: &SyncCounts) -> StoreResult<()> {
        sqlx::query(
            "UPDATE sync_runs SET gateways = ?, api_calls = ?, items_fetched = ?, \
             items_ingested = ?, duplicates_skipped = ?, rate_limit_waits = ?, retries = ? \
             WHERE id = ?",
        )
        .bind(c.gateways)
        .bind(c.api_calls)
        .bind(c.items_fetched)
        .bind(c.items_ingested)
        .bind(c.duplicates_skipped)
        .bind(c.rate_limit_waits)
        .bind(c.retries)
        .bind(run)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn finish_sync_run(&self, run: SyncRunId, outcome: &SyncRunOutcome) -> StoreResult<()> {
        self.update_sync_run_counts(run, &outcome.counts).await?;
        sqlx::query(
            "UPDATE sync_runs SET status = ?, finished_at = ?, error = ?, hint = ? WHERE id = ?",
        )
        .bind(outcome.status.as_str())
        .bind(now_ms())
        .bind(&outcome.error)
        .bind(&outcome.hint)
        .bind(run)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_sync_run(&self, run: SyncRunId) -> StoreResult<SyncRun> {
        let row = sqlx::query("SELECT * FROM sync_runs WHERE id = ?")
            .bind(run)
            .fetch_optional(&self.writer)
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("sync run {run}"),
            })?;
        sync_run_from_row(&row)
    }

    async fn list_sync_runs(&self, id: IntegrationId, limit: u32) -> StoreResult<Vec<SyncRun>> {
        let rows = sqlx::query(
            "SELECT * FROM sync_runs WHERE integration_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(db_err)?;
        rows.iter().map(sync_run_from_row).collect()
    }

    async fn fail_abandoned_sync_runs(&self, reason: &str) -> StoreResult<u64> {
        let n = sqlx::query(
            "UPDATE sync_runs SET status = 'failed', finished_at = ?, error = ? \
             WHERE status IN ('running', 'queued')",
        )
        .bind(now_ms())
        .bind(reason)
        .execute(&self.writer)
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok(n)
    }

    async fn metrics(&self, scope: &Scope) -> StoreResult<Metrics> {
        queries::metrics(&self.reader, scope).await
    }

    async fn metrics_by(&self, scope: &Scope, group_by: GroupBy) -> StoreResult<Vec<GroupMetrics>> {
        queries::metrics_by(&self.reader, scope, group_by).await
    }

    async fn traces(&self, query: &TraceQuery) -> StoreResult<TracePage> {
        queries::traces(&self.reader, query).await
    }

    async fn count_interactions(&self, scope: &Scope) -> StoreResult<u64> {
        queries::count_interactions(&self.reader, scope).await
    }
}
