//! The emulator as a gateway that pushes, over real TCP: gateway settings and Logpush jobs
//! through the API (with their permissions and validation), then deliveries to a receiver that
//! fails at first — retried, duplicated on purpose, and carried on for an account on the new
//! log system whose Logs API lists nothing.

use std::io::Read as _;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use langguard_cf_emulator::{
    Emulator, EmulatorConfig, LogSystem, PushFaults, RunningEmulator, TokenSpec,
};
use serde_json::{json, Value};
use time::OffsetDateTime;

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const EDITOR: &str = "editor-token";
const READER: &str = "reader-token";

/// Requests the test receiver got, and how many it should refuse first.
#[derive(Default)]
struct Received {
    requests: Vec<(HeaderMap, Bytes)>,
    refuse_next: u32,
}

async fn receiver(state: Arc<Mutex<Received>>) -> String {
    let app = Router::new().route(
        "/{*path}",
        post(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                let mut got = state.lock().expect("lock");
                if got.refuse_next > 0 {
                    got.refuse_next -= 1;
                    return (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")]);
                }
                got.requests.push((headers, body));
                (StatusCode::OK, [("retry-after", "0")])
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn emulator() -> RunningEmulator {
    let emulator = Emulator::new(EmulatorConfig {
        push_interval: None,
        allow_http_push: true,
        push_retry_delay: std::time::Duration::from_millis(1),
        push_retry_max_delay: std::time::Duration::from_millis(5),
        ..EmulatorConfig::default()
    });
    emulator.add_account(ACCOUNT);
    emulator.add_token(EDITOR, TokenSpec::editor(&[ACCOUNT]));
    emulator.add_token(READER, TokenSpec::user(&[ACCOUNT]));
    emulator.add_gateway(ACCOUNT, "prod-chat");
    emulator.spawn().await.expect("emulator")
}

async fn api(
    running: &RunningEmulator,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", running.base_url()))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("response");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn settings(extra: Value) -> Value {
    let mut body = json!({"cache_invalidate_on_update": false, "cache_ttl": 300,
        "collect_logs": true, "rate_limiting_interval": 60, "rate_limiting_limit": 600});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("gzip");
    text
}

#[tokio::test]
async fn settings_and_jobs_are_checked_and_pushes_retried_duplicated_and_delivered() {
    let running = emulator().await;
    let pair = langguard_push::crypto::generate_key_pair().expect("a key pair");
    let decryptor = langguard_push::crypto::FieldDecryptor::from_pem(&pair.private_pem)
        .expect("the private key");
    let got = Arc::new(Mutex::new(Received::default()));
    let sink = receiver(got.clone()).await;
    let gateway = format!("/accounts/{ACCOUNT}/ai-gateway/gateways/prod-chat");
    let jobs = format!("/accounts/{ACCOUNT}/logpush/jobs");

    // A read token may not change a gateway or touch Logpush; a PUT without Cloudflare's
    // required fields is refused.
    let (status, body) = api(
        &running,
        reqwest::Method::PUT,
        &gateway,
        READER,
        Some(settings(json!({}))),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_u64()),
        (403, Some(10000))
    );
    let (status, _) = api(&running, reqwest::Method::GET, &jobs, READER, None).await;
    assert_eq!(status, 403);
    let (status, body) = api(
        &running,
        reqwest::Method::PUT,
        &gateway,
        EDITOR,
        Some(json!({"logpush": true})),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_u64()),
        (400, Some(7001))
    );

    let (status, body) = api(
        &running,
        reqwest::Method::PUT,
        &gateway,
        EDITOR,
        Some(settings(
            json!({"logpush": true, "logpush_public_key": pair.public_pem,
            "otel": [{"url": format!("{sink}/v1/traces"), "headers": {"Authorization": "Bearer k"},
                "content_type": "json"}]}),
        )),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["otel"][0]["content_type"], "json");
    assert_eq!(body["result"]["logpush"], true);

    // A destination that refuses the validation upload refuses the job.
    got.lock().expect("lock").refuse_next = 1;
    let job = json!({"dataset": "ai_gateway_events",
        "destination_conf": format!("{sink}/logpush?header_Authorization=Bearer%20ingest")});
    let (status, body) = api(
        &running,
        reqwest::Method::POST,
        &jobs,
        EDITOR,
        Some(job.clone()),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_u64()),
        (400, Some(1002)),
        "{body}"
    );
    let (status, body) = api(&running, reqwest::Method::POST, &jobs, EDITOR, Some(job)).await;
    assert_eq!(status, 200, "{body}");
    let job_id = body["result"]["id"].as_u64().expect("job id");
    {
        let got = got.lock().expect("lock");
        let (headers, body) = &got.requests[0];
        assert_eq!(headers["authorization"], "Bearer ingest");
        assert_eq!(gunzip(body), r#"{"content":"tests"}"#);
    }
    let (_, listed) = api(&running, reqwest::Method::GET, &jobs, EDITOR, None).await;
    assert_eq!(listed["result"][0]["id"].as_u64(), Some(job_id));

    // The account moves to the new log system: the Logs API lists nothing, pushes carry all.
    running
        .emulator
        .set_log_system(ACCOUNT, LogSystem::WorkersObservability);
    running
        .emulator
        .set_push_faults(PushFaults { duplicate_every: 2 });
    got.lock().expect("lock").requests.clear();
    got.lock().expect("lock").refuse_next = 2;
    running
        .emulator
        .append_logs(ACCOUNT, "prod-chat", 7, OffsetDateTime::now_utc());
    assert_eq!(
        running.emulator.flush_pushes().await,
        2,
        "one OTLP request, one file"
    );
    let stats = running.emulator.stats();
    assert_eq!(
        (
            stats.push_retries,
            stats.push_duplicates,
            stats.push_failures
        ),
        (2, 1, 0)
    );
    let got = std::mem::take(&mut got.lock().expect("lock").requests);
    assert_eq!(got.len(), 3, "two deliveries, one of them twice");
    let files: Vec<String> = got
        .iter()
        .filter(|(h, _)| h.get("content-encoding").is_some())
        .map(|(_, b)| gunzip(b))
        .collect();
    assert!(!files.is_empty());
    for file in &files {
        let lines: Vec<Value> = file
            .lines()
            .map(|l| serde_json::from_str(l).expect("NDJSON"))
            .collect();
        assert_eq!(lines.len(), 7);
        for line in &lines {
            assert_eq!(line["Gateway"], "prod-chat");
            assert!(line["Timestamp"].is_i64(), "unixnano: {line}");
            // Encrypted for the gateway's key: the private half opens it.
            if let Some(body) = line.get("RequestBody") {
                assert_eq!(body["type"], "encrypted");
                let plain = decryptor.open(body).expect("opens");
                assert!(serde_json::from_slice::<Value>(&plain).is_ok());
            }
        }
    }
    let spans: Vec<Value> = got
        .iter()
        .filter(|(h, _)| h["content-type"] == "application/json")
        .map(|(_, b)| serde_json::from_slice(b).expect("OTLP/JSON"))
        .collect();
    assert!(spans
        .iter()
        .all(|s| s["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .map(Vec::len)
            == Some(7)));
    let (status, logs) = api(
        &running,
        reqwest::Method::GET,
        &format!("{gateway}/logs"),
        READER,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(logs["result_info"]["total_count"], 0);
    assert_eq!(
        running.emulator.pushed_records().len(),
        14,
        "7 by each path"
    );
}
