//! Leases: which instance syncs an integration or runs a background worker, until when.
//! Expiry is judged by the database's clock, so instances' clocks needn't agree.

use deadpool_postgres::{Client, GenericClient};
use langguard_store::{
    sync_lease_name, IntegrationId, StoreResult, SyncClaim, SyncRunStatus, SyncTrigger,
    SYNC_ABANDONED,
};

use crate::records::RowExt;
use crate::runs::create_sync_run;
use crate::{db_err, locks, DB_NOW_MS, FINISHED_AT};

/// Takes or renews a lease; true when `holder` has it. A holder that renews keeps the run its
/// lease covers; one that takes an expired lease over starts without one.
pub(crate) async fn acquire(
    c: &impl GenericClient,
    name: &str,
    holder: &str,
    ttl_ms: i64,
) -> StoreResult<bool> {
    let changed = c
        .execute(
            &format!(
                "INSERT INTO leases (name, holder, run_id, expires_at) \
                 VALUES ($1, $2, NULL, {DB_NOW_MS} + $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at, \
                 run_id = CASE WHEN leases.holder = excluded.holder THEN leases.run_id END \
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= {DB_NOW_MS}"
            ),
            &[&name, &holder, &ttl_ms],
        )
        .await
        .map_err(db_err)?;
    Ok(changed == 1)
}

pub(crate) async fn renew(c: &Client, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
    let changed = c
        .execute(
            &format!(
                "UPDATE leases SET expires_at = {DB_NOW_MS} + $3::bigint \
                 WHERE name = $1 AND holder = $2 AND expires_at > {DB_NOW_MS}"
            ),
            &[&name, &holder, &ttl_ms],
        )
        .await
        .map_err(db_err)?;
    Ok(changed == 1)
}

pub(crate) async fn release(c: &Client, name: &str, holder: &str) -> StoreResult<()> {
    c.execute(
        "DELETE FROM leases WHERE name = $1 AND holder = $2",
        &[&name, &holder],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn claim_sync(
    c: &mut Client,
    id: IntegrationId,
    trigger: SyncTrigger,
    holder: &str,
    ttl_ms: i64,
) -> StoreResult<SyncClaim> {
    let name = sync_lease_name(id);
    let tx = c.transaction().await.map_err(db_err)?;
    // The lease row may not exist yet: a row lock can't order two first claims, an advisory
    // lock on the integration can.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&name],
    )
    .await
    .map_err(db_err)?;
    let live = tx
        .query_opt(
            &format!(
                "SELECT run_id, holder FROM leases WHERE name = $1 AND expires_at > {DB_NOW_MS}"
            ),
            &[&name],
        )
        .await
        .map_err(db_err)?;
    if let Some(row) = live {
        return Ok(SyncClaim::Busy {
            run_id: row.at(0)?,
            holder: row.at(1)?,
        });
    }
    // Free or expired: whatever run the last holder left behind is over.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&locks::RUN_FINISH])
        .await
        .map_err(db_err)?;
    tx.execute(
        &format!(
            "UPDATE sync_runs SET status = 'failed', finished_at = {FINISHED_AT}, error = $1 \
             WHERE integration_id = $2 AND status IN ('running', 'queued')"
        ),
        &[&SYNC_ABANDONED, &id],
    )
    .await
    .map_err(db_err)?;
    let run = create_sync_run(&tx, id, trigger, SyncRunStatus::Running).await?;
    tx.execute(
        &format!(
            "INSERT INTO leases (name, holder, run_id, expires_at) \
             VALUES ($1, $2, $3, {DB_NOW_MS} + $4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             run_id = excluded.run_id, expires_at = excluded.expires_at"
        ),
        &[&name, &holder, &run.id, &ttl_ms],
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(SyncClaim::Claimed(run))
}

/// Fails runs still `running` or `queued` that no live lease covers.
pub(crate) async fn fail_abandoned(c: &mut Client, reason: &str) -> StoreResult<u64> {
    let tx = c.transaction().await.map_err(db_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&locks::RUN_FINISH])
        .await
        .map_err(db_err)?;
    let failed = tx
        .execute(
            &format!(
                "UPDATE sync_runs SET status = 'failed', finished_at = {FINISHED_AT}, error = $1 \
                 WHERE status IN ('running', 'queued') AND id NOT IN \
                 (SELECT run_id FROM leases WHERE run_id IS NOT NULL \
                  AND expires_at > {DB_NOW_MS})"
            ),
            &[&reason],
        )
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(failed)
}
