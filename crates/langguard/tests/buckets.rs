//! Logpush from a bucket, killed mid-file: a `langguard serve` process importing a 60,000-line
//! Logpush file from a real S3 server (Moto) is killed with SIGKILL after some of the file's
//! chunks are committed; a new process imports the bucket again and every record ends up stored
//! exactly once, the file counted once.
//!
//! Needs `moto_server` (`pip install "moto[server]"`); skipped with a message without it,
//! except in CI.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{call, serve, Instance};
use langguard_cf_emulator::{Emulator, EmulatorConfig, MotoServer, RunningEmulator, TokenSpec};
use serde_json::json;

const ACCOUNT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const TOKEN: &str = "bucket-test-token";
const ADMIN: (&str, &str) = ("admin@example.com", "admin-password-123");
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const LINES: usize = 60_000;
const GATEWAY: &str = "bucket-gw";

async fn start(data_dir: &Path, emulator: &RunningEmulator) -> Instance {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_langguard"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LANGGUARD_DATA_DIR", data_dir)
        .env("LANGGUARD_ENCRYPTION_KEY", KEY)
        .env("LANGGUARD_CLOUDFLARE_API_BASE", emulator.base_url())
        .env("LANGGUARD_ADMIN_EMAIL", ADMIN.0)
        .env("LANGGUARD_ADMIN_PASSWORD", ADMIN.1);
    serve(cmd).await
}

async fn login(http: &reqwest::Client, base: &str) -> String {
    let (status, body) = call(
        http,
        base,
        reqwest::Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"email": ADMIN.0, "password": ADMIN.1})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

/// Gateway requests of [`GATEWAY`] this process has committed (counted per stored chunk).
async fn committed(http: &reqwest::Client, base: &str) -> u64 {
    let Ok(response) = http.get(format!("{base}/metrics")).send().await else {
        return 0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.starts_with("langguard_gateway_requests_total{")
                && l.contains(&format!("gateway=\"{GATEWAY}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// One Logpush file: plain lines (no encrypted fields), each a distinct request.
fn logpush_file(now_ms: i64) -> Vec<u8> {
    let mut ndjson = String::with_capacity(LINES * 220);
    for n in 0..LINES {
        let at_ns = (now_ms - 3_600_000 + n as i64) as i128 * 1_000_000;
        ndjson.push_str(
            &json!({"Gateway": GATEWAY, "Timestamp": at_ns, "Model": "gpt-4o-mini",
                "Provider": "openai", "StatusCode": 200, "Cached": false, "RateLimited": false,
                "Endpoint": "chat/completions",
                "Metrics": {"cost": 0.0001, "durationMs": 800, "tokensIn": n % 500, "tokensOut": 20}})
            .to_string(),
        );
        ndjson.push('\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(ndjson.as_bytes()).expect("gzip");
    gz.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_import_killed_mid_file_stores_every_record_once() {
    let moto = match MotoServer::start().await {
        Ok(moto) => moto,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: {e:#}");
            return;
        }
        Err(e) => panic!("{e:#}"),
    };
    moto.create_bucket("ai-logs").await.expect("bucket");
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    moto.put_object(
        "ai-logs",
        "logs/20261201/20261201T000000Z_20261201T010000Z_00000001.log.gz",
        logpush_file(now_ms),
    )
    .await
    .expect("file");

    let emulator = Emulator::new(EmulatorConfig::default());
    emulator.add_account(ACCOUNT);
    emulator.add_token(TOKEN, TokenSpec::user(&[ACCOUNT]));
    let emulator = emulator.spawn().await.expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::new();

    let first = start(dir.path(), &emulator).await;
    let token = login(&http, &first.base).await;
    let (status, body) = call(
        &http,
        &first.base,
        reqwest::Method::POST,
        "/api/v1/integrations",
        Some(&token),
        Some(json!({"type": "cloudflare", "name": "Bucket", "account_id": ACCOUNT, "api_token": TOKEN})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let (status, bucket) = call(
        &http,
        &first.base,
        reqwest::Method::POST,
        &format!("/api/v1/integrations/{id}/buckets"),
        Some(&token),
        Some(
            json!({"endpoint": moto.endpoint, "bucket": "ai-logs", "prefix": "logs",
            "access_key_id": "test", "secret_access_key": "moto-secret"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{bucket}");
    let import = format!(
        "/api/v1/integrations/{id}/buckets/{}/import",
        bucket["id"].as_i64().expect("bucket id")
    );

    // Import, and kill the process once some of the file's chunks are committed.
    let pressing = {
        let (http, base, token, import) = (
            http.clone(),
            first.base.clone(),
            token.clone(),
            import.clone(),
        );
        tokio::spawn(async move {
            http.post(format!("{base}{import}"))
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    while seen == 0 {
        assert!(
            Instant::now() < deadline,
            "the import never committed a chunk"
        );
        seen = committed(&http, &first.base).await;
    }
    let mut first = first;
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("reaped");
    assert!(
        (seen as usize) < LINES,
        "the import finished before the kill ({seen} records); nothing was tested"
    );
    assert!(
        pressing.await.expect("task").is_err(),
        "the killed import must not have answered"
    );
    drop(first);

    // A new process imports the bucket again: the file is read from the start, the records
    // already committed are recognised, the rest stored.
    let second = start(dir.path(), &emulator).await;
    let token = login(&http, &second.base).await;
    let (status, report) = call(
        &http,
        &second.base,
        reqwest::Method::POST,
        &import,
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["files_imported"], 1, "{report}");
    let stored = report["records_stored"].as_u64().expect("stored");
    let duplicates = report["duplicates"].as_u64().expect("duplicates");
    assert_eq!(stored + duplicates, LINES as u64, "{report}");
    assert!(
        duplicates >= seen,
        "what was committed before the kill: {report}"
    );

    let (status, metrics) = call(
        &http,
        &second.base,
        reqwest::Method::GET,
        &format!("/api/v1/metrics?gateway={GATEWAY}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{metrics}");
    assert_eq!(metrics["requests"], LINES, "{metrics}");
    let (_, buckets) = call(
        &http,
        &second.base,
        reqwest::Method::GET,
        &format!("/api/v1/integrations/{id}/buckets"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(buckets[0]["files_imported"], 1, "{buckets}");
    assert_eq!(buckets[0]["records_imported"], LINES, "{buckets}");
    // And once more: nothing new.
    let (_, again) = call(
        &http,
        &second.base,
        reqwest::Method::POST,
        &import,
        Some(&token),
        None,
    )
    .await;
    assert_eq!(again["files_new"], 0, "{again}");
}
