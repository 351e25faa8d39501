//! Read queries: metrics from the per-minute rollups and trace listings from the rows.

use std::collections::BTreeMap;

use langguard_store::{
    minute_of, CostSource, GroupBy, GroupMetrics, Interaction, LatencySketch, Metrics,
    NewInteraction, RollupTotals, Scope, StoreError, StoreResult, TracePage, TraceQuery,
    TraceStatus,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use crate::db_err;

const MINUTE_MS: i64 = 60_000;

/// Appends ` AND …` conditions for a scope. `time_column` is compared as given; metrics pass
/// minute-aligned bounds so rollups and rows agree.
fn push_scope(
    q: &mut QueryBuilder<'_, Sqlite>,
    scope: &Scope,
    time_column: &str,
    from: Option<i64>,
    to: Option<i64>,
) {
    if let Some(from) = from {
        q.push(format!(" AND {time_column} >= ")).push_bind(from);
    }
    if let Some(to) = to {
        q.push(format!(" AND {time_column} < ")).push_bind(to);
    }
    if let Some(id) = scope.integration_id {
        q.push(" AND integration_id = ").push_bind(id);
    }
    if let Some(g) = &scope.gateway {
        q.push(" AND gateway = ").push_bind(g.clone());
    }
    if let Some(p) = &scope.provider {
        q.push(" AND provider = ").push_bind(p.clone());
    }
    if let Some(m) = &scope.model {
        q.push(" AND model = ").push_bind(m.clone());
    }
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

async fn fold_rollups(
    reader: &SqlitePool,
    scope: &Scope,
    group_by: Option<GroupBy>,
) -> StoreResult<BTreeMap<String, RollupTotals>> {
    let (from, to) = minute_bounds(scope);
    let group_column = match group_by {
        None => "''",
        Some(GroupBy::Gateway) => "gateway",
        Some(GroupBy::Provider) => "provider",
        Some(GroupBy::Model) => "model",
    };
    let mut q = QueryBuilder::new(format!(
        "SELECT {group_column} AS grp, requests, errors, cache_hits, rate_limited, tokens_in, \
         tokens_out, cost_usd, unpriced, duration_ms_sum, latency_sketch \
         FROM rollups_minute WHERE 1 = 1"
    ));
    push_scope(&mut q, scope, "minute_ms", from, to);
    let rows = q.build().fetch_all(reader).await.map_err(db_err)?;
    let mut groups: BTreeMap<String, RollupTotals> = BTreeMap::new();
    for row in rows {
        let sketch: Vec<u8> = row.get("latency_sketch");
        let bucket = RollupTotals {
            requests: row.get("requests"),
            errors: row.get("errors"),
            cache_hits: row.get("cache_hits"),
            rate_limited: row.get("rate_limited"),
            tokens_in: row.get("tokens_in"),
            tokens_out: row.get("tokens_out"),
            cost_usd: row.get("cost_usd"),
            unpriced: row.get("unpriced"),
            duration_ms_sum: row.get("duration_ms_sum"),
            latency: LatencySketch::decode(&sketch)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        };
        groups.entry(row.get("grp")).or_default().merge(&bucket);
    }
    Ok(groups)
}

pub(crate) async fn metrics(reader: &SqlitePool, scope: &Scope) -> StoreResult<Metrics> {
    let groups = fold_rollups(reader, scope, None).await?;
    Ok(groups
        .values()
        .next()
        .map(RollupTotals::to_metrics)
        .unwrap_or_else(|| RollupTotals::default().to_metrics()))
}

pub(crate) async fn metrics_by(
    reader: &SqlitePool,
    scope: &Scope,
    group_by: GroupBy,
) -> StoreResult<Vec<GroupMetrics>> {
    let groups = fold_rollups(reader, scope, Some(group_by)).await?;
    let mut out: Vec<GroupMetrics> = groups
        .into_iter()
        .map(|(group, totals)| GroupMetrics {
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
    Ok(out)
}

pub(crate) async fn count_interactions(reader: &SqlitePool, scope: &Scope) -> StoreResult<u64> {
    let mut q = QueryBuilder::new("SELECT COUNT(*) FROM interactions WHERE 1 = 1");
    push_scope(&mut q, scope, "created_at", scope.from_ms, scope.to_ms);
    let n: i64 = q
        .build_query_scalar()
        .fetch_one(reader)
        .await
        .map_err(db_err)?;
    Ok(n.max(0) as u64)
}

pub(crate) async fn traces(reader: &SqlitePool, query: &TraceQuery) -> StoreResult<TracePage> {
    let limit = query.limit.clamp(1, 1_000);
    let mut q = QueryBuilder::new(
        "SELECT id, integration_id, gateway, log_id, created_at, provider, model, path, \
         status_code, success, cached, duration_ms, tokens_in, tokens_out, cost_usd, \
         cost_source, metadata FROM interactions WHERE 1 = 1",
    );
    let scope = &query.scope;
    push_scope(&mut q, scope, "created_at", scope.from_ms, scope.to_ms);
    if let Some(status) = query.status {
        q.push(" AND success = ")
            .push_bind(status == TraceStatus::Success);
    }
    if let Some(cached) = query.cached {
        q.push(" AND cached = ").push_bind(cached);
    }
    if let Some((created_at, id)) = query.before {
        q.push(" AND (created_at, id) < (")
            .push_bind(created_at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let rows = q.build().fetch_all(reader).await.map_err(db_err)?;
    let mut items = rows
        .iter()
        .map(interaction_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|i| (i.log.created_at_ms, i.id))
    } else {
        None
    };
    Ok(TracePage { items, next_cursor })
}

fn interaction_from_row(row: &SqliteRow) -> StoreResult<Interaction> {
    let cost_source: Option<String> = row.get("cost_source");
    Ok(Interaction {
        id: row.get("id"),
        integration_id: row.get("integration_id"),
        gateway: row.get("gateway"),
        log: NewInteraction {
            log_id: row.get("log_id"),
            created_at_ms: row.get("created_at"),
            provider: row.get("provider"),
            model: row.get("model"),
            path: row.get("path"),
            status_code: row.get("status_code"),
            success: row.get("success"),
            cached: row.get("cached"),
            duration_ms: row.get("duration_ms"),
            tokens_in: row.get("tokens_in"),
            tokens_out: row.get("tokens_out"),
            cost_usd: row.get("cost_usd"),
            cost_source: cost_source
                .as_deref()
                .map(|s| {
                    CostSource::parse(s)
                        .ok_or_else(|| StoreError::Corrupt(format!("cost source {s:?}")))
                })
                .transpose()?,
            metadata: row.get("metadata"),
        },
    })
}
