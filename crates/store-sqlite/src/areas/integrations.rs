//! Integrations, their gateways and cursors, and sync runs (created by `claim_sync`, never without a lease).

use async_trait::async_trait;
use langguard_store::*;
use rusqlite::{params, OptionalExtension};

use crate::records::{integration_from_row, sync_run_from_row, INTEGRATION_COLUMNS};
use crate::{
    db_err, get_integration_on, get_sync_run_on, leases, not_found, now_ms, save_counts, users,
    webhooks, SqliteStore,
};

#[async_trait]
impl IntegrationStore for SqliteStore {
    async fn create_integration(&self, new: NewIntegration) -> StoreResult<Integration> {
        if new.name.trim().is_empty() {
            return Err(StoreError::Invalid("an integration needs a name".into()));
        }
        self.write(move |conn| {
            let now = now_ms();
            let tx = conn.transaction().map_err(db_err)?;
            let inserted = tx.execute(
                "INSERT INTO integrations (name, account_id, api_token_sealed, enabled, \
                 sync_interval_minutes, lookback_days, trailing_window_minutes, created_at, \
                 updated_at) VALUES (?1, ?2, X'', ?3, ?4, ?5, ?7, ?6, ?6)",
                params![
                    new.name,
                    new.account_id,
                    new.enabled,
                    new.sync_interval_minutes,
                    new.lookback_days,
                    now,
                    new.trailing_window_minutes
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
            crate::areas::people::after_interactions_deleted(&tx)?;
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

    async fn replace_sealed_tokens(&self, swaps: SealedSwaps) -> StoreResult<()> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            webhooks::replace_secrets(&tx, &swaps.webhook_secrets)?;
            super::buckets::replace_secrets(&tx, &swaps.bucket_secrets)?;
            for (column, list) in [
                ("api_token_sealed", &swaps.integration_tokens),
                ("push_private_key_sealed", &swaps.push_keys),
            ] {
                for swap in list {
                    let changed = tx
                        .execute(
                            &format!(
                                "UPDATE integrations SET {column} = ?1 WHERE id = ?2 \
                                 AND {column} = ?3"
                            ),
                            params![swap.new, swap.id, swap.old],
                        )
                        .map_err(db_err)?;
                    if changed == 0 {
                        return Err(swap.changed("integration"));
                    }
                }
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn set_push_key(
        &self,
        id: IntegrationId,
        public_pem: &str,
        private_key: SealFor,
    ) -> StoreResult<Integration> {
        let public_pem = public_pem.to_owned();
        self.write(move |conn| {
            conn.execute(
                "UPDATE integrations SET push_public_key = ?1, push_private_key_sealed = ?2 \
                 WHERE id = ?3 AND push_public_key IS NULL",
                params![public_pem, private_key.seal(id), id],
            )
            .map_err(db_err)?;
            get_integration_on(conn, id)
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
        self.write(move |conn| crate::ingest::list_gateways(conn, id, None))
            .await
    }

    async fn save_coverage(
        &self,
        id: IntegrationId,
        hours: Vec<CoverageHour>,
        checked_at_ms: i64,
        error: Option<String>,
        events: Vec<OutgoingEvent>,
    ) -> StoreResult<()> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            {
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO coverage_hours (integration_id, gateway, hour_ms, cloudflare, \
                         stored, rereads, checked_at, degraded_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                         ON CONFLICT (integration_id, gateway, hour_ms) DO UPDATE SET \
                         cloudflare = excluded.cloudflare, stored = excluded.stored, \
                         rereads = excluded.rereads, checked_at = excluded.checked_at, \
                         degraded_at = excluded.degraded_at",
                    )
                    .map_err(db_err)?;
                for h in &hours {
                    upsert
                        .execute(params![
                            id,
                            h.gateway,
                            h.hour_ms,
                            h.cloudflare,
                            h.stored,
                            h.rereads,
                            h.checked_at_ms,
                            h.degraded_at_ms
                        ])
                        .map_err(db_err)?;
                }
            }
            tx.execute(
                "UPDATE integrations SET coverage_checked_at = ?2, coverage_error = ?3 WHERE id = ?1",
                params![id, checked_at_ms, error],
            )
            .map_err(db_err)?;
            crate::webhooks::insert_deliveries(&tx, &events, now_ms())?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn coverage_hours(
        &self,
        id: IntegrationId,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<CoverageHour>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT gateway, hour_ms, cloudflare, stored, rereads, checked_at, degraded_at \
                     FROM coverage_hours WHERE integration_id = ?1 AND hour_ms >= ?2 \
                     AND hour_ms < ?3 ORDER BY hour_ms, gateway",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![id, from_ms, to_ms], |row| {
                    Ok(CoverageHour {
                        gateway: row.get(0)?,
                        hour_ms: row.get(1)?,
                        cloudflare: row.get(2)?,
                        stored: row.get(3)?,
                        rereads: row.get(4)?,
                        checked_at_ms: row.get(5)?,
                        degraded_at_ms: row.get(6)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
        .await
    }

    async fn widen_late_window(
        &self,
        id: IntegrationId,
        gateway: &str,
        window_ms: i64,
    ) -> StoreResult<()> {
        let gateway = gateway.to_owned();
        self.write(move |conn| {
            conn.execute(
                "UPDATE gateways SET late_window_ms = ?3 WHERE integration_id = ?1 \
                 AND gateway_id = ?2 AND (late_window_ms IS NULL OR late_window_ms < ?3)",
                params![id, gateway, window_ms],
            )
            .map(|_| ())
            .map_err(db_err)
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
}
