//! Stored request and response bodies, and data retention: what goes, and when.

use langguard_store::*;
use rusqlite::{params, Connection, OptionalExtension};

use crate::{db_err, now_ms};

pub(crate) fn bodies(
    conn: &Connection,
    ids: &[i64],
) -> StoreResult<std::collections::HashMap<i64, Bodies>> {
    let mut out = std::collections::HashMap::new();
    let mut stmt = conn
        .prepare_cached(
            "SELECT request, response FROM interaction_bodies WHERE interaction_id = ?1",
        )
        .map_err(db_err)?;
    for &id in ids {
        if let Some(bodies) = stmt
            .query_row([id], |r| {
                Ok(Bodies {
                    request: r.get(0)?,
                    response: r.get(1)?,
                })
            })
            .optional()
            .map_err(db_err)?
        {
            out.insert(id, bodies);
        }
    }
    Ok(out)
}

pub(crate) fn store_bodies(
    conn: &mut Connection,
    bodies: &[(i64, IntegrationId, Bodies)],
) -> StoreResult<()> {
    let tx = conn.transaction().map_err(db_err)?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT OR REPLACE INTO interaction_bodies (interaction_id, integration_id, \
                 request, response, fetched_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(db_err)?;
        let now = now_ms();
        for (id, integration, b) in bodies {
            stmt.execute(params![id, integration, b.request, b.response, now])
                .map_err(db_err)?;
        }
    }
    tx.commit().map_err(db_err)
}

pub(crate) fn prune_bodies(conn: &Connection, now: i64) -> StoreResult<u64> {
    let deleted = conn
        .execute(
            "DELETE FROM interaction_bodies WHERE rowid IN (SELECT b.rowid FROM \
             interaction_bodies b JOIN integrations i ON i.id = b.integration_id \
             WHERE b.fetched_at < ?1 - i.bodies_retention_days * 86400000)",
            [now],
        )
        .map_err(db_err)?;
    Ok(deleted as u64)
}

pub(crate) fn delete_interactions_before(
    conn: &mut Connection,
    before_ms: i64,
    batch: u32,
) -> StoreResult<u64> {
    let tx = conn.transaction().map_err(db_err)?;
    // The batch: the oldest rows first, along the time index.
    const OLDEST: &str =
        "SELECT id FROM interactions WHERE created_at < ?1 ORDER BY created_at, id LIMIT ?2";
    let limit = i64::from(batch.max(1));
    tx.execute(
        &format!("DELETE FROM violations WHERE interaction_id IN ({OLDEST})"),
        params![before_ms, limit],
    )
    .map_err(db_err)?;
    tx.execute(
        &format!("DELETE FROM interaction_bodies WHERE interaction_id IN ({OLDEST})"),
        params![before_ms, limit],
    )
    .map_err(db_err)?;
    let deleted = tx
        .execute(
            &format!("DELETE FROM interactions WHERE id IN ({OLDEST})"),
            params![before_ms, limit],
        )
        .map_err(db_err)?;
    crate::areas::people::after_interactions_deleted(&tx)?;
    tx.commit().map_err(db_err)?;
    Ok(deleted as u64)
}
