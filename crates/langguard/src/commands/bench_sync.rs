//! `langguard bench sync`: what pulling costs in Cloudflare API calls — per sync when idle,
//! under steady traffic (50 logs/s) and catching up after an hour offline — and how long a
//! first import of `--logs` takes held to Cloudflare's real rate limit (1,200 calls per 5
//! minutes), against an emulator whose clock runs `--time-scale` times faster.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::ensure;
use langguard_cf_emulator::{Emulator, EmulatorConfig, SeedSpec, Stats, TokenSpec};
use langguard_cloudflare::RateLimitPolicy;
use langguard_store::{IntegrationId, Scope, SyncTrigger};
use time::OffsetDateTime;

use crate::app::App;
use crate::format;

const ACCOUNT: &str = "bench-account";
const TOKEN: &str = "bench-token";
const GATEWAY: &str = "bench";

pub async fn run(logs: usize, time_scale: u32) -> anyhow::Result<ExitCode> {
    calls_per_sync().await?;
    first_import(logs, time_scale.max(1)).await?;
    Ok(ExitCode::SUCCESS)
}

struct World {
    emulator: Emulator,
    app: App,
    integration: IntegrationId,
    _running: langguard_cf_emulator::RunningEmulator,
    _dir: tempfile::TempDir,
}

async fn world(
    config: EmulatorConfig,
    rate_limit: RateLimitPolicy,
    lookback: Option<i64>,
) -> anyhow::Result<World> {
    let emulator = Emulator::new(config);
    emulator.add_account(ACCOUNT);
    emulator.add_token(TOKEN, TokenSpec::user(&[ACCOUNT]));
    emulator.add_gateway(ACCOUNT, GATEWAY);
    let running = emulator.clone().spawn().await?;
    let dir = tempfile::tempdir()?;
    let mut app = App::open_at(dir.path(), None, &running.base_url()).await?;
    app.client_config.rate_limit = rate_limit;
    let integration = crate::commands::bench::emulator_integration(&app, ACCOUNT, TOKEN, lookback)
        .await?
        .id;
    Ok(World {
        emulator,
        app,
        integration,
        _running: running,
        _dir: dir,
    })
}

impl World {
    fn seed(&self, count: usize, from: OffsetDateTime, to: OffsetDateTime, seed: u64) {
        self.emulator.seed_logs(
            ACCOUNT,
            GATEWAY,
            SeedSpec {
                count,
                from,
                to,
                seed,
            },
        );
    }

    /// One sync; the emulator's counters for it.
    async fn sync(&self) -> anyhow::Result<Stats> {
        self.emulator.reset_stats();
        let run = self
            .app
            .engine()
            .sync(self.integration, SyncTrigger::Cli, None)
            .await?;
        ensure!(run.error.is_none(), "the sync failed: {:?}", run.error);
        Ok(self.emulator.stats())
    }
}

fn calls(stats: &Stats) -> String {
    format!(
        "{} calls: {} list-logs, {} list-gateways, {} GraphQL",
        stats.requests, stats.list_logs_calls, stats.list_gateways_calls, stats.graphql_calls
    )
}

async fn calls_per_sync() -> anyhow::Result<()> {
    let unlimited = RateLimitPolicy {
        quota: u32::MAX,
        window: Duration::from_secs(300),
    };
    let w = world(
        EmulatorConfig {
            rate_limit_quota: u32::MAX,
            ..EmulatorConfig::default()
        },
        unlimited,
        Some(7),
    )
    .await?;
    // New logs are always stamped after the newest one imported: new traffic, not
    // late-visible logs (which the trailing window and coverage find, at their own cost).
    let now = OffsetDateTime::now_utc();
    w.seed(
        100_000,
        now - time::Duration::days(6),
        now - time::Duration::minutes(62),
        1,
    );
    w.sync().await?;
    println!("bench sync: Cloudflare API calls per sync of one gateway (100,000 logs of history)");
    println!("  idle (nothing new): {}", calls(&w.sync().await?));
    let now = OffsetDateTime::now_utc();
    w.seed(
        180_000,
        now - time::Duration::minutes(61),
        now - time::Duration::minutes(1),
        3,
    );
    println!(
        "  catch-up (an hour offline, 180,000 new): {}",
        calls(&w.sync().await?)
    );
    let now = OffsetDateTime::now_utc();
    w.seed(3_000, now - time::Duration::seconds(55), now, 2);
    println!(
        "  steady (50 logs/s, 1-minute interval, 3,000 new): {}",
        calls(&w.sync().await?)
    );
    let stored = w.app.store.count_interactions(&Scope::default()).await?;
    ensure!(stored == 283_000, "stored {stored} of 283,000 logs");
    Ok(())
}

async fn first_import(logs: usize, scale: u32) -> anyhow::Result<()> {
    // Cloudflare's limit, on a clock `scale` times faster: the same calls per window.
    let window = Duration::from_secs(300) / scale;
    let w = world(
        EmulatorConfig {
            rate_limit_quota: 1_200,
            rate_limit_window: window,
            ..EmulatorConfig::default()
        },
        RateLimitPolicy {
            quota: 1_200,
            window,
        },
        None,
    )
    .await?;
    let now = OffsetDateTime::now_utc();
    w.seed(
        logs,
        now - time::Duration::days(30),
        now - time::Duration::minutes(5),
        4,
    );
    let started = Instant::now();
    let stats = w.sync().await?;
    let took = started.elapsed();
    let stored = w.app.store.count_interactions(&Scope::default()).await? as usize;
    ensure!(stored == logs, "stored {stored} of {logs} logs");
    let simulated = took.as_secs_f64() * f64::from(scale) / 60.0;
    println!(
        "first import of {} logs at 1,200 calls per 5 minutes (clock x{scale}): {:.1} s here, {simulated:.0} minutes of Cloudflare time; {}; {} answered 429",
        format::count(logs as i64),
        took.as_secs_f64(),
        calls(&stats),
        stats.rate_limited
    );
    println!(
        "  floor: {} list calls at 4 per second = {:.0} minutes",
        format::count(logs.div_ceil(50) as i64),
        logs.div_ceil(50) as f64 / 4.0 / 60.0
    );
    Ok(())
}
