//! The [`Emulator`] handle: shared state, the control API tests drive, and serving over TCP.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use anyhow::Context as _;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::auth::{TokenRegistry, TokenSpec};
use crate::config::EmulatorConfig;
use crate::faults::{FaultInjector, Faults};
use crate::live::{self, LiveTraffic};
use crate::log_record::{now_millis, unix_millis, LogRecord, ALWAYS_VISIBLE};
use crate::push::{self, LogSystem, PushFaults, PushState, PushedRecord};
use crate::rate_limit::RateLimiter;
use crate::state::Store;
use crate::stats::{Stats, StatsCounters};
use crate::synthetic::{self, SeedSpec};

/// State shared by the handle, the HTTP handlers and live-traffic tasks.
pub(crate) struct Shared {
    pub config: EmulatorConfig,
    pub store: RwLock<Store>,
    pub tokens: RwLock<TokenRegistry>,
    pub limiter: Mutex<RateLimiter>,
    pub faults: Mutex<FaultInjector>,
    pub stats: StatsCounters,
    pub push: PushState,
    /// What `Faults::delete_on_list` deleted, for tests to leave out of "every log is stored".
    pub deleted_on_list: Mutex<Vec<String>>,
    /// Randomness of [`Emulator::append_logs`].
    rng: Mutex<SmallRng>,
    /// Number of live-traffic streams started, so each gets its own random sequence.
    live_streams: AtomicU64,
}

// A panic while a lock is held cannot leave these structures half-updated in a way that
// matters for a test double, so poisoning is ignored rather than cascading panics.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Appends `count` live logs stamped now, visible after the current visibility delay.
    pub(crate) fn append_live_logs(
        &self,
        account_id: &str,
        gateway_id: &str,
        count: u64,
        rng: &mut SmallRng,
    ) {
        let created_at = now_millis();
        let delay = lock(&self.faults).visibility_delay();
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        let visible_at = created_at.saturating_add(delay_ms);
        let records = (0..count)
            .map(|_| synthetic::synthesize_log(rng, created_at, visible_at))
            .collect();
        self.record_requests(account_id, gateway_id, records);
    }

    /// Stores new requests of a gateway and queues them for push when the gateway pushes;
    /// returns the ids stored.
    pub(crate) fn record_requests(
        &self,
        account_id: &str,
        gateway_id: &str,
        records: Vec<LogRecord>,
    ) -> Vec<String> {
        let mut store = write(&self.store);
        let pushes = store.pushes(account_id, gateway_id);
        let logs = &mut store
            .gateway_entry(account_id, gateway_id, now_millis())
            .logs;
        let ids = logs.insert(records);
        if pushes {
            let added = ids.iter().filter_map(|id| logs.get(id).cloned()).collect();
            self.push.enqueue(account_id, gateway_id, added);
        }
        ids
    }
}

/// A local Cloudflare AI Gateway API. Cheap to clone: clones share one state.
#[derive(Clone)]
pub struct Emulator {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Emulator {
    // Only the configuration: the store may hold hundreds of thousands of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    pub fn new(config: EmulatorConfig) -> Self {
        let shared = Shared {
            store: RwLock::new(Store::default()),
            tokens: RwLock::new(TokenRegistry::default()),
            limiter: Mutex::new(RateLimiter::new(
                config.rate_limit_quota,
                config.rate_limit_window,
            )),
            faults: Mutex::new(FaultInjector::new(config.seed)),
            stats: StatsCounters::default(),
            push: PushState::default(),
            deleted_on_list: Mutex::default(),
            rng: Mutex::new(SmallRng::seed_from_u64(config.seed ^ 0x5eed_0a99)),
            live_streams: AtomicU64::new(0),
            config,
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The API as an axum router; every route lives under `/client/v4`.
    pub fn router(&self) -> axum::Router {
        crate::routes::router(self.clone())
    }

    /// Serves the API on an ephemeral port of 127.0.0.1.
    pub async fn spawn(self) -> anyhow::Result<RunningEmulator> {
        self.spawn_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
    }

    /// Serves the API on `addr` until the returned [`RunningEmulator`] is dropped.
    pub async fn spawn_on(self, addr: SocketAddr) -> anyhow::Result<RunningEmulator> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the emulator to {addr}"))?;
        let addr = listener
            .local_addr()
            .context("reading the emulator's bound address")?;
        let router = self.router();
        let pusher = self.shared.config.push_interval.map(|every| {
            let shared = Arc::downgrade(&self.shared);
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    let Some(shared) = shared.upgrade() else {
                        break;
                    };
                    push::flush(&shared).await;
                }
            })
        });
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!(%err, "cf-emulator server stopped");
            }
        });
        tracing::debug!(%addr, "cf-emulator listening");
        Ok(RunningEmulator {
            emulator: self,
            addr,
            server,
            pusher,
        })
    }

    /// Declares an account (idempotent).
    pub fn add_account(&self, account_id: &str) {
        write(&self.shared.store).add_account(account_id);
    }

    /// Puts an account on a log system. On [`LogSystem::WorkersObservability`] the REST Logs
    /// API lists nothing and single-log calls answer 404, while pushes carry every request.
    pub fn set_log_system(&self, account_id: &str, system: LogSystem) {
        write(&self.shared.store).set_log_system(account_id, system);
    }

    /// Configures `token` (the secret sent as `Authorization: Bearer <token>`).
    pub fn add_token(&self, token: &str, spec: TokenSpec) {
        write(&self.shared.tokens).add(token, spec, OffsetDateTime::now_utc());
    }

    /// Revokes `token`: resource routes then answer 403 / 9109 and verify 401 / 1000.
    pub fn revoke_token(&self, token: &str) {
        write(&self.shared.tokens).revoke(token);
        lock(&self.shared.limiter).forget(token);
    }

    /// Declares a gateway (idempotent; creates the account if needed).
    pub fn add_gateway(&self, account_id: &str, gateway_id: &str) {
        write(&self.shared.store).gateway_entry(account_id, gateway_id, now_millis());
    }

    /// Adds a deterministic synthetic history (visible at once) and returns how many logs
    /// were added. Creates the account and gateway if needed.
    pub fn seed_logs(&self, account_id: &str, gateway_id: &str, spec: SeedSpec) -> usize {
        let salt = synthetic::stable_hash(&[account_id, gateway_id]);
        let records = synthetic::seeded_history(&spec, salt);
        write(&self.shared.store)
            .gateway_entry(account_id, gateway_id, now_millis())
            .logs
            .insert(records)
            .len()
    }

    /// Adds `n` synthetic logs that all share `created_at` (truncated to milliseconds) and are
    /// visible at once — with a past `created_at` this is "a log that became visible late".
    /// Returns their ids.
    pub fn append_logs(
        &self,
        account_id: &str,
        gateway_id: &str,
        n: usize,
        created_at: OffsetDateTime,
    ) -> Vec<String> {
        let created_at = unix_millis(created_at);
        let records = {
            let mut rng = lock(&self.shared.rng);
            (0..n)
                .map(|_| synthetic::synthesize_log(&mut rng, created_at, ALWAYS_VISIBLE))
                .collect()
        };
        self.shared.record_requests(account_id, gateway_id, records)
    }

    /// Simulated traffic: `spec.count` requests spread over `[spec.from, spec.to)` as if they
    /// had just happened (stored, and queued for push when the gateway pushes). With
    /// [`Emulator::flush_pushes`] a test pushes minutes of traffic in a moment. Returns how
    /// many requests were added.
    pub fn simulate_requests(&self, account_id: &str, gateway_id: &str, spec: SeedSpec) -> usize {
        let salt = synthetic::stable_hash(&[account_id, gateway_id, "simulated"]);
        let records = synthetic::seeded_history(&spec, salt);
        self.shared
            .record_requests(account_id, gateway_id, records)
            .len()
    }

    /// Delivers every queued push now (OTLP requests, Logpush files) with the configured
    /// retries; returns how many deliveries were made.
    pub async fn flush_pushes(&self) -> usize {
        push::flush(&self.shared).await
    }

    /// Requests waiting to be pushed.
    pub fn queued_pushes(&self) -> usize {
        self.shared.push.queued()
    }

    /// Every request delivered so far (once each per destination, duplicates not repeated).
    pub fn pushed_records(&self) -> Vec<PushedRecord> {
        self.shared.push.delivered()
    }

    pub fn set_push_faults(&self, faults: PushFaults) {
        *lock(&self.shared.push.faults) = faults;
    }

    /// The gateway object as `GET …/gateways/{id}` returns it (settings included).
    pub fn gateway_json(&self, account_id: &str, gateway_id: &str) -> Option<serde_json::Value> {
        read(&self.shared.store)
            .gateway(account_id, gateway_id)
            .and_then(|gateway| serde_json::to_value(gateway.json()).ok())
    }

    /// The account's Logpush jobs as the API lists them.
    pub fn logpush_jobs(&self, account_id: &str) -> Vec<serde_json::Value> {
        read(&self.shared.store)
            .logpush_jobs(account_id)
            .iter()
            .filter_map(|job| serde_json::to_value(job).ok())
            .collect()
    }

    /// Deletes these logs of the gateway, as the dashboard's "Delete logs" or
    /// `DELETE …/logs` does; returns how many existed.
    pub fn delete_logs(&self, account_id: &str, gateway_id: &str, ids: &[String]) -> usize {
        write(&self.shared.store)
            .gateway_entry(account_id, gateway_id, now_millis())
            .logs
            .remove(&ids.iter().map(String::as_str).collect())
    }

    /// Sets a log's feedback and score as `PATCH …/logs/{id}` would (someone rating the
    /// answer in their app or the dashboard); `false` when there is no such log.
    pub fn rate_log(
        &self,
        account_id: &str,
        gateway_id: &str,
        log_id: &str,
        feedback: Option<i8>,
        score: Option<f64>,
    ) -> bool {
        let patch = crate::log_record::LogPatch {
            feedback: Some(feedback),
            score: Some(score),
            metadata: None,
        };
        write(&self.shared.store)
            .gateway_entry(account_id, gateway_id, now_millis())
            .logs
            .update(log_id, |log| log.apply_patch(&patch))
    }

    /// Counts `n` requests at `at` in the analytics without storing a log for them — requests
    /// sent with `cf-aig-collect-log: false`, or to a full `STOP_INSERTING` gateway.
    pub fn record_unlogged_requests(
        &self,
        account_id: &str,
        gateway_id: &str,
        n: u64,
        at: OffsetDateTime,
    ) {
        write(&self.shared.store)
            .gateway_entry(account_id, gateway_id, now_millis())
            .logs
            .count_requests(unix_millis(at), n);
    }

    /// Ids of the logs `Faults::delete_on_list` deleted so far.
    pub fn deleted_on_list(&self) -> Vec<String> {
        lock(&self.shared.deleted_on_list).clone()
    }

    /// Deletes the gateway's `n` oldest logs, as Cloudflare's Automatic Log Deletion
    /// (`DELETE_OLDEST`) does when a gateway is full; returns the deleted ids.
    pub fn evict_oldest(&self, account_id: &str, gateway_id: &str, n: usize) -> Vec<String> {
        write(&self.shared.store)
            .gateway_entry(account_id, gateway_id, now_millis())
            .logs
            .evict_oldest(n)
    }

    /// Starts a background task appending about `per_second` logs per second stamped "now"
    /// (visible after [`Faults::visibility_delay`]). Stops when the handle is dropped.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn start_live_traffic(
        &self,
        account_id: &str,
        gateway_id: &str,
        per_second: f64,
    ) -> LiveTraffic {
        self.add_gateway(account_id, gateway_id);
        let stream = self.shared.live_streams.fetch_add(1, Ordering::Relaxed);
        let seed = self.shared.config.seed
            ^ synthetic::stable_hash(&[account_id, gateway_id, &stream.to_string()]);
        live::start(
            Arc::downgrade(&self.shared),
            account_id.to_owned(),
            gateway_id.to_owned(),
            per_second,
            SmallRng::seed_from_u64(seed),
        )
    }

    /// Replaces the active faults.
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.shared.faults).set(faults);
    }

    /// The active faults; `*_next` counters show what is left.
    pub fn faults(&self) -> Faults {
        lock(&self.shared.faults).current()
    }

    pub fn stats(&self) -> Stats {
        let counters = &self.shared.push.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            push_deliveries: read(&counters.deliveries),
            push_attempts: read(&counters.attempts),
            push_retries: read(&counters.retries),
            push_duplicates: read(&counters.duplicates),
            push_failures: read(&counters.failures),
            validation_uploads: read(&counters.validation_uploads),
            ..self.shared.stats.snapshot()
        }
    }

    pub fn reset_stats(&self) {
        self.shared.stats.reset();
    }

    /// Ids of every stored log of the gateway, visible or not, in `(created_at, id)` order.
    /// Empty for an unknown gateway.
    pub fn log_ids(&self, account_id: &str, gateway_id: &str) -> Vec<String> {
        read(&self.shared.store)
            .gateway(account_id, gateway_id)
            .map(|gateway| gateway.logs.ids())
            .unwrap_or_default()
    }
}

/// An emulator serving on a TCP port. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningEmulator {
    pub emulator: Emulator,
    pub addr: SocketAddr,
    server: JoinHandle<()>,
    pusher: Option<JoinHandle<()>>,
}

impl RunningEmulator {
    /// `http://<addr>/client/v4`, the base URL a Cloudflare client is pointed at.
    pub fn base_url(&self) -> String {
        format!("http://{}/client/v4", self.addr)
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(pusher) = &self.pusher {
            pusher.abort();
        }
    }
}
