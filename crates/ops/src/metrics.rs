//! DESIGN's figures over a time range, from the rollups: one set of numbers, a time series, or
//! a breakdown by integration, gateway, provider or model.

use langguard_clock::{format_ms, now_ms};
use langguard_store::{Bucket, GroupBy, GroupMetrics, Metrics, Scope};
use serde::Serialize;
use tracing::instrument;

use crate::{OpsError, OpsResult, Services};

/// Most points one time series may have.
pub const MAX_BUCKETS: i64 = 10_000;

/// A scope with the product's default range (the last 24 hours), checked.
pub fn scope(
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    integration_id: Option<i64>,
    gateway: Option<String>,
    provider: Option<String>,
    model: Option<String>,
) -> OpsResult<Scope> {
    let to = to_ms.unwrap_or_else(now_ms);
    let from = from_ms.unwrap_or(to - 24 * 3_600_000);
    if from >= to {
        return Err(OpsError::invalid("invalid_time", "from must be before to"));
    }
    Ok(Scope {
        from_ms: Some(from),
        to_ms: Some(to),
        integration_id,
        gateway,
        provider,
        model,
    })
}

/// The figures over a range.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricsView {
    pub from: Option<String>,
    pub to: Option<String>,
    #[serde(flatten)]
    pub metrics: Metrics,
}

#[instrument(skip_all)]
pub async fn summary(ops: &Services, scope: &Scope) -> OpsResult<MetricsView> {
    Ok(MetricsView {
        from: scope.from_ms.map(format_ms),
        to: scope.to_ms.map(format_ms),
        metrics: ops.store.metrics(scope).await?,
    })
}

/// One bucket of a series.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PointView {
    /// The bucket's start.
    pub t: String,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// One line of a chart; `group` is null when not grouped.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeriesLineView {
    pub group: Option<String>,
    pub points: Vec<PointView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeriesView {
    pub from: Option<String>,
    pub to: Option<String>,
    /// `minute`, `hour` or `day`.
    #[schema(value_type = String)]
    pub bucket: Bucket,
    /// `integration`, `gateway`, `provider`, `model`, or null.
    #[schema(value_type = Option<String>)]
    pub group_by: Option<GroupBy>,
    pub series: Vec<SeriesLineView>,
}

/// The figures per bucket, one line per group when grouped.
#[instrument(skip_all)]
pub async fn series(
    ops: &Services,
    scope: &Scope,
    bucket: Bucket,
    group_by: Option<GroupBy>,
) -> OpsResult<SeriesView> {
    if let (Some(from), Some(to)) = (scope.from_ms, scope.to_ms) {
        // A chart of more points than this helps nobody; a wider bucket does.
        if (to - from) / bucket.millis() > MAX_BUCKETS {
            return Err(OpsError::invalid(
                "too_many_buckets",
                "the range holds more than 10,000 buckets; use a wider bucket",
            ));
        }
    }
    let series = ops.store.metrics_series(scope, bucket, group_by).await?;
    Ok(SeriesView {
        from: scope.from_ms.map(format_ms),
        to: scope.to_ms.map(format_ms),
        bucket,
        group_by,
        series: series
            .into_iter()
            .map(|s| SeriesLineView {
                group: s.group,
                points: s
                    .points
                    .into_iter()
                    .map(|p| PointView {
                        t: format_ms(p.t_ms),
                        metrics: p.metrics,
                    })
                    .collect(),
            })
            .collect(),
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BreakdownView {
    pub from: Option<String>,
    pub to: Option<String>,
    #[schema(value_type = String)]
    pub group_by: GroupBy,
    /// Busiest first.
    pub groups: Vec<GroupMetrics>,
}

#[instrument(skip_all)]
pub async fn breakdown(
    ops: &Services,
    scope: &Scope,
    group_by: GroupBy,
) -> OpsResult<BreakdownView> {
    Ok(BreakdownView {
        from: scope.from_ms.map(format_ms),
        to: scope.to_ms.map(format_ms),
        group_by,
        groups: ops.store.metrics_by(scope, group_by).await?,
    })
}
