//! People and teams: identity keys, the per-identity rollups (added by ingest through
//! [`add_identities`]) and the rolling 30-day summary.

use async_trait::async_trait;
use langguard_store::rows::{backfill_log, BACKFILL_COLUMNS, PERSON_COLUMNS};
use langguard_store::*;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::anomalies;
use crate::records::SqliteRow;
use crate::{db_err, now_ms, SqliteStore};

fn keys_on(conn: &Connection) -> StoreResult<Vec<IdentityKey>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT kind, meta_key, backfill_below, set_at, session_key FROM identity_keys \
             ORDER BY kind",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .map_err(db_err)?;
    let mut keys = Vec::new();
    for row in rows {
        let (kind, meta_key, backfill_below_id, set_at_ms, session_key) = row.map_err(db_err)?;
        let kind = IdentityKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("identity kind {kind:?}")))?;
        keys.push(IdentityKey {
            kind,
            meta_key,
            session_key,
            backfill_below_id,
            set_at_ms,
        });
    }
    Ok(keys)
}

fn window_start_on(conn: &Connection) -> StoreResult<i64> {
    conn.query_row(
        "SELECT start_day FROM people_window WHERE id = 1",
        [],
        |r| r.get(0),
    )
    .map_err(db_err)
}

/// Counts a batch of newly stored logs for every named key — appended to the pending table,
/// folded in by the upkeep; inside the ingest transaction.
pub(crate) fn add_identities(tx: &Connection, logs: &[NewInteraction]) -> StoreResult<()> {
    if logs.is_empty() {
        return Ok(());
    }
    let keys = keys_on(tx)?;
    if keys.is_empty() {
        return Ok(());
    }
    append(tx, &IdentityDelta::from_logs(&keys, logs))
}

fn append(tx: &Connection, delta: &IdentityDelta) -> StoreResult<()> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO identity_pending (kind, identity, day_ms, provider, model, requests, \
             errors, cache_hits, tokens_in, tokens_out, cost_usd, first_ms, last_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .map_err(db_err)?;
    for ((kind, identity, day_ms, provider, model), t) in &delta.rows {
        insert
            .execute(params![
                kind.as_str(),
                identity,
                day_ms,
                provider,
                model,
                t.requests,
                t.errors,
                t.cache_hits,
                t.tokens_in,
                t.tokens_out,
                t.cost_usd,
                t.first_ms,
                t.last_ms
            ])
            .map_err(db_err)?;
    }
    anomalies::append_sessions(tx, delta)
}

/// Folds every pending addition into the day and model rollups and the summary (days inside
/// the window only; first and last seen from any day); returns how many rows it folded.
fn fold(tx: &Connection, limit: u32) -> StoreResult<u64> {
    // Ids are assigned in append order: the ids below the lowest plus `limit` are the oldest
    // (fewer than `limit` where a forgotten key's rows left a gap; the upkeep goes on then).
    let top: Option<i64> = tx
        .query_row(
            "SELECT MIN(MAX(id), MIN(id) + ?1 - 1) FROM identity_pending",
            [limit],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let sessions = anomalies::fold_sessions(tx, limit)?;
    let Some(top) = top else { return Ok(sessions) };
    // GROUP BY hands the rows over in key order: each page of a table is written once.
    tx.execute(
        "INSERT INTO identity_days (kind, identity, day_ms, requests, errors, cache_hits, \
         tokens_in, tokens_out, cost_usd, first_ms, last_ms) \
         SELECT kind, identity, day_ms, SUM(requests), SUM(errors), SUM(cache_hits), \
         SUM(tokens_in), SUM(tokens_out), SUM(cost_usd), MIN(first_ms), MAX(last_ms) \
         FROM identity_pending WHERE id <= ?1 GROUP BY kind, identity, day_ms \
         ON CONFLICT (kind, identity, day_ms) DO UPDATE SET \
         requests = requests + excluded.requests, errors = errors + excluded.errors, \
         cache_hits = cache_hits + excluded.cache_hits, \
         tokens_in = tokens_in + excluded.tokens_in, \
         tokens_out = tokens_out + excluded.tokens_out, \
         cost_usd = cost_usd + excluded.cost_usd, \
         first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms)",
        [top],
    )
    .map_err(db_err)?;
    tx.execute(
        "INSERT INTO identity_models (kind, identity, day_ms, provider, model, requests, \
         cost_usd) SELECT kind, identity, day_ms, provider, model, SUM(requests), \
         SUM(cost_usd) FROM identity_pending WHERE id <= ?1 \
         GROUP BY kind, identity, day_ms, provider, model \
         ON CONFLICT (kind, identity, day_ms, provider, model) DO UPDATE SET \
         requests = requests + excluded.requests, cost_usd = cost_usd + excluded.cost_usd",
        [top],
    )
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
         FROM identity_pending p, people_window w WHERE p.id <= ?1 AND w.id = 1 \
         GROUP BY p.kind, p.identity \
         ON CONFLICT (kind, identity) DO UPDATE SET \
         requests = requests + excluded.requests, errors = errors + excluded.errors, \
         cache_hits = cache_hits + excluded.cache_hits, \
         tokens_in = tokens_in + excluded.tokens_in, \
         tokens_out = tokens_out + excluded.tokens_out, \
         cost_usd = cost_usd + excluded.cost_usd, \
         first_seen_ms = min(first_seen_ms, excluded.first_seen_ms), \
         last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
        [top],
    )
    .map_err(db_err)?;
    let folded = tx
        .execute("DELETE FROM identity_pending WHERE id <= ?1", [top])
        .map_err(db_err)?;
    Ok(folded as u64 + sessions)
}

/// After interactions were deleted: SQLite gives a new row the highest id plus one, so once the
/// newest rows are gone, logs stored from now on could get ids below a backfill's bound and be
/// counted twice (at ingest and by the backfill). Every id between the new highest and the old
/// bound was just deleted, so lowering the bound loses nothing. Inside the deleting transaction.
pub(crate) fn after_interactions_deleted(tx: &Connection) -> StoreResult<()> {
    tx.execute(
        "UPDATE identity_keys SET backfill_below = \
         min(backfill_below, (SELECT COALESCE(MAX(id), 0) + 1 FROM interactions)) \
         WHERE backfill_below IS NOT NULL",
        [],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Drops every rollup of `kind`.
fn forget_kind(tx: &Connection, kind: IdentityKind) -> StoreResult<()> {
    for table in [
        "identity_pending",
        "identity_days",
        "identity_models",
        "people",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE kind = ?1"),
            [kind.as_str()],
        )
        .map_err(db_err)?;
    }
    if kind == IdentityKind::User {
        anomalies::forget_sessions(tx)?;
    }
    Ok(())
}

/// The stored logs a backfill reads: what the identity rollups need of each.
fn logs_below(
    tx: &Connection,
    below_id: i64,
    limit: u32,
) -> StoreResult<(Vec<NewInteraction>, Option<i64>)> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {BACKFILL_COLUMNS} FROM interactions WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
        ))
        .map_err(db_err)?;
    let mut rows = stmt.query(params![below_id, limit]).map_err(db_err)?;
    let mut logs = Vec::new();
    let mut lowest = None;
    while let Some(r) = rows.next().map_err(db_err)? {
        let (id, log) = backfill_log(&SqliteRow(r))?;
        lowest = Some(id);
        logs.push(log);
    }
    Ok((logs, lowest))
}

fn person_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoreResult<Person>> {
    Ok(Person::from_columns(&SqliteRow(r)))
}

/// Fills in what the summary row doesn't hold: active days and the top model, from the
/// window's days (from `start`) of the identity.
fn complete(conn: &Connection, start: i64, mut person: Person) -> StoreResult<Person> {
    let kind = person.kind.as_str();
    person.active_days = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM identity_days WHERE kind = ?1 AND identity = ?2 \
             AND day_ms >= ?3 AND requests > 0",
        )
        .map_err(db_err)?
        .query_row(params![kind, person.identity, start], |r| r.get(0))
        .map_err(db_err)?;
    person.top_model = conn
        .prepare_cached(
            "SELECT provider, model FROM identity_models WHERE kind = ?1 AND identity = ?2 \
             AND day_ms >= ?3 GROUP BY provider, model \
             ORDER BY SUM(cost_usd) DESC, SUM(requests) DESC, provider, model LIMIT 1",
        )
        .map_err(db_err)?
        .query_row(params![kind, person.identity, start], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(db_err)?;
    if person.kind == IdentityKind::User {
        person.anomalies = anomalies::anomalies_of(conn, &person.identity, start)?;
    }
    Ok(person)
}

#[async_trait]
impl PeopleStore for SqliteStore {
    async fn identity_keys(&self) -> StoreResult<Vec<IdentityKey>> {
        self.read(keys_on).await
    }

    async fn set_identity_key(
        &self,
        kind: IdentityKind,
        meta_key: Option<String>,
        session_key: Option<String>,
    ) -> StoreResult<Vec<IdentityKey>> {
        let session_key = session_key.filter(|_| kind == IdentityKind::User && meta_key.is_some());
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let current = keys_on(&tx)?.into_iter().find(|k| k.kind == kind);
            if current.as_ref().map(|k| (&k.meta_key, &k.session_key))
                == meta_key.as_ref().map(|m| (m, &session_key))
            {
                return keys_on(&tx);
            }
            forget_kind(&tx, kind)?;
            match meta_key {
                Some(meta_key) => {
                    // Ingest is serialised with this (one writer), so every log stored from
                    // here on has a higher id and is counted as it arrives.
                    let below: Option<i64> = tx
                        .query_row("SELECT MAX(id) + 1 FROM interactions", [], |r| r.get(0))
                        .map_err(db_err)?;
                    tx.execute(
                        "INSERT INTO identity_keys (kind, meta_key, backfill_below, set_at, \
                         session_key) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (kind) DO UPDATE \
                         SET meta_key = excluded.meta_key, \
                         backfill_below = excluded.backfill_below, set_at = excluded.set_at, \
                         session_key = excluded.session_key",
                        params![kind.as_str(), meta_key, below, now_ms(), session_key],
                    )
                    .map_err(db_err)?;
                }
                None => {
                    tx.execute("DELETE FROM identity_keys WHERE kind = ?1", [kind.as_str()])
                        .map_err(db_err)?;
                }
            }
            let keys = keys_on(&tx)?;
            tx.commit().map_err(db_err)?;
            Ok(keys)
        })
        .await
    }

    async fn backfill_identities(&self, limit: u32) -> StoreResult<u64> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let mut read = 0;
            let floor = window_start_on(&tx)? - DAY_MS;
            for key in keys_on(&tx)? {
                let Some(below) = key.backfill_below_id else {
                    continue;
                };
                let (logs, lowest) = logs_below(&tx, below, limit)?;
                read += logs.len() as u64;
                append(
                    &tx,
                    &IdentityDelta::from_logs(std::slice::from_ref(&key), &logs)
                        .without_sessions_before(floor),
                )?;
                let next = if logs.len() < limit as usize {
                    None
                } else {
                    lowest
                };
                tx.execute(
                    "UPDATE identity_keys SET backfill_below = ?2 WHERE kind = ?1",
                    params![key.kind.as_str(), next],
                )
                .map_err(db_err)?;
            }
            fold(&tx, u32::MAX)?;
            tx.commit().map_err(db_err)?;
            Ok(read)
        })
        .await
    }

    async fn fold_identities(&self, limit: u32) -> StoreResult<u64> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let folded = fold(&tx, limit)?;
            tx.commit().map_err(db_err)?;
            Ok(folded)
        })
        .await
    }

    async fn advance_people_window(&self, now_ms: i64) -> StoreResult<bool> {
        let target = langguard_store::people_window_start(now_ms);
        // Most calls find it current: answer those from a reader, without the write lock.
        if self.read(window_start_on).await? >= target {
            return Ok(false);
        }
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let start = window_start_on(&tx)?;
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
                       FROM identity_days WHERE day_ms >= ?1 AND day_ms < ?2 \
                       GROUP BY kind, identity) AS d \
                 WHERE people.kind = d.kind AND people.identity = d.identity",
                params![start, target],
            )
            .map_err(db_err)?;
            tx.execute(
                "UPDATE people_window SET start_day = ?1 WHERE id = 1",
                [target],
            )
            .map_err(db_err)?;
            // Sessions are kept as far back as a baseline reaches (30 days before a session).
            anomalies::prune_sessions(&tx, target - DAY_MS)?;
            tx.commit().map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn people_window_start(&self) -> StoreResult<i64> {
        self.read(window_start_on).await
    }

    async fn people(&self, query: &PeopleQuery) -> StoreResult<PeoplePage> {
        let query = query.clone();
        self.read(move |conn| {
            let order = query.sort.order_by();
            let filter = "kind = ?1 AND requests > 0 \
                          AND (?2 IS NULL OR instr(lower(identity), lower(?2)) > 0)";
            let search = query.search.as_deref();
            let total: i64 = conn
                .prepare_cached(&format!("SELECT COUNT(*) FROM people WHERE {filter}"))
                .map_err(db_err)?
                .query_row(params![query.kind.as_str(), search], |r| r.get(0))
                .map_err(db_err)?;
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {PERSON_COLUMNS} FROM people WHERE {filter} ORDER BY {order} \
                     LIMIT ?3 OFFSET ?4"
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map(
                    params![query.kind.as_str(), search, query.limit, query.offset],
                    person_from,
                )
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            let start = window_start_on(conn)?;
            let people = rows
                .into_iter()
                .map(|row| complete(conn, start, row?))
                .collect::<StoreResult<_>>()?;
            Ok(PeoplePage {
                people,
                total: total as u64,
            })
        })
        .await
    }

    async fn person(&self, kind: IdentityKind, identity: &str) -> StoreResult<Option<Person>> {
        let identity = identity.to_owned();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&format!(
                    "SELECT {PERSON_COLUMNS} FROM people WHERE kind = ?1 AND identity = ?2"
                ))
                .map_err(db_err)?
                .query_row(params![kind.as_str(), identity], person_from)
                .optional()
                .map_err(db_err)?;
            let start = window_start_on(conn)?;
            row.map(|row| complete(conn, start, row?)).transpose()
        })
        .await
    }

    async fn identity_days(
        &self,
        kind: IdentityKind,
        identity: &str,
        from_day_ms: i64,
    ) -> StoreResult<Vec<IdentityDayTotals>> {
        let identity = identity.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT day_ms, requests, errors, cache_hits, tokens_in, tokens_out, \
                     cost_usd, first_ms, last_ms FROM identity_days \
                     WHERE kind = ?1 AND identity = ?2 AND day_ms >= ?3 ORDER BY day_ms",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![kind.as_str(), identity, from_day_ms], |r| {
                    Ok(IdentityDayTotals {
                        day_ms: r.get(0)?,
                        totals: IdentityTotals {
                            requests: r.get(1)?,
                            errors: r.get(2)?,
                            cache_hits: r.get(3)?,
                            tokens_in: r.get(4)?,
                            tokens_out: r.get(5)?,
                            cost_usd: r.get(6)?,
                            first_ms: r.get(7)?,
                            last_ms: r.get(8)?,
                        },
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn identity_models(
        &self,
        kind: IdentityKind,
        identity: &str,
        from_day_ms: i64,
    ) -> StoreResult<Vec<IdentityModelTotals>> {
        let identity = identity.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT provider, model, SUM(requests), SUM(cost_usd) FROM identity_models \
                     WHERE kind = ?1 AND identity = ?2 AND day_ms >= ?3 \
                     GROUP BY provider, model \
                     ORDER BY SUM(cost_usd) DESC, SUM(requests) DESC, provider, model",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![kind.as_str(), identity, from_day_ms], |r| {
                    Ok(IdentityModelTotals {
                        provider: r.get(0)?,
                        model: r.get(1)?,
                        requests: r.get(2)?,
                        cost_usd: r.get(3)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }
}
