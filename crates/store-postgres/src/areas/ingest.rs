//! What comes in and what goes: imported logs with their rollups and cursor, fetched bodies, retention.

use async_trait::async_trait;
use langguard_store::*;

use crate::records::RowExt;
use crate::{db_err, ingest, PgStore};

#[async_trait]
impl IngestStore for PgStore {
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

    async fn set_gateway_source(
        &self,
        id: IntegrationId,
        gateway: &str,
        source: IngestSource,
    ) -> StoreResult<GatewayState> {
        ingest::set_gateway_source(&mut self.client().await?, id, gateway, source).await
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
