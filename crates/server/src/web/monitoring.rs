//! The Monitoring page: a time range (1h, 24h by default, 7d, 30d or custom), the figures as
//! cards, charts over time, breakdowns by model, provider and gateway, integration health, sync
//! history and violations by severity — all from the rollups and the same store calls the API
//! makes.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use langguard_store::{
    Bucket, GroupBy, GroupMetrics, Metrics, Scope, Series, Severity, StoreResult, ViolationStatus,
};
use serde::Deserialize;

use super::chart::{line_chart, Line};
use super::format::{count, duration, health_class, moment, percent, usd};
use super::session::WebUser;
use super::{page_failure, render, Frame};
use crate::AppState;

const HOUR_MS: i64 = 3_600_000;

pub const PRESETS: [(&str, &str); 4] = [
    ("1h", "Last Hour"),
    ("24h", "Last 24 Hours"),
    ("7d", "Last 7 Days"),
    ("30d", "Last 30 Days"),
];

#[derive(Deserialize, Default)]
pub struct RangeQuery {
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A `datetime-local` value (`2026-11-27T04:20`, read as UTC) to Unix ms.
pub fn parse_local(value: &str) -> Option<i64> {
    let value = value.trim();
    let with_seconds = if value.len() == 16 {
        format!("{value}:00Z")
    } else {
        format!("{value}Z")
    };
    langguard_clock::parse_ms(&with_seconds)
}

/// Unix ms to a `datetime-local` value in UTC.
pub fn local_value(ms: i64) -> String {
    let text = langguard_clock::format_ms(ms);
    text.get(..16).unwrap_or(&text).to_string()
}

/// The range a page shows: a preset key (or `custom`), and its bounds.
pub struct Range {
    pub key: &'static str,
    pub from_ms: i64,
    pub to_ms: i64,
    pub error: Option<String>,
}

impl Range {
    pub fn from_query(q: &RangeQuery, now: i64) -> Self {
        let preset = |key: &str| -> Option<(&'static str, i64)> {
            let hours = match key {
                "1h" => 1,
                "24h" => 24,
                "7d" => 24 * 7,
                "30d" => 24 * 30,
                _ => return None,
            };
            PRESETS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(k, _)| (*k, hours * HOUR_MS))
        };
        if let (Some(from), Some(to)) = (q.from.as_deref(), q.to.as_deref()) {
            if !from.is_empty() || !to.is_empty() {
                return match (parse_local(from), parse_local(to)) {
                    (Some(from_ms), Some(to_ms)) if from_ms < to_ms => Range {
                        key: "custom",
                        from_ms,
                        to_ms,
                        error: None,
                    },
                    _ => Range {
                        error: Some("Give a custom range as two times, From before To.".into()),
                        ..Self::from_query(&RangeQuery::default(), now)
                    },
                };
            }
        }
        let (key, span) = q
            .range
            .as_deref()
            .and_then(preset)
            .unwrap_or(("24h", 24 * HOUR_MS));
        Range {
            key,
            from_ms: now - span,
            to_ms: now,
            error: None,
        }
    }

    pub fn scope(&self) -> Scope {
        Scope {
            from_ms: Some(self.from_ms),
            to_ms: Some(self.to_ms),
            ..Scope::default()
        }
    }

    /// Buckets that give a readable chart: minutes for an hour, hours up to a week, days beyond.
    fn bucket(&self) -> Bucket {
        match self.to_ms - self.from_ms {
            span if span <= 3 * HOUR_MS => Bucket::Minute,
            span if span <= 8 * 24 * HOUR_MS => Bucket::Hour,
            _ => Bucket::Day,
        }
    }
}

pub struct StatCard {
    label: &'static str,
    value: String,
    class: &'static str,
}

struct BreakdownRow {
    group: String,
    requests: String,
    error_rate: String,
    p95: String,
    tokens: String,
    cost: String,
}

struct Breakdown {
    title: &'static str,
    rows: Vec<BreakdownRow>,
}

struct HealthRow {
    name: String,
    status: &'static str,
    status_label: &'static str,
    last_sync: String,
    synced: String,
    health: &'static str,
    /// Share of Cloudflare's count held over the range (`99.8 %`, `unknown`, …).
    coverage: String,
}

struct SyncRow {
    time: String,
    integration: String,
    status: &'static str,
    items: String,
}

#[derive(Template)]
#[template(path = "monitoring.html")]
struct MonitoringPage {
    frame: Frame,
    presets: &'static [(&'static str, &'static str)],
    range: &'static str,
    from_input: String,
    to_input: String,
    error: Option<String>,
    cards: Vec<StatCard>,
    empty: bool,
    charts: Vec<String>,
    breakdowns: Vec<Breakdown>,
    integrations: Vec<HealthRow>,
    syncs: Vec<SyncRow>,
    /// Severity, total, open.
    violations: Vec<(&'static str, u64, u64)>,
}

pub fn cards(m: &Metrics) -> Vec<StatCard> {
    let plain = |label, value| StatCard {
        label,
        value,
        class: "",
    };
    vec![
        plain("Total Requests", count(m.requests)),
        StatCard {
            label: "Success Rate",
            value: percent(m.success_rate),
            class: health_class(m.success_rate),
        },
        plain("Error Rate", percent(m.error_rate)),
        plain("Cache Hit Rate", percent(m.cache_hit_rate)),
        plain("Latency P50", duration(m.latency_ms.p50)),
        plain("Latency P95", duration(m.latency_ms.p95)),
        plain("Latency P99", duration(m.latency_ms.p99)),
        plain("Cost", usd(m.cost_usd)),
        plain("Tokens In", count(m.tokens_in)),
        plain("Tokens Out", count(m.tokens_out)),
        plain("Rate-Limit Events", count(m.rate_limited)),
    ]
}

fn charts(series: &[Series]) -> Vec<String> {
    let Some(s) = series.first() else {
        return Vec::new();
    };
    let times: Vec<String> = s.points.iter().map(|p| moment(Some(p.t_ms))).collect();
    let values = |f: &dyn Fn(&Metrics) -> Option<f64>| -> Vec<Option<f64>> {
        s.points.iter().map(|p| f(&p.metrics)).collect()
    };
    vec![
        line_chart(
            "Requests and errors",
            &times,
            &[
                Line {
                    label: "Requests",
                    class: "s1",
                    values: values(&|m| Some(m.requests as f64)),
                },
                Line {
                    label: "Errors",
                    class: "s2",
                    values: values(&|m| Some(m.errors as f64)),
                },
            ],
            |v| count(v.round() as i64),
        ),
        line_chart(
            "Latency percentiles",
            &times,
            &[
                Line {
                    label: "P50",
                    class: "s3",
                    values: values(&|m| m.latency_ms.p50),
                },
                Line {
                    label: "P95",
                    class: "s1",
                    values: values(&|m| m.latency_ms.p95),
                },
                Line {
                    label: "P99",
                    class: "s2",
                    values: values(&|m| m.latency_ms.p99),
                },
            ],
            |v| duration(Some(v)),
        ),
        line_chart(
            "Cost",
            &times,
            &[Line {
                label: "Cost (USD)",
                class: "s1",
                values: values(&|m| Some(m.cost_usd)),
            }],
            usd,
        ),
    ]
}

fn breakdown(title: &'static str, groups: Vec<GroupMetrics>) -> Breakdown {
    Breakdown {
        title,
        rows: groups
            .into_iter()
            .take(20)
            .map(|g| BreakdownRow {
                group: g.group,
                requests: count(g.metrics.requests),
                error_rate: percent(g.metrics.error_rate),
                p95: duration(g.metrics.latency_ms.p95),
                tokens: count(g.metrics.tokens_in + g.metrics.tokens_out),
                cost: usd(g.metrics.cost_usd),
            })
            .collect(),
    }
}

async fn load(state: &AppState, range: &Range) -> StoreResult<MonitoringData> {
    let scope = range.scope();
    let store = state.ops.store.as_ref();
    let (metrics, series, by_model, by_provider, by_gateway) = tokio::try_join!(
        store.metrics(&scope),
        store.metrics_series(&scope, range.bucket(), None),
        store.metrics_by(&scope, GroupBy::Model),
        store.metrics_by(&scope, GroupBy::Provider),
        store.metrics_by(&scope, GroupBy::Gateway),
    )?;
    let (integrations, by_integration, runs, counts) = tokio::try_join!(
        store.list_integrations(),
        store.metrics_by(&scope, GroupBy::Integration),
        store.recent_sync_runs(10),
        store.violation_counts(&scope),
    )?;
    Ok(MonitoringData {
        metrics,
        series,
        by_model,
        by_provider,
        by_gateway,
        integrations,
        by_integration,
        runs,
        counts,
    })
}

struct MonitoringData {
    metrics: Metrics,
    series: Vec<Series>,
    by_model: Vec<GroupMetrics>,
    by_provider: Vec<GroupMetrics>,
    by_gateway: Vec<GroupMetrics>,
    integrations: Vec<langguard_store::Integration>,
    by_integration: Vec<GroupMetrics>,
    runs: Vec<langguard_store::SyncRun>,
    counts: Vec<(Severity, ViolationStatus, u64)>,
}

pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<RangeQuery>,
) -> Response {
    let range = Range::from_query(&q, crate::now_ms());
    let data = match load(&state, &range).await {
        Ok(data) => data,
        Err(e) => return page_failure("Monitoring", e),
    };
    let traffic: HashMap<String, Metrics> = data
        .by_integration
        .into_iter()
        .map(|g| (g.group, g.metrics))
        .collect();
    let names: HashMap<i64, String> = data
        .integrations
        .iter()
        .map(|i| (i.id, i.name.clone()))
        .collect();
    let coverage = match langguard_ops::coverage::summaries(
        &state.ops,
        &data.integrations,
        range.from_ms,
        range.to_ms,
    )
    .await
    {
        Ok(summaries) => summaries,
        Err(e) => return page_failure("Monitoring", e),
    };
    let integrations = data
        .integrations
        .iter()
        .zip(coverage)
        .map(|(i, coverage)| {
            let m = traffic.get(&i.id.to_string()).cloned().unwrap_or_default();
            HealthRow {
                coverage: coverage.label,
                name: i.name.clone(),
                status: i.status.as_str(),
                status_label: i.status.label(),
                last_sync: moment(i.last_sync_at_ms),
                synced: count(i.interactions_synced),
                health: match langguard_ops::monitoring::health(&m) {
                    "healthy" => "Healthy",
                    "warning" => "Warning",
                    "critical" => "Critical",
                    _ => "Inactive",
                },
            }
        })
        .collect();
    let syncs = data
        .runs
        .iter()
        .map(|r| SyncRow {
            time: moment(Some(r.started_at_ms)),
            integration: names.get(&r.integration_id).cloned().unwrap_or_default(),
            status: r.status.as_str(),
            items: count(r.counts.items_ingested),
        })
        .collect();
    let violations = Severity::ALL
        .iter()
        .map(|s| {
            let of = data.counts.iter().filter(|(sev, _, _)| sev == s);
            let total = of.clone().map(|(_, _, n)| n).sum();
            let open = of
                .filter(|(_, status, _)| *status != ViolationStatus::Resolved)
                .map(|(_, _, n)| n)
                .sum();
            (s.as_str(), total, open)
        })
        .collect();
    render(&MonitoringPage {
        frame: Frame::new(&user, "Monitoring", "monitoring"),
        presets: &PRESETS,
        range: range.key,
        from_input: local_value(range.from_ms),
        to_input: local_value(range.to_ms),
        error: range.error.clone(),
        cards: cards(&data.metrics),
        empty: data.metrics.requests == 0,
        charts: charts(&data.series),
        breakdowns: vec![
            breakdown("Model", data.by_model),
            breakdown("Provider", data.by_provider),
            breakdown("Gateway", data.by_gateway),
        ],
        integrations,
        syncs,
        violations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_come_from_presets_or_two_times() {
        let now = 1_767_225_600_000;
        let day = Range::from_query(&RangeQuery::default(), now);
        assert_eq!((day.key, day.to_ms - day.from_ms), ("24h", 24 * HOUR_MS));
        let hour = Range::from_query(
            &RangeQuery {
                range: Some("1h".into()),
                ..RangeQuery::default()
            },
            now,
        );
        assert_eq!((hour.key, hour.bucket()), ("1h", Bucket::Minute));
        let custom = Range::from_query(
            &RangeQuery {
                from: Some("2026-01-01T00:00".into()),
                to: Some("2026-01-03T00:00".into()),
                ..RangeQuery::default()
            },
            now,
        );
        assert_eq!(custom.key, "custom");
        assert_eq!(custom.to_ms - custom.from_ms, 48 * HOUR_MS);
        assert_eq!(local_value(custom.from_ms), "2026-01-01T00:00");
        let backwards = Range::from_query(
            &RangeQuery {
                from: Some("2026-01-03T00:00".into()),
                to: Some("2026-01-01T00:00".into()),
                ..RangeQuery::default()
            },
            now,
        );
        assert!(backwards.error.is_some());
        assert_eq!(backwards.key, "24h");
    }
}
