//! Spend anomalies: the user sessions (appended by ingest through [`append_sessions`], folded
//! by the people upkeep through [`fold_sessions`], both under the interactions lock) and the
//! detector's judgements.

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use langguard_store::rows::USER_SESSION_COLUMNS;
use langguard_store::*;

use crate::records::{PgRow, RowExt};
use crate::{db_err, PgStore};

/// Appends a delta's sessions to the pending table: one statement.
pub(crate) async fn append_sessions(
    tx: &Transaction<'_>,
    delta: &IdentityDelta,
) -> StoreResult<()> {
    if delta.sessions.is_empty() {
        return Ok(());
    }
    let mut users: Vec<&str> = Vec::new();
    let mut sessions: Vec<&str> = Vec::new();
    let mut counts: [Vec<i64>; 4] = Default::default();
    let mut costs = Vec::new();
    for ((user, session, hour_ms), t) in &delta.sessions {
        users.push(user);
        sessions.push(session);
        for (column, value) in counts
            .iter_mut()
            .zip([*hour_ms, t.requests, t.first_ms, t.last_ms])
        {
            column.push(value);
        }
        costs.push(t.cost_usd);
    }
    tx.execute(
        "INSERT INTO session_pending (identity, session, hour_ms, requests, first_ms, last_ms, \
         cost_usd) SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], \
         $5::bigint[], $6::bigint[], $7::float8[])",
        &[
            &users, &sessions, &counts[0], &counts[1], &counts[2], &counts[3], &costs,
        ],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Folds the oldest `limit` pending session rows into the sessions; returns how many. The
/// caller holds the interactions lock.
pub(crate) async fn fold_sessions(tx: &Transaction<'_>, limit: u32) -> StoreResult<u64> {
    let top: Option<i64> = tx
        .query_one(
            "SELECT LEAST(MAX(id), MIN(id) + $1 - 1) FROM session_pending",
            &[&i64::from(limit)],
        )
        .await
        .map_err(db_err)?
        .at(0)?;
    let Some(top) = top else { return Ok(0) };
    tx.execute(
        "INSERT INTO user_sessions (identity, session, hour_ms, first_ms, last_ms, requests, \
         cost_usd) SELECT identity, session, hour_ms, MIN(first_ms), MAX(last_ms), \
         SUM(requests), SUM(cost_usd) FROM session_pending WHERE id <= $1 \
         GROUP BY identity, session, hour_ms ORDER BY identity, session, hour_ms \
         ON CONFLICT (identity, session, hour_ms) DO UPDATE SET \
         first_ms = LEAST(user_sessions.first_ms, excluded.first_ms), \
         last_ms = GREATEST(user_sessions.last_ms, excluded.last_ms), \
         requests = user_sessions.requests + excluded.requests, \
         cost_usd = user_sessions.cost_usd + excluded.cost_usd",
        &[&top],
    )
    .await
    .map_err(db_err)?;
    tx.execute("DELETE FROM session_pending WHERE id <= $1", &[&top])
        .await
        .map_err(db_err)
}

/// Drops every session (the user key or the session key changed).
pub(crate) async fn forget_sessions(tx: &Transaction<'_>) -> StoreResult<()> {
    tx.batch_execute("DELETE FROM session_pending; DELETE FROM user_sessions;")
        .await
        .map_err(db_err)
}

/// Drops the sessions whose last traffic is before `before_ms`: older than any baseline reads.
pub(crate) async fn prune_sessions(tx: &Transaction<'_>, before_ms: i64) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM user_sessions WHERE last_ms < $1",
        &[&before_ms],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Per user of `users`, their flagged sessions with traffic since `since_ms`.
pub(crate) async fn anomalies_of(
    client: &impl GenericClient,
    users: &[&str],
    since_ms: i64,
) -> StoreResult<std::collections::HashMap<String, i64>> {
    let rows = client
        .query(
            "SELECT identity, COUNT(*) FROM user_sessions WHERE identity = ANY($1) \
             AND last_ms >= $2 AND flagged_at IS NOT NULL GROUP BY identity",
            &[&users, &since_ms],
        )
        .await
        .map_err(db_err)?;
    rows.iter().map(|r| Ok((r.at(0)?, r.at(1)?))).collect()
}

fn sessions(rows: &[tokio_postgres::Row]) -> StoreResult<Vec<UserSession>> {
    rows.iter()
        .map(|r| UserSession::from_columns(&PgRow(r)))
        .collect()
}

#[async_trait]
impl AnomalyStore for PgStore {
    async fn sessions_to_check(&self, since_ms: i64, limit: u32) -> StoreResult<Vec<UserSession>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {USER_SESSION_COLUMNS} FROM user_sessions \
                     WHERE requests <> checked_requests AND first_ms >= $1 \
                     ORDER BY identity, first_ms LIMIT $2"
                ),
                &[&since_ms, &i64::from(limit)],
            )
            .await
            .map_err(db_err)?;
        sessions(&rows)
    }

    async fn session_costs(
        &self,
        user: &str,
        from_ms: i64,
        before_ms: i64,
    ) -> StoreResult<Vec<(i64, f64)>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT first_ms, cost_usd FROM user_sessions WHERE identity = $1 \
                 AND first_ms >= $2 AND first_ms < $3 ORDER BY first_ms",
                &[&user, &from_ms, &before_ms],
            )
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| Ok((r.at(0)?, r.at(1)?))).collect()
    }

    async fn session_cost_percentile(&self, p: f64) -> StoreResult<Option<f64>> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one("SELECT COUNT(*) FROM user_sessions", &[])
            .await
            .map_err(db_err)?
            .at(0)?;
        if n == 0 {
            return Ok(None);
        }
        // The n-th largest through the cost index: reads the top 1 % only.
        let rank = rank_from_top(n as u64, p) as i64;
        let row = client
            .query_opt(
                "SELECT cost_usd FROM user_sessions ORDER BY cost_usd DESC LIMIT 1 OFFSET $1",
                &[&(rank - 1)],
            )
            .await
            .map_err(db_err)?;
        row.map(|r| r.at(0)).transpose()
    }

    async fn save_session_checks(&self, checks: Vec<SessionCheck>) -> StoreResult<()> {
        if checks.is_empty() {
            return Ok(());
        }
        let mut users: Vec<&str> = Vec::new();
        let mut session_names: Vec<&str> = Vec::new();
        let mut hours = Vec::new();
        let mut requests = Vec::new();
        let mut flagged: Vec<Option<i64>> = Vec::new();
        let mut spends: Vec<Option<f64>> = Vec::new();
        let mut p95s: Vec<Option<f64>> = Vec::new();
        let mut baselines: Vec<Option<i64>> = Vec::new();
        let mut p99s: Vec<Option<f64>> = Vec::new();
        for c in &checks {
            let a = c.anomaly.as_ref();
            users.push(&c.user);
            session_names.push(&c.session);
            hours.push(c.hour_ms);
            requests.push(c.requests);
            flagged.push(a.map(|a| a.flagged_at_ms));
            spends.push(a.map(|a| a.spend_usd));
            p95s.push(a.map(|a| a.user_p95_usd));
            baselines.push(a.map(|a| a.baseline_sessions));
            p99s.push(a.map(|a| a.org_p99_usd));
        }
        let first_flag = |column: &str, value: &str| {
            format!("{column} = CASE WHEN s.flagged_at IS NULL THEN c.{value} ELSE s.{column} END")
        };
        self.client()
            .await?
            .execute(
                &format!(
                    "UPDATE user_sessions s SET checked_requests = c.requests, \
                     flagged_at = COALESCE(s.flagged_at, c.flagged), {}, {}, {}, {} \
                     FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], \
                     $5::bigint[], $6::float8[], $7::float8[], $8::bigint[], $9::float8[]) \
                     AS c(identity, session, hour_ms, requests, flagged, spend, p95, \
                     baseline, p99) \
                     WHERE s.identity = c.identity AND s.session = c.session \
                     AND s.hour_ms = c.hour_ms",
                    first_flag("flag_spend_usd", "spend"),
                    first_flag("user_p95_usd", "p95"),
                    first_flag("baseline_sessions", "baseline"),
                    first_flag("org_p99_usd", "p99"),
                ),
                &[
                    &users,
                    &session_names,
                    &hours,
                    &requests,
                    &flagged,
                    &spends,
                    &p95s,
                    &baselines,
                    &p99s,
                ],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn spend_anomalies(&self, query: &AnomalyQuery) -> StoreResult<Vec<UserSession>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {USER_SESSION_COLUMNS} FROM user_sessions \
                     WHERE flagged_at IS NOT NULL AND last_ms >= $1 \
                     AND ($2::text IS NULL OR identity = $2) \
                     ORDER BY flagged_at DESC, last_ms DESC, identity, session LIMIT $3"
                ),
                &[&query.since_ms, &query.user, &i64::from(query.limit)],
            )
            .await
            .map_err(db_err)?;
        sessions(&rows)
    }

    async fn count_spend_anomalies(&self, from_ms: i64, to_ms: i64) -> StoreResult<u64> {
        let n: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT COUNT(*) FROM user_sessions WHERE flagged_at IS NOT NULL \
                 AND last_ms >= $1 AND first_ms < $2",
                &[&from_ms, &to_ms],
            )
            .await
            .map_err(db_err)?
            .at(0)?;
        Ok(n as u64)
    }

    async fn user_sessions(&self, keys: Vec<SessionOf>) -> StoreResult<Vec<UserSession>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let users: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let names: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let hours: Vec<i64> = keys.iter().map(|k| k.2).collect();
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {USER_SESSION_COLUMNS} FROM user_sessions \
                     WHERE (identity, session, hour_ms) IN \
                     (SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[]))"
                ),
                &[&users, &names, &hours],
            )
            .await
            .map_err(db_err)?;
        sessions(&rows)
    }
}
