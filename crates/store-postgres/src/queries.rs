//! Metrics from the rollups (never from raw rows), and single interactions. What rows to read
//! and how they fold is the store crate's ([`langguard_store::fold`]); this reads them.

use deadpool_postgres::Client;
use langguard_store::fold::{self, rollup_scans, Cells, RollupScan};
use langguard_store::{
    Bucket, GroupBy, Interaction, LatencySketch, RollupTotals, Scope, StoreError, StoreResult,
};

use crate::conditions::Conditions;
use crate::records::{interaction_from_row, RowExt, INTERACTION_COLUMNS};
use crate::{db_err, not_found};
use langguard_store::{IntegrationId, MinuteSpend};

/// Folds the rollups covering `scope` into cells of `bucket` (one cell per group without one).
pub(crate) async fn fold(
    c: &Client,
    scope: &Scope,
    group_by: Option<GroupBy>,
    bucket: Option<Bucket>,
) -> StoreResult<Cells> {
    let mut cells = Cells::new();
    for part in rollup_scans(scope, bucket == Some(Bucket::Minute)) {
        scan(c, part, scope, group_by, bucket, &mut cells).await?;
    }
    Ok(cells)
}

async fn scan(
    c: &Client,
    part: RollupScan,
    scope: &Scope,
    group_by: Option<GroupBy>,
    bucket: Option<Bucket>,
    cells: &mut Cells,
) -> StoreResult<()> {
    let (table, time) = part.table.table();
    let conditions = Conditions::scope(scope, "", time, part.from, part.to);
    let sql = format!(
        "SELECT {}, requests, errors, cache_hits, rate_limited, tokens_in, \
         tokens_out, cost_usd, unpriced, duration_ms_sum, latency_sketch, {time} \
         FROM {table} WHERE TRUE{}",
        fold::group_column(group_by),
        conditions.sql
    );
    let statement = c.prepare_cached(&sql).await.map_err(db_err)?;
    let rows = c
        .query(&statement, &conditions.refs())
        .await
        .map_err(db_err)?;
    for row in &rows {
        let totals = RollupTotals {
            requests: row.at(1)?,
            errors: row.at(2)?,
            cache_hits: row.at(3)?,
            rate_limited: row.at(4)?,
            tokens_in: row.at(5)?,
            tokens_out: row.at(6)?,
            cost_usd: row.at(7)?,
            unpriced: row.at(8)?,
            duration_ms_sum: row.at(9)?,
            latency: LatencySketch::new(),
        };
        let sketch: &[u8] = row.at(10)?;
        fold::fold_row(cells, bucket, row.at(0)?, row.at(11)?, &totals, sketch)
            .map_err(|e| StoreError::Corrupt(format!("{table}: {e}")))?;
    }
    Ok(())
}

pub(crate) async fn count_interactions(c: &Client, scope: &Scope) -> StoreResult<u64> {
    let conditions = Conditions::scope(scope, "", "created_at", scope.from_ms, scope.to_ms);
    let sql = format!(
        "SELECT COUNT(*) FROM interactions WHERE TRUE{}",
        conditions.sql
    );
    let n: i64 = c
        .query_one(&sql, &conditions.refs())
        .await
        .map_err(db_err)?
        .at(0)?;
    Ok(n.max(0) as u64)
}

pub(crate) async fn get_interaction(c: &Client, id: i64) -> StoreResult<Interaction> {
    c.query_opt(
        &format!("SELECT {INTERACTION_COLUMNS} FROM interactions WHERE id = $1"),
        &[&id],
    )
    .await
    .map_err(db_err)?
    .map(|r| interaction_from_row(&r))
    .transpose()?
    .ok_or_else(|| not_found(format!("interaction {id}")))
}

pub(crate) async fn minute_spend(
    c: &mut Client,
    integration_id: IntegrationId,
    from_ms: i64,
    to_ms: i64,
) -> StoreResult<Vec<MinuteSpend>> {
    // SUM of BIGINT is NUMERIC in PostgreSQL: cast back.
    c.query(
        "SELECT minute_ms, SUM(requests)::bigint, SUM(tokens_in + tokens_out)::bigint, \
         SUM(cost_usd) FROM rollups_minute \
         WHERE minute_ms >= $1 AND minute_ms < $2 AND integration_id = $3 \
         GROUP BY minute_ms ORDER BY minute_ms",
        &[&from_ms, &to_ms, &integration_id],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(|r| {
        Ok(MinuteSpend {
            minute_ms: r.at(0)?,
            requests: r.at(1)?,
            tokens: r.at(2)?,
            cost_usd: r.at(3)?,
        })
    })
    .collect()
}

pub(crate) async fn interactions_after(
    c: &mut Client,
    after_id: i64,
    limit: u32,
) -> StoreResult<Vec<Interaction>> {
    c.query(
        &format!(
            "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE id > $1 ORDER BY id LIMIT $2"
        ),
        &[&after_id, &i64::from(limit)],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(interaction_from_row)
    .collect()
}
