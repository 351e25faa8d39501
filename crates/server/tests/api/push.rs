//! Push ingest as pushers use it: OTLP exporters on `/v1/traces`, Logpush on
//! `/api/v1/ingest/logpush`, each with an ingest key of one integration.

use std::io::Write;

use langguard_push::crypto::FieldSealer;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use reqwest::header::HeaderMap;

use super::*;

on_both_backends!(
    otlp_spans_in_json_and_protobuf_are_stored_once,
    ingest_keys_push_for_their_integration_only,
    logpush_files_are_decrypted_deduplicated_and_validated,
);

/// A new ingest key for `integration`.
pub(crate) async fn ingest_key(app: &TestApp, admin: &str, integration: i64) -> String {
    let (status, key) = app
        .call(
            Method::POST,
            "/api/v1/api-keys",
            Some(admin),
            Some(
                json!({"name": "push", "scope": "ingest", "expires_in_days": 30,
                "integration_id": integration}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    assert_eq!(key["integration_id"], integration);
    key["key"].as_str().expect("key").to_owned()
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn text(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

/// A GenAI span as Cloudflare exports it, `n` naming its ids and minute.
pub(crate) fn genai_span(n: u32, start_ms: i64) -> Span {
    let mut trace_id = vec![7u8; 16];
    trace_id[..4].copy_from_slice(&n.to_be_bytes());
    let mut span_id = vec![9u8; 8];
    span_id[..4].copy_from_slice(&n.to_be_bytes());
    Span {
        trace_id,
        span_id,
        name: "chat".into(),
        start_time_unix_nano: start_ms as u64 * 1_000_000,
        end_time_unix_nano: (start_ms as u64 + 250) * 1_000_000,
        attributes: vec![
            kv("gen_ai.request.model", text("gpt-4o-mini")),
            kv("gen_ai.model.provider", text("openai")),
            kv("gen_ai.usage.input_tokens", any_value::Value::IntValue(100)),
            kv("gen_ai.usage.output_tokens", any_value::Value::IntValue(20)),
            kv("gen_ai.usage.cost", any_value::Value::DoubleValue(0.002)),
            kv("team", text("search")),
        ],
        ..Span::default()
    }
}

pub(crate) fn export(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource::default()),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// Posts a body to a push path; status, headers and body.
pub(crate) async fn push(
    app: &TestApp,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = app.http.post(format!("{}{path}", app.base)).body(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("body").to_vec())
}

const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");

async fn otlp_spans_in_json_and_protobuf_are_stored_once(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let integration = app.create_integration(&admin).await;
    let key = ingest_key(&app, &admin, integration).await;
    let now = langguard_clock::now_ms();

    // Protobuf, gzip, the gateway in the header; one broken span and one app span among them.
    let mut broken = genai_span(99, now);
    broken.span_id.clear();
    let plain = Span {
        attributes: vec![kv("http.method", text("GET"))],
        ..genai_span(98, now)
    };
    let mut spans: Vec<Span> = (0..10).map(|n| genai_span(n, now - 60_000)).collect();
    spans.push(broken);
    spans.push(plain);
    // A span from next week (a broken clock) is refused, not filed in the future.
    spans.push(genai_span(97, now + 7 * 86_400_000));
    let body = gzip(&export(spans).encode_to_vec());
    let headers = [
        PROTOBUF,
        ("content-encoding", "gzip"),
        ("x-langguard-gateway", "prod-app"),
    ];
    let (status, h, answer) = push(&app, "/v1/traces", Some(&key), &headers, body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["content-type"], "application/x-protobuf");
    let answer = ExportTraceServiceResponse::decode(answer.as_slice()).expect("OTLP answer");
    let partial = answer.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial.error_message.contains("trace_id"),
        "{}",
        partial.error_message
    );

    // The exporter retries the same batch: nothing is stored twice.
    let (status, _, answer) = push(&app, "/v1/traces", Some(&key), &headers, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ExportTraceServiceResponse::decode(answer.as_slice())
            .expect("answer")
            .partial_success
            .map(|p| p.rejected_spans),
        Some(2)
    );
    // A span naming a gateway that is no gateway name is refused; the others still go in.
    let mut odd = genai_span(96, now);
    odd.attributes
        .push(kv("langguard.gateway", text("no spaces or / allowed")));
    let (status, _, answer) = push(
        &app,
        "/v1/traces",
        Some(&key),
        &[PROTOBUF],
        export(vec![odd]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let partial = ExportTraceServiceResponse::decode(answer.as_slice())
        .expect("answer")
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("gateway name"),
        "{}",
        partial.error_message
    );

    // JSON (hex ids, string int64s), the gateway as a query parameter.
    let json_body = serde_json::to_vec(&export(
        (10..15).map(|n| genai_span(n, now - 30_000)).collect(),
    ))
    .expect("JSON");
    let (status, h, answer) = push(
        &app,
        "/v1/traces?gateway=json-app",
        Some(&key),
        &[JSON],
        json_body,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(h["content-type"], "application/json");
    let answer: Value = serde_json::from_slice(&answer).expect("JSON answer");
    assert!(
        answer.get("partialSuccess").is_none_or(Value::is_null),
        "{answer}"
    );

    let traces = all_traces(&app, &admin, "").await;
    assert_eq!(
        traces.len(),
        15,
        "ten protobuf spans and five JSON ones, once each"
    );
    let prod: Vec<&Value> = traces
        .iter()
        .filter(|t| t["gateway"] == "prod-app")
        .collect();
    assert_eq!(prod.len(), 10);
    let t = prod[0];
    assert_eq!(t["integration_id"], integration);
    assert_eq!(t["model"], "gpt-4o-mini");
    assert_eq!(t["provider"], "openai");
    assert_eq!(
        (t["tokens_in"].as_i64(), t["tokens_out"].as_i64()),
        (Some(100), Some(20))
    );
    assert_eq!(t["cost_source"], "gateway");
    assert_eq!(t["duration_ms"], 250);
    assert_eq!(t["metadata"]["team"], "search");
    assert!(t["log_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("otlp:")));

    let metrics = app
        .get_ok(&admin, &format!("/api/v1/metrics?integration_id={integration}&gateway=prod-app&from=2020-01-01T00:00:00Z"))
        .await;
    assert_eq!(metrics["requests"], 10);
    assert!((metrics["cost_usd"].as_f64().expect("cost") - 0.02).abs() < 1e-9);

    // The gateways exist, pushed by OpenTelemetry, in the push setup.
    let setup = app
        .get_ok(&admin, &format!("/api/v1/integrations/{integration}/push"))
        .await;
    let gateways = setup["gateways"].as_array().expect("gateways");
    assert!(gateways.iter().any(|g| g["gateway"] == "prod-app"
        && g["source"] == "otlp"
        && g["source_label"] == "OpenTelemetry"));
    assert!(setup["public_key"]
        .as_str()
        .is_some_and(|k| k.starts_with("-----BEGIN PUBLIC KEY-----")));
    assert!(setup["otlp"]["url"]
        .as_str()
        .is_some_and(|u| u.ends_with("/v1/traces")));
    assert!(setup["logpush"]["destination_conf"]
        .as_str()
        .is_some_and(|d| d.contains("/api/v1/ingest/logpush?header_Authorization=Bearer%20")));
    assert_eq!(setup["ingest_keys"].as_array().map(Vec::len), Some(1));

    // An admin moves a gateway to Logpush: OpenTelemetry's spans from now on are left out
    // (reported, not silently dropped); a viewer may not.
    let viewer = app.login_as(Role::Viewer).await;
    let path = format!("/api/v1/integrations/{integration}/gateways/prod-app/source");
    let (status, refused) = app
        .call(
            Method::PUT,
            &path,
            Some(&viewer),
            Some(json!({"source": "logpush"})),
        )
        .await;
    assert_error(status, &refused, StatusCode::FORBIDDEN, "forbidden");
    let (status, refused) = app
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(json!({"source": "carrier-pigeon"})),
        )
        .await;
    assert_error(status, &refused, StatusCode::BAD_REQUEST, "invalid_source");
    let (status, moved) = app
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(json!({"source": "logpush"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        (moved["source"].as_str(), moved["previous_source"].as_str()),
        (Some("logpush"), Some("otlp"))
    );
    assert!(moved["source_since"].is_string());
    let (status, _, answer) = push(
        &app,
        "/v1/traces",
        Some(&key),
        &[PROTOBUF, ("x-langguard-gateway", "prod-app")],
        export(vec![genai_span(500, langguard_clock::now_ms() + 1_000)]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let partial = ExportTraceServiceResponse::decode(answer.as_slice())
        .expect("answer")
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("another source"),
        "{}",
        partial.error_message
    );

    // Undecodable bodies, wrong media types and unknown encodings are refused, and say so.
    let (status, _, answer) = push(
        &app,
        "/v1/traces",
        Some(&key),
        &[PROTOBUF],
        b"\xff\xff\xff".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let failure = langguard_push::otlp::Status::decode(answer.as_slice()).expect("Status");
    assert_eq!(failure.code, 3);
    let (status, _, _) = push(
        &app,
        "/v1/traces",
        Some(&key),
        &[("content-type", "text/plain")],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _, _) = push(
        &app,
        "/v1/traces",
        Some(&key),
        &[JSON, ("content-encoding", "br")],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = push(
        &app,
        "/v1/traces",
        Some(&key),
        &[JSON, ("x-langguard-gateway", "no spaces allowed")],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A gzip bomb: small on the wire, too large inflated.
    let bomb = gzip(&vec![
        b' ';
        langguard_ops::ingest::MAX_OTLP_INFLATED_BYTES + 1
    ]);
    let (status, _, _) = push(
        &app,
        "/v1/traces",
        Some(&key),
        &[JSON, ("content-encoding", "gzip")],
        bomb,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        all_traces(&app, &admin, "").await.len(),
        15,
        "nothing stored by bad pushes"
    );

    let prometheus = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    // Counters are process-wide (other tests push too): at least this test's 15.
    let stored: f64 = prometheus
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"langguard_ingest_records_total{source="otlp",outcome="stored"} "#)
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no stored count: {prometheus}"));
    assert!(stored >= 15.0, "{stored}");
}

async fn ingest_keys_push_for_their_integration_only(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let a = app.create_integration(&admin).await;
    let (status, b) = app
        .call(Method::POST, "/api/v1/integrations", Some(&admin), Some(json!({"type": "cloudflare", "name": "Staging", "account_id": ACCOUNT, "api_token": CF_TOKEN})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let b = b["id"].as_i64().expect("id");
    let key_a = ingest_key(&app, &admin, a).await;
    let body = || export(vec![genai_span(1, langguard_clock::now_ms())]).encode_to_vec();

    // No key, a bad key, a session, a read key: refused.
    let (status, _, _) = push(&app, "/v1/traces", None, &[PROTOBUF], body()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = push(
        &app,
        "/v1/traces",
        Some("lgr_not-a-key"),
        &[PROTOBUF],
        body(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = push(&app, "/v1/traces", Some(&admin), &[PROTOBUF], body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let read = app.api_key(&admin, "reader", "read").await;
    let (status, _, answer) = push(&app, "/v1/traces", Some(&read), &[PROTOBUF], body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let failure = langguard_push::otlp::Status::decode(answer.as_slice()).expect("Status");
    assert_eq!(failure.code, 7);
    assert!(failure.message.contains("ingest"), "{}", failure.message);
    let (status, _, _) = push(
        &app,
        "/api/v1/ingest/logpush",
        Some(&read),
        &[],
        gzip(b"{}"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A's key cannot write to B, however it asks.
    let (status, _, _) = push(
        &app,
        "/v1/traces",
        Some(&key_a),
        &[PROTOBUF, ("x-langguard-integration", &b.to_string())],
        body(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = push(
        &app,
        &format!("/api/v1/ingest/logpush?integration_id={b}"),
        Some(&key_a),
        &[],
        gzip(br#"{"content":"tests"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = push(
        &app,
        "/v1/traces",
        Some(&key_a),
        &[PROTOBUF, ("x-langguard-integration", &a.to_string())],
        body(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let traces = all_traces(&app, &admin, "").await;
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0]["integration_id"], a);

    // An ingest key reads nothing.
    let (status, refused) = app
        .call(Method::GET, "/api/v1/traces", Some(&key_a), None)
        .await;
    assert_error(status, &refused, StatusCode::FORBIDDEN, "forbidden");

    // Ingest keys name their integration; other keys don't.
    for (payload, code, want) in [
        (
            json!({"name": "x", "scope": "ingest", "expires_in_days": 30}),
            "integration_required",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "scope": "read", "expires_in_days": 30, "integration_id": a}),
            "integration_not_allowed",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "scope": "ingest", "expires_in_days": 30, "integration_id": 999_999}),
            "not_found",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (status, refused) = app
            .call(
                Method::POST,
                "/api/v1/api-keys",
                Some(&admin),
                Some(payload),
            )
            .await;
        assert_error(status, &refused, want, code);
    }

    // A key whose maker is no longer an admin stops working.
    let (status, other_admin) = app
        .call(Method::POST, "/api/v1/users", Some(&admin), Some(json!({"email": "ops@example.com", "password": "ops-password-123", "role": "admin"})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let ops_admin = app.login("ops@example.com", "ops-password-123").await;
    let demoted_key = ingest_key(&app, &ops_admin, a).await;
    let (status, _, _) = push(&app, "/v1/traces", Some(&demoted_key), &[PROTOBUF], body()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{}", other_admin["id"]),
            Some(&admin),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = push(&app, "/v1/traces", Some(&demoted_key), &[PROTOBUF], body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A disabled integration takes no pushes; a deleted one's keys stop working.
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/integrations/{a}"),
            Some(&admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = push(&app, "/v1/traces", Some(&key_a), &[PROTOBUF], body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/integrations/{a}"),
            Some(&admin),
            None,
        )
        .await;
    assert!(status.is_success());
    let (status, _, _) = push(&app, "/v1/traces", Some(&key_a), &[PROTOBUF], body()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// One `ai_gateway_events` line as Logpush writes it, its encrypted fields sealed for
/// `public_pem`.
pub(crate) fn logpush_line(public_pem: &str, n: u64, timestamp: Value) -> String {
    let sealer = FieldSealer::new(public_pem).expect("sealer");
    json!({
        "Cached": false, "Endpoint": "chat/completions", "Gateway": "edge",
        "Metadata": sealer.seal(format!(r#"{{"user":"u{n}","team":"search"}}"#).as_bytes()),
        "Metrics": {"cost": 0.001, "durationMs": 300 + n},
        "Model": "gpt-4o-mini", "RequestedModel": "cloudflare/auto", "Provider": "openai",
        "RateLimited": false,
        "RequestBody": sealer.seal(br#"{"messages":[{"role":"user","content":"hello"}]}"#),
        "ResponseBody": sealer.seal(br#"{"usage":{"prompt_tokens":11,"completion_tokens":7}}"#),
        "RoutingDecisionID": "", "RoutingReason": "", "StatusCode": 200,
        "Timestamp": timestamp,
    })
    .to_string()
}

async fn logpush_files_are_decrypted_deduplicated_and_validated(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let integration = app.create_integration(&admin).await;
    let key = ingest_key(&app, &admin, integration).await;
    let setup = app
        .get_ok(&admin, &format!("/api/v1/integrations/{integration}/push"))
        .await;
    let public = setup["public_key"].as_str().expect("public key").to_owned();
    // The same key on a second look.
    let again = app
        .get_ok(&admin, &format!("/api/v1/integrations/{integration}/push"))
        .await;
    assert_eq!(again["public_key"], public.as_str());

    // The destination check when the job is created: 200, nothing stored.
    let (status, _, answer) = push(
        &app,
        "/api/v1/ingest/logpush",
        Some(&key),
        &[("content-encoding", "gzip")],
        gzip(br#"{"content":"tests"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).expect("JSON");
    assert_eq!(answer["validation"], true);
    assert!(all_traces(&app, &admin, "").await.is_empty());

    // A file in every timestamp format, with a corrupt line among them.
    let now_s = langguard_clock::now_ms() / 1000 - 60;
    let rfc3339 = langguard_clock::format_ms(now_s * 1000 - 5_000);
    let lines = [
        logpush_line(
            &public,
            1,
            json!((now_s * 1_000_000_000) as i128 as i64 + 123),
        ),
        logpush_line(&public, 2, json!(now_s - 1)),
        "{\"Gateway\": \"edge\", \"Timestamp\": \"not a time\"}".to_owned(),
        "this is not JSON".to_owned(),
        logpush_line(&public, 3, json!(rfc3339)),
    ];
    let file = gzip(lines.join("\n").as_bytes());
    // Logpush sets the key as a header through `header_Authorization=`; gzip sniffed.
    let (status, _, answer) = push(
        &app,
        "/api/v1/ingest/logpush",
        Some(&key),
        &[],
        file.clone(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let answer: Value = serde_json::from_slice(&answer).expect("JSON");
    assert_eq!(
        (answer["stored"].as_u64(), answer["rejected"].as_u64()),
        (Some(3), Some(2)),
        "{answer}"
    );
    assert_eq!(answer["undecryptable_fields"], 0);
    assert!(
        answer["errors"][0]
            .as_str()
            .is_some_and(|e| e.starts_with("line 3:")),
        "{answer}"
    );

    // The whole file again (at-least-once delivery): stored once.
    let (status, _, answer) = push(&app, "/api/v1/ingest/logpush", Some(&key), &[], file).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).expect("JSON");
    assert_eq!(
        (answer["stored"].as_u64(), answer["duplicates"].as_u64()),
        (Some(0), Some(3))
    );

    let traces = all_traces(&app, &admin, "").await;
    assert_eq!(traces.len(), 3);
    let times: Vec<&str> = traces
        .iter()
        .filter_map(|t| t["created_at"].as_str())
        .collect();
    assert!(times.contains(&rfc3339.as_str()), "{times:?}");
    let t = &traces[0];
    assert_eq!(t["gateway"], "edge");
    assert_eq!(t["model"], "gpt-4o-mini");
    assert_eq!(t["requested_model"], "cloudflare/auto");
    assert_eq!(
        (t["tokens_in"].as_i64(), t["tokens_out"].as_i64()),
        (Some(11), Some(7)),
        "tokens from the decrypted response's usage"
    );
    assert_eq!(t["metadata"]["team"], "search", "metadata decrypted");
    assert!(t["log_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("logpush:")));

    // A field sealed for another key is left out and counted; the log is kept.
    let other = langguard_push::crypto::generate_key_pair().expect("pair");
    let foreign = logpush_line(&other.public_pem, 9, json!(now_s * 1_000_000_000 + 999));
    let (status, _, answer) = push(
        &app,
        "/api/v1/ingest/logpush",
        Some(&key),
        &[],
        gzip(foreign.as_bytes()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).expect("JSON");
    assert_eq!(
        (
            answer["stored"].as_u64(),
            answer["undecryptable_fields"].as_u64()
        ),
        (Some(1), Some(3)),
        "{answer}"
    );
    assert!(!answer.to_string().contains("PRIVATE KEY"));
}

/// Backpressure: with the writer stuck (another session holds the interactions table) and
/// every push slot taken, the next push is told to come back (429 + Retry-After) instead of
/// queueing, and the one waiting is stored once the writer frees up. On PostgreSQL, where a
/// table lock stalls the writer and nothing else.
#[tokio::test]
async fn a_push_beyond_the_writer_slots_is_told_to_retry() {
    let config = ServerConfig {
        push_max_in_flight: 1,
        ..test_config()
    };
    let Some(app) = spawn_app_on(Backend::Postgres, config).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let integration = app.create_integration(&admin).await;
    let key = ingest_key(&app, &admin, integration).await;
    let url = app
        .database
        .as_ref()
        .expect("a PostgreSQL test")
        .url()
        .to_owned();
    let (mut blocker, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let lock = blocker.transaction().await.expect("transaction");
    lock.batch_execute("LOCK TABLE interactions IN EXCLUSIVE MODE")
        .await
        .expect("lock");

    let body = export(vec![genai_span(1, langguard_clock::now_ms())]).encode_to_vec();
    let first = {
        let (http, url, key, body) = (
            app.http.clone(),
            format!("{}/v1/traces", app.base),
            key.clone(),
            body.clone(),
        );
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
                .expect("response")
                .status()
        })
    };
    // Until the first push holds the one slot (it waits for the writer).
    let mut taken = false;
    for _ in 0..1_000 {
        let text = app
            .http
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if text.lines().any(|l| l == "langguard_ingest_in_flight 1") {
            taken = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(taken, "the first push never started");
    let (status, headers, _) = push(&app, "/v1/traces", Some(&key), &[PROTOBUF], body).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");

    lock.rollback().await.expect("release");
    assert_eq!(first.await.expect("first push"), StatusCode::OK);
    assert_eq!(all_traces(&app, &admin, "").await.len(), 1);
}

/// The OpenTelemetry Python SDK's own OTLP/HTTP exporter (protobuf, gzip) pushes GenAI spans
/// the way an instrumented app does; each becomes an interaction, its app span is skipped.
#[tokio::test]
async fn the_opentelemetry_sdk_exporter_pushes_genai_spans() {
    let app = spawn_app_with(test_config()).await;
    let admin = app.login_as(Role::Admin).await;
    let integration = app.create_integration(&admin).await;
    let key = ingest_key(&app, &admin, integration).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/push/otlp_exporter.py");
    let out = tokio::process::Command::new("python3")
        .args([script, &format!("{}/v1/traces", app.base), &key, "5"])
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "the exporter failed (pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let traces = all_traces(&app, &admin, "gateway=python-app").await;
    assert_eq!(
        traces.len(),
        5,
        "five GenAI spans; the request span is not one"
    );
    let t = &traces[0];
    assert_eq!(t["provider"], "openai");
    assert_eq!(t["model"], "gpt-4o-2024-08-06");
    assert_eq!(t["requested_model"], "gpt-4o");
    assert_eq!(t["source"], "otlp");
    assert_eq!(t["tokens_out"], 9);
    assert!(t["metadata"]["user.id"]
        .as_str()
        .is_some_and(|u| u.starts_with("user-")));
    assert_eq!(
        t["cost_source"], "estimated",
        "priced from the table like a pulled log"
    );
}
