//! Metrics from the rollups (never from raw rows), and single interactions.
//!
//! Every metrics query folds rollup rows into [`Cells`]; a range can be folded in parts (on
//! separate connections, in parallel) whose cells merge exactly.

use langguard_store::fold::{self, rollup_scans, Cells, RollupScan};
use langguard_store::{
    Bucket, GroupBy, Interaction, LatencySketch, RollupTotals, Scope, StoreError, StoreResult,
};
use langguard_store::{IntegrationId, MinuteSpend};
use rusqlite::{params, params_from_iter, Connection};

use crate::conditions::Conditions;
use crate::db_err;
use crate::records::{interaction_from_row, INTERACTION_COLUMNS};

/// Folds the rollups covering `scope` into cells of `bucket` (one cell per group without one).
pub(crate) fn fold(
    conn: &Connection,
    scope: &Scope,
    group_by: Option<GroupBy>,
    bucket: Option<Bucket>,
) -> StoreResult<Cells> {
    let mut cells = Cells::new();
    for part in rollup_scans(scope, bucket == Some(Bucket::Minute)) {
        scan(conn, part, scope, group_by, bucket, &mut cells)?;
    }
    Ok(cells)
}

/// Folds one rollup table's rows with `from <= bucket start < to`, in the scope.
fn scan(
    conn: &Connection,
    part: RollupScan,
    scope: &Scope,
    group_by: Option<GroupBy>,
    bucket: Option<Bucket>,
    cells: &mut Cells,
) -> StoreResult<()> {
    let (table, time) = part.table.table();
    let conditions = Conditions::scope(scope, time, part.from, part.to);
    let sql = format!(
        "SELECT {}, requests, errors, cache_hits, rate_limited, tokens_in, \
         tokens_out, cost_usd, unpriced, duration_ms_sum, latency_sketch, {time} \
         FROM {table} WHERE 1 = 1{}",
        fold::group_column(group_by),
        conditions.sql
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let mut rows = stmt
        .query(params_from_iter(conditions.params))
        .map_err(db_err)?;
    while let Some(row) = rows.next().map_err(db_err)? {
        let sketch = row.get_ref(10).map_err(db_err)?.as_blob().map_err(|e| {
            StoreError::Corrupt(format!("{table}: latency sketch is not a blob ({e})"))
        })?;
        let totals = RollupTotals {
            requests: row.get(1).map_err(db_err)?,
            errors: row.get(2).map_err(db_err)?,
            cache_hits: row.get(3).map_err(db_err)?,
            rate_limited: row.get(4).map_err(db_err)?,
            tokens_in: row.get(5).map_err(db_err)?,
            tokens_out: row.get(6).map_err(db_err)?,
            cost_usd: row.get(7).map_err(db_err)?,
            unpriced: row.get(8).map_err(db_err)?,
            duration_ms_sum: row.get(9).map_err(db_err)?,
            latency: LatencySketch::new(),
        };
        let group: String = row.get(0).map_err(db_err)?;
        let start: i64 = row.get(11).map_err(db_err)?;
        fold::fold_row(cells, bucket, group, start, &totals, sketch)
            .map_err(|e| StoreError::Corrupt(format!("{table}: {e}")))?;
    }
    Ok(())
}

pub(crate) fn count_interactions(conn: &Connection, scope: &Scope) -> StoreResult<u64> {
    let conditions = Conditions::scope(scope, "created_at", scope.from_ms, scope.to_ms);
    let sql = format!(
        "SELECT COUNT(*) FROM interactions WHERE 1 = 1{}",
        conditions.sql
    );
    let n: i64 = conn
        .query_row(&sql, params_from_iter(conditions.params), |r| r.get(0))
        .map_err(db_err)?;
    Ok(n.max(0) as u64)
}

pub(crate) fn get_interaction(conn: &Connection, id: i64) -> StoreResult<Interaction> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        &format!("SELECT {INTERACTION_COLUMNS} FROM interactions WHERE id = ?1"),
        [id],
        interaction_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| StoreError::NotFound {
        what: format!("interaction {id}"),
    })
}

pub(crate) fn minute_spend(
    conn: &Connection,
    integration_id: IntegrationId,
    from_ms: i64,
    to_ms: i64,
) -> StoreResult<Vec<MinuteSpend>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT minute_ms, SUM(requests), SUM(tokens_in + tokens_out), SUM(cost_usd) \
             FROM rollups_minute WHERE minute_ms >= ?1 AND minute_ms < ?2 AND integration_id = ?3 \
             GROUP BY minute_ms ORDER BY minute_ms",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![from_ms, to_ms, integration_id], |r| {
            Ok(MinuteSpend {
                minute_ms: r.get(0)?,
                requests: r.get(1)?,
                tokens: r.get(2)?,
                cost_usd: r.get(3)?,
            })
        })
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    Ok(rows)
}

pub(crate) fn interactions_after(
    conn: &Connection,
    after_id: i64,
    limit: u32,
) -> StoreResult<Vec<Interaction>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {} FROM interactions WHERE id > ?1 ORDER BY id LIMIT ?2",
            crate::records::INTERACTION_COLUMNS
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(
            params![after_id, i64::from(limit)],
            crate::records::interaction_from_row,
        )
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    rows.into_iter().collect()
}
