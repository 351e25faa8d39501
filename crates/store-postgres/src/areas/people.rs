//! People and teams: identity keys, the per-identity rollups (added by ingest through
//! [`add_identities`]) and the rolling 30-day summary.
//!
//! Everything that writes them — ingest, naming a key, the backfill, moving the window — holds
//! the interactions lock (`locks::INTERACTIONS`), so the summary's rule (a day is in it iff it
//! was inside the window when it was added) holds across instances.

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use langguard_store::rows::{backfill_log, BACKFILL_COLUMNS, PERSON_COLUMNS};
use langguard_store::*;

use super::anomalies;
use crate::records::{PgRow, RowExt};
use crate::{db_err, locks, now_ms, PgStore};

async fn keys_on(client: &impl GenericClient) -> StoreResult<Vec<IdentityKey>> {
    let rows = client
        .query(
            "SELECT kind, meta_key, backfill_below, set_at, session_key FROM identity_keys \
             ORDER BY kind",
            &[],
        )
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            let kind: String = r.at(0)?;
            Ok(IdentityKey {
                kind: IdentityKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("identity kind {kind:?}")))?,
                meta_key: r.at(1)?,
                session_key: r.at(4)?,
                backfill_below_id: r.at(2)?,
                set_at_ms: r.at(3)?,
            })
        })
        .collect()
}

async fn window_start_on(client: &impl GenericClient) -> StoreResult<i64> {
    client
        .query_one("SELECT start_day FROM people_window WHERE id = 1", &[])
        .await
        .map_err(db_err)?
        .at(0)
}

async fn lock(tx: &Transaction<'_>) -> StoreResult<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&locks::INTERACTIONS])
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Counts a batch of newly stored logs for every named key — appended to the pending table,
/// folded in by the upkeep; inside the ingest transaction (which holds the interactions lock).
pub(crate) async fn add_identities(
    tx: &Transaction<'_>,
    logs: &[NewInteraction],
) -> StoreResult<()> {
    if logs.is_empty() {
        return Ok(());
    }
    let keys = keys_on(tx).await?;
    if keys.is_empty() {
        return Ok(());
    }
    append(tx, &IdentityDelta::from_logs(&keys, logs)).await
}

/// Appends a delta to the pending table: one statement.
async fn append(tx: &Transaction<'_>, delta: &IdentityDelta) -> StoreResult<()> {
    // A user's sessions come with their rows: no rows, no sessions.
    if delta.rows.is_empty() {
        return Ok(());
    }
    let mut kinds = Vec::new();
    let mut identities: Vec<&str> = Vec::new();
    let mut days = Vec::new();
    let mut providers: Vec<&str> = Vec::new();
    let mut models: Vec<&str> = Vec::new();
    let mut counts: [Vec<i64>; 7] = Default::default();
    let mut costs = Vec::new();
    for ((kind, identity, day, provider, model), t) in &delta.rows {
        kinds.push(kind.as_str());
        identities.push(identity);
        days.push(*day);
        providers.push(provider);
        models.push(model);
        for (column, value) in counts.iter_mut().zip([
            t.requests,
            t.errors,
            t.cache_hits,
            t.tokens_in,
            t.tokens_out,
            t.first_ms,
            t.last_ms,
        ]) {
            column.push(value);
        }
        costs.push(t.cost_usd);
    }
    tx.execute(
        "INSERT INTO identity_pending (kind, identity, day_ms, provider, model, requests, \
         errors, cache_hits, tokens_in, tokens_out, cost_usd, first_ms, last_ms) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
         $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::float8[], \
         $12::bigint[], $13::bigint[])",
        &[
            &kinds,
            &identities,
            &days,
            &providers,
            &models,
            &counts[0],
            &counts[1],
            &counts[2],
            &counts[3],
            &counts[4],
            &costs,
            &counts[5],
            &counts[6],
        ],
    )
    .await
    .map_err(db_err)?;
    anomalies::append_sessions(tx, delta).await
}

/// Folds every pending addition into the day and model rollups and the summary (days inside
/// the window only; first and last seen from any day); returns how many rows it folded. The
/// caller holds the interactions lock, so nothing is appended meanwhile.
async fn fold(tx: &Transaction<'_>, limit: u32) -> StoreResult<u64> {
    // Ids come from a sequence in the order appends commit (under the lock): the ids below the
    // lowest plus `limit` are the oldest (fewer than `limit` where a forgotten key's rows or a
    // rolled-back ingest left a gap; the upkeep goes on then).
    let top: Option<i64> = tx
        .query_one(
            "SELECT LEAST(MAX(id), MIN(id) + $1 - 1) FROM identity_pending",
            &[&i64::from(limit)],
        )
        .await
        .map_err(db_err)?
        .at(0)?;
    let sessions = anomalies::fold_sessions(tx, limit).await?;
    let Some(top) = top else { return Ok(sessions) };
    tx.execute(
        "INSERT INTO identity_days (kind, identity, day_ms, requests, errors, cache_hits, \
         tokens_in, tokens_out, cost_usd, first_ms, last_ms) \
         SELECT kind, identity, day_ms, SUM(requests), SUM(errors), SUM(cache_hits), \
         SUM(tokens_in), SUM(tokens_out), SUM(cost_usd), MIN(first_ms), MAX(last_ms) \
         FROM identity_pending WHERE id <= $1 GROUP BY kind, identity, day_ms \
         ORDER BY kind, identity, day_ms \
         ON CONFLICT (kind, identity, day_ms) DO UPDATE SET \
         requests = identity_days.requests + excluded.requests, \
         errors = identity_days.errors + excluded.errors, \
         cache_hits = identity_days.cache_hits + excluded.cache_hits, \
         tokens_in = identity_days.tokens_in + excluded.tokens_in, \
         tokens_out = identity_days.tokens_out + excluded.tokens_out, \
         cost_usd = identity_days.cost_usd + excluded.cost_usd, \
         first_ms = LEAST(identity_days.first_ms, excluded.first_ms), \
         last_ms = GREATEST(identity_days.last_ms, excluded.last_ms)",
        &[&top],
    )
    .await
    .map_err(db_err)?;
    tx.execute(
        "INSERT INTO identity_models (kind, identity, day_ms, provider, model, requests, \
         cost_usd) SELECT kind, identity, day_ms, provider, model, SUM(requests), \
         SUM(cost_usd) FROM identity_pending WHERE id <= $1 \
         GROUP BY kind, identity, day_ms, provider, model \
         ORDER BY kind, identity, day_ms, provider, model \
         ON CONFLICT (kind, identity, day_ms, provider, model) DO UPDATE SET \
         requests = identity_models.requests + excluded.requests, \
         cost_usd = identity_models.cost_usd + excluded.cost_usd",
        &[&top],
    )
    .await
    .map_err(db_err)?;
    tx.execute(
        "INSERT INTO people (kind, identity, requests, errors, cache_hits, tokens_in, \
         tokens_out, cost_usd, first_seen_ms, last_seen_ms) \
         SELECT p.kind, p.identity, \
         SUM(CASE WHEN p.day_ms >= w.start_day THEN p.requests ELSE 0 END), \
         SUM(CASE WHEN p.day_ms >= w.start_day THEN p.errors ELSE 0 END), \
         SUM(CASE WHEN p.day_ms >= w.start_day THEN p.cache_hits ELSE 0 END), \
         SUM(CASE WHEN p.day_ms >= w.start_day THEN p.tokens_in ELSE 0 END), \
         SUM(CASE WHEN p.day_ms >= w.start_day THEN p.tokens_out ELSE 0 END), \
         SUM(CASE WHEN p.day_ms >= w.start_day THEN p.cost_usd ELSE 0 END), \
         MIN(p.first_ms), MAX(p.last_ms) \
         FROM identity_pending p, people_window w WHERE p.id <= $1 AND w.id = 1 \
         GROUP BY p.kind, p.identity ORDER BY p.kind, p.identity \
         ON CONFLICT (kind, identity) DO UPDATE SET \
         requests = people.requests + excluded.requests, \
         errors = people.errors + excluded.errors, \
         cache_hits = people.cache_hits + excluded.cache_hits, \
         tokens_in = people.tokens_in + excluded.tokens_in, \
         tokens_out = people.tokens_out + excluded.tokens_out, \
         cost_usd = people.cost_usd + excluded.cost_usd, \
         first_seen_ms = LEAST(people.first_seen_ms, excluded.first_seen_ms), \
         last_seen_ms = GREATEST(people.last_seen_ms, excluded.last_seen_ms)",
        &[&top],
    )
    .await
    .map_err(db_err)?;
    let folded = tx
        .execute("DELETE FROM identity_pending WHERE id <= $1", &[&top])
        .await
        .map_err(db_err)?;
    Ok(folded + sessions)
}

/// The stored logs a backfill reads below an id, newest first, and the lowest id read.
async fn logs_below(
    tx: &Transaction<'_>,
    below_id: i64,
    limit: u32,
) -> StoreResult<(Vec<NewInteraction>, Option<i64>)> {
    let rows = tx
        .query(
            &format!(
                "SELECT {BACKFILL_COLUMNS} FROM interactions WHERE id < $1 \
                 ORDER BY id DESC LIMIT $2"
            ),
            &[&below_id, &i64::from(limit)],
        )
        .await
        .map_err(db_err)?;
    let mut logs = Vec::with_capacity(rows.len());
    let mut lowest = None;
    for r in &rows {
        let (id, log) = backfill_log(&PgRow(r))?;
        lowest = Some(id);
        logs.push(log);
    }
    Ok((logs, lowest))
}

fn person_from(r: &tokio_postgres::Row) -> StoreResult<Person> {
    Person::from_columns(&PgRow(r))
}

/// Fills in active days and the top model of a page's identities (all of one kind), from
/// the window's days: two statements for the whole page.
async fn complete(client: &impl GenericClient, people: &mut [Person]) -> StoreResult<()> {
    let Some(kind) = people.first().map(|p| p.kind.as_str()) else {
        return Ok(());
    };
    let start = window_start_on(client).await?;
    let identities: Vec<&str> = people.iter().map(|p| p.identity.as_str()).collect();
    let active = client
        .query(
            "SELECT identity, COUNT(*) FROM identity_days WHERE kind = $1 \
             AND identity = ANY($2) AND day_ms >= $3 AND requests > 0 GROUP BY identity",
            &[&kind, &identities, &start],
        )
        .await
        .map_err(db_err)?;
    let top = client
        .query(
            "SELECT DISTINCT ON (identity) identity, provider, model FROM identity_models \
             WHERE kind = $1 AND identity = ANY($2) AND day_ms >= $3 \
             GROUP BY identity, provider, model \
             ORDER BY identity, SUM(cost_usd) DESC, SUM(requests) DESC, provider, model",
            &[&kind, &identities, &start],
        )
        .await
        .map_err(db_err)?;
    let mut active_by: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for r in &active {
        active_by.insert(r.at(0)?, r.at(1)?);
    }
    let mut top_by: std::collections::HashMap<String, (String, String)> =
        std::collections::HashMap::new();
    for r in &top {
        top_by.insert(r.at(0)?, (r.at(1)?, r.at(2)?));
    }
    let anomalies = if kind == IdentityKind::User.as_str() {
        anomalies::anomalies_of(client, &identities, start).await?
    } else {
        Default::default()
    };
    for person in people {
        person.anomalies = anomalies.get(&person.identity).copied().unwrap_or(0);
        person.active_days = active_by.get(&person.identity).copied().unwrap_or(0);
        person.top_model = top_by.remove(&person.identity);
    }
    Ok(())
}

#[async_trait]
impl PeopleStore for PgStore {
    async fn identity_keys(&self) -> StoreResult<Vec<IdentityKey>> {
        keys_on(&self.client().await?).await
    }

    async fn set_identity_key(
        &self,
        kind: IdentityKind,
        meta_key: Option<String>,
        session_key: Option<String>,
    ) -> StoreResult<Vec<IdentityKey>> {
        let session_key = session_key.filter(|_| kind == IdentityKind::User && meta_key.is_some());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        // Ingest holds this lock until it commits, so every log stored after this commits has
        // a higher id than the backfill's start and is counted as it arrives.
        lock(&tx).await?;
        let current = keys_on(&tx).await?.into_iter().find(|k| k.kind == kind);
        if current.as_ref().map(|k| (&k.meta_key, &k.session_key))
            == meta_key.as_ref().map(|m| (m, &session_key))
        {
            return keys_on(&tx).await;
        }
        if kind == IdentityKind::User {
            anomalies::forget_sessions(&tx).await?;
        }
        for table in [
            "identity_pending",
            "identity_days",
            "identity_models",
            "people",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE kind = $1"),
                &[&kind.as_str()],
            )
            .await
            .map_err(db_err)?;
        }
        match meta_key {
            Some(meta_key) => {
                tx.execute(
                    "INSERT INTO identity_keys (kind, meta_key, backfill_below, set_at, \
                     session_key) \
                     SELECT $1::text, $2::text, MAX(id) + 1, $3::bigint, $4::text \
                     FROM interactions \
                     ON CONFLICT (kind) DO UPDATE SET meta_key = excluded.meta_key, \
                     backfill_below = excluded.backfill_below, set_at = excluded.set_at, \
                     session_key = excluded.session_key",
                    &[&kind.as_str(), &meta_key, &now_ms(), &session_key],
                )
                .await
                .map_err(db_err)?;
            }
            None => {
                tx.execute(
                    "DELETE FROM identity_keys WHERE kind = $1",
                    &[&kind.as_str()],
                )
                .await
                .map_err(db_err)?;
            }
        }
        let keys = keys_on(&tx).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(keys)
    }

    async fn backfill_identities(&self, limit: u32) -> StoreResult<u64> {
        let mut client = self.client().await?;
        // Without a key to backfill, don't take the lock ingest needs.
        if keys_on(&client)
            .await?
            .iter()
            .all(|k| k.backfill_below_id.is_none())
        {
            return Ok(0);
        }
        let tx = client.transaction().await.map_err(db_err)?;
        lock(&tx).await?;
        let mut read = 0;
        let floor = window_start_on(&tx).await? - DAY_MS;
        for key in keys_on(&tx).await? {
            let Some(below) = key.backfill_below_id else {
                continue;
            };
            let (logs, lowest) = logs_below(&tx, below, limit).await?;
            read += logs.len() as u64;
            append(
                &tx,
                &IdentityDelta::from_logs(std::slice::from_ref(&key), &logs)
                    .without_sessions_before(floor),
            )
            .await?;
            let next = if logs.len() < limit as usize {
                None
            } else {
                lowest
            };
            tx.execute(
                "UPDATE identity_keys SET backfill_below = $2 WHERE kind = $1",
                &[&key.kind.as_str(), &next],
            )
            .await
            .map_err(db_err)?;
        }
        fold(&tx, u32::MAX).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(read)
    }

    async fn fold_identities(&self, limit: u32) -> StoreResult<u64> {
        let mut client = self.client().await?;
        // Nothing pending: don't take the lock ingest needs.
        let pending: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM identity_pending) \
                 OR EXISTS (SELECT 1 FROM session_pending)",
                &[],
            )
            .await
            .map_err(db_err)?
            .at(0)?;
        if !pending {
            return Ok(0);
        }
        let tx = client.transaction().await.map_err(db_err)?;
        lock(&tx).await?;
        let folded = fold(&tx, limit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(folded)
    }

    async fn advance_people_window(&self, now_ms: i64) -> StoreResult<bool> {
        let target = langguard_store::people_window_start(now_ms);
        let mut client = self.client().await?;
        // Most calls find it current: answer those without the lock ingest needs.
        if window_start_on(&client).await? >= target {
            return Ok(false);
        }
        let tx = client.transaction().await.map_err(db_err)?;
        lock(&tx).await?;
        let start = window_start_on(&tx).await?;
        if start >= target {
            return Ok(false);
        }
        tx.execute(
            "UPDATE people SET requests = people.requests - d.requests, \
             errors = people.errors - d.errors, cache_hits = people.cache_hits - d.cache_hits, \
             tokens_in = people.tokens_in - d.tokens_in, \
             tokens_out = people.tokens_out - d.tokens_out, \
             cost_usd = CASE WHEN people.requests = d.requests THEN 0 \
                             ELSE people.cost_usd - d.cost_usd END \
             FROM (SELECT kind, identity, SUM(requests) AS requests, SUM(errors) AS errors, \
                   SUM(cache_hits) AS cache_hits, SUM(tokens_in) AS tokens_in, \
                   SUM(tokens_out) AS tokens_out, SUM(cost_usd) AS cost_usd \
                   FROM identity_days WHERE day_ms >= $1 AND day_ms < $2 \
                   GROUP BY kind, identity) AS d \
             WHERE people.kind = d.kind AND people.identity = d.identity",
            &[&start, &target],
        )
        .await
        .map_err(db_err)?;
        tx.execute(
            "UPDATE people_window SET start_day = $1 WHERE id = 1",
            &[&target],
        )
        .await
        .map_err(db_err)?;
        // Sessions are kept as far back as a baseline reaches (30 days before a session).
        anomalies::prune_sessions(&tx, target - DAY_MS).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn people_window_start(&self) -> StoreResult<i64> {
        window_start_on(&self.client().await?).await
    }

    async fn people(&self, query: &PeopleQuery) -> StoreResult<PeoplePage> {
        let client = self.client().await?;
        let order = query.sort.order_by();
        let filter = "kind = $1 AND requests > 0 \
                      AND ($2::text IS NULL OR strpos(lower(identity), lower($2::text)) > 0)";
        let kind = query.kind.as_str();
        let total: i64 = client
            .query_one(
                &format!("SELECT COUNT(*) FROM people WHERE {filter}"),
                &[&kind, &query.search],
            )
            .await
            .map_err(db_err)?
            .at(0)?;
        let rows = client
            .query(
                &format!(
                    "SELECT {PERSON_COLUMNS} FROM people WHERE {filter} ORDER BY {order} \
                     LIMIT $3 OFFSET $4"
                ),
                &[
                    &kind,
                    &query.search,
                    &i64::from(query.limit),
                    &i64::from(query.offset),
                ],
            )
            .await
            .map_err(db_err)?;
        let mut people = rows
            .iter()
            .map(person_from)
            .collect::<StoreResult<Vec<_>>>()?;
        complete(&client, &mut people).await?;
        Ok(PeoplePage {
            people,
            total: total as u64,
        })
    }

    async fn person(&self, kind: IdentityKind, identity: &str) -> StoreResult<Option<Person>> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                &format!("SELECT {PERSON_COLUMNS} FROM people WHERE kind = $1 AND identity = $2"),
                &[&kind.as_str(), &identity],
            )
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let mut people = [person_from(&row)?];
        complete(&client, &mut people).await?;
        let [person] = people;
        Ok(Some(person))
    }

    async fn identity_days(
        &self,
        kind: IdentityKind,
        identity: &str,
        from_day_ms: i64,
    ) -> StoreResult<Vec<IdentityDayTotals>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT day_ms, requests, errors, cache_hits, tokens_in, tokens_out, cost_usd, \
                 first_ms, last_ms FROM identity_days \
                 WHERE kind = $1 AND identity = $2 AND day_ms >= $3 ORDER BY day_ms",
                &[&kind.as_str(), &identity, &from_day_ms],
            )
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(IdentityDayTotals {
                    day_ms: r.at(0)?,
                    totals: IdentityTotals {
                        requests: r.at(1)?,
                        errors: r.at(2)?,
                        cache_hits: r.at(3)?,
                        tokens_in: r.at(4)?,
                        tokens_out: r.at(5)?,
                        cost_usd: r.at(6)?,
                        first_ms: r.at(7)?,
                        last_ms: r.at(8)?,
                    },
                })
            })
            .collect()
    }

    async fn identity_models(
        &self,
        kind: IdentityKind,
        identity: &str,
        from_day_ms: i64,
    ) -> StoreResult<Vec<IdentityModelTotals>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT provider, model, SUM(requests)::bigint, SUM(cost_usd) FROM identity_models \
                 WHERE kind = $1 AND identity = $2 AND day_ms >= $3 GROUP BY provider, model \
                 ORDER BY SUM(cost_usd) DESC, SUM(requests) DESC, provider, model",
                &[&kind.as_str(), &identity, &from_day_ms],
            )
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(IdentityModelTotals {
                    provider: r.at(0)?,
                    model: r.at(1)?,
                    requests: r.at(2)?,
                    cost_usd: r.at(3)?,
                })
            })
            .collect()
    }
}
