//! The write path: a batch of one gateway's logs, its rollups and its cursor (pull) or its
//! bodies (push) in one transaction, in a few statements whatever the batch size (arrays bound
//! once and expanded with `UNNEST`).

use std::collections::HashMap;

use deadpool_postgres::{Client, GenericClient, Transaction};
use langguard_store::fold::RollupTable;
use langguard_store::rows::GATEWAY_COLUMNS;
use langguard_store::{
    Bodies, GatewayState, Handover, IngestOutcome, IngestSource, IntegrationId, LatencySketch,
    LogDetails, NewInteraction, PushedInteraction, RollupDelta, RollupKey, RollupTotals,
    StoreError, StoreResult,
};

use crate::records::{PgRow, RowExt};
use crate::{db_err, locks, now_ms};

const HOUR_MS: i64 = 3_600_000;

/// What a write is for: a pull moves the gateway's cursor; a push keeps to the gateway's
/// counted source (taking over from the Logs API on its first push).
enum Write {
    Pull { cursor_ms: Option<i64> },
    Push { source: IngestSource },
}

pub(crate) async fn ingest_batch(
    c: &mut Client,
    integration_id: IntegrationId,
    gateway: &str,
    batch: Vec<NewInteraction>,
    cursor_ms: Option<i64>,
) -> StoreResult<IngestOutcome> {
    let rows = batch.into_iter().map(|i| (i, None)).collect();
    ingest(c, integration_id, gateway, rows, Write::Pull { cursor_ms }).await
}

pub(crate) async fn ingest_pushed(
    c: &mut Client,
    integration_id: IntegrationId,
    gateway: &str,
    source: IngestSource,
    batch: Vec<PushedInteraction>,
) -> StoreResult<IngestOutcome> {
    let rows = batch
        .into_iter()
        .map(|p| (p.interaction, p.bodies))
        .collect();
    ingest(c, integration_id, gateway, rows, Write::Push { source }).await
}

/// The gateways of an integration (or the one named), by name.
pub(crate) async fn list_gateways(
    c: &impl GenericClient,
    integration_id: IntegrationId,
    only: Option<&str>,
) -> StoreResult<Vec<GatewayState>> {
    let rows = c
        .query(
            &format!(
                "SELECT {GATEWAY_COLUMNS} FROM gateways WHERE integration_id = $1 \
                 AND ($2::text IS NULL OR gateway_id = $2) ORDER BY gateway_id COLLATE \"C\""
            ),
            &[&integration_id, &only],
        )
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| GatewayState::from_columns(&PgRow(r)))
        .collect()
}

/// Makes `source` the gateway's counted source (see [`GatewayState::switched_to`]), creating
/// the gateway if it is new; inside the caller's transaction (which holds the gateway's row
/// lock from here on).
async fn switch_source(
    tx: &Transaction<'_>,
    integration_id: IntegrationId,
    gateway: &str,
    source: IngestSource,
    now: i64,
    handover: Handover,
) -> StoreResult<GatewayState> {
    // Create it first (a no-op when it exists), then read it under a row lock: two instances
    // taking the first push of one gateway at once agree on one handover.
    tx.execute(
        "INSERT INTO gateways (integration_id, gateway_id, discovered_at, source) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (integration_id, gateway_id) DO NOTHING",
        &[&integration_id, &gateway, &now, &source.as_str()],
    )
    .await
    .map_err(db_err)?;
    let row = tx
        .query_one(
            &format!(
                "SELECT {GATEWAY_COLUMNS} FROM gateways WHERE integration_id = $1 \
                 AND gateway_id = $2 FOR UPDATE"
            ),
            &[&integration_id, &gateway],
        )
        .await
        .map_err(db_err)?;
    let current = GatewayState::from_columns(&PgRow(&row))?;
    let newest = if current.hands_over_from_pull(source) {
        // The newest stored log, along the time index (an active gateway's is near the top).
        tx.query_opt(
            "SELECT created_at FROM interactions WHERE integration_id = $1 AND gateway = $2 \
             ORDER BY created_at DESC LIMIT 1",
            &[&integration_id, &gateway],
        )
        .await
        .map_err(db_err)?
        .map(|r| r.at::<i64>(0))
        .transpose()?
    } else {
        None
    };
    let next = current.moved(source, now, newest, handover);
    if next != current {
        tx.execute(
            "UPDATE gateways SET source = $3, source_since_ms = $4, previous_source = $5 \
             WHERE integration_id = $1 AND gateway_id = $2",
            &[
                &integration_id,
                &gateway,
                &next.source.as_str(),
                &next.source_since_ms,
                &next.previous_source.map(IngestSource::as_str),
            ],
        )
        .await
        .map_err(db_err)?;
    }
    Ok(next)
}

pub(crate) async fn set_gateway_source(
    c: &mut Client,
    integration_id: IntegrationId,
    gateway: &str,
    source: IngestSource,
    handover: Handover,
) -> StoreResult<GatewayState> {
    let tx = c.transaction().await.map_err(db_err)?;
    integration_exists(&tx, integration_id).await?;
    let state = switch_source(&tx, integration_id, gateway, source, now_ms(), handover).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(state)
}

/// Deleted meanwhile (on another instance): store nothing for it.
async fn integration_exists(
    tx: &Transaction<'_>,
    integration_id: IntegrationId,
) -> StoreResult<()> {
    match tx
        .query_opt(
            "SELECT 1 FROM integrations WHERE id = $1",
            &[&integration_id],
        )
        .await
        .map_err(db_err)?
    {
        Some(_) => Ok(()),
        None => Err(crate::not_found(format!("integration {integration_id}"))),
    }
}

async fn ingest(
    c: &mut Client,
    integration_id: IntegrationId,
    gateway: &str,
    batch: Vec<(NewInteraction, Option<Bodies>)>,
    write: Write,
) -> StoreResult<IngestOutcome> {
    let received = batch.len() as u64;
    let imported_at = now_ms();
    let tx = c.transaction().await.map_err(db_err)?;
    // One ingest at a time across all instances: ids then commit in the order they are
    // assigned, so the policy worker's cursor and trace snapshots (`id <= n`) never pass a
    // row that commits later. The rollup read-merge-write below relies on it too.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&locks::INTERACTIONS])
        .await
        .map_err(db_err)?;
    integration_exists(&tx, integration_id).await?;
    let mut other_source = 0;
    let mut cursor_cap: Option<GatewayState> = None;
    let batch = match write {
        // A pull keeps to what the Logs API counts — a push may have taken over while this
        // sync ran — and its cursor stops at the handover.
        Write::Pull { .. } => match list_gateways(&tx, integration_id, Some(gateway))
            .await?
            .pop()
        {
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
            )
            .await?;
            let (kept, left) = state.counted(source, batch);
            other_source = left;
            kept
        }
    };
    let (batch, mut bodies): (Vec<NewInteraction>, Vec<Option<Bodies>>) = batch.into_iter().unzip();

    let columns = Columns::of(&batch);
    // `DO NOTHING` skips a log already stored (or listed twice in this batch); RETURNING says
    // which went in. ORDINALITY keeps ids in the batch's order, as the SQLite backend's are.
    let rows = tx
        .query(
            "INSERT INTO interactions (integration_id, gateway, log_id, created_at, provider, \
             model, path, status_code, success, cached, duration_ms, tokens_in, tokens_out, \
             cost_usd, cost_source, metadata, imported_at, requested_model, details) \
             SELECT $1::bigint, $2::text, t.log_id, t.created_at, t.provider, t.model, t.path, t.status_code, \
             t.success, t.cached, t.duration_ms, t.tokens_in, t.tokens_out, t.cost_usd, \
             t.cost_source, t.metadata, $17::bigint, t.requested_model, t.details \
             FROM UNNEST($3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], \
             $8::bigint[], $9::boolean[], $10::boolean[], $11::bigint[], $12::bigint[], \
             $13::bigint[], $14::float8[], $15::text[], $16::text[], $18::text[], $19::text[]) \
             WITH ORDINALITY \
             AS t(log_id, created_at, provider, model, path, status_code, success, cached, \
             duration_ms, tokens_in, tokens_out, cost_usd, cost_source, metadata, \
             requested_model, details, n) \
             ORDER BY t.n \
             ON CONFLICT (integration_id, gateway, log_id) DO NOTHING RETURNING id, log_id",
            &[
                &integration_id,
                &gateway,
                &columns.log_id,
                &columns.created_at,
                &columns.provider,
                &columns.model,
                &columns.path,
                &columns.status_code,
                &columns.success,
                &columns.cached,
                &columns.duration_ms,
                &columns.tokens_in,
                &columns.tokens_out,
                &columns.cost_usd,
                &columns.cost_source,
                &columns.metadata,
                &imported_at,
                &columns.requested_model,
                &columns.details,
            ],
        )
        .await
        .map_err(db_err)?;
    let mut new_ids: HashMap<String, i64> = rows
        .iter()
        .map(|r| Ok((r.at::<String>(1)?, r.at::<i64>(0)?)))
        .collect::<StoreResult<_>>()?;
    // Only rows that were really inserted count towards the rollups (a log listed twice in
    // the batch counts once), and only they get the bodies they came with.
    let mut inserted: Vec<NewInteraction> = Vec::with_capacity(new_ids.len());
    let mut new_bodies: Vec<(i64, Bodies)> = Vec::new();
    // A log read again from the Logs API brings its fields as Cloudflare has them now
    // (feedback and score change after the call). A pushed one brings nothing new.
    let pulled = matches!(write, Write::Pull { .. });
    let mut refreshed: Vec<(String, LogDetails)> = Vec::new();
    for (log, body) in batch.into_iter().zip(bodies.iter_mut()) {
        if let Some(id) = new_ids.remove(&log.log_id) {
            if let Some(b) = body.take() {
                new_bodies.push((id, b));
            }
            inserted.push(log);
        } else if pulled {
            refreshed.push((log.log_id, log.details));
        }
    }
    refresh_details(&tx, integration_id, gateway, refreshed).await?;
    if !new_bodies.is_empty() {
        let ids: Vec<i64> = new_bodies.iter().map(|(id, _)| *id).collect();
        let requests: Vec<Option<&str>> = new_bodies
            .iter()
            .map(|(_, b)| b.request.as_deref())
            .collect();
        let responses: Vec<Option<&str>> = new_bodies
            .iter()
            .map(|(_, b)| b.response.as_deref())
            .collect();
        tx.execute(
            "INSERT INTO interaction_bodies (interaction_id, integration_id, request, response, \
             fetched_at) SELECT t.id, $1::bigint, t.request, t.response, $5::bigint \
             FROM UNNEST($2::bigint[], $3::text[], $4::text[]) AS t(id, request, response) \
             ON CONFLICT (interaction_id) DO UPDATE SET request = excluded.request, \
             response = excluded.response, fetched_at = excluded.fetched_at",
            &[&integration_id, &ids, &requests, &responses, &imported_at],
        )
        .await
        .map_err(db_err)?;
    }

    let delta = RollupDelta::from_batch(integration_id, gateway, &inserted);
    add_to_rollups(&tx, RollupTable::Minute, &delta).await?;
    add_to_rollups(&tx, RollupTable::Hour, &delta.rebucket(HOUR_MS)).await?;
    crate::areas::people::add_identities(&tx, &inserted).await?;

    let cursor_ms = match write {
        Write::Pull { cursor_ms } => match &cursor_cap {
            Some(state) => state.pull_cursor(cursor_ms),
            None => cursor_ms,
        },
        Write::Push { .. } => None,
    };
    tx.execute(
        "INSERT INTO gateways (integration_id, gateway_id, cursor_ms, discovered_at, last_synced_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (integration_id, gateway_id) DO UPDATE SET \
         cursor_ms = CASE WHEN excluded.cursor_ms IS NULL THEN gateways.cursor_ms \
                          WHEN gateways.cursor_ms IS NULL OR excluded.cursor_ms > gateways.cursor_ms \
                          THEN excluded.cursor_ms ELSE gateways.cursor_ms END, \
         last_synced_at = excluded.last_synced_at",
        &[&integration_id, &gateway, &cursor_ms, &imported_at],
    )
    .await
    .map_err(db_err)?;
    let new = inserted.len() as u64;
    if new > 0 {
        tx.execute(
            "UPDATE integrations SET interactions_synced = interactions_synced + $1 WHERE id = $2",
            &[&(new as i64), &integration_id],
        )
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(IngestOutcome {
        inserted: new,
        duplicates: received - new - other_source,
        other_source,
        traffic: delta.traffic(),
        oldest_inserted_ms: inserted.iter().map(|log| log.created_at_ms).min(),
    })
}

/// Replaces the stored details of logs already held where Cloudflare's fields changed (see
/// [`LogDetails::refreshed`]); returns how many changed. Logs not held are left alone: storing
/// them is the walk's job. A log listed twice takes its last listing.
pub(crate) async fn refresh_details(
    client: &impl GenericClient,
    integration_id: IntegrationId,
    gateway: &str,
    updates: Vec<(String, LogDetails)>,
) -> StoreResult<u64> {
    if updates.is_empty() {
        return Ok(0);
    }
    let listed: HashMap<String, LogDetails> = updates.into_iter().collect();
    let log_ids: Vec<&str> = listed.keys().map(String::as_str).collect();
    let rows = client
        .query(
            "SELECT id, log_id, details FROM interactions \
             WHERE integration_id = $1 AND gateway = $2 AND log_id = ANY($3)",
            &[&integration_id, &gateway, &log_ids],
        )
        .await
        .map_err(db_err)?;
    let mut ids = Vec::new();
    let mut columns: Vec<Option<String>> = Vec::new();
    for row in rows {
        let (id, log_id, text): (i64, String, Option<String>) =
            (row.at(0)?, row.at(1)?, row.at(2)?);
        let Some(fresh) = listed.get(&log_id) else {
            continue;
        };
        let stored = LogDetails::from_column(text.as_deref());
        let column = LogDetails::refreshed(&stored, fresh.clone()).to_column();
        if column != text {
            ids.push(id);
            columns.push(column);
        }
    }
    if ids.is_empty() {
        return Ok(0);
    }
    client
        .execute(
            "UPDATE interactions i SET details = t.details \
             FROM UNNEST($1::bigint[], $2::text[]) AS t(id, details) WHERE i.id = t.id",
            &[&ids, &columns],
        )
        .await
        .map_err(db_err)
}

/// A batch as one array per column.
struct Columns {
    log_id: Vec<String>,
    created_at: Vec<i64>,
    provider: Vec<String>,
    model: Vec<String>,
    path: Vec<Option<String>>,
    status_code: Vec<Option<i64>>,
    success: Vec<bool>,
    cached: Vec<bool>,
    duration_ms: Vec<i64>,
    tokens_in: Vec<Option<i64>>,
    tokens_out: Vec<Option<i64>>,
    cost_usd: Vec<Option<f64>>,
    cost_source: Vec<Option<&'static str>>,
    metadata: Vec<Option<String>>,
    requested_model: Vec<Option<String>>,
    details: Vec<Option<String>>,
}

impl Columns {
    fn of(batch: &[NewInteraction]) -> Self {
        Self {
            log_id: batch.iter().map(|l| l.log_id.clone()).collect(),
            created_at: batch.iter().map(|l| l.created_at_ms).collect(),
            provider: batch.iter().map(|l| l.provider.clone()).collect(),
            model: batch.iter().map(|l| l.model.clone()).collect(),
            path: batch.iter().map(|l| l.path.clone()).collect(),
            status_code: batch.iter().map(|l| l.status_code).collect(),
            success: batch.iter().map(|l| l.success).collect(),
            cached: batch.iter().map(|l| l.cached).collect(),
            duration_ms: batch.iter().map(|l| l.duration_ms).collect(),
            tokens_in: batch.iter().map(|l| l.tokens_in).collect(),
            tokens_out: batch.iter().map(|l| l.tokens_out).collect(),
            cost_usd: batch.iter().map(|l| l.cost_usd).collect(),
            cost_source: batch
                .iter()
                .map(|l| l.cost_source.map(|s| s.as_str()))
                .collect(),
            metadata: batch.iter().map(|l| l.metadata.clone()).collect(),
            requested_model: batch.iter().map(|l| l.requested_model.clone()).collect(),
            details: batch.iter().map(|l| l.details.to_column()).collect(),
        }
    }
}

/// Adds a delta to a rollup table: reads the buckets that exist (one query), merges their
/// sketches with the new ones in Rust (SQL can't), and writes every bucket's new totals (one
/// upsert).
async fn add_to_rollups(
    tx: &Transaction<'_>,
    rollups: RollupTable,
    delta: &RollupDelta,
) -> StoreResult<()> {
    let (table, time) = rollups.table();
    if delta.buckets.is_empty() {
        return Ok(());
    }
    let keys: Vec<&RollupKey> = delta.buckets.keys().collect();
    let t: Vec<i64> = keys.iter().map(|k| k.minute_ms).collect();
    let integration: Vec<i64> = keys.iter().map(|k| k.integration_id).collect();
    let gateway: Vec<&str> = keys.iter().map(|k| k.gateway.as_str()).collect();
    let provider: Vec<&str> = keys.iter().map(|k| k.provider.as_str()).collect();
    let model: Vec<&str> = keys.iter().map(|k| k.model.as_str()).collect();
    let stored = tx
        .query(
            &format!(
                "SELECT r.{time}, r.integration_id, r.gateway, r.provider, r.model, r.requests, \
                 r.errors, r.cache_hits, r.rate_limited, r.tokens_in, r.tokens_out, r.cost_usd, \
                 r.unpriced, r.duration_ms_sum, r.latency_sketch \
                 FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[]) \
                 AS k(t, i, g, p, m) \
                 JOIN {table} r ON r.{time} = k.t AND r.integration_id = k.i \
                 AND r.gateway = k.g AND r.provider = k.p AND r.model = k.m"
            ),
            &[&t, &integration, &gateway, &provider, &model],
        )
        .await
        .map_err(db_err)?;
    let mut existing: HashMap<RollupKey, RollupTotals> = HashMap::with_capacity(stored.len());
    for row in &stored {
        let key = RollupKey {
            minute_ms: row.at(0)?,
            integration_id: row.at(1)?,
            gateway: row.at(2)?,
            provider: row.at(3)?,
            model: row.at(4)?,
        };
        let sketch: &[u8] = row.at(14)?;
        let latency = LatencySketch::decode(sketch).map_err(|e| {
            StoreError::Corrupt(format!(
                "{table} sketch of {} / {} at {}: {e}",
                key.gateway, key.model, key.minute_ms
            ))
        })?;
        let totals = RollupTotals {
            requests: row.at(5)?,
            errors: row.at(6)?,
            cache_hits: row.at(7)?,
            rate_limited: row.at(8)?,
            tokens_in: row.at(9)?,
            tokens_out: row.at(10)?,
            cost_usd: row.at(11)?,
            unpriced: row.at(12)?,
            duration_ms_sum: row.at(13)?,
            latency,
        };
        existing.insert(key, totals);
    }

    let mut merged: Vec<RollupTotals> = Vec::with_capacity(keys.len());
    for key in &keys {
        let add = &delta.buckets[*key];
        merged.push(match existing.remove(*key) {
            Some(mut totals) => {
                totals.merge(add);
                totals
            }
            None => add.clone(),
        });
    }
    let column = |f: fn(&RollupTotals) -> i64| -> Vec<i64> { merged.iter().map(f).collect() };
    let requests = column(|m| m.requests);
    let errors = column(|m| m.errors);
    let cache_hits = column(|m| m.cache_hits);
    let rate_limited = column(|m| m.rate_limited);
    let tokens_in = column(|m| m.tokens_in);
    let tokens_out = column(|m| m.tokens_out);
    let unpriced = column(|m| m.unpriced);
    let duration_ms_sum = column(|m| m.duration_ms_sum);
    let cost_usd: Vec<f64> = merged.iter().map(|m| m.cost_usd).collect();
    let sketches: Vec<Vec<u8>> = merged.iter().map(|m| m.latency.encode()).collect();
    tx.execute(
        &format!(
            "INSERT INTO {table} ({time}, integration_id, gateway, provider, model, requests, \
             errors, cache_hits, rate_limited, tokens_in, tokens_out, cost_usd, unpriced, \
             duration_ms_sum, latency_sketch) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
             $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], \
             $11::bigint[], $12::float8[], $13::bigint[], $14::bigint[], $15::bytea[]) \
             ON CONFLICT ({time}, integration_id, gateway, provider, model) DO UPDATE SET \
             requests = excluded.requests, errors = excluded.errors, \
             cache_hits = excluded.cache_hits, rate_limited = excluded.rate_limited, \
             tokens_in = excluded.tokens_in, tokens_out = excluded.tokens_out, \
             cost_usd = excluded.cost_usd, unpriced = excluded.unpriced, \
             duration_ms_sum = excluded.duration_ms_sum, latency_sketch = excluded.latency_sketch"
        ),
        &[
            &t,
            &integration,
            &gateway,
            &provider,
            &model,
            &requests,
            &errors,
            &cache_hits,
            &rate_limited,
            &tokens_in,
            &tokens_out,
            &cost_usd,
            &unpriced,
            &duration_ms_sum,
            &sketches,
        ],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}
