//! The write path: a batch of one gateway's logs, its rollups and its cursor (pull) or its
//! bodies (push) in one transaction.

use langguard_store::fold::RollupTable;
use langguard_store::rows::GATEWAY_COLUMNS;
use langguard_store::{
    Bodies, GatewayState, Handover, IngestOutcome, IngestSource, IntegrationId, LatencySketch,
    LogDetails, NewInteraction, PushedInteraction, RollupDelta, RollupKey, RollupTotals,
    StoreError, StoreResult,
};
use rusqlite::{params, Connection, OptionalExtension, ToSql, TransactionBehavior};

use crate::records::SqliteRow;
use crate::{db_err, now_ms};

/// What a write is for: a pull moves the gateway's cursor; a push keeps to the gateway's
/// counted source (taking over from the Logs API on its first push).
enum Write {
    Pull { cursor_ms: Option<i64> },
    Push { source: IngestSource },
}

pub(crate) fn ingest_batch(
    conn: &mut Connection,
    integration_id: IntegrationId,
    gateway: &str,
    batch: Vec<NewInteraction>,
    cursor_ms: Option<i64>,
) -> StoreResult<IngestOutcome> {
    let rows = batch.into_iter().map(|i| (i, None)).collect();
    ingest(
        conn,
        integration_id,
        gateway,
        rows,
        Write::Pull { cursor_ms },
    )
}

pub(crate) fn ingest_pushed(
    conn: &mut Connection,
    integration_id: IntegrationId,
    gateway: &str,
    source: IngestSource,
    batch: Vec<PushedInteraction>,
) -> StoreResult<IngestOutcome> {
    let rows = batch
        .into_iter()
        .map(|p| (p.interaction, p.bodies))
        .collect();
    ingest(conn, integration_id, gateway, rows, Write::Push { source })
}

/// The gateways of an integration (or the one named), by name.
pub(crate) fn list_gateways(
    conn: &Connection,
    integration_id: IntegrationId,
    only: Option<&str>,
) -> StoreResult<Vec<GatewayState>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {GATEWAY_COLUMNS} FROM gateways WHERE integration_id = ?1 \
             AND (?2 IS NULL OR gateway_id = ?2) ORDER BY gateway_id"
        ))
        .map_err(db_err)?;
    let mut rows = stmt.query(params![integration_id, only]).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        out.push(GatewayState::from_columns(&SqliteRow(row))?);
    }
    Ok(out)
}

/// Makes `source` the gateway's counted source (see [`GatewayState::switched_to`]), creating
/// the gateway if it is new; inside the caller's transaction.
fn switch_source(
    tx: &Connection,
    integration_id: IntegrationId,
    gateway: &str,
    source: IngestSource,
    now: i64,
    handover: Handover,
) -> StoreResult<GatewayState> {
    let current = list_gateways(tx, integration_id, Some(gateway))?.pop();
    let newest = match &current {
        Some(state) if state.hands_over_from_pull(source) => {
            newest_stored(tx, integration_id, gateway)?
        }
        _ => None,
    };
    let next = match &current {
        Some(state) => state.moved(source, now, newest, handover),
        None => GatewayState {
            gateway_id: gateway.to_owned(),
            cursor_ms: None,
            last_synced_at_ms: None,
            source,
            source_since_ms: None,
            previous_source: None,
            late_window_ms: None,
        },
    };
    if current.as_ref() != Some(&next) {
        tx.execute(
            "INSERT INTO gateways (integration_id, gateway_id, discovered_at, source, \
             source_since_ms, previous_source) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (integration_id, gateway_id) DO UPDATE SET source = excluded.source, \
             source_since_ms = excluded.source_since_ms, \
             previous_source = excluded.previous_source",
            params![
                integration_id,
                gateway,
                now,
                next.source.as_str(),
                next.source_since_ms,
                next.previous_source.map(IngestSource::as_str)
            ],
        )
        .map_err(db_err)?;
    }
    Ok(next)
}

/// `created_at` of the gateway's newest stored log (along the time index, newest first: an
/// active gateway's is near the top).
fn newest_stored(
    tx: &Connection,
    integration_id: IntegrationId,
    gateway: &str,
) -> StoreResult<Option<i64>> {
    tx.query_row(
        "SELECT created_at FROM interactions WHERE integration_id = ?1 AND gateway = ?2 \
         ORDER BY created_at DESC LIMIT 1",
        params![integration_id, gateway],
        |r| r.get(0),
    )
    .optional()
    .map_err(db_err)
}

pub(crate) fn set_gateway_source(
    conn: &mut Connection,
    integration_id: IntegrationId,
    gateway: &str,
    source: IngestSource,
    handover: Handover,
) -> StoreResult<GatewayState> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    integration_exists(&tx, integration_id)?;
    let state = switch_source(&tx, integration_id, gateway, source, now_ms(), handover)?;
    tx.commit().map_err(db_err)?;
    Ok(state)
}

/// Deleted meanwhile (by another process): store nothing for it.
fn integration_exists(tx: &Connection, integration_id: IntegrationId) -> StoreResult<()> {
    let exists: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM integrations WHERE id = ?1)",
            [integration_id],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound {
            what: format!("integration {integration_id}"),
        })
    }
}

fn ingest(
    conn: &mut Connection,
    integration_id: IntegrationId,
    gateway: &str,
    batch: Vec<(NewInteraction, Option<Bodies>)>,
    write: Write,
) -> StoreResult<IngestOutcome> {
    let received = batch.len() as u64;
    let imported_at = now_ms();
    // IMMEDIATE takes the write lock up front, so another process writing the same file makes
    // us wait (busy timeout) instead of failing half-way.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    integration_exists(&tx, integration_id)?;
    let mut other_source = 0;
    let mut cursor_cap: Option<GatewayState> = None;
    let batch = match write {
        // A pull keeps to what the Logs API counts — a push may have taken over while this
        // sync ran — and its cursor stops at the handover.
        Write::Pull { .. } => match list_gateways(&tx, integration_id, Some(gateway))?.pop() {
            Some(state) if state.pull_is_limited() => {
                let (kept, left) = state.counted(IngestSource::LogsApi, batch);
                other_source = left;
                cursor_cap = Some(state);
                kept
            }
            _ => batch,
        },
        Write::Push { source } => {
            let state = switch_source(
                &tx,
                integration_id,
                gateway,
                source,
                imported_at,
                Handover::OnPush,
            )?;
            let (kept, left) = state.counted(source, batch);
            other_source = left;
            kept
        }
    };
    let mut inserted: Vec<NewInteraction> = Vec::with_capacity(batch.len());
    {
        // `DO NOTHING` reports 0 changed rows for a log already stored (or listed twice in
        // this batch), so one statement per row both inserts and deduplicates.
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO interactions (integration_id, gateway, log_id, created_at, provider, \
                 model, path, status_code, success, cached, duration_ms, tokens_in, tokens_out, \
                 cost_usd, cost_source, metadata, imported_at, requested_model, details) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
                 ?17, ?18, ?19) ON CONFLICT (integration_id, gateway, log_id) DO NOTHING",
            )
            .map_err(db_err)?;
        let mut insert_bodies = tx
            .prepare_cached(
                "INSERT OR REPLACE INTO interaction_bodies (interaction_id, integration_id, \
                 request, response, fetched_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(db_err)?;
        let mut refreshed = Vec::new();
        for (log, bodies) in batch {
            let details = log.details.to_column();
            let changed = insert
                .execute(params![
                    integration_id,
                    gateway,
                    log.log_id,
                    log.created_at_ms,
                    log.provider,
                    log.model,
                    log.path,
                    log.status_code,
                    log.success,
                    log.cached,
                    log.duration_ms,
                    log.tokens_in,
                    log.tokens_out,
                    log.cost_usd,
                    log.cost_source.map(|s| s.as_str()),
                    log.metadata,
                    imported_at,
                    log.requested_model,
                    details,
                ])
                .map_err(db_err)?;
            // A log read again from the Logs API brings its fields as Cloudflare has them now
            // (feedback and score change after the call). A pushed one brings nothing new.
            if changed == 0 && matches!(write, Write::Pull { .. }) {
                refreshed.push((log.log_id, log.details));
                continue;
            }
            if changed == 1 {
                if let Some(b) = bodies {
                    insert_bodies
                        .execute(params![
                            tx.last_insert_rowid(),
                            integration_id,
                            b.request,
                            b.response,
                            imported_at
                        ])
                        .map_err(db_err)?;
                }
                inserted.push(log);
            }
        }
        refresh_details(&tx, integration_id, gateway, refreshed)?;
    }

    // Only rows that were really inserted count towards the rollups.
    let delta = RollupDelta::from_batch(integration_id, gateway, &inserted);
    add_to_rollups(&tx, RollupTable::Minute, &delta)?;
    add_to_rollups(&tx, RollupTable::Hour, &delta.rebucket(HOUR_MS))?;
    crate::areas::people::add_identities(&tx, &inserted)?;

    let cursor_ms = match write {
        Write::Pull { cursor_ms } => match &cursor_cap {
            Some(state) => state.pull_cursor(cursor_ms),
            None => cursor_ms,
        },
        Write::Push { .. } => None,
    };
    tx.execute(
        "INSERT INTO gateways (integration_id, gateway_id, cursor_ms, discovered_at, last_synced_at) \
         VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (integration_id, gateway_id) DO UPDATE SET \
         cursor_ms = CASE WHEN excluded.cursor_ms IS NULL THEN cursor_ms \
                          WHEN cursor_ms IS NULL OR excluded.cursor_ms > cursor_ms THEN excluded.cursor_ms \
                          ELSE cursor_ms END, \
         last_synced_at = excluded.last_synced_at",
        params![integration_id, gateway, cursor_ms, imported_at],
    )
    .map_err(db_err)?;
    let new = inserted.len() as u64;
    if new > 0 {
        tx.execute(
            "UPDATE integrations SET interactions_synced = interactions_synced + ?1 WHERE id = ?2",
            params![new as i64, integration_id],
        )
        .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)?;
    Ok(IngestOutcome {
        inserted: new,
        duplicates: received - new - other_source,
        other_source,
        traffic: delta.traffic(),
        oldest_inserted_ms: inserted.iter().map(|log| log.created_at_ms).min(),
    })
}

const HOUR_MS: i64 = 3_600_000;

/// Replaces the stored details of logs already held where Cloudflare's fields changed (feedback
/// and score are set after the call; see [`LogDetails::refreshed`]); returns how many changed.
/// Logs not held are left alone: storing them is the walk's job, which keeps the cursor and
/// the rollups.
pub(crate) fn refresh_details(
    tx: &Connection,
    integration_id: IntegrationId,
    gateway: &str,
    updates: Vec<(String, LogDetails)>,
) -> StoreResult<u64> {
    let mut read = tx
        .prepare_cached(
            "SELECT id, details FROM interactions WHERE integration_id = ?1 AND gateway = ?2 \
             AND log_id = ?3",
        )
        .map_err(db_err)?;
    let mut update = tx
        .prepare_cached("UPDATE interactions SET details = ?2 WHERE id = ?1")
        .map_err(db_err)?;
    let mut changed = 0;
    for (log_id, listed) in updates {
        let stored: Option<(i64, Option<String>)> = read
            .query_row(params![integration_id, gateway, log_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(db_err)?;
        let Some((id, text)) = stored else { continue };
        let column =
            LogDetails::refreshed(&LogDetails::from_column(text.as_deref()), listed).to_column();
        if column != text {
            changed += update.execute(params![id, column]).map_err(db_err)? as u64;
        }
    }
    Ok(changed)
}

/// Adds a delta to a rollup table. Most buckets of a batch are new: a plain insert first (one
/// statement), and only for a bucket that exists read its sketch, merge (SQL can't), update.
fn add_to_rollups(tx: &Connection, rollups: RollupTable, delta: &RollupDelta) -> StoreResult<()> {
    let (table, time) = rollups.table();
    let mut insert_new = tx
        .prepare_cached(&format!(
            "INSERT INTO {table} ({time}, integration_id, gateway, provider, model, \
             requests, errors, cache_hits, rate_limited, tokens_in, tokens_out, cost_usd, \
             unpriced, duration_ms_sum, latency_sketch) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
             ON CONFLICT ({time}, integration_id, gateway, provider, model) DO NOTHING"
        ))
        .map_err(db_err)?;
    let mut read_sketch = tx
        .prepare_cached(&format!(
            "SELECT latency_sketch FROM {table} WHERE {time} = ?1 \
             AND integration_id = ?2 AND gateway = ?3 AND provider = ?4 AND model = ?5"
        ))
        .map_err(db_err)?;
    let mut add_to_existing = tx
        .prepare_cached(&format!(
            "UPDATE {table} SET requests = requests + ?6, errors = errors + ?7, \
             cache_hits = cache_hits + ?8, rate_limited = rate_limited + ?9, \
             tokens_in = tokens_in + ?10, tokens_out = tokens_out + ?11, \
             cost_usd = cost_usd + ?12, unpriced = unpriced + ?13, \
             duration_ms_sum = duration_ms_sum + ?14, latency_sketch = ?15 \
             WHERE {time} = ?1 AND integration_id = ?2 AND gateway = ?3 \
             AND provider = ?4 AND model = ?5"
        ))
        .map_err(db_err)?;
    for (key, add) in &delta.buckets {
        let fresh = add.latency.encode();
        if insert_new
            .execute(bucket_params(key, add, &fresh.as_slice()).as_slice())
            .map_err(db_err)?
            == 1
        {
            continue;
        }
        let stored: Vec<u8> = read_sketch
            .query_row(
                params![
                    key.minute_ms,
                    key.integration_id,
                    key.gateway,
                    key.provider,
                    key.model
                ],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        let mut sketch = LatencySketch::decode(&stored).map_err(|e| {
            StoreError::Corrupt(format!(
                "{table} sketch of {} / {} at {}: {e}",
                key.gateway, key.model, key.minute_ms
            ))
        })?;
        sketch.merge(&add.latency);
        let merged = sketch.encode();
        add_to_existing
            .execute(bucket_params(key, add, &merged.as_slice()).as_slice())
            .map_err(db_err)?;
    }
    Ok(())
}

/// The 15 parameters (`?1`…`?15`) of a rollup bucket's insert and update.
fn bucket_params<'a>(
    key: &'a RollupKey,
    add: &'a RollupTotals,
    sketch: &'a &'a [u8],
) -> [&'a dyn ToSql; 15] {
    [
        &key.minute_ms,
        &key.integration_id,
        &key.gateway,
        &key.provider,
        &key.model,
        &add.requests,
        &add.errors,
        &add.cache_hits,
        &add.rate_limited,
        &add.tokens_in,
        &add.tokens_out,
        &add.cost_usd,
        &add.unpriced,
        &add.duration_ms_sum,
        sketch,
    ]
}
