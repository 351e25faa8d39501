//! Integrations, their gateways and cursors, and sync runs (created by `claim_sync`, never without a lease).

use async_trait::async_trait;
use langguard_store::*;

use crate::{db_err, leases, now_ms, runs, webhooks, PgStore};

#[async_trait]
impl IntegrationStore for PgStore {
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

    async fn replace_sealed_tokens(&self, swaps: SealedSwaps) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        webhooks::replace_secrets(&tx, &swaps.webhook_secrets).await?;
        super::buckets::replace_secrets(&tx, &swaps.bucket_secrets).await?;
        for (column, list) in [
            ("api_token_sealed", &swaps.integration_tokens),
            ("push_private_key_sealed", &swaps.push_keys),
        ] {
            for swap in list {
                let changed = tx
                    .execute(
                        &format!(
                            "UPDATE integrations SET {column} = $1 WHERE id = $2 \
                             AND {column} = $3"
                        ),
                        &[&swap.new, &swap.id, &swap.old],
                    )
                    .await
                    .map_err(db_err)?;
                if changed == 0 {
                    return Err(swap.changed("integration"));
                }
            }
        }
        tx.commit().await.map_err(db_err)
    }

    async fn set_push_key(
        &self,
        id: IntegrationId,
        public_pem: &str,
        private_key: SealFor,
    ) -> StoreResult<Integration> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE integrations SET push_public_key = $1, push_private_key_sealed = $2 \
                 WHERE id = $3 AND push_public_key IS NULL",
                &[&public_pem, &private_key.seal(id), &id],
            )
            .await
            .map_err(db_err)?;
        drop(client);
        self.get_integration(id).await
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
        crate::ingest::list_gateways(&self.client().await?, id, None).await
    }

    async fn save_coverage(
        &self,
        id: IntegrationId,
        hours: Vec<CoverageHour>,
        checked_at_ms: i64,
        error: Option<String>,
        events: Vec<OutgoingEvent>,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        {
            let upsert = tx
                .prepare_cached(
                    "INSERT INTO coverage_hours (integration_id, gateway, hour_ms, cloudflare, \
                     stored, rereads, checked_at, degraded_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (integration_id, gateway, hour_ms) DO UPDATE SET \
                     cloudflare = EXCLUDED.cloudflare, stored = EXCLUDED.stored, \
                     rereads = EXCLUDED.rereads, checked_at = EXCLUDED.checked_at, \
                     degraded_at = EXCLUDED.degraded_at",
                )
                .await
                .map_err(db_err)?;
            for h in &hours {
                tx.execute(
                    &upsert,
                    &[
                        &id,
                        &h.gateway,
                        &h.hour_ms,
                        &h.cloudflare,
                        &h.stored,
                        &h.rereads,
                        &h.checked_at_ms,
                        &h.degraded_at_ms,
                    ],
                )
                .await
                .map_err(db_err)?;
            }
        }
        tx.execute(
            "UPDATE integrations SET coverage_checked_at = $2, coverage_error = $3 WHERE id = $1",
            &[&id, &checked_at_ms, &error],
        )
        .await
        .map_err(db_err)?;
        crate::webhooks::insert_deliveries(&tx, &events).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn coverage_hours(
        &self,
        id: IntegrationId,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<CoverageHour>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT gateway, hour_ms, cloudflare, stored, rereads, checked_at, degraded_at \
                 FROM coverage_hours WHERE integration_id = $1 AND hour_ms >= $2 \
                 AND hour_ms < $3 ORDER BY hour_ms, gateway COLLATE \"C\"",
                &[&id, &from_ms, &to_ms],
            )
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                Ok(CoverageHour {
                    gateway: row.try_get(0).map_err(db_err)?,
                    hour_ms: row.try_get(1).map_err(db_err)?,
                    cloudflare: row.try_get(2).map_err(db_err)?,
                    stored: row.try_get(3).map_err(db_err)?,
                    rereads: row.try_get(4).map_err(db_err)?,
                    checked_at_ms: row.try_get(5).map_err(db_err)?,
                    degraded_at_ms: row.try_get(6).map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn widen_late_window(
        &self,
        id: IntegrationId,
        gateway: &str,
        window_ms: i64,
    ) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "UPDATE gateways SET late_window_ms = $3 WHERE integration_id = $1 \
                 AND gateway_id = $2 AND (late_window_ms IS NULL OR late_window_ms < $3)",
                &[&id, &gateway, &window_ms],
            )
            .await
            .map(|_| ())
            .map_err(db_err)
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
}
