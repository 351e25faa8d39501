//! Rows to records. Enum columns that hold an unknown word are reported as corrupt rather than
//! guessed at; a column of an unexpected type is a database error, never a panic.

use langguard_store::*;
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use crate::db_err;

/// Typed column access that reports instead of panicking.
pub(crate) trait RowExt {
    fn col<'a, T: FromSql<'a>>(&'a self, column: &str) -> StoreResult<T>;
    fn at<'a, T: FromSql<'a>>(&'a self, index: usize) -> StoreResult<T>;
}

impl RowExt for Row {
    fn col<'a, T: FromSql<'a>>(&'a self, column: &str) -> StoreResult<T> {
        self.try_get(column).map_err(db_err)
    }

    fn at<'a, T: FromSql<'a>>(&'a self, index: usize) -> StoreResult<T> {
        self.try_get(index).map_err(db_err)
    }
}

pub(crate) const INTEGRATION_COLUMNS: &str = "id, kind, name, account_id, api_token_sealed, \
    enabled, sync_interval_minutes, lookback_days, status, status_message, last_sync_at, \
    interactions_synced, created_at, bodies_mode, bodies_sample_percent, bodies_retention_days, \
    push_public_key, push_private_key_sealed, trailing_window_minutes, \
    coverage_checked_at, coverage_error";

pub(crate) fn integration_from_row(row: &Row) -> StoreResult<Integration> {
    let status: String = row.col("status")?;
    let status = IntegrationStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("integration status {status:?}")))?;
    let mode: String = row.col("bodies_mode")?;
    let mode = BodyMode::parse(&mode)
        .ok_or_else(|| StoreError::Corrupt(format!("bodies mode {mode:?}")))?;
    Ok(Integration {
        id: row.col("id")?,
        kind: row.col("kind")?,
        name: row.col("name")?,
        account_id: row.col("account_id")?,
        sealed_api_token: row.col("api_token_sealed")?,
        enabled: row.col("enabled")?,
        sync_interval_minutes: row.col("sync_interval_minutes")?,
        lookback_days: row.col("lookback_days")?,
        status,
        status_message: row.col("status_message")?,
        last_sync_at_ms: row.col("last_sync_at")?,
        interactions_synced: row.col("interactions_synced")?,
        created_at_ms: row.col("created_at")?,
        bodies: BodySettings {
            mode,
            sample_percent: row.col("bodies_sample_percent")?,
            retention_days: row.col("bodies_retention_days")?,
        },
        push_public_key: row.col("push_public_key")?,
        sealed_push_private_key: row.col("push_private_key_sealed")?,
        trailing_window_minutes: row.col("trailing_window_minutes")?,
        coverage_checked_at_ms: row.col("coverage_checked_at")?,
        coverage_error: row.col("coverage_error")?,
    })
}

pub(crate) const SYNC_RUN_COLUMNS: &str = "id, integration_id, trigger, status, started_at, \
    finished_at, gateways, api_calls, items_fetched, items_ingested, duplicates_skipped, \
    rate_limit_waits, retries, error, hint";

pub(crate) fn sync_run_from_row(row: &Row) -> StoreResult<SyncRun> {
    let trigger: String = row.col("trigger")?;
    let status: String = row.col("status")?;
    let (Some(trigger), Some(status)) =
        (SyncTrigger::parse(&trigger), SyncRunStatus::parse(&status))
    else {
        return Err(StoreError::Corrupt(format!(
            "sync run trigger {trigger:?} / status {status:?}"
        )));
    };
    Ok(SyncRun {
        id: row.col("id")?,
        integration_id: row.col("integration_id")?,
        trigger,
        status,
        started_at_ms: row.col("started_at")?,
        finished_at_ms: row.col("finished_at")?,
        counts: SyncCounts {
            gateways: row.col("gateways")?,
            api_calls: row.col("api_calls")?,
            items_fetched: row.col("items_fetched")?,
            items_ingested: row.col("items_ingested")?,
            duplicates_skipped: row.col("duplicates_skipped")?,
            rate_limit_waits: row.col("rate_limit_waits")?,
            retries: row.col("retries")?,
        },
        error: row.col("error")?,
        hint: row.col("hint")?,
    })
}

/// The columns [`interaction_from_row`] reads, in its order (read by position).
pub(crate) const INTERACTION_COLUMNS: &str = "id, integration_id, gateway, log_id, created_at, \
     provider, model, path, status_code, success, cached, duration_ms, tokens_in, tokens_out, \
     cost_usd, cost_source, metadata, requested_model, details";

pub(crate) fn interaction_from_row(row: &Row) -> StoreResult<Interaction> {
    let cost_source: Option<String> = row.at(15)?;
    let cost_source = match cost_source {
        None => None,
        Some(s) => Some(
            CostSource::parse(&s)
                .ok_or_else(|| StoreError::Corrupt(format!("cost source {s:?}")))?,
        ),
    };
    Ok(Interaction {
        id: row.at(0)?,
        integration_id: row.at(1)?,
        gateway: row.at(2)?,
        log: NewInteraction {
            log_id: row.at(3)?,
            created_at_ms: row.at(4)?,
            provider: row.at(5)?,
            model: row.at(6)?,
            path: row.at(7)?,
            status_code: row.at(8)?,
            success: row.at(9)?,
            cached: row.at(10)?,
            duration_ms: row.at(11)?,
            tokens_in: row.at(12)?,
            tokens_out: row.at(13)?,
            cost_usd: row.at(14)?,
            cost_source,
            metadata: row.at(16)?,
            requested_model: row.at(17)?,
            details: LogDetails::from_column(row.at::<Option<String>>(18)?.as_deref()),
        },
    })
}

/// A PostgreSQL row as the store's shared row mapping reads it.
pub(crate) struct PgRow<'a>(pub(crate) &'a Row);

impl langguard_store::rows::Columns for PgRow<'_> {
    fn int(&self, index: usize) -> StoreResult<i64> {
        self.0.at(index)
    }
    fn opt_int(&self, index: usize) -> StoreResult<Option<i64>> {
        self.0.at(index)
    }
    fn text(&self, index: usize) -> StoreResult<String> {
        self.0.at(index)
    }
    fn opt_text(&self, index: usize) -> StoreResult<Option<String>> {
        self.0.at(index)
    }
    fn real(&self, index: usize) -> StoreResult<f64> {
        self.0.at(index)
    }
    fn opt_real(&self, index: usize) -> StoreResult<Option<f64>> {
        self.0.at(index)
    }
    fn flag(&self, index: usize) -> StoreResult<bool> {
        self.0.at(index)
    }
}
