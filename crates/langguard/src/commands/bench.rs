//! `langguard bench ingest|import|queries`: figures for docs/BENCHMARKS.md. Run from a release build.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use langguard_cf_emulator::{Emulator, EmulatorConfig, SeedSpec, TokenSpec};
use langguard_cloudflare::RateLimitPolicy;
use langguard_store::{NewIntegration, Scope, Store, SyncTrigger};
use langguard_store_postgres::PgStore;
use langguard_store_sqlite::SqliteStore;

use crate::commands::synthetic::{bench_integration, ingest_synthetic};
use crate::commands::{
    bench_alerts, bench_people, bench_policies, bench_push, bench_queries, bench_sync,
};

use crate::app::App;
use crate::cli::BenchCommand;
use crate::format;

pub async fn run(
    command: BenchCommand,
    global: &crate::cli::GlobalArgs,
) -> anyhow::Result<ExitCode> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; benchmark figures mean little (use cargo run --release)");
    }
    match command {
        BenchCommand::Ingest { logs, batch, hours } => {
            ingest(logs, batch.max(1), hours.max(1), global).await
        }
        BenchCommand::Import { logs } => import(logs).await,
        BenchCommand::Sync { logs, time_scale } => bench_sync::run(logs.max(1), time_scale).await,
        BenchCommand::Push {
            spans,
            batch,
            records,
        } => bench_push::run(spans.max(1), batch.max(1), records).await,
        BenchCommand::Alerts { rules, logs, runs } => {
            bench_alerts::run(rules, logs, runs.max(1), global.database_url.as_deref()).await
        }
        BenchCommand::People { logs, users, runs } => {
            bench_people::run(logs, users, runs.max(1), global.database_url.as_deref()).await
        }
        BenchCommand::Policies { interactions } => bench_policies::run(interactions.max(1)).await,
        BenchCommand::Queries { runs, duckdb } => {
            bench_queries::run(&App::open(global).await?, runs.max(1), duckdb).await
        }
    }
}

/// Peak and current resident memory of this process, in MiB (Linux; `None` elsewhere).
pub(crate) fn memory_mib() -> Option<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

pub(crate) fn rate(n: usize, d: Duration) -> String {
    format::count((n as f64 / d.as_secs_f64().max(1e-9)) as i64)
}

/// Into a fresh SQLite file, or — with `--database-url postgres://…` — into that PostgreSQL
/// database, under a new integration of its own.
async fn ingest(
    logs: usize,
    batch: usize,
    hours: i64,
    global: &crate::cli::GlobalArgs,
) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let (store, backend): (Arc<dyn Store>, String) = match global.database_url.as_deref() {
        Some(url) if url.starts_with("postgres") => {
            let pg = PgStore::open(url).await?;
            let name = pg.display_url().to_owned();
            (Arc::new(pg), format!("PostgreSQL at {name}"))
        }
        _ => {
            let sqlite = SqliteStore::open(&dir.path().join("bench.db").to_string_lossy()).await?;
            (
                Arc::new(sqlite),
                format!("SQLite in {}", dir.path().display()),
            )
        }
    };
    let integration = bench_integration(store.as_ref(), "bench", false).await?;
    let now = time::OffsetDateTime::now_utc();
    let spec = SeedSpec {
        count: logs,
        from: now - time::Duration::hours(hours),
        to: now,
        seed: 1,
    };
    println!(
        "bench ingest: {} logs over {hours} h, {batch} per transaction, {backend}",
        format::count(logs as i64),
    );
    println!(
        "{:>12}  {:>12}  {:>14}  {:>14}",
        "logs", "logs/s", "peak RSS MiB", "RSS MiB"
    );
    let quarter = (logs / 4).max(1);
    let mut next_report = quarter;
    let totals = ingest_synthetic(
        store.clone(),
        integration.id,
        &spec,
        batch,
        &["bench"],
        |t| {
            if t.logs >= next_report || t.logs >= logs {
                let (peak, rss) = memory_mib().unwrap_or_default();
                println!(
                    "{:>12}  {:>12}  {:>14.1}  {:>14.1}",
                    format::count(t.logs as i64),
                    rate(t.logs, t.elapsed),
                    peak,
                    rss
                );
                next_report = (t.logs / quarter + 1) * quarter;
            }
        },
    )
    .await?;
    let scope = Scope {
        integration_id: Some(integration.id),
        ..Scope::default()
    };
    let stored = store.count_interactions(&scope).await?;
    ensure!(stored as usize == logs, "stored {stored} of {logs} logs");
    let metrics = store.metrics(&scope).await?;
    ensure!(
        metrics.requests as usize == logs,
        "rollups count {} of {logs}",
        metrics.requests
    );
    println!();
    println!(
        "decode     {:>8.2} s  {:>12} logs/s  ({:.0} MB of JSON)",
        totals.decode.as_secs_f64(),
        rate(logs, totals.decode),
        totals.bytes as f64 / 1e6
    );
    println!(
        "normalise  {:>8.2} s  {:>12} logs/s  (incl. cost estimates)",
        totals.normalise.as_secs_f64(),
        rate(logs, totals.normalise)
    );
    println!(
        "end to end {:>8.2} s  {:>12} logs/s  (decode → normalise → store rows, rollups and cursor; writes overlap decoding)",
        totals.elapsed.as_secs_f64(),
        rate(logs, totals.elapsed)
    );
    Ok(ExitCode::SUCCESS)
}

/// Median wall time of `runs` runs of `query`, in milliseconds.
pub(crate) async fn time_query<F, Fut, T>(runs: usize, mut query: F) -> anyhow::Result<(f64, T)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        last = Some(query().await?);
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    last.map(|v| (median, v))
        .ok_or_else(|| anyhow::anyhow!("no run"))
}

async fn import(logs: usize) -> anyhow::Result<ExitCode> {
    const ACCOUNT: &str = "bench-account";
    const TOKEN: &str = "bench-token";
    let emulator = Emulator::new(EmulatorConfig {
        rate_limit_quota: u32::MAX,
        ..EmulatorConfig::default()
    });
    emulator.add_account(ACCOUNT);
    emulator.add_token(TOKEN, TokenSpec::user(&[ACCOUNT]));
    let now = time::OffsetDateTime::now_utc();
    emulator.seed_logs(
        ACCOUNT,
        "bench",
        SeedSpec {
            count: logs,
            from: now - time::Duration::days(6),
            to: now - time::Duration::minutes(1),
            seed: 3,
        },
    );
    let running = emulator.clone().spawn().await?;
    let dir = tempfile::tempdir()?;
    let mut app = App::open_at(dir.path(), None, &running.base_url()).await?;
    // The emulator's budget is unlimited here; the point is the import path's own speed.
    app.client_config.rate_limit = RateLimitPolicy {
        quota: u32::MAX,
        window: Duration::from_secs(300),
    };
    let integration = emulator_integration(
        &app,
        ACCOUNT,
        TOKEN,
        Some(langguard_ops::defaults::LOOKBACK_DAYS),
    )
    .await?;
    let engine = app.engine();
    let started = Instant::now();
    let run = engine.sync(integration.id, SyncTrigger::Cli, None).await?;
    let took = started.elapsed();
    ensure!(run.error.is_none(), "the sync failed: {:?}", run.error);
    let stored = app.store.count_interactions(&Scope::default()).await? as usize;
    ensure!(stored == logs, "stored {stored} of {logs} logs");
    let stats = emulator.stats();
    let (peak, _) = memory_mib().unwrap_or_default();
    println!(
        "bench import: {} logs from the emulator over loopback",
        format::count(logs as i64)
    );
    println!(
        "took {:.2} s: {} logs/s",
        took.as_secs_f64(),
        rate(logs, took)
    );
    println!(
        "list calls {} (ceil(n/50) = {}), gateway calls {}, peak RSS {peak:.1} MiB (emulator included)",
        stats.list_logs_calls,
        logs.div_ceil(50),
        stats.list_gateways_calls
    );
    Ok(ExitCode::SUCCESS)
}

/// An enabled integration of the emulator's `account`, its `token` sealed as the product seals
/// it: what the import benchmarks sync.
pub(crate) async fn emulator_integration(
    app: &App,
    account: &str,
    token: &str,
    lookback_days: Option<i64>,
) -> anyhow::Result<langguard_store::Integration> {
    Ok(app
        .store
        .create_integration(NewIntegration {
            name: "bench".into(),
            account_id: account.into(),
            api_token: langguard_store::SealFor::new(
                app.sealer
                    .sealing(token.into(), langguard_secrets::Binding::IntegrationToken),
            ),
            enabled: true,
            sync_interval_minutes: 1,
            lookback_days,
            trailing_window_minutes: langguard_store::DEFAULT_TRAILING_WINDOW_MINUTES,
        })
        .await?)
}
