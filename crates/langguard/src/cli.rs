//! The command line: every flag has a `LANGGUARD_*` environment variable, and `--help` on every
//! command says what it does.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ENV_HELP: &str = "\
Secrets are never taken as flags:
  LANGGUARD_ENCRYPTION_KEY   base64 of 32 bytes that seal stored API tokens; when unset, a key
                             file (encryption.key, mode 0600) is created in the data dir
  LANGGUARD_CF_API_TOKEN     the Cloudflare API token for `integrations add` (else read from stdin)
  LANGGUARD_ADMIN_EMAIL,     `serve` creates this admin when the database has no user yet
  LANGGUARD_ADMIN_PASSWORD";

/// Settings read from the environment (or the settings file) rather than from a flag: the
/// first admin, the encryption key (never on a command line), and two tuning knobs.
pub const ENVIRONMENT_SETTINGS: &[&str] = &[
    "LANGGUARD_ADMIN_EMAIL",
    "LANGGUARD_ADMIN_PASSWORD",
    "LANGGUARD_ENCRYPTION_KEY",
    "LANGGUARD_LEASE_TTL_SECONDS",
    "LANGGUARD_DB_POOL_SIZE",
];

#[derive(Debug, Parser)]
#[command(
    name = "langguard",
    version,
    about = "LangGuard: AI governance and observability for your AI gateways",
    long_about = "LangGuard imports every request log from Cloudflare AI Gateway, prices it, and \
                  shows usage, cost, latency and errors across providers and models.",
    after_help = ENV_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// A TOML file of settings (`data_dir = "…"`, `listen = "…"`, …: the variables below
    /// without their LANGGUARD_ prefix, in lower case). Flags and environment win over it.
    #[arg(long, env = "LANGGUARD_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Where LangGuard keeps its database and encryption key.
    #[arg(
        long,
        env = "LANGGUARD_DATA_DIR",
        default_value = "./langguard-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Database URL; default: sqlite://<data dir>/langguard.db
    #[arg(long, env = "LANGGUARD_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Base URL of the Cloudflare API (point it at the emulator in tests).
    #[arg(
        long,
        env = "LANGGUARD_CLOUDFLARE_API_BASE",
        default_value = langguard_cloudflare::DEFAULT_API_BASE,
        global = true
    )]
    pub cloudflare_api_base: String,
    /// Log filter (tracing's syntax, e.g. `info` or `langguard_sync=debug`); logs go to stderr.
    #[arg(long, env = "LANGGUARD_LOG", default_value = "warn", global = true)]
    pub log: String,
    /// Log format on stderr.
    #[arg(long, env = "LANGGUARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// Memory cap of each policy sandbox process, in MiB: a policy evaluation that needs more
    /// is stopped (and a policy that keeps doing it is quarantined).
    #[arg(long, env = "LANGGUARD_POLICY_MEMORY_MB", default_value_t = langguard_policy::DEFAULT_MEMORY_LIMIT_MIB, value_parser = clap::value_parser!(u64).range(64..=1_048_576), global = true)]
    pub policy_memory_mb: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add, list, test and remove Cloudflare AI Gateway integrations.
    #[command(subcommand)]
    Integrations(IntegrationsCommand),
    /// Import new logs now, in the foreground (all enabled integrations without NAME).
    Sync(SyncArgs),
    /// Usage, cost, latency and error figures over a time range.
    Metrics(MetricsArgs),
    /// Recent interactions, newest first.
    Traces(TracesArgs),
    /// The whole product on this machine with no Cloudflare account: an emulated gateway with
    /// live traffic, a temporary database and an integration that syncs.
    Demo(DemoArgs),
    /// Run the server: web UI, REST API, scheduler, policy worker, webhooks.
    Serve(ServeArgs),
    /// Delete interactions past a retention period now (`serve --retention-days` does it hourly).
    Prune(PruneArgs),
    /// Copy the database (consistently, while LangGuard runs) and the encryption key.
    Backup(BackupArgs),
    /// Manage the encryption key that seals stored API tokens.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Manage the people who sign in.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Tools for trying LangGuard out at scale.
    #[command(subcommand)]
    Dev(DevCommand),
    /// Benchmarks (run them from a release build).
    #[command(subcommand)]
    Bench(BenchCommand),
}

impl Command {
    /// Whether the command was asked for `--json` output.
    pub fn wants_json(&self) -> bool {
        match self {
            Command::Integrations(c) => match c {
                IntegrationsCommand::Add(a) => a.json,
                IntegrationsCommand::List { json }
                | IntegrationsCommand::Test { json, .. }
                | IntegrationsCommand::Remove { json, .. } => *json,
            },
            Command::Sync(a) => a.json,
            Command::Metrics(a) => a.json,
            Command::Traces(a) => a.json,
            Command::Users(UsersCommand::List { json }) => *json,
            Command::Demo(_)
            | Command::Bench(_)
            | Command::Serve(_)
            | Command::Prune(_)
            | Command::Backup(_)
            | Command::Users(_)
            | Command::Secrets(_)
            | Command::Dev(_) => false,
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LANGGUARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Mark the session cookie Secure and send HSTS (set it when LangGuard is served over
    /// HTTPS; an https:// LANGGUARD_PUBLIC_URL does it too).
    #[arg(long, env = "LANGGUARD_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// The URL people and Cloudflare reach LangGuard at (e.g. https://langguard.example.com).
    /// `https://` turns on Secure cookies and HSTS; cookie-signed requests that change
    /// something must come from this origin.
    #[arg(long, env = "LANGGUARD_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<url::Url>,
    /// Reverse proxies whose X-Forwarded-For / Forwarded headers name the client, as CIDRs or
    /// addresses, comma-separated (e.g. 127.0.0.1,10.0.0.0/8). Empty: those headers are
    /// ignored and the connection's address is the client's.
    #[arg(long, env = "LANGGUARD_TRUSTED_PROXIES", value_delimiter = ',', value_parser = langguard_ops::webhook_target::parse_network)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header your trusted proxies name the client in: x-forwarded-for (nginx, HAProxy,
    /// most load balancers) or forwarded (RFC 7239). The other one is ignored.
    #[arg(
        long,
        env = "LANGGUARD_CLIENT_IP_HEADER",
        default_value = "x-forwarded-for"
    )]
    pub client_ip_header: langguard_server::client::ForwardedHeader,
    /// A bearer token Prometheus must send to read /metrics (its figures name integrations,
    /// gateways, models and costs). Unset: /metrics is open to whoever reaches the port.
    #[arg(long, env = "LANGGUARD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Let webhooks reach loopback, private, link-local and other non-public addresses:
    /// `true`, or the CIDRs/addresses to allow, comma-separated. Default: public addresses only.
    #[arg(long, env = "LANGGUARD_WEBHOOK_ALLOW_PRIVATE", default_value = "false", value_parser = langguard_ops::webhook_target::TargetPolicy::parse)]
    pub webhook_allow_private: langguard_ops::webhook_target::TargetPolicy,
    /// Hours a sign-in lasts.
    #[arg(long, env = "LANGGUARD_SESSION_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=8760))]
    pub session_hours: u64,
    /// Don't sync integrations on their schedule (Sync Now still works).
    #[arg(long, env = "LANGGUARD_NO_SCHEDULER")]
    pub no_scheduler: bool,
    /// Delete interactions (with their bodies and violations) older than this many days, hourly.
    /// Rollups, and so dashboards, keep the whole history.
    #[arg(long, env = "LANGGUARD_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub retention_days: Option<u32>,
    /// Pushes (OTLP, Logpush) decoded and written at once; one more is answered 429 with
    /// Retry-After, so a pusher slows down instead of piling up memory here.
    #[arg(long, env = "LANGGUARD_PUSH_MAX_IN_FLIGHT", default_value_t = langguard_ops::ingest::DEFAULT_MAX_IN_FLIGHT as u64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub push_max_in_flight: u64,
    /// Seconds between listings of each Logpush bucket (an integration's R2/S3 source).
    #[arg(long, env = "LANGGUARD_BUCKET_POLL_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=86_400))]
    pub bucket_poll_seconds: u64,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new database file; the encryption key is copied beside it as `<FILE>.key`.
    #[arg(long)]
    pub to: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete interactions older than this many days (with their bodies and violations).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub older_than_days: u32,
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Fill the store with realistic synthetic interactions and their rollups.
    Seed {
        #[arg(long, default_value_t = 100_000)]
        interactions: usize,
        /// Days back from now the interactions are spread over.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..=3650))]
        days: i64,
        /// The (disabled) integration the data belongs to.
        #[arg(long, default_value = "Synthetic data")]
        name: String,
        /// Seed of the generator: the same seed gives the same data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Seal every stored API token under a new key. With LANGGUARD_ENCRYPTION_KEY set, prints
    /// the new key to put there; otherwise replaces the data dir's key file.
    RotateKey,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is read from stdin (or LANGGUARD_USER_PASSWORD).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Member)]
        role: RoleArg,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Admin,
    Member,
    Viewer,
}

#[derive(Debug, Subcommand)]
pub enum IntegrationsCommand {
    /// Add a Cloudflare integration; the connection is tested before it is saved.
    Add(AddArgs),
    /// List integrations with their status and last sync.
    List {
        /// Print one JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Test an integration's stored credentials: verify the token and list gateways.
    Test {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove an integration and everything imported through it.
    Remove {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A name for people (e.g. "Production").
    #[arg(long)]
    pub name: String,
    /// The Cloudflare account ID (dashboard → Account home → Account ID).
    #[arg(long)]
    pub account_id: String,
    /// Minutes between automatic syncs.
    #[arg(long, default_value_t = langguard_ops::defaults::SYNC_INTERVAL_MINUTES, value_parser = clap::value_parser!(i64).range(1..=1440))]
    pub sync_interval_minutes: i64,
    /// Days of history the first sync imports, or `all`.
    #[arg(long, default_value_t = Lookback(Some(langguard_ops::defaults::LOOKBACK_DAYS)), value_parser = parse_lookback)]
    pub lookback_days: Lookback,
    /// Save it without automatic syncs.
    #[arg(long)]
    pub disabled: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookback(pub Option<i64>);

impl std::fmt::Display for Lookback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(days) => write!(f, "{days}"),
            None => f.write_str("all"),
        }
    }
}

fn parse_lookback(s: &str) -> Result<Lookback, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(Lookback(None));
    }
    match s.parse::<i64>() {
        Ok(days) if (1..=3650).contains(&days) => Ok(Lookback(Some(days))),
        _ => Err(format!("{s:?} is not a number of days (1–3650) or `all`")),
    }
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The integration to sync; all enabled ones when omitted.
    pub name: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// Which interactions a query covers.
#[derive(Debug, Args, Clone)]
pub struct ScopeArgs {
    /// Start: RFC 3339 (2026-11-01T00:00:00Z), a date (2026-11-01), or an age (90m, 24h, 7d).
    #[arg(long)]
    pub from: Option<String>,
    /// End (exclusive), same forms as --from; default now.
    #[arg(long)]
    pub to: Option<String>,
    /// Only this integration (by name).
    #[arg(long)]
    pub integration: Option<String>,
    #[arg(long)]
    pub gateway: Option<String>,
    #[arg(long)]
    pub provider: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupByArg {
    Gateway,
    Provider,
    Model,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// One row of figures per gateway, provider or model.
    #[arg(long, value_enum)]
    pub group_by: Option<GroupByArg>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Success,
    Error,
}

#[derive(Debug, Args)]
pub struct TracesArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// Only cache hits (true) or misses (false).
    #[arg(long)]
    pub cached: Option<bool>,
    /// Search: "exact phrase", a OR b, NOT term, field:value (model, provider, gateway, path,
    /// log_id, status, cached, status_code or a metadata key).
    #[arg(long, short = 'q')]
    pub search: Option<String>,
    /// Order by time (default), duration, cost or tokens, largest first.
    #[arg(long, value_enum, default_value_t = SortArg::Time)]
    pub sort: SortArg,
    /// Smallest first instead.
    #[arg(long)]
    pub asc: bool,
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Continue from a previous page's `next_cursor`.
    #[arg(long)]
    pub cursor: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SortArg {
    Time,
    Duration,
    Cost,
    Tokens,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Synthetic history per gateway, spread over the last 24 hours.
    #[arg(long, default_value_t = 5_000)]
    pub history: usize,
    /// Live traffic per gateway, in logs per second.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Seconds between syncs.
    #[arg(long, default_value_t = 10)]
    pub sync_every: u64,
    /// Stop after this many syncs (default: run until Ctrl-C).
    #[arg(long)]
    pub syncs: Option<u64>,
    /// Where the server listens (another free port if this one is taken).
    #[arg(long, env = "LANGGUARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Decode → normalise → store throughput with rollups, and peak memory: into a fresh
    /// SQLite file, or the PostgreSQL database `--database-url` names.
    Ingest {
        #[arg(long, default_value_t = 1_000_000)]
        logs: usize,
        /// Rows per store transaction (the sync engine's batch).
        #[arg(long, default_value_t = 5_000)]
        batch: usize,
        /// Hours the synthetic logs are spread over: fewer hours, denser per-minute rollups.
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
    /// One evaluation of every alert rule: SQLite, and PostgreSQL beside it when
    /// `--database-url postgres://…` is given (its rules and data are removed afterwards).
    Alerts {
        #[arg(long, default_value_t = 1_000)]
        rules: usize,
        /// Synthetic logs over the last 25 hours.
        #[arg(long, default_value_t = 1_000_000)]
        logs: usize,
        /// Evaluations measured (after a first one that opens the alerts).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// The People page at scale: interactions by many users stored with the user and team keys
    /// named, then the page's reads, the window moving on and a backfill timed: SQLite, and
    /// PostgreSQL beside it when `--database-url postgres://…` is given.
    People {
        #[arg(long, default_value_t = 10_000_000)]
        logs: usize,
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// Runs per query; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Policy evaluations per second on one core, with every built-in enabled, on synthetic
    /// interactions with request and response bodies.
    Policies {
        #[arg(long, default_value_t = 20_000)]
        interactions: usize,
    },
    /// Dashboard and Trace Explorer queries over the configured store (fill it first with
    /// `langguard dev seed --interactions 10000000`).
    Queries {
        /// Runs per query; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Also export everything to CSV, convert it to Parquet and run the same aggregates in
        /// DuckDB (needs `python3` with `pip install duckdb`).
        #[arg(long)]
        duckdb: bool,
    },
    /// End-to-end import from the emulator over loopback.
    Import {
        #[arg(long, default_value_t = 100_000)]
        logs: usize,
    },
    /// Cloudflare API calls per sync (idle, steady 50 logs/s, catching up an hour), and a first
    /// import held to Cloudflare's rate limit on a faster clock.
    Sync {
        #[arg(long, default_value_t = 1_000_000)]
        logs: usize,
        /// How many times faster the emulator's and the client's rate-limit window runs.
        #[arg(long, default_value_t = 100)]
        time_scale: u32,
    },
    /// Push receivers over loopback into a fresh SQLite file: OTLP protobuf batches, then
    /// Logpush gzip NDJSON with encrypted fields (and where a record's time goes).
    Push {
        #[arg(long, default_value_t = 1_000_000)]
        spans: usize,
        /// Spans per OTLP request.
        #[arg(long, default_value_t = 512)]
        batch: usize,
        /// Logpush records (each costs an RSA unwrap).
        #[arg(long, default_value_t = 10_000)]
        records: usize,
    },
}

/// A public URL: absolute http(s), no credentials in it.
fn parse_public_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text)
        .map_err(|e| format!("not a URL ({e}); give e.g. https://langguard.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(
            "give an http:// or https:// URL with a host, e.g. https://langguard.example.com"
                .into(),
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the public URL must not carry a user name or password".into());
    }
    Ok(url)
}
