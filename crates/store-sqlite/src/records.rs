//! Rows to records. Enum columns that hold an unknown word are reported as corrupt rather than
//! guessed at.

use langguard_store::*;
use rusqlite::Row;

pub(crate) const INTEGRATION_COLUMNS: &str = "id, kind, name, account_id, api_token_sealed, \
    enabled, sync_interval_minutes, lookback_days, status, status_message, last_sync_at, \
    interactions_synced, created_at, bodies_mode, bodies_sample_percent, bodies_retention_days, \
    push_public_key, push_private_key_sealed, trailing_window_minutes, \
    coverage_checked_at, coverage_error";

/// The outer `Result` is rusqlite's (column access), the inner one ours (values).
pub(crate) fn integration_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<Integration>> {
    let status: String = row.get("status")?;
    let Some(status) = IntegrationStatus::parse(&status) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "integration status {status:?}"
        ))));
    };
    let mode: String = row.get("bodies_mode")?;
    let Some(mode) = BodyMode::parse(&mode) else {
        return Ok(Err(StoreError::Corrupt(format!("bodies mode {mode:?}"))));
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
        bodies: BodySettings {
            mode,
            sample_percent: row.get("bodies_sample_percent")?,
            retention_days: row.get("bodies_retention_days")?,
        },
        push_public_key: row.get("push_public_key")?,
        sealed_push_private_key: row.get("push_private_key_sealed")?,
        trailing_window_minutes: row.get("trailing_window_minutes")?,
        coverage_checked_at_ms: row.get("coverage_checked_at")?,
        coverage_error: row.get("coverage_error")?,
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

/// The columns [`interaction_from_row`] reads, in its order (read by position: an export reads
/// millions of rows, and a name lookup per column per row shows).
pub(crate) const INTERACTION_COLUMNS: &str = "id, integration_id, gateway, log_id, created_at, \
     provider, model, path, status_code, success, cached, duration_ms, tokens_in, tokens_out, \
     cost_usd, cost_source, metadata, requested_model, details";

pub(crate) fn interaction_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<Interaction>> {
    let cost_source: Option<String> = row.get(15)?;
    let cost_source = match cost_source.as_deref().map(|s| (s, CostSource::parse(s))) {
        None => None,
        Some((_, Some(source))) => Some(source),
        Some((s, None)) => return Ok(Err(StoreError::Corrupt(format!("cost source {s:?}")))),
    };
    Ok(Ok(Interaction {
        id: row.get(0)?,
        integration_id: row.get(1)?,
        gateway: row.get(2)?,
        log: NewInteraction {
            log_id: row.get(3)?,
            created_at_ms: row.get(4)?,
            provider: row.get(5)?,
            model: row.get(6)?,
            path: row.get(7)?,
            status_code: row.get(8)?,
            success: row.get(9)?,
            cached: row.get(10)?,
            duration_ms: row.get(11)?,
            tokens_in: row.get(12)?,
            tokens_out: row.get(13)?,
            cost_usd: row.get(14)?,
            cost_source,
            metadata: row.get(16)?,
            requested_model: row.get(17)?,
            details: LogDetails::from_column(row.get::<_, Option<String>>(18)?.as_deref()),
        },
    }))
}

/// A rusqlite row as the store's shared row mapping reads it.
pub(crate) struct SqliteRow<'a, 'r>(pub(crate) &'a rusqlite::Row<'r>);

impl langguard_store::rows::Columns for SqliteRow<'_, '_> {
    fn int(&self, index: usize) -> StoreResult<i64> {
        self.0.get(index).map_err(crate::db_err)
    }
    fn opt_int(&self, index: usize) -> StoreResult<Option<i64>> {
        self.0.get(index).map_err(crate::db_err)
    }
    fn text(&self, index: usize) -> StoreResult<String> {
        self.0.get(index).map_err(crate::db_err)
    }
    fn opt_text(&self, index: usize) -> StoreResult<Option<String>> {
        self.0.get(index).map_err(crate::db_err)
    }
    fn real(&self, index: usize) -> StoreResult<f64> {
        self.0.get(index).map_err(crate::db_err)
    }
    fn opt_real(&self, index: usize) -> StoreResult<Option<f64>> {
        self.0.get(index).map_err(crate::db_err)
    }
    fn flag(&self, index: usize) -> StoreResult<bool> {
        self.0.get(index).map_err(crate::db_err)
    }
}
