//! Syncs each enabled integration when its interval has passed since its last sync.

use langguard_store::SyncTrigger;
use langguard_sync::SyncError;
use tokio::sync::watch;

use crate::{now_ms, AppState};

pub(crate) async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.scheduler_tick);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {
                if let Err(e) = start_due(&state).await {
                    tracing::warn!(error = %e, "scheduler could not check integrations; trying again next tick");
                }
            }
        }
    }
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
