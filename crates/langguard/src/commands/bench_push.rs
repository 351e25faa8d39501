//! `langguard bench push`: the push receivers end to end over loopback — OTLP protobuf
//! batches into `/v1/traces`, and Logpush gzip NDJSON with encrypted fields into
//! `/api/v1/ingest/logpush` — against the real server on a fresh SQLite file. The policy
//! worker, scheduler and webhooks are off: this measures taking data in.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use langguard_ops::keys::{self, NewKey};
use langguard_push::crypto::{FieldDecryptor, FieldSealer};
use langguard_server::{AppState, ServerConfig};
use langguard_store::{ApiKeyScope, NewIntegration, Role, Scope};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::app::App;
use crate::commands::bench::{memory_mib, rate};
use crate::format;

/// Requests in flight at once (an exporter pool; Cloudflare pushes from many machines).
const SENDERS: usize = 4;

pub async fn run(spans: usize, batch: usize, records: usize) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let app = App::open_at(dir.path(), None, "http://127.0.0.1:9").await?;
    let owner = app
        .store
        .create_user(
            langguard_ops::users::new_user(
                "bench@example.com",
                "bench-password-123".into(),
                Role::Admin,
            )
            .await?,
        )
        .await?;
    let integration = app
        .store
        .create_integration(NewIntegration {
            name: "bench".into(),
            account_id: "bench".into(),
            api_token: langguard_store::SealFor::new(|_| vec![0]),
            enabled: true,
            sync_interval_minutes: 15,
            lookback_days: None,
            trailing_window_minutes: langguard_store::DEFAULT_TRAILING_WINDOW_MINUTES,
        })
        .await?;
    let state = AppState::new(
        app.store.clone(),
        app.sealer.clone(),
        app.client_config.clone(),
        Arc::new(app.engine()),
        ServerConfig {
            scheduler: false,
            policy_worker: false,
            webhooks: None,
            push_max_in_flight: SENDERS * 2,
            ..ServerConfig::default()
        },
    );
    let (_, key) = keys::add(
        &state.ops,
        &owner,
        NewKey {
            name: "bench",
            scope: ApiKeyScope::Ingest,
            expires_in_days: 30,
            integration_id: Some(integration.id),
        },
    )
    .await?;
    let integration = langguard_ops::ingest::ensure_push_key(&state.ops, integration).await?;
    let public_pem = integration
        .push_public_key
        .clone()
        .context("no public key")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(langguard_server::serve(state, listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();

    // OTLP: batches built before the clock starts (an exporter's work, not ours).
    let batches: Vec<Vec<u8>> = (0..spans.div_ceil(batch))
        .map(|b| otlp_batch(b, batch.min(spans - b * batch)))
        .collect();
    let bytes: usize = batches.iter().map(Vec::len).sum();
    println!(
        "bench push: OTLP, {} spans in protobuf batches of {batch}, {SENDERS} senders, SQLite in {}",
        format::count(spans as i64),
        dir.path().display()
    );
    let (_, rss_before) = memory_mib().unwrap_or_default();
    let started = Instant::now();
    send_all(
        &http,
        &format!("{base}/v1/traces"),
        &key,
        batches,
        "application/x-protobuf",
    )
    .await?;
    let elapsed = started.elapsed();
    let (peak, rss) = memory_mib().unwrap_or_default();
    let scope = Scope {
        integration_id: Some(integration.id),
        ..Scope::default()
    };
    let stored = app.store.count_interactions(&scope).await?;
    ensure!(stored as usize == spans, "stored {stored} of {spans} spans");
    println!(
        "  {:>10} spans in {:.2} s: {:>10} spans/s ({:.0} MB of protobuf, built before the clock started); RSS {rss_before:.0} MiB before, {rss:.0} MiB after (peak {peak:.0} MiB, the batches included)",
        format::count(spans as i64),
        elapsed.as_secs_f64(),
        rate(spans, elapsed),
        bytes as f64 / 1e6
    );

    // Logpush: files of 1,000 lines, every line with its own AES key (as Cloudflare makes
    // them), so every log costs one RSA unwrap.
    println!(
        "bench push: Logpush, {} records in gzip NDJSON files of 1,000, encrypted Metadata/RequestBody/ResponseBody",
        format::count(records as i64)
    );
    let lines: Vec<String> = (0..records).map(|n| logpush_line(&public_pem, n)).collect();
    let files: Vec<Vec<u8>> = lines
        .chunks(1_000)
        .map(|c| gzip(c.join("\n").as_bytes()))
        .collect();
    let started = Instant::now();
    send_all(
        &http,
        &format!("{base}/api/v1/ingest/logpush"),
        &key,
        files.clone(),
        "application/octet-stream",
    )
    .await?;
    let elapsed = started.elapsed();
    let stored_now = app.store.count_interactions(&scope).await? as usize;
    ensure!(
        stored_now == spans + records,
        "stored {} of {records} records",
        stored_now - spans
    );
    println!(
        "  {:>10} records in {:.2} s: {:>10} records/s",
        format::count(records as i64),
        elapsed.as_secs_f64(),
        rate(records, elapsed)
    );
    let started = Instant::now();
    send_all(
        &http,
        &format!("{base}/api/v1/ingest/logpush"),
        &key,
        files,
        "application/octet-stream",
    )
    .await?;
    let again = started.elapsed();
    println!(
        "  the same files again (at-least-once delivery): {:.2} s, {:>10} records/s — unwrapped keys cached, nothing stored twice",
        again.as_secs_f64(),
        rate(records, again)
    );
    ensure!(
        app.store.count_interactions(&scope).await? as usize == spans + records,
        "duplicates stored"
    );

    // Where a Logpush record's time goes, on one core.
    let private_pem = app.sealer.open(
        integration
            .sealed_push_private_key
            .as_deref()
            .context("no private key")?,
        langguard_secrets::Binding::PushPrivateKey(integration.id),
    )?;
    let sample: Vec<serde_json::Value> = lines
        .iter()
        .take(200)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).map(|v| v["ResponseBody"].clone()))
        .collect::<Result<_, _>>()?;
    let cold = FieldDecryptor::from_pem(&private_pem)?;
    let started = Instant::now();
    for field in &sample {
        cold.open(field)?;
    }
    let unwrap = started.elapsed() / sample.len() as u32;
    let started = Instant::now();
    for field in &sample {
        cold.open(field)?;
    }
    let cached = started.elapsed() / sample.len() as u32;
    println!(
        "  per record on one core: RSA-OAEP unwrap + AES-GCM {:.0} µs; with the key cached (AES-GCM only) {:.1} µs",
        micros(unwrap),
        micros(cached)
    );
    let _ = stop.send(());
    server.await??;
    Ok(ExitCode::SUCCESS)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Posts every body, `SENDERS` at a time, retrying what the server asks to retry.
async fn send_all(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    bodies: Vec<Vec<u8>>,
    content_type: &'static str,
) -> anyhow::Result<()> {
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (http, url, key, queue) = (http.clone(), url.to_owned(), key.to_owned(), queue.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let Some(body) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                    return anyhow::Ok(());
                };
                loop {
                    let resp = http
                        .post(&url)
                        .bearer_auth(&key)
                        .header("content-type", content_type)
                        .body(body.clone())
                        .send()
                        .await?;
                    match resp.status().as_u16() {
                        200 => break,
                        429 | 503 => tokio::time::sleep(Duration::from_millis(20)).await,
                        other => anyhow::bail!("{url} answered {other}: {}", resp.text().await?),
                    }
                }
            }
        }));
    }
    for s in senders {
        s.await??;
    }
    Ok(())
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// Batch `b` of `n` GenAI spans as Cloudflare exports them, over the last day.
fn otlp_batch(b: usize, n: usize) -> Vec<u8> {
    let now_ns = crate::app::now_ms() as u64 * 1_000_000;
    let spans = (0..n)
        .map(|i| {
            let id = (b * 1_000_000 + i) as u64;
            let start = now_ns - (id % 86_400_000) * 1_000_000;
            let mut trace_id = vec![0u8; 16];
            trace_id[..8].copy_from_slice(&id.to_be_bytes());
            trace_id[15] = 1;
            Span {
                trace_id,
                span_id: (id + 1).to_be_bytes().to_vec(),
                name: "chat".into(),
                start_time_unix_nano: start,
                end_time_unix_nano: start + 800_000_000,
                attributes: vec![
                    kv(
                        "gen_ai.request.model",
                        any_value::Value::StringValue(
                            ["gpt-4o-mini", "claude-3-5-haiku", "llama-3.1-8b"][i % 3].into(),
                        ),
                    ),
                    kv(
                        "gen_ai.model.provider",
                        any_value::Value::StringValue(
                            ["openai", "anthropic", "workers-ai"][i % 3].into(),
                        ),
                    ),
                    kv(
                        "gen_ai.usage.input_tokens",
                        any_value::Value::IntValue(100 + (i % 50) as i64),
                    ),
                    kv(
                        "gen_ai.usage.output_tokens",
                        any_value::Value::IntValue(20 + (i % 7) as i64),
                    ),
                    kv("gen_ai.usage.cost", any_value::Value::DoubleValue(0.0003)),
                    kv(
                        "team",
                        any_value::Value::StringValue(["search", "support"][i % 2].into()),
                    ),
                ],
                ..Span::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

fn logpush_line(public_pem: &str, n: usize) -> String {
    let sealer = match FieldSealer::new(public_pem) {
        Ok(s) => s,
        Err(e) => return format!("{{\"error\": \"{e}\"}}"),
    };
    let ts = (crate::app::now_ms() - (n as i64 % 86_400_000)) as i128 * 1_000_000
        + n as i128 % 1_000_000;
    serde_json::json!({
        "Cached": false, "Endpoint": "chat/completions", "Gateway": "edge",
        "Metadata": sealer.seal(format!(r#"{{"user":"u{}"}}"#, n % 100).as_bytes()),
        "Metrics": {"cost": 0.0004, "durationMs": 300 + n % 500},
        "Model": "gpt-4o-mini", "RequestedModel": "gpt-4o-mini", "Provider": "openai",
        "RateLimited": false,
        "RequestBody": sealer.seal(br#"{"messages":[{"role":"user","content":"hello there"}]}"#),
        "ResponseBody": sealer.seal(br#"{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":3}}"#),
        "RoutingDecisionID": "", "RoutingReason": "", "StatusCode": 200,
        "Timestamp": ts as i64,
    })
    .to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}
