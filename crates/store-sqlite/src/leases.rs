//! Leases: which process syncs an integration or runs a background worker, until when.

use langguard_store::{
    sync_lease_name, IntegrationId, StoreResult, SyncClaim, SyncRunStatus, SyncTrigger,
    SYNC_ABANDONED,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::{db_err, get_sync_run_on, now_ms};

/// Takes or renews a lease; true when `holder` has it. A holder that renews keeps the run its
/// lease covers; one that takes an expired lease over starts without one.
pub(crate) fn acquire(
    conn: &Connection,
    name: &str,
    holder: &str,
    ttl_ms: i64,
) -> StoreResult<bool> {
    let now = now_ms();
    let changed = conn
        .execute(
            "INSERT INTO leases (name, holder, run_id, expires_at) VALUES (?1, ?2, NULL, ?3 + ?4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at, \
             run_id = CASE WHEN leases.holder = excluded.holder THEN leases.run_id END \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= ?3",
            params![name, holder, now, ttl_ms],
        )
        .map_err(db_err)?;
    Ok(changed == 1)
}

pub(crate) fn renew(conn: &Connection, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
    let changed = conn
        .execute(
            "UPDATE leases SET expires_at = ?3 + ?4 WHERE name = ?1 AND holder = ?2 \
             AND expires_at > ?3",
            params![name, holder, now_ms(), ttl_ms],
        )
        .map_err(db_err)?;
    Ok(changed == 1)
}

pub(crate) fn release(conn: &Connection, name: &str, holder: &str) -> StoreResult<()> {
    conn.execute(
        "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
        params![name, holder],
    )
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn claim_sync(
    conn: &mut Connection,
    id: IntegrationId,
    trigger: SyncTrigger,
    holder: &str,
    ttl_ms: i64,
) -> StoreResult<SyncClaim> {
    let name = sync_lease_name(id);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let now = now_ms();
    let current: Option<(String, Option<i64>, i64)> = tx
        .query_row(
            "SELECT holder, run_id, expires_at FROM leases WHERE name = ?1",
            [&name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db_err)?;
    if let Some((holder, run_id, _)) = current.filter(|(_, _, expires_at)| *expires_at > now) {
        return Ok(SyncClaim::Busy { run_id, holder });
    }
    // Free or expired: whatever run the last holder left behind is over.
    tx.execute(
        "UPDATE sync_runs SET status = 'failed', finished_at = ?1, error = ?2 \
         WHERE integration_id = ?3 AND status IN ('running', 'queued')",
        params![now, SYNC_ABANDONED, id],
    )
    .map_err(db_err)?;
    tx.execute(
        "INSERT INTO sync_runs (integration_id, trigger, status, started_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![id, trigger.as_str(), SyncRunStatus::Running.as_str(), now],
    )
    .map_err(db_err)?;
    let run_id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO leases (name, holder, run_id, expires_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, run_id = excluded.run_id, \
         expires_at = excluded.expires_at",
        params![name, holder, run_id, now + ttl_ms],
    )
    .map_err(db_err)?;
    let run = get_sync_run_on(&tx, run_id)?;
    tx.commit().map_err(db_err)?;
    Ok(SyncClaim::Claimed(run))
}

/// Fails runs still `running` or `queued` that no live lease covers.
pub(crate) fn fail_abandoned(conn: &Connection, reason: &str) -> StoreResult<u64> {
    let now = now_ms();
    let failed = conn
        .execute(
            "UPDATE sync_runs SET status = 'failed', finished_at = ?1, error = ?2 \
             WHERE status IN ('running', 'queued') AND id NOT IN \
             (SELECT run_id FROM leases WHERE run_id IS NOT NULL AND expires_at > ?1)",
            params![now, reason],
        )
        .map_err(db_err)?;
    Ok(failed as u64)
}
