//! `langguard bench alerts`: how long one evaluation of every alert rule takes (the evaluator
//! runs once a minute and must finish well inside it), on SQLite and — with `--database-url
//! postgres://…` — on PostgreSQL in the same run, over a day of synthetic traffic.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use langguard_cf_emulator::SeedSpec;
use langguard_ops::alerts::evaluate::evaluate;
use langguard_store::{AlertCondition, AlertMetric, AlertScope, GroupBy, NewAlertRule, Store};
use langguard_store_postgres::PgStore;
use langguard_store_sqlite::SqliteStore;

use crate::commands::synthetic::{bench_integration, ingest_synthetic};
use crate::format;

const PROVIDERS: [&str; 5] = ["openai", "anthropic", "workers-ai", "groq", "mistral"];
const MODELS: [&str; 6] = [
    "gpt-4o-mini",
    "gpt-4o",
    "claude-sonnet-4-20250514",
    "gemini-2.0-flash",
    "deepseek-chat",
    "llama-3.3-70b-versatile",
];
const WINDOWS: [i64; 5] = [5, 15, 60, 240, 1_440];
const GROUPS: [Option<GroupBy>; 4] = [
    None,
    Some(GroupBy::Model),
    Some(GroupBy::Provider),
    Some(GroupBy::Gateway),
];
/// The metrics read from rollups, and what a rule of each looks for.
const METRICS: [(AlertMetric, f64); 11] = [
    (AlertMetric::Requests, 100.0),
    (AlertMetric::Errors, 5.0),
    (AlertMetric::ErrorRate, 2.0),
    (AlertMetric::RateLimited, 1.0),
    (AlertMetric::LatencyP50, 800.0),
    (AlertMetric::LatencyP95, 3_000.0),
    (AlertMetric::LatencyP99, 8_000.0),
    (AlertMetric::CostUsd, 1.0),
    (AlertMetric::Tokens, 100_000.0),
    (AlertMetric::CacheHitRate, 10.0),
    (AlertMetric::NoTraffic, 0.0),
];

/// The `n`th of a varied set of rules: every metric (violations and import lag too), every
/// window, grouped four ways, a third over all traffic, the rest scoped to a provider or model.
fn rule(n: usize) -> NewAlertRule {
    let (metric, threshold) = match n % 13 {
        11 => (AlertMetric::Violations, 10.0),
        12 => (AlertMetric::ImportLagMinutes, 30.0),
        k => METRICS[k],
    };
    let scope = match n % 3 {
        0 => AlertScope::default(),
        1 => AlertScope {
            provider: Some(PROVIDERS[n / 3 % PROVIDERS.len()].into()),
            ..AlertScope::default()
        },
        _ => AlertScope {
            model: Some(MODELS[n / 3 % MODELS.len()].into()),
            ..AlertScope::default()
        },
    };
    let group_by = match metric {
        AlertMetric::Violations => None,
        AlertMetric::ImportLagMinutes => Some(GroupBy::Integration),
        _ => GROUPS[n / 7 % GROUPS.len()],
    };
    NewAlertRule {
        name: format!("bench rule {n}"),
        description: String::new(),
        enabled: true,
        metric,
        severity: (metric == AlertMetric::Violations).then_some(langguard_store::Severity::Low),
        condition: if metric == AlertMetric::CacheHitRate {
            AlertCondition::Below
        } else {
            AlertCondition::Above
        },
        threshold,
        window_minutes: WINDOWS[n / 11 % WINDOWS.len()],
        for_minutes: (n % 4) as i64 * 5,
        min_requests: 20,
        renotify_minutes: Some(60),
        scope,
        group_by,
        channel_ids: Vec::new(),
        created_by: None,
    }
}

struct Figures {
    backend: &'static str,
    median: Duration,
    slowest: Duration,
    open: usize,
}

async fn measure(
    backend: &'static str,
    store: Arc<dyn Store>,
    rules: usize,
    logs: usize,
    runs: usize,
) -> anyhow::Result<Figures> {
    let integration = bench_integration(store.as_ref(), "bench-alerts", true).await?;
    let now = time::OffsetDateTime::now_utc();
    let spec = SeedSpec {
        count: logs,
        from: now - time::Duration::hours(25),
        to: now,
        seed: 7,
    };
    ingest_synthetic(
        store.clone(),
        integration.id,
        &spec,
        5_000,
        &["bench-a", "bench-b", "bench-c"],
        |_| {},
    )
    .await?;
    let mut ids = Vec::with_capacity(rules);
    for n in 0..rules {
        ids.push(store.create_alert_rule(rule(n)).await?.id);
    }
    let start = crate::app::now_ms();
    // The first evaluation opens alerts (a burst of writes); later ones are the steady state.
    let mut times = Vec::with_capacity(runs);
    for k in 0..=runs {
        let started = Instant::now();
        evaluate(store.as_ref(), start + k as i64 * 60_000, None).await?;
        if k > 0 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    let open = store.open_alerts().await?.len();
    for id in ids {
        store.delete_alert_rule(id).await?;
    }
    store.delete_integration(integration.id).await?;
    Ok(Figures {
        backend,
        median: times[times.len() / 2],
        slowest: times[times.len() - 1],
        open,
    })
}

pub async fn run(
    rules: usize,
    logs: usize,
    runs: usize,
    database_url: Option<&str>,
) -> anyhow::Result<ExitCode> {
    println!(
        "bench alerts: {} rules, {} logs over the last 25 h in 3 gateways, {runs} evaluations after a first one",
        format::count(rules as i64),
        format::count(logs as i64)
    );
    let dir = tempfile::tempdir()?;
    let sqlite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("bench.db").to_string_lossy()).await?);
    let mut all = vec![measure("SQLite", sqlite, rules, logs, runs).await?];
    if let Some(url) = database_url.filter(|u| u.starts_with("postgres")) {
        let pg: Arc<dyn Store> = Arc::new(PgStore::open(url).await?);
        all.push(measure("PostgreSQL", pg, rules, logs, runs).await?);
    }
    println!(
        "{:<12} {:>14} {:>14} {:>16} {:>12}",
        "backend", "median ms", "slowest ms", "µs per rule", "open alerts"
    );
    for f in &all {
        println!(
            "{:<12} {:>14.1} {:>14.1} {:>16.1} {:>12}",
            f.backend,
            f.median.as_secs_f64() * 1e3,
            f.slowest.as_secs_f64() * 1e3,
            f.median.as_secs_f64() * 1e6 / rules.max(1) as f64,
            f.open
        );
    }
    Ok(ExitCode::SUCCESS)
}
