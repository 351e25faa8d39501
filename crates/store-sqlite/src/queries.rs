//! Metrics from the rollups (never from raw rows), and single interactions.
//!
//! Every metrics query folds rollup rows into [`Cells`]; a range can be folded in parts (on
//! separate connections, in parallel) whose cells merge exactly.

use std::collections::BTreeMap;

use langguard_store::{
    minute_of, Bucket, GroupBy, GroupMetrics, Interaction, LatencySketch, Metrics, RollupTotals,
    Scope, Series, SeriesPoint, SketchDecodeError, StoreError, StoreResult,
};
use rusqlite::{params_from_iter, Connection};

use crate::conditions::Conditions;
use crate::db_err;
use crate::ingest::Rollups;
use crate::records::{interaction_from_row, INTERACTION_COLUMNS};

const MINUTE_MS: i64 = 60_000;

/// Rollups cover whole minutes: `from` rounds down, `to` rounds up.
fn minute_bounds(scope: &Scope) -> (Option<i64>, Option<i64>) {
    (
        scope.from_ms.map(minute_of),
        scope
            .to_ms
            .map(|t| minute_of(t.saturating_add(MINUTE_MS - 1))),
    )
}

/// Rollup totals per `(group, bucket start)`; the group is `""` and the start 0 when a query
/// doesn't split by them.
pub(crate) type Cells = BTreeMap<(String, i64), RollupTotals>;

/// Folds the rollups covering `scope` into cells of `bucket` (one cell per group without one).
pub(crate) fn fold(
    conn: &Connection,
    scope: &Scope,
    group_by: Option<GroupBy>,
    bucket: Option<Bucket>,
) -> StoreResult<Cells> {
    let mut cells = Cells::new();
    for_each_rollup(
        conn,
        scope,
        group_by,
        bucket == Some(Bucket::Minute),
        |group, start, totals, sketch| {
            let t = bucket.map_or(0, |b| b.start_of(start));
            let cell = cells.entry((group, t)).or_default();
            cell.merge(&totals);
            cell.latency.merge_encoded(sketch)
        },
    )?;
    Ok(cells)
}

/// Adds `other`'s cells to `into` (parts of one range folded apart).
pub(crate) fn merge_cells(into: &mut Cells, other: Cells) {
    for (key, totals) in other {
        match into.entry(key) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(totals);
            }
            std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(&totals),
        }
    }
}

pub(crate) fn metrics(cells: &Cells) -> Metrics {
    cells
        .values()
        .next()
        .map(RollupTotals::to_metrics)
        .unwrap_or_else(|| RollupTotals::default().to_metrics())
}

pub(crate) fn metrics_by(cells: Cells) -> Vec<GroupMetrics> {
    let mut out: Vec<GroupMetrics> = cells
        .into_iter()
        .map(|((group, _), totals)| GroupMetrics {
            group,
            metrics: totals.to_metrics(),
        })
        .collect();
    // Busiest first: that is what a breakdown table is read for.
    out.sort_by(|a, b| {
        b.metrics
            .requests
            .cmp(&a.metrics.requests)
            .then_with(|| a.group.cmp(&b.group))
    });
    out
}

/// One series per group (in group order), points in time order.
pub(crate) fn metrics_series(cells: Cells, group_by: Option<GroupBy>) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    for ((group, t_ms), totals) in cells {
        let group = group_by.map(|_| group);
        if series.last().is_none_or(|s| s.group != group) {
            series.push(Series {
                group: group.clone(),
                points: Vec::new(),
            });
        }
        if let Some(last) = series.last_mut() {
            last.points.push(SeriesPoint {
                t_ms,
                metrics: totals.to_metrics(),
            });
        }
    }
    series
}

/// Calls `f(group, bucket start, totals)` for every rollup row covering the scope. Whole hours
/// come from the hourly table and only the ragged minutes at either end from the per-minute
/// one — unless `minutes_only` (a per-minute chart needs minute rows).
fn for_each_rollup(
    conn: &Connection,
    scope: &Scope,
    group_by: Option<GroupBy>,
    minutes_only: bool,
    mut f: impl FnMut(String, i64, RollupTotals, &[u8]) -> Result<(), SketchDecodeError>,
) -> StoreResult<()> {
    let (from, to) = minute_bounds(scope);
    if minutes_only {
        return scan(conn, Rollups::Minute, scope, group_by, from, to, &mut f);
    }
    let hour_from = from.map(|m| Bucket::Hour.start_of(m + HOUR_MS - 1));
    let hour_to = to.map(|m| Bucket::Hour.start_of(m));
    if let (Some(a), Some(b)) = (hour_from, hour_to) {
        if a >= b {
            // Less than one whole hour: minutes it is.
            return scan(conn, Rollups::Minute, scope, group_by, from, to, &mut f);
        }
    }
    if let (Some(from), Some(hour_from)) = (from, hour_from) {
        if from < hour_from {
            scan(
                conn,
                Rollups::Minute,
                scope,
                group_by,
                Some(from),
                Some(hour_from),
                &mut f,
            )?;
        }
    }
    scan(
        conn,
        Rollups::Hour,
        scope,
        group_by,
        hour_from,
        hour_to,
        &mut f,
    )?;
    if let (Some(hour_to), Some(to)) = (hour_to, to) {
        if hour_to < to {
            scan(
                conn,
                Rollups::Minute,
                scope,
                group_by,
                Some(hour_to),
                Some(to),
                &mut f,
            )?;
        }
    }
    Ok(())
}

const HOUR_MS: i64 = 3_600_000;

/// One rollup table's rows with `from <= bucket start < to`, in the scope.
fn scan(
    conn: &Connection,
    rollups: Rollups,
    scope: &Scope,
    group_by: Option<GroupBy>,
    from: Option<i64>,
    to: Option<i64>,
    f: &mut impl FnMut(String, i64, RollupTotals, &[u8]) -> Result<(), SketchDecodeError>,
) -> StoreResult<()> {
    let (table, time) = rollups.table();
    let group_column = match group_by {
        None => "''",
        Some(GroupBy::Integration) => "CAST(integration_id AS TEXT)",
        Some(GroupBy::Gateway) => "gateway",
        Some(GroupBy::Provider) => "provider",
        Some(GroupBy::Model) => "model",
    };
    let conditions = Conditions::scope(scope, time, from, to);
    let sql = format!(
        "SELECT {group_column}, requests, errors, cache_hits, rate_limited, tokens_in, \
         tokens_out, cost_usd, unpriced, duration_ms_sum, latency_sketch, {time} \
         FROM {table} WHERE 1 = 1{}",
        conditions.sql
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let mut rows = stmt
        .query(params_from_iter(conditions.params))
        .map_err(db_err)?;
    while let Some(row) = rows.next().map_err(db_err)? {
        let sketch: Vec<u8> = row.get(10).map_err(db_err)?;
        let bucket = RollupTotals {
            requests: row.get(1).map_err(db_err)?,
            errors: row.get(2).map_err(db_err)?,
            cache_hits: row.get(3).map_err(db_err)?,
            rate_limited: row.get(4).map_err(db_err)?,
            tokens_in: row.get(5).map_err(db_err)?,
            tokens_out: row.get(6).map_err(db_err)?,
            cost_usd: row.get(7).map_err(db_err)?,
            unpriced: row.get(8).map_err(db_err)?,
            duration_ms_sum: row.get(9).map_err(db_err)?,
            // Merged straight from its encoding by the caller: no sketch is built per row.
            latency: LatencySketch::new(),
        };
        let group: String = row.get(0).map_err(db_err)?;
        let start: i64 = row.get(11).map_err(db_err)?;
        f(group, start, bucket, &sketch)
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
