//! The write path: a batch of one gateway's logs, its rollups and its cursor in one transaction.

use std::collections::HashSet;

use langguard_store::{
    IngestOutcome, IntegrationId, LatencySketch, NewInteraction, RollupDelta, StoreError,
    StoreResult,
};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::{db_err, now_ms};

/// Rows per INSERT statement: 16 columns × 500 stays well under SQLite's 32,766 parameters, and
/// larger statements stopped paying off in the ingest benchmark.
const ROWS_PER_STATEMENT: usize = 500;

pub(crate) async fn ingest_batch(
    writer: &SqlitePool,
    integration_id: IntegrationId,
    gateway: &str,
    batch: &[NewInteraction],
    cursor_ms: Option<i64>,
) -> StoreResult<IngestOutcome> {
    // A log listed twice in one batch (pages shifting under us) is one log.
    let mut seen = HashSet::with_capacity(batch.len());
    let unique: Vec<&NewInteraction> = batch
        .iter()
        .filter(|log| seen.insert(log.log_id.as_str()))
        .collect();

    let imported_at = now_ms();
    let mut tx = writer.begin().await.map_err(db_err)?;
    let mut inserted_ids: HashSet<String> = HashSet::with_capacity(unique.len());
    for chunk in unique.chunks(ROWS_PER_STATEMENT) {
        let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO interactions (integration_id, gateway, log_id, created_at, provider, \
             model, path, status_code, success, cached, duration_ms, tokens_in, tokens_out, \
             cost_usd, cost_source, metadata, imported_at) ",
        );
        insert.push_values(chunk.iter(), |mut row, log| {
            row.push_bind(integration_id)
                .push_bind(gateway)
                .push_bind(&log.log_id)
                .push_bind(log.created_at_ms)
                .push_bind(&log.provider)
                .push_bind(&log.model)
                .push_bind(&log.path)
                .push_bind(log.status_code)
                .push_bind(log.success)
                .push_bind(log.cached)
                .push_bind(log.duration_ms)
                .push_bind(log.tokens_in)
                .push_bind(log.tokens_out)
                .push_bind(log.cost_usd)
                .push_bind(log.cost_source.map(|s| s.as_str()))
                .push_bind(&log.metadata)
                .push_bind(imported_at);
        });
        insert.push(" ON CONFLICT (integration_id, gateway, log_id) DO NOTHING RETURNING log_id");
        let ids: Vec<String> = insert
            .build_query_scalar()
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        inserted_ids.extend(ids);
    }

    // Only rows that were really inserted count towards the rollups.
    let delta = RollupDelta::from_batch(
        integration_id,
        gateway,
        unique
            .iter()
            .copied()
            .filter(|log| inserted_ids.contains(&log.log_id)),
    );
    for (key, add) in &delta.buckets {
        let existing: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT latency_sketch FROM rollups_minute WHERE minute_ms = ? AND integration_id = ? \
             AND gateway = ? AND provider = ? AND model = ?",
        )
        .bind(key.minute_ms)
        .bind(key.integration_id)
        .bind(&key.gateway)
        .bind(&key.provider)
        .bind(&key.model)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let mut sketch = match existing {
            Some(bytes) => LatencySketch::decode(&bytes).map_err(|e| {
                StoreError::Corrupt(format!(
                    "rollup sketch of {} / {} at minute {}: {e}",
                    key.gateway, key.model, key.minute_ms
                ))
            })?,
            None => LatencySketch::new(),
        };
        sketch.merge(&add.latency);
        sqlx::query(
            "INSERT INTO rollups_minute (minute_ms, integration_id, gateway, provider, model, \
             requests, errors, cache_hits, rate_limited, tokens_in, tokens_out, cost_usd, \
             unpriced, duration_ms_sum, latency_sketch) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (minute_ms, integration_id, gateway, provider, model) DO UPDATE SET \
             requests = requests + excluded.requests, errors = errors + excluded.errors, \
             cache_hits = cache_hits + excluded.cache_hits, \
             rate_limited = rate_limited + excluded.rate_limited, \
             tokens_in = tokens_in + excluded.tokens_in, \
             tokens_out = tokens_out + excluded.tokens_out, \
             cost_usd = cost_usd + excluded.cost_usd, unpriced = unpriced + excluded.unpriced, \
             duration_ms_sum = duration_ms_sum + excluded.duration_ms_sum, \
             latency_sketch = excluded.latency_sketch",
        )
        .bind(key.minute_ms)
        .bind(key.integration_id)
        .bind(&key.gateway)
        .bind(&key.provider)
        .bind(&key.model)
        .bind(add.requests)
        .bind(add.errors)
        .bind(add.cache_hits)
        .bind(add.rate_limited)
        .bind(add.tokens_in)
        .bind(add.tokens_out)
        .bind(add.cost_usd)
        .bind(add.unpriced)
        .bind(add.duration_ms_sum)
        .bind(sketch.encode())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }

    let inserted = inserted_ids.len() as u64;
    sqlx::query(
        "INSERT INTO gateways (integration_id, gateway_id, cursor_ms, discovered_at, last_synced_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (integration_id, gateway_id) DO UPDATE SET \
         cursor_ms = CASE WHEN excluded.cursor_ms IS NULL THEN cursor_ms \
                          WHEN cursor_ms IS NULL OR excluded.cursor_ms > cursor_ms THEN excluded.cursor_ms \
                          ELSE cursor_ms END, \
         last_synced_at = excluded.last_synced_at",
    )
    .bind(integration_id)
    .bind(gateway)
    .bind(cursor_ms)
    .bind(imported_at)
    .bind(imported_at)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if inserted > 0 {
        sqlx::query(
            "UPDATE integrations SET interactions_synced = interactions_synced + ? WHERE id = ?",
        )
        .bind(inserted as i64)
        .bind(integration_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(IngestOutcome {
        inserted,
        duplicates: batch.len() as u64 - inserted,
    })
}
