//! Rows to records. Enum columns that hold an unknown word are reported as corrupt rather than
//! guessed at.

use langguard_store::*;
use rusqlite::Row;

pub(crate) const INTEGRATION_COLUMNS: &str = "id, kind, name, account_id, api_token_sealed, \
    enabled, sync_interval_minutes, lookback_days, status, status_message, last_sync_at, \
    interactions_synced, created_at";

/// The outer `Result` is rusqlite's (column access), the inner one ours (values).
pub(crate) fn integration_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<Integration>> {
    let status: String = row.get("status")?;
    let Some(status) = IntegrationStatus::parse(&status) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "integration status {status:?}"
        ))));
    };
    Ok(Ok(Integration {
        id: row.get("id")?,
        kind: row.get("kind")?,
        name: row.get("name")?,
        account_id: row.get("account_id")?,
        sealed_api_token: row.get("api_token_sealed")?,
        enabled: row.get("enabled")?,
        sync_interval_minutes: row.get("sync_interval_minutes")?,
        lookback_days: row.get("lookback_days")?,
        status,
        status_message: row.get("status_message")?,
        last_sync_at_ms: row.get("last_sync_at")?,
        interactions_synced: row.get("interactions_synced")?,
        created_at_ms: row.get("created_at")?,
    }))
}

pub(crate) fn sync_run_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<SyncRun>> {
    let trigger: String = row.get("trigger")?;
    let status: String = row.get("status")?;
    let (Some(trigger), Some(status)) =
        (SyncTrigger::parse(&trigger), SyncRunStatus::parse(&status))
    else {
        return Ok(Err(StoreError::Corrupt(format!(
            "sync run trigger {trigger:?} / status {status:?}"
        ))));
    };
    Ok(Ok(SyncRun {
        id: row.get("id")?,
        integration_id: row.get("integration_id")?,
        trigger,
        status,
        started_at_ms: row.get("started_at")?,
        finished_at_ms: row.get("finished_at")?,
        counts: SyncCounts {
            gateways: row.get("gateways")?,
            api_calls: row.get("api_calls")?,
            items_fetched: row.get("items_fetched")?,
            items_ingested: row.get("items_ingested")?,
            duplicates_skipped: row.get("duplicates_skipped")?,
            rate_limit_waits: row.get("rate_limit_waits")?,
            retries: row.get("retries")?,
        },
        error: row.get("error")?,
        hint: row.get("hint")?,
    }))
}

pub(crate) fn interaction_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<Interaction>> {
    let cost_source: Option<String> = row.get("cost_source")?;
    let cost_source = match cost_source.as_deref().map(|s| (s, CostSource::parse(s))) {
        None => None,
        Some((_, Some(source))) => Some(source),
        Some((s, None)) => return Ok(Err(StoreError::Corrupt(format!("cost source {s:?}")))),
    };
    Ok(Ok(Interaction {
        id: row.get("id")?,
        integration_id: row.get("integration_id")?,
        gateway: row.get("gateway")?,
        log: NewInteraction {
            log_id: row.get("log_id")?,
            created_at_ms: row.get("created_at")?,
            provider: row.get("provider")?,
            model: row.get("model")?,
            path: row.get("path")?,
            status_code: row.get("status_code")?,
            success: row.get("success")?,
            cached: row.get("cached")?,
            duration_ms: row.get("duration_ms")?,
            tokens_in: row.get("tokens_in")?,
            tokens_out: row.get("tokens_out")?,
            cost_usd: row.get("cost_usd")?,
            cost_source,
            metadata: row.get("metadata")?,
        },
    }))
}
