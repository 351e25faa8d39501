//! LangGuard's server: the REST API under `/api/v1`, health endpoints, and the scheduler that
//! syncs each enabled integration at its interval. The `langguard serve` command wires it up.

pub mod auth;
mod channels;
pub mod client;
mod error;
mod extract;
mod headers;
mod routes;
mod scheduler;
mod sessions;
pub mod telemetry;
pub mod web;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use langguard_cloudflare::ClientConfig;
use langguard_ops::{Actor, Services, ServicesConfig};
use langguard_secrets::Sealer;
use langguard_store::{Role, Store};
use langguard_sync::SyncEngine;

pub use auth::SESSION_COOKIE;
pub use error::ApiError;

/// Bodies larger than this are refused with 413: the API takes small JSON documents.
const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` and send HSTS (when served over HTTPS: set by
    /// `LANGGUARD_SECURE_COOKIES` or a `LANGGUARD_PUBLIC_URL` that is `https://…`).
    pub secure_cookies: bool,
    /// The URL people (and Cloudflare) reach LangGuard at; state-changing requests signed in
    /// by cookie must come from its origin.
    pub public_url: Option<url::Url>,
    /// The bearer token `/metrics` asks for (`LANGGUARD_METRICS_TOKEN`); `None`: open.
    pub metrics_token: Option<String>,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` name the client (empty: none).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Which of those headers the trusted proxies set.
    pub client_ip_header: client::ForwardedHeader,
    /// Run the scheduler that syncs integrations at their interval.
    pub scheduler: bool,
    /// How often the scheduler looks for integrations that are due.
    pub scheduler_tick: Duration,
    /// How long shutdown waits for running syncs.
    pub shutdown_grace: Duration,
    /// Run the policy worker that evaluates every imported interaction.
    pub policy_worker: bool,
    /// How often the policy worker looks for new interactions when it has caught up.
    pub policy_idle_wait: Duration,
    /// Webhook event detection and delivery (`None`: off).
    pub webhooks: Option<webhooks::WebhookSettings>,
    /// Delete interactions (with their bodies and violations) older than this many days.
    pub retention_days: Option<u32>,
    /// How long a background worker's lease lasts without renewal (see `WorkerLease`).
    pub lease_ttl: Duration,
    /// The address-space cap of each policy sandbox process, in MiB.
    pub policy_memory_limit_mib: u64,
    /// Backtests and re-evaluations running at once (one per user besides).
    pub max_backtests: usize,
    /// Longest a backtest runs; it reports what it evaluated by then.
    pub backtest_time_limit: Duration,
    /// Pushes decoded and written at once (more are answered 429 with Retry-After).
    pub push_max_in_flight: usize,
    /// How often the scheduler lists each Logpush bucket for new files.
    pub bucket_poll: Duration,
    /// Whether this instance evaluates alert rules each minute (one instance at a time does,
    /// under a lease). Tests turn it off and evaluate with a clock of their own.
    pub alert_evaluator: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let ops = ServicesConfig::default();
        Self {
            session_ttl: Duration::from_secs(24 * 3600),
            secure_cookies: false,
            public_url: None,
            trusted_proxies: Vec::new(),
            client_ip_header: client::ForwardedHeader::XForwardedFor,
            metrics_token: None,
            scheduler: true,
            scheduler_tick: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            policy_worker: true,
            policy_idle_wait: Duration::from_secs(1),
            webhooks: Some(webhooks::WebhookSettings::default()),
            retention_days: None,
            lease_ttl: Duration::from_secs(30),
            policy_memory_limit_mib: ops.policy_memory_limit_mib,
            max_backtests: ops.max_backtests,
            backtest_time_limit: ops.backtest_time_limit,
            push_max_in_flight: ops.push_max_in_flight,
            bucket_poll: Duration::from_secs(60),
            alert_evaluator: true,
        }
    }
}

/// What every handler can reach; cheap to clone. Handlers are adapters: they call the
/// operations in `ops` and render what they return.
#[derive(Clone)]
pub struct AppState {
    pub ops: Services,
    pub config: Arc<ServerConfig>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        sealer: Sealer,
        client_config: ClientConfig,
        engine: Arc<SyncEngine>,
        config: ServerConfig,
    ) -> Self {
        // Installed before anything records, so no early count is lost.
        telemetry::prometheus();
        let ops = Services::new(
            store,
            sealer,
            client_config,
            engine,
            ServicesConfig {
                policy_memory_limit_mib: config.policy_memory_limit_mib,
                max_backtests: config.max_backtests,
                backtest_time_limit: config.backtest_time_limit,
                webhook_targets: config
                    .webhooks
                    .as_ref()
                    .map(|w| w.targets.clone())
                    .unwrap_or_default(),
                push_max_in_flight: config.push_max_in_flight,
            },
        );
        Self {
            ops,
            config: Arc::new(config),
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(routes::health::router())
        .route("/metrics", axum::routing::get(telemetry::render))
        .nest("/api/v1", routes::api_router())
        .merge(routes::ingest::otlp_router())
        .merge(web::router())
        .layer(axum::middleware::from_fn(telemetry::track_http))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::security_headers,
        ))
        .with_state(state)
}

/// Creates the first admin when the database has no user yet (`LANGGUARD_ADMIN_EMAIL` and
/// `LANGGUARD_ADMIN_PASSWORD`). Returns whether one was created.
pub async fn bootstrap_admin(
    store: &dyn Store,
    email: Option<&str>,
    password: Option<&str>,
) -> anyhow::Result<bool> {
    let (Some(email), Some(password)) = (email, password) else {
        return Ok(false);
    };
    if store.count_users().await? > 0 {
        return Ok(false);
    }
    let admin = langguard_ops::users::new_user(email, password.to_owned(), Role::Admin)
        .await
        .map_err(|e| anyhow::anyhow!("LANGGUARD_ADMIN_PASSWORD: {e}"))?;
    let created = store.create_user(admin).await;
    match created {
        Ok(_) => Ok(true),
        // Another instance starting beside this one created the same admin first.
        Err(langguard_store::StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Serves until `shutdown` resolves, then stops taking requests, stops the scheduler and
/// gives running syncs `shutdown_grace` to finish (each batch commits with its cursor, so
/// one cut short loses nothing).
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Built-ins are installed where they are used: by the server's policy worker here, and by
    // `langguard sync` — not by every command that opens the store.
    langguard_ops::policies::install_builtins(state.ops.store.as_ref()).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let scheduler = state
        .config
        .scheduler
        .then(|| tokio::spawn(scheduler::run(state.clone(), stop_rx.clone())));
    let policy_worker = state.config.policy_worker.then(|| {
        // Its own sandbox process: the worker never waits behind editors' Test runs.
        let sandbox = langguard_policy::Sandbox::new(
            langguard_policy::SandboxConfig::current_exe(state.config.policy_memory_limit_mib)
                .max_processes(1),
        );
        let worker = langguard_policy::PolicyWorker::new(
            state.ops.store.clone(),
            langguard_policy::WorkerConfig {
                idle_wait: state.config.policy_idle_wait,
                ..langguard_policy::WorkerConfig::default()
            },
            sandbox,
        )
        .with_bodies(Arc::new(langguard_sync::bodies::CloudflareBodies::new(
            state.ops.sealer.clone(),
            state.ops.client_config.clone(),
        )))
        .with_lease(state.worker_lease("policy-worker"));
        tokio::spawn(worker.run(stop_rx.clone()))
    });
    let webhook_dispatcher = state.config.webhooks.clone().map(|settings| {
        tokio::spawn(webhooks::run(
            state.ops.store.clone(),
            state.ops.sealer.clone(),
            settings,
            state.worker_lease("webhooks"),
            stop_rx.clone(),
        ))
    });
    let retention = state.config.retention_days.map(|days| {
        tokio::spawn(langguard_ops::retention::run(
            state.ops.store.clone(),
            days,
            state.worker_lease("retention"),
            stop_rx.clone(),
        ))
    });
    let alert_evaluator = state.config.alert_evaluator.then(|| {
        tokio::spawn(langguard_ops::alerts::run(
            state.ops.store.clone(),
            state.config.public_url.as_ref().map(|u| u.to_string()),
            state.worker_lease("alerts"),
            stop_rx.clone(),
        ))
    });
    let engine = state.ops.engine.clone();
    let grace = state.config.shutdown_grace;
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    let _ = stop_tx.send(true);
    if let Some(scheduler) = scheduler {
        let _ = scheduler.await;
    }
    if let Some(worker) = policy_worker {
        let _ = worker.await;
    }
    if let Some(dispatcher) = webhook_dispatcher {
        let _ = dispatcher.await;
    }
    if let Some(retention) = retention {
        let _ = retention.await;
    }
    if let Some(evaluator) = alert_evaluator {
        let _ = evaluator.await;
    }
    if !engine.wait_idle(grace).await {
        tracing::warn!(
            "stopping with syncs still running; they resume from their cursors next time"
        );
    }
    Ok(())
}

impl AppState {
    /// A background worker's lease, named for this process as its syncs are.
    fn worker_lease(&self, name: &str) -> langguard_store::lease::WorkerLease {
        langguard_store::lease::WorkerLease::new(
            name,
            self.ops.engine.holder(),
            self.config.lease_ttl,
        )
    }

    /// Records a security event (sign-ins, sign-outs) of `user`, or of nobody signed in.
    pub(crate) async fn audit(
        &self,
        user: Option<&langguard_store::User>,
        action: &str,
        resource: Option<String>,
        details: serde_json::Value,
        address: Option<String>,
    ) {
        let actor = user.map_or(Actor::Nobody, Actor::User);
        self.ops
            .audit(actor, action, resource, details, address)
            .await;
    }
}

/// Lower-case hex of `bytes` (signatures, tokens shown to people).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) use langguard_clock::now_ms;
