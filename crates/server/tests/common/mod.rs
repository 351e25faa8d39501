//! The test harness shared by the API and browser tests: the real server on a random port, a
//! fresh database, the Cloudflare emulator with seeded gateways, and an admin.
#![allow(dead_code)] // each test file uses its own part of it

use std::sync::Arc;
use std::time::Duration;

use langguard_cf_emulator::{Emulator, EmulatorConfig, RunningEmulator, SeedSpec, TokenSpec};
use langguard_cloudflare::{ClientConfig, RateLimitPolicy, RetryPolicy};
use langguard_ops::policies::install_builtins as install_builtin_policies;
use langguard_secrets::Sealer;
use langguard_server::{bootstrap_admin, serve, AppState, ServerConfig};
pub use langguard_store::Role;
use langguard_store::{CostSource, NewInteraction, Store};
use langguard_store_postgres::testing::TempDatabase;
use langguard_store_postgres::PgStore;
use langguard_store_sqlite::SqliteStore;
use langguard_sync::{SyncEngine, SyncSettings};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// Every test named runs on both backends: the embedded SQLite database and PostgreSQL (when
/// LANGGUARD_TEST_DATABASE_URL names a server; skipped with a message otherwise).
#[allow(unused_macros)] // the browser tests run on SQLite only
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await
                }
            )*
        }
    };
}

/// This test binary is the policy sandbox too: the server starts it again with
/// `LANGGUARD_POLICY_SANDBOX=1`, and this serves the sandbox before the test harness starts.
#[ctor::ctor(unsafe)]
fn policy_sandbox() {
    langguard_policy::serve_if_child();
}

pub const ACCOUNT: &str = "f037e56e89293a057740de681ac9abbe";
pub const CF_TOKEN: &str = "cf-secret-token-Zq81xLw";
pub const ADMIN: (&str, &str) = ("admin@example.com", "admin-password-123");

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub emulator: RunningEmulator,
    pub store: Arc<dyn Store>,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database of a test on that backend (dropped after the test).
    pub database: Option<TempDatabase>,
    /// Every response body seen, to check none carries the Cloudflare token.
    pub seen: std::sync::Mutex<Vec<String>>,
    pub _stop: tokio::sync::oneshot::Sender<()>,
}

/// Everything the server logs (at debug level) in this test binary, to check that no secret
/// ever reaches a log line.
pub fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<std::sync::Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(Default::default)
}

pub struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        captured_logs().lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(|| LogSink)
        .try_init();
}

/// Which store a test's server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What most tests run with: no scheduler (tests press Sync Now), a quick policy worker.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        scheduler: false,
        alert_evaluator: false,
        policy_idle_wait: Duration::from_millis(20),
        ..ServerConfig::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config()).await
}

pub async fn spawn_app_with(config: ServerConfig) -> TestApp {
    spawn_app_on(Backend::Sqlite, config)
        .await
        .expect("SQLite is always there")
}

/// What a push test changes about the world the server starts in.
#[derive(Default)]
pub struct PushWorld {
    /// The emulator's settings (pushes flushed only when the test says, over loopback HTTP).
    pub emulator: Option<EmulatorConfig>,
    /// The Cloudflare token may edit gateways and Logpush jobs ("Set up push").
    pub editor_token: bool,
    /// `LANGGUARD_PUBLIC_URL` is the test server's own address.
    pub public_url: bool,
}

/// The server on `backend`; `None` when that backend isn't configured here (PostgreSQL
/// without LANGGUARD_TEST_DATABASE_URL), and the test is skipped.
pub async fn spawn_app_on(backend: Backend, config: ServerConfig) -> Option<TestApp> {
    spawn_app_in(backend, config, PushWorld::default()).await
}

/// An emulator configuration for push tests: deliveries only when the test flushes, to the
/// test server over plain HTTP, retried quickly.
pub fn pushing_emulator() -> EmulatorConfig {
    EmulatorConfig {
        push_interval: None,
        allow_http_push: true,
        push_retry_delay: Duration::from_millis(2),
        push_retry_max_delay: Duration::from_millis(20),
        // Pushers keep trying for a long time; here about ten seconds of 20 ms waits.
        push_max_attempts: 500,
        ..EmulatorConfig::default()
    }
}

/// [`spawn_app_on`] in a world set up for pushes.
pub async fn spawn_app_in(
    backend: Backend,
    mut config: ServerConfig,
    world: PushWorld,
) -> Option<TestApp> {
    capture_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, database): (Arc<dyn Store>, _) = match backend {
        Backend::Sqlite => (
            Arc::new(
                SqliteStore::open(&dir.path().join("lg.db").to_string_lossy())
                    .await
                    .expect("store"),
            ),
            None,
        ),
        Backend::Postgres => {
            let database = TempDatabase::create("an API test").await?;
            let store = PgStore::open(database.url()).await.expect("store");
            (Arc::new(store), Some(database))
        }
    };
    let emulator = Emulator::new(world.emulator.unwrap_or_default());
    emulator.add_account(ACCOUNT);
    emulator.add_token(
        CF_TOKEN,
        if world.editor_token {
            TokenSpec::editor(&[ACCOUNT])
        } else {
            TokenSpec::user(&[ACCOUNT])
        },
    );
    let now = OffsetDateTime::now_utc();
    for (i, gateway) in ["prod-chat", "support"].iter().enumerate() {
        emulator.add_gateway(ACCOUNT, gateway);
        emulator.seed_logs(
            ACCOUNT,
            gateway,
            SeedSpec {
                count: 150 + i * 50,
                from: now - time::Duration::hours(6),
                to: now - time::Duration::minutes(1),
                seed: i as u64,
            },
        );
    }
    let emulator = emulator.spawn().await.expect("emulator");
    install_builtin_policies(store.as_ref())
        .await
        .expect("built-in policies");
    assert!(
        bootstrap_admin(store.as_ref(), Some(ADMIN.0), Some(ADMIN.1))
            .await
            .expect("admin")
    );
    let client_config = ClientConfig {
        api_base: emulator.base_url(),
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        rate_limit: RateLimitPolicy {
            quota: 10_000,
            window: Duration::from_secs(300),
        },
    };
    let sealer = Sealer::from_key(&[9; 32]);
    let engine = Arc::new(SyncEngine::new(
        store.clone(),
        sealer.clone(),
        client_config.clone(),
        SyncSettings::default(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    if world.public_url {
        config.public_url = Some(url::Url::parse(&base).expect("own URL"));
    }
    let state = AppState::new(store.clone(), sealer, client_config, engine, config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(state, listener, async move {
        let _ = stopped.await;
    }));
    Some(TestApp {
        base,
        http: reqwest::Client::new(),
        emulator,
        store,
        dir,
        database,
        seen: Default::default(),
        _stop: stop,
    })
}

impl TestApp {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("response");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        self.seen.lock().expect("lock").push(text.clone());
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"))
        };
        (status, value)
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Signs in as someone with `role`: the bootstrap admin, or a member or viewer created
    /// (once) by the admin as `member@example.com` / `viewer@example.com`.
    pub async fn login_as(&self, role: Role) -> String {
        let admin = self.login(ADMIN.0, ADMIN.1).await;
        match role {
            Role::Admin => admin,
            other => {
                let name = other.as_str();
                let email = format!("{name}@example.com");
                // Created once: a failed sign-in to find out would be audited and throttled.
                let users = self.get_ok(&admin, "/api/v1/users").await;
                let exists = users["items"]
                    .as_array()
                    .is_some_and(|all| all.iter().any(|u| u["email"] == email.as_str()));
                if exists {
                    return self.login(&email, &format!("{name}-password-123")).await;
                }
                self.create_user(&admin, &email, name).await
            }
        }
    }

    /// `GET path` as `token`, which must answer 200; its JSON body.
    pub async fn get_ok(&self, token: &str, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    pub async fn create_user(&self, admin: &str, email: &str, role: &str) -> String {
        let password = format!("{role}-password-123");
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/users",
                Some(admin),
                Some(json!({"email": email, "password": password, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["role"], role);
        self.login(email, &password).await
    }

    /// A new API key of `scope` (`read`, `write`, `admin`), made by `admin`.
    pub async fn api_key(&self, admin: &str, name: &str, scope: &str) -> String {
        let (status, key) = self
            .call(
                Method::POST,
                "/api/v1/api-keys",
                Some(admin),
                Some(json!({"name": name, "scope": scope, "expires_in_days": 30})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        key["key"].as_str().expect("key").to_owned()
    }

    /// Stores `batch` as logs of `integration`'s gateway `gw`, as an import would (rollups
    /// included), for tests that give traffic a time of their own.
    pub async fn seed(&self, integration: i64, gateway: &str, batch: Vec<NewInteraction>) {
        self.store
            .ingest_batch(integration, gateway, batch, None)
            .await
            .expect("ingest");
    }

    /// Saves the emulator's account as the integration `Production`; its id.
    pub async fn create_integration(&self, admin: &str) -> i64 {
        let (status, body) = self
            .call(Method::POST, "/api/v1/integrations", Some(admin), Some(json!({"type": "cloudflare", "name": "Production", "account_id": ACCOUNT, "api_token": CF_TOKEN})))
            .await;
        if status != StatusCode::CREATED {
            let logs = String::from_utf8_lossy(&captured_logs().lock().expect("logs")).into_owned();
            for line in logs
                .lines()
                .filter(|l| l.contains("ERROR") || l.contains("WARN"))
            {
                eprintln!("LOG {line}");
            }
        }
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_i64().expect("id")
    }

    /// Presses Sync Now and waits for the run to finish.
    pub async fn sync_now(&self, token: &str, integration: i64) -> Value {
        let (status, run) = self
            .call(
                Method::POST,
                &format!("/api/v1/integrations/{integration}/sync"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{run}");
        self.wait_for_run(token, run["run_id"].as_i64().expect("run id"))
            .await
    }

    pub async fn wait_for_run(&self, token: &str, run_id: i64) -> Value {
        for _ in 0..200 {
            let (status, run) = self
                .call(
                    Method::GET,
                    &format!("/api/v1/sync-runs/{run_id}"),
                    Some(token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            if run["status"] == "succeeded" || run["status"] == "failed" {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("run {run_id} did not finish");
    }
}

pub fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// Posts each body to `path` and checks it is refused with 400 and its error code.
pub async fn assert_each_refused(
    app: &TestApp,
    path: &str,
    token: &str,
    cases: Vec<(Value, &str)>,
) {
    for (body, code) in cases {
        let (status, got) = app
            .call(Method::POST, path, Some(token), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {got}");
        assert_eq!(got["error"]["code"], code, "{body} → {got}");
    }
}

/// Every item of a paged listing (`path` with its query), following `next_cursor`.
pub async fn all_pages(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_owned(),
        };
        let (status, page) = app.call(Method::GET, &page_path, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

/// Every violation matching `query`, following the pages.
pub async fn all_violations(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    all_pages(
        app,
        token,
        &format!("/api/v1/violations?limit=1000&{query}"),
    )
    .await
}

/// Waits until the policy worker has evaluated every stored interaction.
pub async fn policies_caught_up(app: &TestApp, token: &str) {
    for _ in 0..500 {
        let (_, status) = app
            .call(Method::GET, "/api/v1/policies/status", Some(token), None)
            .await;
        if status["lag"] == 0 && status["latest_interaction_id"].as_i64() > Some(0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the policy worker did not catch up");
}

/// One successful OpenAI chat call of `model` at `at_ms` costing `usd`; tests change what they
/// need (`success: false`, …) with struct update syntax.
pub fn gateway_call(
    log_id: impl Into<String>,
    model: &str,
    at_ms: i64,
    usd: f64,
) -> NewInteraction {
    NewInteraction {
        log_id: log_id.into(),
        created_at_ms: at_ms,
        provider: "openai".into(),
        model: model.into(),
        path: Some("chat/completions".into()),
        status_code: Some(200),
        success: true,
        cached: false,
        duration_ms: 300,
        tokens_in: Some(10),
        tokens_out: Some(5),
        cost_usd: Some(usd),
        cost_source: Some(CostSource::Gateway),
        metadata: None,
        requested_model: None,
        details: Default::default(),
    }
}

/// What the notification tests start from: the server without a dispatcher (what is queued
/// stays in the delivery log to be read), links made absolute, an integration, and a webhook
/// subscribed to `events`. `(app, admin token, integration id, webhook id)`.
pub async fn spawn_with_outbox(
    backend: Backend,
    events: &[&str],
) -> Option<(TestApp, String, i64, i64)> {
    let app = spawn_app_on(
        backend,
        ServerConfig {
            webhooks: None,
            public_url: Some("https://langguard.example.com".parse().expect("url")),
            ..test_config()
        },
    )
    .await?;
    let admin = app.login_as(Role::Admin).await;
    let integration = app.create_integration(&admin).await;
    let (status, hook) = app
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(&admin),
            Some(json!({"url": "https://hooks.example.com/langguard", "events": events})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook = hook["id"].as_i64().expect("id");
    Some((app, admin, integration, hook))
}
