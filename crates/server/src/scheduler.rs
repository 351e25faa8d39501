//! Syncs each enabled integration when its interval has passed since its last sync, and lists
//! each Logpush bucket for new files every `bucket_poll`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use langguard_store::{BucketId, SyncTrigger};
use langguard_sync::SyncError;
use tokio::sync::watch;

use crate::{now_ms, AppState};

/// How long one instance may hold a bucket's import before another may take it over (a pass
/// that takes longer is not interrupted; the other instance would only re-read files whose
/// records it then finds stored).
const BUCKET_LEASE: Duration = Duration::from_secs(15 * 60);

pub(crate) async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.scheduler_tick);
    let importing: Arc<Mutex<HashSet<BucketId>>> = Arc::default();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {
                if let Err(e) = start_due(&state).await {
                    tracing::warn!(error = %e, "scheduler could not check integrations; trying again next tick");
                }
                if let Err(e) = start_bucket_imports(&state, &importing).await {
                    tracing::warn!(error = %e, "scheduler could not check buckets; trying again next tick");
                }
            }
        }
    }
}

/// Starts a pass over each due bucket that no pass (here or on another instance) is on.
async fn start_bucket_imports(
    state: &AppState,
    importing: &Arc<Mutex<HashSet<BucketId>>>,
) -> anyhow::Result<()> {
    for bucket in langguard_ops::buckets::due(&state.ops, state.config.bucket_poll).await? {
        if !importing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(bucket.id)
        {
            continue;
        }
        let (state, importing) = (state.clone(), importing.clone());
        tokio::spawn(async move {
            let lease = format!("bucket-import:{}", bucket.id);
            let holder = state.ops.engine.holder().to_owned();
            let ttl = i64::try_from(BUCKET_LEASE.as_millis()).unwrap_or(i64::MAX);
            match state.ops.store.acquire_lease(&lease, &holder, ttl).await {
                Ok(true) => {
                    match langguard_ops::buckets::import(&state.ops, &bucket).await {
                        Ok(report) if report.files_imported > 0 => tracing::info!(
                            bucket = %bucket.bucket, files = report.files_imported,
                            records = report.records_stored, "imported Logpush files"
                        ),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(bucket = %bucket.bucket, error = %e, "bucket import failed; the next pass tries again")
                        }
                    }
                    if let Err(e) = state.ops.store.release_lease(&lease, &holder).await {
                        tracing::warn!(error = %e, "could not release a bucket lease");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not take a bucket lease"),
            }
            importing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&bucket.id);
        });
    }
    Ok(())
}

async fn start_due(state: &AppState) -> anyhow::Result<()> {
    let now = now_ms();
    for integration in state.ops.store.list_integrations().await? {
        let due_at = integration
            .last_sync_at_ms
            .map(|last| last + integration.sync_interval_minutes * 60_000);
        if !integration.enabled || due_at.is_some_and(|due| due > now) {
            continue;
        }
        match state
            .ops
            .engine
            .start(integration.id, SyncTrigger::Schedule)
            .await
        {
            Ok(run) => {
                tracing::info!(integration = %integration.name, run = run.id, "scheduled sync started")
            }
            Err(SyncError::AlreadyRunning { .. }) => {}
            Err(e) => {
                tracing::warn!(integration = %integration.name, error = %e, "scheduled sync could not start")
            }
        }
    }
    Ok(())
}
