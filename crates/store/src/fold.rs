//! Backend-neutral parts of the metrics queries: which rollup rows cover a scope, and how
//! folded rollup rows become metrics, breakdowns and series. Each backend only reads rows.
//!
//! Every metrics query folds rollup rows into [`Cells`]; a range can be folded in parts (on
//! separate connections, in parallel) whose cells merge exactly.

use std::collections::BTreeMap;

use crate::HOUR_MS;
use crate::{
    minute_of, Bucket, GroupBy, GroupMetrics, Metrics, RollupTotals, Scope, Series, SeriesPoint,
};

const MINUTE_MS: i64 = 60_000;

/// Rollup totals per `(group, bucket start)`; the group is `""` and the start 0 when a query
/// doesn't split by them.
pub type Cells = BTreeMap<(String, i64), RollupTotals>;

/// The rollup tables, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollupTable {
    Minute,
    Hour,
}

impl RollupTable {
    /// Table and bucket-start column. Constants, never input: safe to format into SQL.
    pub fn table(self) -> (&'static str, &'static str) {
        match self {
            RollupTable::Minute => ("rollups_minute", "minute_ms"),
            RollupTable::Hour => ("rollups_hour", "hour_ms"),
        }
    }
}

/// One read of a rollup table: rows with `from <= bucket start < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupScan {
    pub table: RollupTable,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// Rollups cover whole minutes: `from` rounds down, `to` rounds up.
fn minute_bounds(scope: &Scope) -> (Option<i64>, Option<i64>) {
    (
        scope.from_ms.map(minute_of),
        scope
            .to_ms
            .map(|t| minute_of(t.saturating_add(MINUTE_MS - 1))),
    )
}

/// The reads that cover `scope` exactly once: whole hours from the hourly table and only the
/// ragged minutes at either end from the per-minute one — unless `minutes_only` (a per-minute
/// chart needs minute rows).
pub fn rollup_scans(scope: &Scope, minutes_only: bool) -> Vec<RollupScan> {
    let (from, to) = minute_bounds(scope);
    let minutes = |from, to| RollupScan {
        table: RollupTable::Minute,
        from,
        to,
    };
    if minutes_only {
        return vec![minutes(from, to)];
    }
    let hour_from = from.map(|m| Bucket::Hour.start_of(m + HOUR_MS - 1));
    let hour_to = to.map(|m| Bucket::Hour.start_of(m));
    if let (Some(a), Some(b)) = (hour_from, hour_to) {
        if a >= b {
            // Less than one whole hour: minutes it is.
            return vec![minutes(from, to)];
        }
    }
    let mut scans = Vec::with_capacity(3);
    if let (Some(from), Some(hour_from)) = (from, hour_from) {
        if from < hour_from {
            scans.push(minutes(Some(from), Some(hour_from)));
        }
    }
    scans.push(RollupScan {
        table: RollupTable::Hour,
        from: hour_from,
        to: hour_to,
    });
    if let (Some(hour_to), Some(to)) = (hour_to, to) {
        if hour_to < to {
            scans.push(minutes(Some(hour_to), Some(to)));
        }
    }
    scans
}

/// Where to cut a scope of more than a day in two, for folding the halves at once: at a whole
/// hour, so both halves read whole hourly rows and no minute is counted twice.
pub fn fold_split(scope: &Scope) -> Option<(Scope, Scope)> {
    match (scope.from_ms, scope.to_ms) {
        (Some(from), Some(to)) if to - from > 24 * HOUR_MS => {
            let split = Bucket::Hour.start_of(from + (to - from) / 2);
            Some((
                Scope {
                    to_ms: Some(split),
                    ..scope.clone()
                },
                Scope {
                    from_ms: Some(split),
                    ..scope.clone()
                },
            ))
        }
        _ => None,
    }
}

/// The SQL expression a rollup row's group is read from (constants, safe to format into SQL).
pub fn group_column(group_by: Option<GroupBy>) -> &'static str {
    match group_by {
        None => "''",
        Some(GroupBy::Integration) => "CAST(integration_id AS TEXT)",
        Some(GroupBy::Gateway) => "gateway",
        Some(GroupBy::Provider) => "provider",
        Some(GroupBy::Model) => "model",
    }
}

/// Adds a row's totals to its cell; `sketch` is the row's encoded latency sketch, merged
/// straight from its encoding (no sketch is built per row).
pub fn fold_row(
    cells: &mut Cells,
    bucket: Option<Bucket>,
    group: String,
    start: i64,
    totals: &RollupTotals,
    sketch: &[u8],
) -> Result<(), crate::SketchDecodeError> {
    let t = bucket.map_or(0, |b| b.start_of(start));
    let cell = cells.entry((group, t)).or_default();
    cell.merge(totals);
    cell.latency.merge_encoded(sketch)
}

/// Adds `other`'s cells to `into` (parts of one range folded apart).
pub fn merge_cells(into: &mut Cells, other: Cells) {
    for (key, totals) in other {
        match into.entry(key) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(totals);
            }
            std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(&totals),
        }
    }
}

pub fn metrics(cells: &Cells) -> Metrics {
    cells
        .values()
        .next()
        .map(RollupTotals::to_metrics)
        .unwrap_or_else(|| RollupTotals::default().to_metrics())
}

pub fn metrics_by(cells: Cells) -> Vec<GroupMetrics> {
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
pub fn metrics_series(cells: Cells, group_by: Option<GroupBy>) -> Vec<Series> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(from: i64, to: i64) -> Scope {
        Scope {
            from_ms: Some(from),
            to_ms: Some(to),
            ..Scope::default()
        }
    }

    #[test]
    fn scans_cover_ragged_minutes_and_whole_hours_once() {
        let scans = rollup_scans(&scope(HOUR_MS - 5 * MINUTE_MS, 3 * HOUR_MS + 90_000), false);
        assert_eq!(
            scans,
            vec![
                RollupScan {
                    table: RollupTable::Minute,
                    from: Some(HOUR_MS - 5 * MINUTE_MS),
                    to: Some(HOUR_MS)
                },
                RollupScan {
                    table: RollupTable::Hour,
                    from: Some(HOUR_MS),
                    to: Some(3 * HOUR_MS)
                },
                RollupScan {
                    table: RollupTable::Minute,
                    from: Some(3 * HOUR_MS),
                    // 90 s rounds up to the whole minute that holds it.
                    to: Some(3 * HOUR_MS + 2 * MINUTE_MS)
                },
            ]
        );
        // Under an hour: minutes only.
        assert_eq!(rollup_scans(&scope(0, 30 * MINUTE_MS), false).len(), 1);
    }

    #[test]
    fn long_ranges_split_at_a_whole_hour() {
        let (a, b) = fold_split(&scope(0, 48 * HOUR_MS + 7)).expect("split");
        assert_eq!(a.to_ms, b.from_ms);
        assert_eq!(a.to_ms.map(|t| t % HOUR_MS), Some(0));
        assert!(fold_split(&scope(0, 24 * HOUR_MS)).is_none());
    }
}
