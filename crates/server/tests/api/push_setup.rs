//! "Set up push" against the emulator's Cloudflare API, and the emulator then pushing as a
//! gateway does: OTLP spans and encrypted Logpush files, with duplicates and retries.

use langguard_cf_emulator::{EmulatorConfig, LogSystem, PushFaults, SeedSpec, TokenSpec};
use time::OffsetDateTime;

use super::*;

on_both_backends!(
    set_up_push_configures_cloudflare_and_refuses_what_it_cannot,
    ten_minutes_of_pushed_traffic_arrive_exactly_once,
);

fn push_world() -> PushWorld {
    PushWorld {
        emulator: Some(pushing_emulator()),
        editor_token: true,
        public_url: true,
    }
}

async fn set_up(app: &TestApp, admin: &str, integration: i64, body: Value) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        &format!("/api/v1/integrations/{integration}/push/setup"),
        Some(admin),
        Some(body),
    )
    .await
}

/// (created_at ms, provider, model, status code, tokens in, tokens out), sorted.
type Fingerprint = (i64, String, String, i64, Option<i64>, Option<i64>);

fn stored_fingerprints(traces: &[Value]) -> Vec<Fingerprint> {
    let mut out: Vec<Fingerprint> = traces
        .iter()
        .map(|t| {
            (
                langguard_clock::parse_ms(t["created_at"].as_str().expect("created_at"))
                    .expect("a time"),
                t["provider"].as_str().expect("provider").to_owned(),
                t["model"].as_str().expect("model").to_owned(),
                t["status_code"].as_i64().expect("status code"),
                t["tokens_in"].as_i64(),
                t["tokens_out"].as_i64(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pushed_fingerprints(app: &TestApp, gateway: &str) -> Vec<Fingerprint> {
    let mut out: Vec<Fingerprint> = app
        .emulator
        .emulator
        .pushed_records()
        .into_iter()
        .filter(|r| r.gateway == gateway)
        .map(|r| {
            (
                r.created_at_ms,
                r.provider,
                r.model,
                i64::from(r.status_code),
                r.tokens_in.map(i64::from),
                r.tokens_out.map(i64::from),
            )
        })
        .collect();
    out.sort();
    out
}

async fn set_up_push_configures_cloudflare_and_refuses_what_it_cannot(backend: Backend) {
    let Some(app) = spawn_app_in(backend, test_config(), push_world()).await else {
        return;
    };
    let emulator = &app.emulator.emulator;
    let admin = app.login_as(Role::Admin).await;
    let integration = app.create_integration(&admin).await;

    // A token that may only read cannot change the gateway; the key made for it is revoked.
    emulator.add_token("cf-read-only-token", TokenSpec::user(&[ACCOUNT]));
    let (status, reader) = app
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&admin),
            Some(
                json!({"type": "cloudflare", "name": "Read only", "account_id": ACCOUNT,
                "api_token": "cf-read-only-token"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reader}");
    let reader = reader["id"].as_i64().expect("id");
    let (status, body) = set_up(&app, &admin, reader, json!({"gateway": "prod-chat"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "cloudflare_permission_denied");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("AI Gateway: Edit")),
        "{body}"
    );
    let setup = app
        .get_ok(&admin, &format!("/api/v1/integrations/{reader}/push"))
        .await;
    let keys = setup["ingest_keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["revoked"], true);
    assert!(emulator.logpush_jobs(ACCOUNT).is_empty());

    // Requests that make no sense are refused before Cloudflare is asked.
    for (body, code) in [
        (
            json!({"gateway": "prod-chat", "otlp": false, "logpush": false}),
            "nothing_to_set_up",
        ),
        (
            json!({"gateway": "prod-chat", "logpush": false, "count": "logpush"}),
            "invalid_count",
        ),
        (
            json!({"gateway": "prod-chat", "content_type": "xml"}),
            "invalid_content_type",
        ),
        (json!({"gateway": "no spaces please"}), "invalid_gateway"),
    ] {
        let (status, answer) = set_up(&app, &admin, integration, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    let (status, answer) = set_up(&app, &admin, integration, json!({"gateway": "nope"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["code"], "cloudflare_not_found");

    // Both pushes, Logpush counting.
    let (status, done) = set_up(&app, &admin, integration, json!({"gateway": "prod-chat"})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["gateway"]["source"], "logpush");
    assert_eq!(done["logpush_job_created"], true);
    assert_eq!(done["otlp_url"], format!("{}/v1/traces", app.base));
    let public_key = app
        .get_ok(&admin, &format!("/api/v1/integrations/{integration}/push"))
        .await["public_key"]
        .clone();
    let gateway = emulator
        .gateway_json(ACCOUNT, "prod-chat")
        .expect("gateway");
    assert_eq!(gateway["logpush"], true);
    assert_eq!(gateway["logpush_public_key"], public_key);
    // Settings LangGuard does not touch stay as they were.
    assert_eq!(gateway["cache_ttl"], 300);
    let otel = gateway["otel"].as_array().expect("otel");
    assert_eq!(otel.len(), 1);
    assert_eq!(otel[0]["url"], format!("{}/v1/traces", app.base));
    assert_eq!(otel[0]["headers"]["X-LangGuard-Gateway"], "prod-chat");
    assert_eq!(otel[0]["content_type"], "protobuf");
    let prefix = done["ingest_key_prefix"].as_str().expect("prefix");
    assert!(otel[0]["headers"]["Authorization"]
        .as_str()
        .is_some_and(|a| a.starts_with(&format!("Bearer {prefix}"))));
    let jobs = emulator.logpush_jobs(ACCOUNT);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["dataset"], "ai_gateway_events");
    assert!(jobs[0]["destination_conf"]
        .as_str()
        .is_some_and(|d| d.starts_with(&format!(
            "{}/api/v1/ingest/logpush?header_Authorization=Bearer",
            app.base
        ))));
    // Cloudflare checked the destination with its validation upload, which LangGuard took.
    assert_eq!(emulator.stats().validation_uploads, 1);

    // Setting up again repoints the job and replaces LangGuard's exporter, not repeats them.
    let (status, again) = set_up(&app, &admin, integration, json!({"gateway": "prod-chat"})).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["logpush_job_created"], false);
    assert_eq!(again["logpush_job_id"], done["logpush_job_id"]);
    let gateway = emulator
        .gateway_json(ACCOUNT, "prod-chat")
        .expect("gateway");
    assert_eq!(gateway["otel"].as_array().map(Vec::len), Some(1));
    assert_eq!(emulator.logpush_jobs(ACCOUNT).len(), 1);
    // The first setup's key is used by nothing now: revoked.
    let keys = app
        .get_ok(&admin, &format!("/api/v1/integrations/{integration}/push"))
        .await["ingest_keys"]
        .clone();
    let revoked: Vec<bool> = keys
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["revoked"] == true)
        .collect();
    assert_eq!(revoked.iter().filter(|r| !**r).count(), 1, "{keys}");
    assert_eq!(revoked.len(), 2, "{keys}");

    // From now on the gateway's requests arrive by push: the Logpush copies count, the OTLP
    // copies of the same requests are not counted twice.
    // The gateway's history is on the Logs API (a Legacy Logs account): pulled up to the
    // handover, pushed after it.
    assert!(done["gateway"]["source_since"].is_string(), "{done}");
    emulator.append_logs(ACCOUNT, "prod-chat", 3, OffsetDateTime::now_utc());
    assert!(emulator.flush_pushes().await >= 2);
    let pushed = all_traces(&app, &admin, "gateway=prod-chat").await;
    assert_eq!(pushed.len(), 3, "{pushed:?}");
    assert!(pushed.iter().all(|t| t["source"] == "logpush"));
    // A sync pulls the history before the handover, and nothing after it twice.
    let run = app.sync_now(&admin, integration).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let traces = all_traces(&app, &admin, "gateway=prod-chat").await;
    assert_eq!(traces.len(), 3 + 150, "{run}");
    assert_eq!(emulator.stats().push_failures, 0);
}

/// The emulator as a gateway of an account on the new log system (its Logs API lists nothing):
/// ten minutes of traffic on two gateways, one pushing Logpush files and one OTLP spans (JSON),
/// with every third delivery sent twice and a one-slot writer answering 429 to pushes that come
/// at once. LangGuard ends up holding exactly what the gateways served, once each.
async fn ten_minutes_of_pushed_traffic_arrive_exactly_once(backend: Backend) {
    let config = ServerConfig {
        push_max_in_flight: 1,
        ..test_config()
    };
    let world = PushWorld {
        emulator: Some(EmulatorConfig {
            push_concurrency: 4,
            ..pushing_emulator()
        }),
        ..push_world()
    };
    let Some(app) = spawn_app_in(backend, config, world).await else {
        return;
    };
    let emulator = &app.emulator.emulator;
    emulator.set_log_system(ACCOUNT, LogSystem::WorkersObservability);
    let admin = app.login_as(Role::Admin).await;
    let integration = app.create_integration(&admin).await;
    for body in [
        json!({"gateway": "prod-chat", "otlp": false}),
        json!({"gateway": "support", "logpush": false, "content_type": "json"}),
    ] {
        let (status, done) = set_up(&app, &admin, integration, body).await;
        assert_eq!(status, StatusCode::OK, "{done}");
    }
    emulator.set_push_faults(PushFaults { duplicate_every: 3 });

    let start = OffsetDateTime::now_utc() - time::Duration::minutes(11);
    let mut sent = 0;
    for minute in 0..10u64 {
        let from = start + time::Duration::minutes(minute as i64);
        let to = from + time::Duration::minutes(1);
        for (gateway, seed) in [("prod-chat", minute), ("support", 100 + minute)] {
            sent += emulator.simulate_requests(
                ACCOUNT,
                gateway,
                SeedSpec {
                    count: 60,
                    from,
                    to,
                    seed,
                },
            );
        }
        emulator.flush_pushes().await;
    }
    assert_eq!(sent, 1_200);
    assert_eq!(emulator.queued_pushes(), 0);
    let stats = emulator.stats();
    assert_eq!(stats.push_failures, 0, "{stats:?}");
    assert!(stats.push_duplicates > 0, "{stats:?}");
    assert!(
        stats.push_retries > 0,
        "no push was ever told to retry: {stats:?}"
    );

    // The Logs API of a new-system account has nothing: a sync imports nothing.
    let run = app.sync_now(&admin, integration).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["items_fetched"], 0, "{run}");

    // The push history adds up to the same: every request stored once per source, the
    // re-sent ones counted as duplicates.
    let history = app
        .get_ok(
            &admin,
            &format!("/api/v1/integrations/{integration}/push-history?limit=100"),
        )
        .await;
    for source in ["logpush", "otlp"] {
        let rows: Vec<&Value> = history
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["source"] == source)
            .collect();
        let sum = |field: &str| rows.iter().filter_map(|r| r[field].as_i64()).sum::<i64>();
        assert_eq!(sum("stored"), 600, "{source}: {history}");
        assert!(sum("duplicates") > 0, "{source}: {history}");
        assert_eq!(sum("rejected"), 0, "{source}: {history}");
    }
    for (gateway, source) in [("prod-chat", "logpush"), ("support", "otlp")] {
        let traces = all_traces(&app, &admin, &format!("gateway={gateway}")).await;
        assert!(traces.iter().all(|t| t["source"] == source), "{gateway}");
        let expected = pushed_fingerprints(&app, gateway);
        assert_eq!(expected.len(), 600, "{gateway}");
        assert_eq!(stored_fingerprints(&traces), expected, "{gateway}");
    }
}

#[tokio::test]
async fn set_up_push_needs_the_public_url() {
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let integration = app.create_integration(&admin).await;
    let (status, body) = set_up(&app, &admin, integration, json!({"gateway": "prod-chat"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "public_url_required");
}
