//! What comes in and what goes: imported logs with their rollups and cursor, fetched bodies, retention.

use async_trait::async_trait;
use langguard_store::*;
use rusqlite::params;

use crate::{db_err, ingest, SqliteStore};

#[async_trait]
impl IngestStore for SqliteStore {
    async fn record_push(&self, id: IntegrationId, push: PushMinute) -> StoreResult<()> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            tx.execute(
                "INSERT INTO push_minutes (integration_id, minute, source, requests, received, \
                 stored, duplicates, other_source, rejected) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (integration_id, minute, source) DO UPDATE SET \
                 requests = requests + excluded.requests, received = received + excluded.received, \
                 stored = stored + excluded.stored, duplicates = duplicates + excluded.duplicates, \
                 other_source = other_source + excluded.other_source, \
                 rejected = rejected + excluded.rejected",
                params![
                    id,
                    push.minute_ms,
                    push.source,
                    push.requests,
                    push.received,
                    push.stored,
                    push.duplicates,
                    push.other_source,
                    push.rejected
                ],
            )
            .map_err(db_err)?;
            tx.execute(
                "DELETE FROM push_minutes WHERE integration_id = ?1 AND minute < ?2",
                params![id, push.minute_ms - PUSH_HISTORY_DAYS * 86_400_000],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn push_history(&self, id: IntegrationId, limit: u32) -> StoreResult<Vec<PushMinute>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT minute, source, requests, received, stored, duplicates, \
                     other_source, rejected FROM push_minutes WHERE integration_id = ?1 \
                     ORDER BY minute DESC, source LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![id, limit], |r| {
                    Ok(PushMinute {
                        minute_ms: r.get(0)?,
                        source: r.get(1)?,
                        requests: r.get(2)?,
                        received: r.get(3)?,
                        stored: r.get(4)?,
                        duplicates: r.get(5)?,
                        other_source: r.get(6)?,
                        rejected: r.get(7)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
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

    async fn refresh_details(
        &self,
        id: IntegrationId,
        gateway: &str,
        updates: Vec<(String, LogDetails)>,
    ) -> StoreResult<u64> {
        let gateway = gateway.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            let changed = ingest::refresh_details(&tx, id, &gateway, updates)?;
            tx.commit().map_err(db_err)?;
            Ok(changed)
        })
        .await
    }

    async fn set_gateway_source(
        &self,
        id: IntegrationId,
        gateway: &str,
        source: IngestSource,
        handover: Handover,
    ) -> StoreResult<GatewayState> {
        let gateway = gateway.to_owned();
        self.write(move |conn| ingest::set_gateway_source(conn, id, &gateway, source, handover))
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
