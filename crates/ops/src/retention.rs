//! Data retention: interactions older than the configured number of days go, with their
//! bodies and violations, a batch at a time so imports and queries keep their turn at the
//! database. Rollups stay: dashboards keep covering the time the rows did.

use std::sync::Arc;
use std::time::Duration;

use langguard_store::lease::WorkerLease;
use langguard_store::{Store, StoreResult};

/// Rows per delete transaction.
pub const BATCH: u32 = 10_000;
/// How often the server looks for rows past retention.
const EVERY: Duration = Duration::from_secs(3600);

/// Deletes everything older than `days` days; returns how many interactions went.
pub async fn prune(store: &dyn Store, days: u32, now_ms: i64) -> StoreResult<u64> {
    let cutoff = now_ms - i64::from(days) * 86_400_000;
    let mut total = 0;
    loop {
        let deleted = store.delete_interactions_before(cutoff, BATCH).await?;
        total += deleted;
        if deleted < u64::from(BATCH) {
            return Ok(total);
        }
        // Let the importer and readers in between batches.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Prunes once an hour until `stop` turns true.
pub async fn run(
    store: Arc<dyn Store>,
    days: u32,
    mut lease: WorkerLease,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        // Of several instances, the one that gets the lease prunes this hour.
        if lease.hold(store.as_ref()).await {
            match prune(store.as_ref(), days, langguard_clock::now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    interactions = n,
                    days,
                    "deleted interactions past retention"
                ),
                Err(e) => tracing::warn!(error = %e, "retention pass failed; retrying in an hour"),
            }
            lease.release(store.as_ref()).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}
