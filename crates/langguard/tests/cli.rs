//! The `langguard` binary as a user runs it, against the Cloudflare emulator: adding, testing,
//! listing and removing integrations, syncing, reading metrics and traces — and a sync killed
//! with SIGKILL mid-way, then resumed, storing every log exactly once.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use langguard_cf_emulator::{
    Emulator, EmulatorConfig, Faults, RunningEmulator, SeedSpec, TokenSpec,
};
use serde_json::Value;
use time::OffsetDateTime;

const ACCOUNT: &str = "f037e56e89293a057740de681ac9abbe";
const TOKEN: &str = "cli-test-token-1";

async fn emulator(gateway_logs: &[(&str, usize)]) -> RunningEmulator {
    let emulator = Emulator::new(EmulatorConfig::default());
    emulator.add_account(ACCOUNT);
    emulator.add_token(TOKEN, TokenSpec::user(&[ACCOUNT]));
    let now = OffsetDateTime::now_utc();
    for (i, (gateway, n)) in gateway_logs.iter().enumerate() {
        emulator.add_gateway(ACCOUNT, gateway);
        emulator.seed_logs(
            ACCOUNT,
            gateway,
            SeedSpec {
                count: *n,
                from: now - time::Duration::hours(20),
                to: now - time::Duration::minutes(1),
                seed: i as u64 + 1,
            },
        );
    }
    emulator.spawn().await.expect("emulator")
}

fn langguard(data_dir: &Path, emulator: &RunningEmulator) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_langguard"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LANGGUARD_DATA_DIR", data_dir)
        .env("LANGGUARD_CLOUDFLARE_API_BASE", emulator.base_url())
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("langguard runs")
}

fn json(output: &Output) -> Value {
    assert!(
        output.stderr.is_empty() || output.status.success() || !output.stdout.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn add(dir: &Path, emu: &RunningEmulator, name: &str, token: &str) -> Output {
    run(langguard(dir, emu)
        .args([
            "integrations",
            "add",
            "--name",
            name,
            "--account-id",
            ACCOUNT,
            "--json",
        ])
        .env("LANGGUARD_CF_API_TOKEN", token))
}

#[tokio::test(flavor = "multi_thread")]
async fn integration_lifecycle_sync_metrics_and_traces() {
    let emu = emulator(&[("prod-chat", 260), ("support", 40)]).await;
    let dir = tempfile::tempdir().expect("tempdir");

    // A bad token is refused with the product's hint, and nothing is saved.
    let bad = add(dir.path(), &emu, "Production", "wrong-token");
    assert!(!bad.status.success());
    let doc = json(&bad);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["code"], "auth_failed");
    assert!(doc["error"]["hint"]
        .as_str()
        .unwrap_or_default()
        .contains("revoked"));

    // The token can come from stdin too.
    let mut child = langguard(dir.path(), &emu)
        .args([
            "integrations",
            "add",
            "--name",
            "Production",
            "--account-id",
            ACCOUNT,
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{TOKEN}").expect("write token");
    }
    let added = child.wait_with_output().expect("output");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let doc = json(&added);
    assert_eq!(doc["integration"]["api_token_set"], true);
    assert_eq!(doc["integration"]["status"], "pending");
    assert_eq!(doc["gateways"], serde_json::json!(["prod-chat", "support"]));
    assert!(!String::from_utf8_lossy(&added.stdout).contains(TOKEN));

    let tested =
        run(langguard(dir.path(), &emu).args(["integrations", "test", "Production", "--json"]));
    assert!(tested.status.success());
    assert_eq!(json(&tested)["ok"], true);

    let synced = run(langguard(dir.path(), &emu).args(["sync", "--json"]));
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    let doc = json(&synced);
    let run_doc = &doc["runs"][0]["run"];
    assert_eq!(run_doc["status"], "succeeded");
    assert_eq!(run_doc["items_ingested"], 300);
    assert_eq!(run_doc["trigger"], "cli");

    let list = json(&run(langguard(dir.path(), &emu).args([
        "integrations",
        "list",
        "--json",
    ])));
    let item = &list["items"][0];
    assert_eq!(item["status"], "connected");
    assert_eq!(item["interactions_synced"], 300);
    assert!(item["last_sync_at"].is_string());
    assert!(item.get("api_token").is_none());

    let metrics = json(&run(
        langguard(dir.path(), &emu).args(["metrics", "--from", "2d", "--json"])
    ));
    for key in [
        "requests",
        "errors",
        "error_rate",
        "success_rate",
        "cache_hits",
        "cache_hit_rate",
        "rate_limited",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "latency_ms",
    ] {
        assert!(metrics.get(key).is_some(), "metrics lack {key}: {metrics}");
    }
    assert_eq!(metrics["requests"], 300);
    for key in ["avg", "p50", "p90", "p95", "p99"] {
        assert!(metrics["latency_ms"][key].is_number(), "latency_ms.{key}");
    }
    let by_gateway = json(&run(langguard(dir.path(), &emu).args([
        "metrics",
        "--from",
        "2d",
        "--group-by",
        "gateway",
        "--json",
    ])));
    let groups = by_gateway["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["group"], "prod-chat");
    assert_eq!(groups[0]["requests"], 260);

    let traces = json(&run(langguard(dir.path(), &emu).args([
        "traces",
        "--limit",
        "7",
        "--gateway",
        "support",
        "--json",
    ])));
    let items = traces["items"].as_array().expect("items");
    assert_eq!(items.len(), 7);
    for key in [
        "id",
        "integration_id",
        "gateway",
        "log_id",
        "created_at",
        "provider",
        "model",
        "status",
        "status_code",
        "cached",
        "duration_ms",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "cost_source",
        "metadata",
    ] {
        assert!(items[0].get(key).is_some(), "trace item lacks {key}");
    }
    assert_eq!(items[0]["gateway"], "support");
    let cursor = traces["next_cursor"].as_str().expect("a next page");
    let rest = json(&run(langguard(dir.path(), &emu).args([
        "traces",
        "--limit",
        "100",
        "--gateway",
        "support",
        "--cursor",
        cursor,
        "--json",
    ])));
    assert_eq!(rest["items"].as_array().expect("items").len(), 33);
    assert!(rest["next_cursor"].is_null());

    // Human output works too.
    let table = run(langguard(dir.path(), &emu).args(["integrations", "list"]));
    assert!(String::from_utf8_lossy(&table.stdout).contains("Connected"));

    let removed =
        run(langguard(dir.path(), &emu).args(["integrations", "remove", "Production", "--json"]));
    assert!(removed.status.success());
    let metrics = json(&run(
        langguard(dir.path(), &emu).args(["metrics", "--from", "2d", "--json"])
    ));
    assert_eq!(metrics["requests"], 0);

    // The database holds no plaintext token.
    let db = std::fs::read(dir.path().join("langguard.db")).expect("db");
    assert!(!db.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_killed_mid_way_resumes_with_exact_counts() {
    let emu = emulator(&[("gw", 8_000)]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(add(dir.path(), &emu, "cf", TOKEN).status.success());
    // Slow responses so the kill lands mid-sync, after some batches have committed.
    emu.emulator.set_faults(Faults {
        latency: Duration::from_millis(15),
        ..Faults::default()
    });
    emu.emulator.reset_stats();
    let mut child = langguard(dir.path(), &emu)
        .args(["sync", "cf", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    // 5,000 rows (100 pages) make the first transaction; kill after it has committed.
    while emu.emulator.stats().list_logs_calls < 115 {
        assert!(Instant::now() < deadline, "the sync never got going");
        assert!(
            child.try_wait().expect("poll").is_none(),
            "the sync ended before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    emu.emulator.set_faults(Faults::default());
    let resumed = run(langguard(dir.path(), &emu).args(["sync", "cf", "--json"]));
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let doc = json(&resumed);
    let ingested = doc["runs"][0]["run"]["items_ingested"]
        .as_i64()
        .expect("count");
    assert!(
        ingested > 0 && ingested < 8_000,
        "the first sync should have committed part: {ingested}"
    );

    let list = json(&run(langguard(dir.path(), &emu).args([
        "integrations",
        "list",
        "--json",
    ])));
    assert_eq!(list["items"][0]["interactions_synced"], 8_000);
    let metrics = json(&run(
        langguard(dir.path(), &emu).args(["metrics", "--from", "2d", "--json"])
    ));
    assert_eq!(metrics["requests"], 8_000, "rollups count every log once");
    let all =
        json(&run(langguard(dir.path(), &emu).args([
            "traces", "--limit", "1000", "--from", "2d", "--json",
        ])));
    assert_eq!(all["items"].as_array().expect("items").len(), 1_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_exits_non_zero_when_a_sync_fails() {
    let emu = emulator(&[("gw", 10)]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(add(dir.path(), &emu, "cf", TOKEN).status.success());
    emu.emulator.revoke_token(TOKEN);
    let out = run(langguard(dir.path(), &emu).args(["sync"]));
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("failed") && text.contains("What to do"),
        "{text}"
    );
    let missing = run(langguard(dir.path(), &emu).args(["sync", "nope"]));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no integration named"));
    // With --json, a failure is a JSON document on stdout too.
    let missing = run(langguard(dir.path(), &emu).args(["sync", "nope", "--json"]));
    assert!(!missing.status.success());
    let doc = json(&missing);
    assert_eq!(doc["ok"], false);
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("no integration named"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_encryption_key_keeps_every_token_usable() {
    let emu = emulator(&[("gw", 10)]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(add(dir.path(), &emu, "cf", TOKEN).status.success());
    let key_file = dir.path().join("encryption.key");
    let before = std::fs::read(&key_file).expect("key file");
    let rotated = run(langguard(dir.path(), &emu).args(["secrets", "rotate-key"]));
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert_ne!(std::fs::read(&key_file).expect("key file"), before);
    let tested = run(langguard(dir.path(), &emu).args(["integrations", "test", "cf", "--json"]));
    assert_eq!(
        json(&tested)["ok"],
        true,
        "the token opens under the new key"
    );

    // A rotation that stopped before re-sealing anything leaves its key behind: dropped.
    let stray = dir.path().join("encryption.key.next");
    std::fs::write(&stray, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").expect("write");
    let tested = run(langguard(dir.path(), &emu).args(["integrations", "test", "cf", "--json"]));
    assert_eq!(json(&tested)["ok"], true);
    assert!(!stray.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_come_from_a_toml_file_with_flags_and_environment_winning() {
    let emu = emulator(&[("gw", 5)]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("from-file");
    let config = dir.path().join("langguard.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\ncloudflare_api_base = {:?}\n",
            data.display().to_string(),
            emu.base_url()
        ),
    )
    .expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_langguard"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LANGGUARD_CF_API_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .args([
            "--config",
            &config.display().to_string(),
            "integrations",
            "add",
            "--name",
            "cf",
            "--account-id",
            ACCOUNT,
            "--json",
        ]);
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        data.join("langguard.db").exists(),
        "the file's data_dir was used"
    );
    // The environment wins over the file.
    let other = dir.path().join("from-env");
    let out = run(langguard(&other, &emu).args([
        "--config",
        &config.display().to_string(),
        "integrations",
        "list",
        "--json",
    ]));
    assert!(out.status.success());
    assert_eq!(json(&out)["items"].as_array().map(Vec::len), Some(0));
    std::fs::write(&config, "colour = \"blue\"\n").expect("write config");
    let out = run(langguard(&other, &emu).args([
        "--config",
        &config.display().to_string(),
        "integrations",
        "list",
    ]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting `colour`"));
}

#[test]
fn the_demo_imports_serves_and_prints_a_login() {
    let out = Command::new(env!("CARGO_BIN_EXE_langguard"))
        .args([
            "demo",
            "--syncs",
            "2",
            "--sync-every",
            "1",
            "--history",
            "300",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("demo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 300 logs of history per gateway, plus whatever live traffic added meanwhile.
    assert!(text.contains("sync #1: succeeded · 6"), "{text}");
    assert!(text.contains("sync #2: succeeded"), "{text}");
    assert!(
        text.contains("Sign in as admin@langguard.local with password "),
        "{text}"
    );
    assert!(text.contains("/api/v1"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_is_not_rotated_under_a_running_server() {
    let emu = emulator(&[("gw", 5)]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(add(dir.path(), &emu, "cf", TOKEN).status.success());
    let mut server = langguard(dir.path(), &emu)
        .args(["serve", "--no-scheduler"])
        .env("LANGGUARD_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    // Wait for it to say it serves (it holds the data dir's lock by then).
    let stderr = server.stderr.take().expect("stderr");
    let ready = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("is serving"))
    });
    assert!(tokio::time::timeout(Duration::from_secs(30), ready)
        .await
        .expect("in time")
        .expect("read"));
    let refused = run(langguard(dir.path(), &emu).args(["secrets", "rotate-key"]));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stop it first"));
    let second = run(langguard(dir.path(), &emu)
        .args(["serve"])
        .env("LANGGUARD_LISTEN", "127.0.0.1:0"));
    assert!(!second.status.success(), "a second server on one data dir");
    server.kill().expect("kill");
    server.wait().expect("reaped");
    let rotated = run(langguard(dir.path(), &emu).args(["secrets", "rotate-key"]));
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_seed_fills_the_store_through_the_ingest_path() {
    let emu = emulator(&[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let seeded = run(langguard(dir.path(), &emu).args([
        "dev",
        "seed",
        "--interactions",
        "3000",
        "--days",
        "2",
    ]));
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let metrics = json(&run(
        langguard(dir.path(), &emu).args(["metrics", "--from", "3d", "--json"])
    ));
    assert_eq!(metrics["requests"], 3000);
    let by_gateway = json(&run(langguard(dir.path(), &emu).args([
        "metrics",
        "--from",
        "3d",
        "--group-by",
        "gateway",
        "--json",
    ])));
    assert_eq!(by_gateway["groups"].as_array().map(Vec::len), Some(3));
    let list = json(&run(langguard(dir.path(), &emu).args([
        "integrations",
        "list",
        "--json",
    ])));
    assert_eq!(list["items"][0]["name"], "Synthetic data");
    assert_eq!(list["items"][0]["enabled"], false);
    assert_eq!(list["items"][0]["interactions_synced"], 3000);

    // Retention: prune what is older than a day; the rollups keep the totals.
    let pruned = run(langguard(dir.path(), &emu).args(["prune", "--older-than-days", "1"]));
    assert!(
        pruned.status.success(),
        "{}",
        String::from_utf8_lossy(&pruned.stderr)
    );
    let said = String::from_utf8_lossy(&pruned.stdout).to_string();
    let deleted: u64 = said
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!((1_000..3_000).contains(&deleted), "{said}");
    let mut left = 0u64;
    let mut cursor: Option<String> = None;
    loop {
        let mut args = vec!["traces", "--from", "3d", "--limit", "1000", "--json"];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let page = json(&run(langguard(dir.path(), &emu).args(&args)));
        left += page["items"].as_array().map(Vec::len).unwrap_or(0) as u64;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(left + deleted, 3000, "{left} left, {deleted} deleted");
    let metrics = json(&run(
        langguard(dir.path(), &emu).args(["metrics", "--from", "3d", "--json"])
    ));
    assert_eq!(metrics["requests"], 3000, "rollups keep the history");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_restores_into_a_new_data_directory() {
    let emu = emulator(&[("gw", 120)]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let added = add(dir.path(), &emu, "Production", TOKEN);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let synced = run(langguard(dir.path(), &emu).args(["sync", "--json"]));
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );

    let backups = tempfile::tempdir().expect("tempdir");
    let file = backups.path().join("lg.db");
    let backed = run(langguard(dir.path(), &emu)
        .args(["backup", "--to"])
        .arg(&file));
    assert!(
        backed.status.success(),
        "{}",
        String::from_utf8_lossy(&backed.stderr)
    );
    assert!(
        backups.path().join("lg.db.key").exists(),
        "the key goes with it"
    );
    let again = run(langguard(dir.path(), &emu)
        .args(["backup", "--to"])
        .arg(&file));
    assert!(
        !again.status.success(),
        "an existing file is never overwritten"
    );

    // Restore: the file and its key into a fresh data directory.
    let restored = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&file, restored.path().join("langguard.db")).expect("copy db");
    std::fs::copy(
        backups.path().join("lg.db.key"),
        restored.path().join("encryption.key"),
    )
    .expect("copy key");
    let before = json(&run(
        langguard(dir.path(), &emu).args(["metrics", "--from", "30d", "--json"])
    ));
    let after = json(&run(
        langguard(restored.path(), &emu).args(["metrics", "--from", "30d", "--json"])
    ));
    assert_eq!(after["requests"], before["requests"]);
    assert_eq!(after["requests"], 120);
    // The stored token opens with the restored key: the integration still syncs.
    let synced = run(langguard(restored.path(), &emu).args(["sync", "--json"]));
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_is_private_and_an_exposed_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let emu = emulator(&[("gw", 1)]).await;
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("data");
    let out = run(langguard(&dir, &emu).args(["integrations", "list"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data directory");
    assert_eq!(mode("langguard.db"), 0o600, "the database");
    assert_eq!(mode("encryption.key"), 0o600, "the key file");

    // A database made readable by others is made private again at the next start.
    std::fs::set_permissions(
        dir.join("langguard.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    // A key file others can read is refused, with what to do.
    std::fs::set_permissions(
        dir.join("encryption.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let out = run(langguard(&dir, &emu).args(["integrations", "list"]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(stderr.contains("encryption.key"), "{stderr}");
    std::fs::set_permissions(
        dir.join("encryption.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let out = run(langguard(&dir, &emu).args(["integrations", "list"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode("langguard.db"), 0o600, "the database again");
}

/// `integrations add` runs the same operation as the API's: a malformed account ID gets the
/// API's error, a new integration is audited (marked as done from the command line), and so is
/// its removal.
#[tokio::test(flavor = "multi_thread")]
async fn integrations_add_checks_and_audits_like_the_api() {
    use langguard_store::prelude::*;

    let emu = emulator(&[("prod-chat", 5)]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = run(langguard(dir.path(), &emu)
        .args([
            "integrations",
            "add",
            "--name",
            "Production",
            "--account-id",
            "not/an-id",
            "--json",
        ])
        .env("LANGGUARD_CF_API_TOKEN", TOKEN));
    assert!(!bad.status.success());
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("account_id must be the Cloudflare Account ID"),
        "{said}"
    );

    let added = add(dir.path(), &emu, "Production", TOKEN);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let removed = run(langguard(dir.path(), &emu).args(["integrations", "remove", "Production"]));
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );

    let db = dir.path().join("langguard.db");
    let store = langguard_store_sqlite::SqliteStore::open(&db.to_string_lossy())
        .await
        .expect("open the store");
    let entries = store.list_audit(100, None).await.expect("audit log");
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"integration.created"), "{actions:?}");
    assert!(actions.contains(&"integration.deleted"), "{actions:?}");
    for entry in &entries {
        assert_eq!(entry.details["via"], "cli", "{entry:?}");
        assert_eq!(entry.user_id, None);
    }
    let created = entries
        .iter()
        .find(|e| e.action == "integration.created")
        .expect("created");
    assert_eq!(created.details["account_id"], ACCOUNT);
    assert!(
        !created.details.to_string().contains(TOKEN),
        "no token in the audit log"
    );
}
