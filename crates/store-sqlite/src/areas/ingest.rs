//! What comes in and what goes: imported logs with their rollups and cursor, fetched bodies, retention.

use async_trait::async_trait;
use langguard_store::*;
use rusqlite::params;

use crate::{db_err, ingest, SqliteStore};

#[async_trait]
impl IngestStore for SqliteStore {
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

    async fn ingest_pushed(
        &self,
        id: IntegrationId,
        gateway: &str,
        source: IngestSource,
        batch: Vec<PushedInteraction>,
    ) -> StoreResult<IngestOutcome> {
        let gateway = gateway.to_owned();
        self.write(move |conn| ingest::ingest_pushed(conn, id, &gateway, source, batch))
            .await
    }

    async fn set_gateway_source(
        &self,
        id: IntegrationId,
        gateway: &str,
        source: IngestSource,
    ) -> StoreResult<GatewayState> {
        let gateway = gateway.to_owned();
        self.write(move |conn| ingest::set_gateway_source(conn, id, &gateway, source))
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

    async fn store_bodies(&self, bodies: Vec<(i64, IntegrationId, Bodies)>) -> StoreResult<()> {
        self.write(move |conn| crate::bodies::store_bodies(conn, &bodies))
            .await
    }

    async fn prune_bodies(&self, now_ms: i64) -> StoreResult<u64> {
        self.write(move |conn| crate::bodies::prune_bodies(conn, now_ms))
            .await
    }

    async fn delete_interactions_before(&self, before_ms: i64, batch: u32) -> StoreResult<u64> {
        self.write(move |conn| crate::bodies::delete_interactions_before(conn, before_ms, batch))
            .await
    }
}
