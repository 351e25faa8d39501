//! Integrations, their status and their sync runs.

use deadpool_postgres::{Client, GenericClient};
use langguard_store::*;
use tokio_postgres::types::ToSql;

use crate::records::{
    integration_from_row, sync_run_from_row, INTEGRATION_COLUMNS, SYNC_RUN_COLUMNS,
};
use crate::{db_err, locks, not_found, now_ms, FINISHED_AT};

pub(crate) async fn get_integration(
    c: &impl GenericClient,
    id: IntegrationId,
) -> StoreResult<Integration> {
    c.query_opt(
        &format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = $1"),
        &[&id],
    )
    .await
    .map_err(db_err)?
    .map(|r| integration_from_row(&r))
    .transpose()?
    .ok_or_else(|| not_found(format!("integration {id}")))
}

pub(crate) async fn create_integration(
    c: &Client,
    new: &NewIntegration,
) -> StoreResult<Integration> {
    if new.name.trim().is_empty() {
        return Err(StoreError::Invalid("an integration needs a name".into()));
    }
    let now = now_ms();
    // The id first, so the token is sealed for its row before the row exists.
    let id: i64 = c
        .query_one(
            "SELECT nextval(pg_get_serial_sequence('integrations', 'id'))",
            &[],
        )
        .await
        .map_err(db_err)?
        .try_get(0)
        .map_err(db_err)?;
    let row = c
        .query_one(
            &format!(
                "INSERT INTO integrations (id, name, account_id, api_token_sealed, enabled, \
                 sync_interval_minutes, lookback_days, trailing_window_minutes, created_at, \
                 updated_at) VALUES ($8, $1, $2, $3, $4, $5, $6, $9, $7, $7) \
                 RETURNING {INTEGRATION_COLUMNS}"
            ),
            &[
                &new.name,
                &new.account_id,
                &new.api_token.seal(id),
                &new.enabled,
                &new.sync_interval_minutes,
                &new.lookback_days,
                &now,
                &id,
                &new.trailing_window_minutes,
            ],
        )
        .await
        .map_err(|e| match db_err(e) {
            StoreError::Conflict { .. } => StoreError::Conflict {
                what: format!("an integration named {:?}", new.name),
            },
            other => other,
        })?;
    integration_from_row(&row)
}

pub(crate) async fn list_integrations(c: &Client) -> StoreResult<Vec<Integration>> {
    c.query(
        &format!("SELECT {INTEGRATION_COLUMNS} FROM integrations ORDER BY name COLLATE \"C\""),
        &[],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(integration_from_row)
    .collect()
}

pub(crate) async fn find_integration_by_name(
    c: &Client,
    name: &str,
) -> StoreResult<Option<Integration>> {
    c.query_opt(
        &format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE name = $1"),
        &[&name],
    )
    .await
    .map_err(db_err)?
    .map(|r| integration_from_row(&r))
    .transpose()
}

pub(crate) async fn delete_integration(c: &mut Client, id: IntegrationId) -> StoreResult<()> {
    let tx = c.transaction().await.map_err(db_err)?;
    // An import or an evaluation on another instance waits, then finds the integration gone,
    // instead of committing rows for it after they were deleted (in the order ingest and the
    // policy worker take these locks).
    for lock in [locks::INTERACTIONS, locks::VIOLATIONS] {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
            .await
            .map_err(db_err)?;
    }
    for sql in [
        "DELETE FROM violations WHERE integration_id = $1",
        "DELETE FROM interaction_bodies WHERE integration_id = $1",
        "DELETE FROM interactions WHERE integration_id = $1",
        "DELETE FROM rollups_minute WHERE integration_id = $1",
        "DELETE FROM rollups_hour WHERE integration_id = $1",
    ] {
        tx.execute(sql, &[&id]).await.map_err(db_err)?;
    }
    let deleted = tx
        .execute("DELETE FROM integrations WHERE id = $1", &[&id])
        .await
        .map_err(db_err)?;
    if deleted == 0 {
        return Err(not_found(format!("integration {id}")));
    }
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn update_integration(
    c: &Client,
    id: IntegrationId,
    patch: &IntegrationPatch,
) -> StoreResult<Integration> {
    let mut sets: Vec<String> = Vec::new();
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut set = |column: &str, value: Box<dyn ToSql + Sync + Send>| {
        values.push(value);
        sets.push(format!("{column} = ${}", values.len()));
    };
    if let Some(name) = &patch.name {
        set("name", Box::new(name.clone()));
    }
    if let Some(account) = &patch.account_id {
        set("account_id", Box::new(account.clone()));
    }
    if let Some(token) = &patch.sealed_api_token {
        set("api_token_sealed", Box::new(token.clone()));
    }
    if let Some(enabled) = patch.enabled {
        set("enabled", Box::new(enabled));
    }
    if let Some(minutes) = patch.sync_interval_minutes {
        set("sync_interval_minutes", Box::new(minutes));
    }
    if let Some(lookback) = patch.lookback_days {
        set("lookback_days", Box::new(lookback));
    }
    if let Some(minutes) = patch.trailing_window_minutes {
        set("trailing_window_minutes", Box::new(minutes));
    }
    if let Some(bodies) = patch.bodies {
        set("bodies_mode", Box::new(bodies.mode.as_str().to_owned()));
        set("bodies_sample_percent", Box::new(bodies.sample_percent));
        set("bodies_retention_days", Box::new(bodies.retention_days));
    }
    set("updated_at", Box::new(now_ms()));
    if let Some(enabled) = patch.enabled {
        // Disabling shows at once; enabling waits for the next sync to say how it went.
        sets.push(
            if enabled {
                "status = CASE WHEN status = 'disabled' THEN 'pending' ELSE status END"
            } else {
                "status = 'disabled'"
            }
            .to_owned(),
        );
    }
    values.push(Box::new(id));
    let sql = format!(
        "UPDATE integrations SET {} WHERE id = ${}",
        sets.join(", "),
        values.len()
    );
    let params: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let changed = c
        .execute(&sql, &params)
        .await
        .map_err(|e| match db_err(e) {
            StoreError::Conflict { .. } => StoreError::Conflict {
                what: format!(
                    "an integration named {:?}",
                    patch.name.as_deref().unwrap_or_default()
                ),
            },
            other => other,
        })?;
    if changed == 0 {
        return Err(not_found(format!("integration {id}")));
    }
    get_integration(c, id).await
}

pub(crate) async fn set_integration_status(
    c: &Client,
    id: IntegrationId,
    status: IntegrationStatus,
    message: Option<&str>,
) -> StoreResult<()> {
    let synced = matches!(
        status,
        IntegrationStatus::Connected | IntegrationStatus::Warning | IntegrationStatus::Failed
    );
    let changed = c
        .execute(
            "UPDATE integrations SET status = $1, status_message = $2, updated_at = $3, \
             last_sync_at = CASE WHEN $4 THEN $3 ELSE last_sync_at END WHERE id = $5",
            &[&status.as_str(), &message, &now_ms(), &synced, &id],
        )
        .await
        .map_err(db_err)?;
    if changed == 0 {
        return Err(not_found(format!("integration {id}")));
    }
    Ok(())
}

pub(crate) async fn get_sync_run(c: &impl GenericClient, run: SyncRunId) -> StoreResult<SyncRun> {
    c.query_opt(
        &format!("SELECT {SYNC_RUN_COLUMNS} FROM sync_runs WHERE id = $1"),
        &[&run],
    )
    .await
    .map_err(db_err)?
    .map(|r| sync_run_from_row(&r))
    .transpose()?
    .ok_or_else(|| not_found(format!("sync run {run}")))
}

pub(crate) async fn create_sync_run(
    c: &impl GenericClient,
    id: IntegrationId,
    trigger: SyncTrigger,
    status: SyncRunStatus,
) -> StoreResult<SyncRun> {
    let row = c
        .query_one(
            &format!(
                "INSERT INTO sync_runs (integration_id, trigger, status, started_at) \
                 VALUES ($1, $2, $3, $4) RETURNING {SYNC_RUN_COLUMNS}"
            ),
            &[&id, &trigger.as_str(), &status.as_str(), &now_ms()],
        )
        .await
        .map_err(db_err)?;
    sync_run_from_row(&row)
}

pub(crate) async fn save_counts(
    c: &impl GenericClient,
    run: SyncRunId,
    counts: &SyncCounts,
) -> StoreResult<()> {
    c.execute(
        "UPDATE sync_runs SET gateways = $1, api_calls = $2, items_fetched = $3, \
         items_ingested = $4, duplicates_skipped = $5, rate_limit_waits = $6, retries = $7 \
         WHERE id = $8",
        &[
            &counts.gateways,
            &counts.api_calls,
            &counts.items_fetched,
            &counts.items_ingested,
            &counts.duplicates_skipped,
            &counts.rate_limit_waits,
            &counts.retries,
            &run,
        ],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Runs finish in `(finished_at, id)` order, which webhook event detection follows: the finish
/// time comes from the database's clock under a lock, so no run is committed with a time
/// before one already read.
pub(crate) async fn finish_sync_run(
    c: &mut Client,
    run: SyncRunId,
    outcome: &SyncRunOutcome,
) -> StoreResult<()> {
    let tx = c.transaction().await.map_err(db_err)?;
    // The lock before the row, as `claim_sync` and `fail_abandoned` take them.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&locks::RUN_FINISH])
        .await
        .map_err(db_err)?;
    save_counts(&tx, run, &outcome.counts).await?;
    tx.execute(
        &format!(
            "UPDATE sync_runs SET status = $1, finished_at = {FINISHED_AT}, error = $2, hint = $3 \
             WHERE id = $4"
        ),
        &[
            &outcome.status.as_str(),
            &outcome.error,
            &outcome.hint,
            &run,
        ],
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn list_sync_runs(
    c: &Client,
    integration: Option<IntegrationId>,
    limit: u32,
) -> StoreResult<Vec<SyncRun>> {
    c.query(
        &format!(
            "SELECT {SYNC_RUN_COLUMNS} FROM sync_runs \
             WHERE ($1::bigint IS NULL OR integration_id = $1) ORDER BY id DESC LIMIT $2"
        ),
        &[&integration, &i64::from(limit)],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(sync_run_from_row)
    .collect()
}
