//! Spend anomalies: the user sessions (appended by ingest through [`append_sessions`], folded
//! by the people upkeep through [`fold_sessions`]) and the detector's judgements.

use async_trait::async_trait;
use langguard_store::rows::USER_SESSION_COLUMNS;
use langguard_store::*;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::records::SqliteRow;
use crate::{db_err, SqliteStore};

/// Appends a delta's sessions to the pending table; inside the caller's transaction.
pub(crate) fn append_sessions(tx: &Connection, delta: &IdentityDelta) -> StoreResult<()> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO session_pending (identity, session, hour_ms, requests, cost_usd, \
             first_ms, last_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(db_err)?;
    for ((user, session, hour_ms), t) in &delta.sessions {
        insert
            .execute(params![
                user, session, hour_ms, t.requests, t.cost_usd, t.first_ms, t.last_ms
            ])
            .map_err(db_err)?;
    }
    Ok(())
}

/// Folds the oldest `limit` pending session rows into the sessions; returns how many.
pub(crate) fn fold_sessions(tx: &Connection, limit: u32) -> StoreResult<u64> {
    let top: Option<i64> = tx
        .query_row(
            "SELECT MIN(MAX(id), MIN(id) + ?1 - 1) FROM session_pending",
            [limit],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let Some(top) = top else { return Ok(0) };
    tx.execute(
        "INSERT INTO user_sessions (identity, session, hour_ms, first_ms, last_ms, requests, \
         cost_usd) SELECT identity, session, hour_ms, MIN(first_ms), MAX(last_ms), \
         SUM(requests), SUM(cost_usd) FROM session_pending WHERE id <= ?1 \
         GROUP BY identity, session, hour_ms \
         ON CONFLICT (identity, session, hour_ms) DO UPDATE SET \
         first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms), \
         requests = requests + excluded.requests, cost_usd = cost_usd + excluded.cost_usd",
        [top],
    )
    .map_err(db_err)?;
    let folded = tx
        .execute("DELETE FROM session_pending WHERE id <= ?1", [top])
        .map_err(db_err)?;
    Ok(folded as u64)
}

/// Drops every session (the user key or the session key changed).
pub(crate) fn forget_sessions(tx: &Connection) -> StoreResult<()> {
    tx.execute_batch("DELETE FROM session_pending; DELETE FROM user_sessions;")
        .map_err(db_err)
}

/// Drops the sessions whose last traffic is before `before_ms`: older than any baseline reads.
pub(crate) fn prune_sessions(tx: &Connection, before_ms: i64) -> StoreResult<()> {
    tx.execute("DELETE FROM user_sessions WHERE last_ms < ?1", [before_ms])
        .map_err(db_err)?;
    Ok(())
}

/// A user's flagged sessions with traffic since `since_ms`.
pub(crate) fn anomalies_of(conn: &Connection, user: &str, since_ms: i64) -> StoreResult<i64> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM user_sessions WHERE identity = ?1 AND last_ms >= ?2 \
         AND flagged_at IS NOT NULL",
    )
    .map_err(db_err)?
    .query_row(params![user, since_ms], |r| r.get(0))
    .map_err(db_err)
}

fn sessions(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<UserSession>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(params).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push(UserSession::from_columns(&SqliteRow(r))?);
    }
    Ok(out)
}

#[async_trait]
impl AnomalyStore for SqliteStore {
    async fn sessions_to_check(&self, since_ms: i64, limit: u32) -> StoreResult<Vec<UserSession>> {
        self.read(move |conn| {
            sessions(
                conn,
                &format!(
                    "SELECT {USER_SESSION_COLUMNS} FROM user_sessions \
                     WHERE requests <> checked_requests AND first_ms >= ?1 \
                     ORDER BY identity, first_ms LIMIT ?2"
                ),
                params![since_ms, limit],
            )
        })
        .await
    }

    async fn session_costs(
        &self,
        user: &str,
        from_ms: i64,
        before_ms: i64,
    ) -> StoreResult<Vec<(i64, f64)>> {
        let user = user.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT first_ms, cost_usd FROM user_sessions WHERE identity = ?1 \
                     AND first_ms >= ?2 AND first_ms < ?3 ORDER BY first_ms",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![user, from_ms, before_ms], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn session_cost_percentile(&self, p: f64) -> StoreResult<Option<f64>> {
        self.read(move |conn| {
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM user_sessions", [], |r| r.get(0))
                .map_err(db_err)?;
            if n == 0 {
                return Ok(None);
            }
            // The n-th largest through the cost index: reads the top 1 % only.
            let rank = rank_from_top(n as u64, p) as i64;
            // None when sessions were dropped between the two reads (a key changed).
            conn.query_row(
                "SELECT cost_usd FROM user_sessions ORDER BY cost_usd DESC LIMIT 1 OFFSET ?1",
                [rank - 1],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn save_session_checks(&self, checks: Vec<SessionCheck>) -> StoreResult<()> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            {
                let mut save = tx
                    .prepare_cached(
                        "UPDATE user_sessions SET checked_requests = ?4, \
                         flagged_at = COALESCE(flagged_at, ?5), \
                         flag_spend_usd = CASE WHEN flagged_at IS NULL THEN ?6 \
                                          ELSE flag_spend_usd END, \
                         user_p95_usd = CASE WHEN flagged_at IS NULL THEN ?7 \
                                        ELSE user_p95_usd END, \
                         baseline_sessions = CASE WHEN flagged_at IS NULL THEN ?8 \
                                             ELSE baseline_sessions END, \
                         org_p99_usd = CASE WHEN flagged_at IS NULL THEN ?9 \
                                       ELSE org_p99_usd END \
                         WHERE identity = ?1 AND session = ?2 AND hour_ms = ?3",
                    )
                    .map_err(db_err)?;
                for c in &checks {
                    let a = c.anomaly.as_ref();
                    save.execute(params![
                        c.user,
                        c.session,
                        c.hour_ms,
                        c.requests,
                        a.map(|a| a.flagged_at_ms),
                        a.map(|a| a.spend_usd),
                        a.map(|a| a.user_p95_usd),
                        a.map(|a| a.baseline_sessions),
                        a.map(|a| a.org_p99_usd),
                    ])
                    .map_err(db_err)?;
                }
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn spend_anomalies(&self, query: &AnomalyQuery) -> StoreResult<Vec<UserSession>> {
        let query = query.clone();
        self.read(move |conn| {
            sessions(
                conn,
                &format!(
                    "SELECT {USER_SESSION_COLUMNS} FROM user_sessions \
                     WHERE flagged_at IS NOT NULL AND last_ms >= ?1 \
                     AND (?2 IS NULL OR identity = ?2) \
                     ORDER BY flagged_at DESC, last_ms DESC, identity, session LIMIT ?3"
                ),
                params![query.since_ms, query.user, query.limit],
            )
        })
        .await
    }

    async fn count_spend_anomalies(&self, from_ms: i64, to_ms: i64) -> StoreResult<u64> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM user_sessions WHERE flagged_at IS NOT NULL \
                 AND last_ms >= ?1 AND first_ms < ?2",
                params![from_ms, to_ms],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(db_err)
        })
        .await
    }

    async fn user_sessions(&self, keys: Vec<SessionOf>) -> StoreResult<Vec<UserSession>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {USER_SESSION_COLUMNS} FROM user_sessions \
                 WHERE identity = ?1 AND session = ?2 AND hour_ms = ?3"
            );
            let mut out = Vec::new();
            for (user, session, hour_ms) in &keys {
                out.extend(sessions(conn, &sql, params![user, session, hour_ms])?);
            }
            Ok(out)
        })
        .await
    }
}
