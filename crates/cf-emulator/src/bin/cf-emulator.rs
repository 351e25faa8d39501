//! `cf-emulator`: serves a local Cloudflare AI Gateway API with seeded history and optional
//! live traffic and faults, for the demo and manual testing.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::ensure;
use clap::{Parser, ValueEnum};
use langguard_cf_emulator::{
    Direction, Emulator, EmulatorConfig, Faults, LogSystem, SeedSpec, TokenSpec,
};
use time::OffsetDateTime;
use tracing_subscriber::EnvFilter;

/// Local Cloudflare AI Gateway API emulator.
#[derive(Debug, Parser)]
#[command(name = "cf-emulator", version, about, long_about = None)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Account id the token may read.
    #[arg(long, default_value = "0123456789abcdef0123456789abcdef")]
    account: String,
    /// API token clients must send as `Authorization: Bearer <token>` (never printed).
    #[arg(long, env = "CF_EMULATOR_TOKEN", hide_env_values = true)]
    token: String,
    /// Make the token account-owned (verify on /accounts/{account}/tokens/verify).
    #[arg(long)]
    account_owned_token: bool,
    /// Comma-separated gateway ids to create.
    #[arg(long, value_delimiter = ',', default_value = "default")]
    gateways: Vec<String>,
    /// Synthetic history logs per gateway.
    #[arg(long, default_value_t = 1000)]
    seed_logs: usize,
    /// How far back the synthetic history reaches.
    #[arg(long, default_value_t = 24.0)]
    history_hours: f64,
    /// Live logs per second per gateway (0 = none).
    #[arg(long, default_value_t = 0.0)]
    live_rate: f64,
    /// Requests per token per rate-limit window.
    #[arg(long, default_value_t = 1200)]
    rate_limit_quota: u32,
    /// Rate-limit window length in seconds.
    #[arg(long, default_value_t = 300)]
    rate_limit_window_secs: u64,
    /// Largest per_page accepted on the gateways list.
    #[arg(long, default_value_t = 100)]
    gateways_max_per_page: u32,
    /// Log order when a request sends no direction.
    #[arg(long, value_enum, default_value_t = DirectionArg::Desc)]
    default_direction: DirectionArg,
    /// Seed of all synthetic data and random faults.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Answer the next N API requests with 429.
    #[arg(long, default_value_t = 0)]
    rate_limit_next: u32,
    /// Retry-After (seconds) of injected 429s.
    #[arg(long, default_value_t = 1)]
    retry_after_secs: u64,
    /// Answer the next N API requests with a 5xx.
    #[arg(long, default_value_t = 0)]
    server_error_next: u32,
    /// Probability (0..=1) that any API request gets a 5xx.
    #[arg(long, default_value_t = 0.0)]
    server_error_rate: f64,
    /// Latency added before every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Cut the connection mid-body on the next N list-logs responses.
    #[arg(long, default_value_t = 0)]
    cut_connection_next: u32,
    /// Live logs become visible this many seconds after their created_at.
    #[arg(long, default_value_t = 0.0)]
    visibility_delay_secs: f64,
    /// Give the token AI Gateway: Edit and Logs: Edit, so push can be set up through the API.
    #[arg(long)]
    editor_token: bool,
    /// Put the account on the new log system: the Logs API lists nothing, pushes carry all.
    #[arg(long)]
    new_log_system: bool,
    /// Accept plain-http push destinations (loopback use; Cloudflare requires HTTPS).
    #[arg(long)]
    allow_http_push: bool,
    /// S3-compatible endpoint r2:// Logpush destinations write to.
    #[arg(long)]
    r2_endpoint: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DirectionArg {
    Asc,
    Desc,
}

impl From<DirectionArg> for Direction {
    fn from(direction: DirectionArg) -> Self {
        match direction {
            DirectionArg::Asc => Direction::Asc,
            DirectionArg::Desc => Direction::Desc,
        }
    }
}

impl Args {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(!self.token.trim().is_empty(), "--token must not be empty");
        ensure!(
            !self.gateways.is_empty(),
            "--gateways needs at least one id"
        );
        ensure!(
            self.history_hours.is_finite() && self.history_hours >= 0.0,
            "--history-hours must be a non-negative number"
        );
        ensure!(
            self.live_rate.is_finite() && self.live_rate >= 0.0,
            "--live-rate must be a non-negative number"
        );
        ensure!(
            (0.0..=1.0).contains(&self.server_error_rate),
            "--server-error-rate must be within 0..=1"
        );
        ensure!(
            self.visibility_delay_secs.is_finite() && self.visibility_delay_secs >= 0.0,
            "--visibility-delay-secs must be a non-negative number"
        );
        Ok(())
    }

    fn faults(&self) -> Faults {
        Faults {
            rate_limit_next: self.rate_limit_next,
            retry_after_secs: self.retry_after_secs,
            server_error_next: self.server_error_next,
            server_error_rate: self.server_error_rate,
            latency: Duration::from_millis(self.latency_ms),
            cut_connection_next: self.cut_connection_next,
            visibility_delay: Duration::from_secs_f64(self.visibility_delay_secs),
            ..Faults::default()
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    args.validate()?;

    let emulator = Emulator::new(EmulatorConfig {
        rate_limit_quota: args.rate_limit_quota,
        rate_limit_window: Duration::from_secs(args.rate_limit_window_secs),
        gateways_max_per_page: args.gateways_max_per_page,
        default_order_direction: args.default_direction.into(),
        seed: args.seed,
        allow_http_push: args.allow_http_push,
        r2_endpoint: args.r2_endpoint.clone(),
        ..EmulatorConfig::default()
    });
    emulator.add_account(&args.account);
    if args.new_log_system {
        emulator.set_log_system(&args.account, LogSystem::WorkersObservability);
    }
    let mut spec = if args.account_owned_token {
        TokenSpec::account_owned(&args.account)
    } else {
        TokenSpec::user(&[&args.account])
    };
    if args.editor_token {
        spec.ai_gateway_edit = true;
        spec.logs_edit = true;
    }
    emulator.add_token(&args.token, spec);

    let now = OffsetDateTime::now_utc();
    let from = now - Duration::from_secs_f64(args.history_hours * 3600.0);
    let mut seeded = 0;
    for (index, gateway) in args.gateways.iter().enumerate() {
        emulator.add_gateway(&args.account, gateway);
        seeded += emulator.seed_logs(
            &args.account,
            gateway,
            SeedSpec {
                count: args.seed_logs,
                from,
                to: now,
                seed: args.seed.wrapping_add(index as u64),
            },
        );
    }
    emulator.set_faults(args.faults());

    let running = emulator.spawn_on(args.listen).await?;
    let _live: Vec<_> = args
        .gateways
        .iter()
        .map(|gateway| {
            running
                .emulator
                .start_live_traffic(&args.account, gateway, args.live_rate)
        })
        .collect();

    println!("Cloudflare AI Gateway emulator");
    println!("  base URL : {}", running.base_url());
    println!("  account  : {}", args.account);
    println!(
        "  token    : configured ({} token; value not shown)",
        if args.account_owned_token {
            "account-owned"
        } else {
            "user"
        }
    );
    println!("  gateways : {}", args.gateways.join(", "));
    println!(
        "  history  : {seeded} logs over the last {} h",
        args.history_hours
    );
    if args.live_rate > 0.0 {
        println!("  live     : {} logs/s per gateway", args.live_rate);
    }
    println!("Press Ctrl-C to stop.");

    tokio::signal::ctrl_c().await?;
    println!("Stopping.");
    Ok(())
}
