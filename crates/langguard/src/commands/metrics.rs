//! `langguard metrics`: the figures of DESIGN's metrics call, from the rollups.

use std::process::ExitCode;

use langguard_store::{GroupBy, Metrics};
use serde_json::json;

use crate::app::{now_ms, App};
use crate::cli::{GroupByArg, MetricsArgs};
use crate::commands::print_json;
use crate::format;
use crate::timearg::format_ms;

/// The product's default range: the last 24 hours.
const DEFAULT_RANGE_MS: i64 = 24 * 3_600_000;

pub async fn run(app: &App, args: MetricsArgs) -> anyhow::Result<ExitCode> {
    let now = now_ms();
    let mut scope = app
        .scope(&args.scope, now, Some(now - DEFAULT_RANGE_MS))
        .await?;
    scope.to_ms = Some(scope.to_ms.unwrap_or(now));
    let range = json!({
        "from": scope.from_ms.map(format_ms),
        "to": scope.to_ms.map(format_ms),
    });
    match args.group_by {
        None => {
            let metrics = app.store.metrics(&scope).await?;
            if args.json {
                let mut doc = serde_json::to_value(&metrics)?;
                if let (Some(doc), Some(range)) = (doc.as_object_mut(), range.as_object()) {
                    doc.extend(range.clone());
                }
                print_json(&doc)?;
            } else {
                println!(
                    "From {} to {}",
                    range["from"].as_str().unwrap_or("the beginning"),
                    range["to"].as_str().unwrap_or("now")
                );
                print_metrics(&metrics);
            }
        }
        Some(group_by) => {
            let group_by = match group_by {
                GroupByArg::Gateway => GroupBy::Gateway,
                GroupByArg::Provider => GroupBy::Provider,
                GroupByArg::Model => GroupBy::Model,
            };
            let groups = app.store.metrics_by(&scope, group_by).await?;
            if args.json {
                print_json(&json!({
                    "from": range["from"], "to": range["to"],
                    "group_by": group_by, "groups": groups,
                }))?;
            } else {
                let rows: Vec<Vec<String>> = groups
                    .iter()
                    .map(|g| {
                        let m = &g.metrics;
                        vec![
                            g.group.clone(),
                            format::count(m.requests),
                            format::percent(m.error_rate),
                            format::percent(m.cache_hit_rate),
                            format::millis(m.latency_ms.p50),
                            format::millis(m.latency_ms.p95),
                            format::count(m.tokens_in),
                            format::count(m.tokens_out),
                            format::usd(m.cost_usd),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    format::table(
                        &[
                            "GROUP",
                            "REQUESTS",
                            "ERRORS",
                            "CACHE HITS",
                            "P50",
                            "P95",
                            "TOKENS IN",
                            "TOKENS OUT",
                            "COST"
                        ],
                        &rows
                    )
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_metrics(m: &Metrics) {
    let l = &m.latency_ms;
    let rows = [
        ("Requests", format::count(m.requests)),
        ("Success rate", format::percent(m.success_rate)),
        (
            "Errors",
            format!(
                "{} ({})",
                format::count(m.errors),
                format::percent(m.error_rate)
            ),
        ),
        (
            "Cache hits",
            format!(
                "{} ({})",
                format::count(m.cache_hits),
                format::percent(m.cache_hit_rate)
            ),
        ),
        ("Rate-limit events (429)", format::count(m.rate_limited)),
        (
            "Tokens in / out",
            format!(
                "{} / {}",
                format::count(m.tokens_in),
                format::count(m.tokens_out)
            ),
        ),
        ("Cost", format::usd(m.cost_usd)),
        ("Unpriced requests", format::count(m.unpriced_requests)),
        (
            "Latency avg · p50 · p90 · p95 · p99",
            [l.avg, l.p50, l.p90, l.p95, l.p99]
                .into_iter()
                .map(format::millis)
                .collect::<Vec<_>>()
                .join(" · "),
        ),
    ];
    for (label, value) in rows {
        println!("{label:<36} {value}");
    }
}
