//! Several LangGuard instances on one PostgreSQL database, as `langguard serve` processes:
//! a session made on one is honoured by the other; both press Sync Now at once and exactly one
//! syncs; that one is killed with SIGKILL mid-sync; the other takes over once its lease
//! expires and finishes — every log stored exactly once.
//!
//! Needs LANGGUARD_TEST_DATABASE_URL (see README); skipped with a message without it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{call, serve, Instance};
use langguard_cf_emulator::{
    Emulator, EmulatorConfig, Faults, RunningEmulator, SeedSpec, TokenSpec,
};
use langguard_store::prelude::*;
use langguard_store::{Scope, SyncRunStatus};
use langguard_store_postgres::testing::TempDatabase;
use langguard_store_postgres::PgStore;
use serde_json::json;
use time::OffsetDateTime;

const ACCOUNT: &str = "f037e56e89293a057740de681ac9abbe";
const TOKEN: &str = "instances-test-token";
const ADMIN: (&str, &str) = ("admin@example.com", "admin-password-123");
/// Every instance must seal with the same key (a deployment sets it in the environment).
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const LOGS: usize = 8_000;

fn langguard(data_dir: &Path, database_url: &str, emulator: &RunningEmulator) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_langguard"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LANGGUARD_DATA_DIR", data_dir)
        .env("LANGGUARD_DATABASE_URL", database_url)
        .env("LANGGUARD_ENCRYPTION_KEY", KEY)
        .env("LANGGUARD_CLOUDFLARE_API_BASE", emulator.base_url())
        // A dead instance's claim lapses after 3 s instead of 30.
        .env("LANGGUARD_LEASE_TTL_SECONDS", "3")
        .env("LANGGUARD_ADMIN_EMAIL", ADMIN.0)
        .env("LANGGUARD_ADMIN_PASSWORD", ADMIN.1)
        .stdin(Stdio::null());
    cmd
}

async fn start(data_dir: &Path, database_url: &str, emulator: &RunningEmulator) -> Instance {
    serve(langguard(data_dir, database_url, emulator)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_share_sessions_and_syncs_and_survive_a_sigkill() {
    let Some(db) = TempDatabase::create("the two-instance test").await else {
        return;
    };
    let emulator = Emulator::new(EmulatorConfig::default());
    emulator.add_account(ACCOUNT);
    emulator.add_token(TOKEN, TokenSpec::user(&[ACCOUNT]));
    emulator.add_gateway(ACCOUNT, "gw");
    let now = OffsetDateTime::now_utc();
    emulator.seed_logs(
        ACCOUNT,
        "gw",
        SeedSpec {
            count: LOGS,
            from: now - time::Duration::hours(20),
            to: now - time::Duration::minutes(1),
            seed: 7,
        },
    );
    let emu = emulator.spawn().await.expect("emulator");
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    // Both start at once on an empty database: migrations and the first admin happen once.
    let (a, b) = tokio::join!(
        start(dir_a.path(), db.url(), &emu),
        start(dir_b.path(), db.url(), &emu)
    );
    let http = reqwest::Client::new();
    use reqwest::Method;

    // A session made on A works on B: sessions live in the database.
    let (status, body) = call(
        &http,
        &a.base,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"email": ADMIN.0, "password": ADMIN.1})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_owned();
    let (status, body) = call(
        &http,
        &b.base,
        Method::POST,
        "/api/v1/integrations",
        Some(&token),
        Some(json!({"type": "cloudflare", "name": "Production", "account_id": ACCOUNT, "api_token": TOKEN})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");

    // Slow pages, so the kill lands mid-sync after some batches have committed.
    emu.emulator.set_faults(Faults {
        latency: Duration::from_millis(15),
        ..Faults::default()
    });
    emu.emulator.reset_stats();
    let sync_path = format!("/api/v1/integrations/{id}/sync");
    let ((status_a, on_a), (status_b, on_b)) = tokio::join!(
        call(&http, &a.base, Method::POST, &sync_path, Some(&token), None),
        call(&http, &b.base, Method::POST, &sync_path, Some(&token), None),
    );
    assert_eq!(
        (status_a.as_u16(), status_b.as_u16()),
        (202, 202),
        "{on_a} {on_b}"
    );
    let started: Vec<bool> = [&on_a, &on_b]
        .iter()
        .map(|r| r["already_running"] == false)
        .collect();
    assert_eq!(
        started.iter().filter(|s| **s).count(),
        1,
        "exactly one instance syncs: {on_a} {on_b}"
    );
    let (mut syncing, survivor, first_run) = if started[0] {
        (a, b, on_a["run_id"].as_i64().expect("run"))
    } else {
        (b, a, on_b["run_id"].as_i64().expect("run"))
    };
    // The other was told which run is going.
    let told = if started[0] { &on_b } else { &on_a };
    assert_eq!(told["run_id"].as_i64(), Some(first_run));

    // 5,000 rows (100 pages) make the first transaction; kill after it has committed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while emu.emulator.stats().list_logs_calls < 115 {
        assert!(Instant::now() < deadline, "the sync never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    syncing.child.kill().expect("SIGKILL");
    syncing.child.wait().expect("reaped");
    emu.emulator.set_faults(Faults::default());

    // The survivor is told the sync is still running until the dead instance's lease
    // expires, then takes over.
    let deadline = Instant::now() + Duration::from_secs(30);
    let second_run = loop {
        let (status, body) = call(
            &http,
            &survivor.base,
            Method::POST,
            &sync_path,
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, 202, "{body}");
        if body["already_running"] == false {
            break body["run_id"].as_i64().expect("run");
        }
        assert_eq!(body["run_id"].as_i64(), Some(first_run));
        assert!(Instant::now() < deadline, "the survivor never took over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let finished = loop {
        let (_, run) = call(
            &http,
            &survivor.base,
            Method::GET,
            &format!("/api/v1/sync-runs/{second_run}"),
            Some(&token),
            None,
        )
        .await;
        if run["status"] != "running" {
            break run;
        }
        assert!(Instant::now() < deadline, "the second sync never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished["status"], "succeeded", "{finished}");

    // The policy worker carries on whichever instance had it: every interaction evaluated.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, status) = call(
            &http,
            &survivor.base,
            Method::GET,
            "/api/v1/policies/status",
            Some(&token),
            None,
        )
        .await;
        if status["lag"] == 0 && status["latest_interaction_id"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the policy worker never caught up: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every log exactly once: rows, the integration's count and the rollups agree.
    let store = PgStore::open(db.url()).await.expect("store");
    assert_eq!(
        store
            .count_interactions(&Scope::default())
            .await
            .expect("count"),
        LOGS as u64
    );
    let integration = store.get_integration(id).await.expect("integration");
    assert_eq!(integration.interactions_synced, LOGS as i64);
    let metrics = store.metrics(&Scope::default()).await.expect("metrics");
    assert_eq!(
        metrics.requests, LOGS as i64,
        "rollups count every log once"
    );
    let first = store.get_sync_run(first_run).await.expect("run");
    assert_eq!(first.status, SyncRunStatus::Failed);
    assert!(
        first
            .error
            .as_deref()
            .is_some_and(|e| e.contains("stopped")),
        "{first:?}"
    );
    let ingested_by_survivor = store
        .list_sync_runs(id, 10)
        .await
        .expect("runs")
        .iter()
        .find(|r| r.id == second_run)
        .map(|r| r.counts.items_ingested)
        .expect("second run");
    assert!(
        ingested_by_survivor > 0 && ingested_by_survivor < LOGS as i64,
        "the killed sync committed part, the survivor the rest: {ingested_by_survivor}"
    );
    store.close().await;
}
