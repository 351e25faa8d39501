//! Syncs each enabled integration when its interval has passed since its last sync, and lists
//! each Logpush bucket for new files every `bucket_poll`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use langguard_store::SyncTrigger;
use langguard_sync::SyncError;
use tokio::sync::watch;

use crate::{now_ms, AppState};

pub(crate) async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.scheduler_tick);
    let importing = Arc::new(AtomicBool::new(false));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {
                if let Err(e) = start_due(&state).await {
                    tracing::warn!(error = %e, "scheduler could not check integrations; trying again next tick");
                }
                start_bucket_imports(&state, &importing);
            }
        }
    }
}

/// Clears the "a bucket pass runs" flag however the pass ends, a panic included.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Imports the due buckets one after another, in one task at a time per instance (bucket
/// files take writer slots that live pushes need too); each bucket under its own lease, so
/// instances share the work instead of repeating it.
fn start_bucket_imports(state: &AppState, importing: &Arc<AtomicBool>) {
    if importing.swap(true, Ordering::AcqRel) {
        return;
    }
    let running = Running(importing.clone());
    let state = state.clone();
    tokio::spawn(async move {
        let _running = running;
        let due = match langguard_ops::buckets::due(&state.ops, state.config.bucket_poll).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "scheduler could not check buckets; trying again next tick");
                return;
            }
        };
        for bucket in due {
            match langguard_ops::buckets::import(&state.ops, &bucket).await {
                Ok(Some(report)) if report.files_imported > 0 => tracing::info!(
                    bucket = %bucket.bucket, files = report.files_imported,
                    records = report.records_stored, "imported Logpush files"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(bucket = %bucket.bucket, error = %e, "bucket import failed; the next pass tries again")
                }
            }
        }
    });
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
