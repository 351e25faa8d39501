//! Stored request and response bodies, and data retention: what goes, and when.

use std::collections::HashMap;

use deadpool_postgres::{Client, GenericClient};
use langguard_store::*;

use crate::records::RowExt;
use crate::{db_err, locks, now_ms};

pub(crate) async fn bodies(c: &mut Client, ids: &[i64]) -> StoreResult<HashMap<i64, Bodies>> {
    c.query(
        "SELECT interaction_id, request, response FROM interaction_bodies \
         WHERE interaction_id = ANY($1)",
        &[&ids],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(|r| {
        Ok((
            r.at(0)?,
            Bodies {
                request: r.at(1)?,
                response: r.at(2)?,
            },
        ))
    })
    .collect()
}

pub(crate) async fn store_bodies(
    c: &mut Client,
    bodies: &[(i64, IntegrationId, Bodies)],
) -> StoreResult<()> {
    let tx = c.transaction().await.map_err(db_err)?;
    // Row by row, as SQLite's INSERT OR REPLACE: an interaction given twice keeps the last.
    let upsert = tx
        .prepare_cached(
            "INSERT INTO interaction_bodies (interaction_id, integration_id, request, response, \
             fetched_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (interaction_id) DO UPDATE SET integration_id = excluded.integration_id, \
             request = excluded.request, response = excluded.response, \
             fetched_at = excluded.fetched_at",
        )
        .await
        .map_err(db_err)?;
    let now = now_ms();
    for (id, integration, b) in bodies {
        tx.execute(&upsert, &[id, integration, &b.request, &b.response, &now])
            .await
            .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn prune_bodies(c: &mut Client, now: i64) -> StoreResult<u64> {
    c.execute(
        "DELETE FROM interaction_bodies b USING integrations i \
         WHERE i.id = b.integration_id \
         AND b.fetched_at < $1::bigint - i.bodies_retention_days * 86400000",
        &[&now],
    )
    .await
    .map_err(db_err)
}

pub(crate) async fn delete_interactions_before(
    c: &mut Client,
    before_ms: i64,
    batch: u32,
) -> StoreResult<u64> {
    let tx = c.transaction().await.map_err(db_err)?;
    // The policy worker inserts violations of interactions it read earlier: taking its lock
    // orders the two as SQLite's single writer does, so no violation outlives its
    // interaction (an insert after this commit finds the interaction gone; one before it is
    // deleted here).
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&locks::VIOLATIONS])
        .await
        .map_err(db_err)?;
    // The batch: the oldest rows first, along the time index.
    let ids: Vec<i64> = tx
        .query(
            "SELECT id FROM interactions WHERE created_at < $1 ORDER BY created_at, id LIMIT $2",
            &[&before_ms, &i64::from(batch.max(1))],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| r.at(0))
        .collect::<StoreResult<_>>()?;
    if ids.is_empty() {
        return Ok(0);
    }
    tx.execute(
        "DELETE FROM violations WHERE interaction_id = ANY($1)",
        &[&ids],
    )
    .await
    .map_err(db_err)?;
    tx.execute(
        "DELETE FROM interaction_bodies WHERE interaction_id = ANY($1)",
        &[&ids],
    )
    .await
    .map_err(db_err)?;
    let deleted = tx
        .execute("DELETE FROM interactions WHERE id = ANY($1)", &[&ids])
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(deleted)
}
