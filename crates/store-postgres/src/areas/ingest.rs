//! What comes in and what goes: imported logs with their rollups and cursor, fetched bodies, retention.

use async_trait::async_trait;
use langguard_store::*;

use crate::records::RowExt;
use crate::{db_err, ingest, PgStore};

#[async_trait]
impl IngestStore for PgStore {
    async fn record_push(&self, id: IntegrationId, push: PushMinute) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        tx.execute(
            "INSERT INTO push_minutes AS p (integration_id, minute, source, requests, received, \
             stored, duplicates, other_source, rejected) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (integration_id, minute, source) DO UPDATE SET \
             requests = p.requests + excluded.requests, received = p.received + excluded.received, \
             stored = p.stored + excluded.stored, duplicates = p.duplicates + excluded.duplicates, \
             other_source = p.other_source + excluded.other_source, \
             rejected = p.rejected + excluded.rejected",
            &[
                &id,
                &push.minute_ms,
                &push.source,
                &push.requests,
                &push.received,
                &push.stored,
                &push.duplicates,
                &push.other_source,
                &push.rejected,
            ],
        )
        .await
        .map_err(db_err)?;
        tx.execute(
            "DELETE FROM push_minutes WHERE integration_id = $1 AND minute < $2",
            &[&id, &(push.minute_ms - PUSH_HISTORY_DAYS * 86_400_000)],
        )
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn push_history(&self, id: IntegrationId, limit: u32) -> StoreResult<Vec<PushMinute>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT minute, source, requests, received, stored, duplicates, other_source, \
                 rejected FROM push_minutes WHERE integration_id = $1 \
                 ORDER BY minute DESC, source LIMIT $2",
                &[&id, &i64::from(limit)],
            )
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(PushMinute {
                    minute_ms: r.at(0)?,
                    source: r.at(1)?,
                    requests: r.at(2)?,
                    received: r.at(3)?,
                    stored: r.at(4)?,
                    duplicates: r.at(5)?,
                    other_source: r.at(6)?,
                    rejected: r.at(7)?,
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

    async fn ingest_pushed(
        &self,
        id: IntegrationId,
        gateway: &str,
        source: IngestSource,
        batch: Vec<PushedInteraction>,
    ) -> StoreResult<IngestOutcome> {
        ingest::ingest_pushed(&mut self.client().await?, id, gateway, source, batch).await
    }

    async fn refresh_details(
        &self,
        id: IntegrationId,
        gateway: &str,
        updates: Vec<(String, LogDetails)>,
    ) -> StoreResult<u64> {
        ingest::refresh_details(&self.client().await?, id, gateway, updates).await
    }

    async fn set_gateway_source(
        &self,
        id: IntegrationId,
        gateway: &str,
        source: IngestSource,
        handover: Handover,
    ) -> StoreResult<GatewayState> {
        ingest::set_gateway_source(&mut self.client().await?, id, gateway, source, handover).await
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

    async fn store_bodies(&self, bodies: Vec<(i64, IntegrationId, Bodies)>) -> StoreResult<()> {
        crate::bodies::store_bodies(&mut self.client().await?, &bodies).await
    }

    async fn prune_bodies(&self, now_ms: i64) -> StoreResult<u64> {
        crate::bodies::prune_bodies(&mut self.client().await?, now_ms).await
    }

    async fn delete_interactions_before(&self, before_ms: i64, batch: u32) -> StoreResult<u64> {
        crate::bodies::delete_interactions_before(&mut self.client().await?, before_ms, batch).await
    }
}
