//! Logpush from an object store: the emulator's Logpush job writes encrypted files to an
//! R2-style bucket (a real S3 server, Moto), and LangGuard lists the bucket and imports each
//! file once — duplicates of whole files included.

use langguard_cf_emulator::{EmulatorConfig, MotoServer, PushFaults, SeedSpec};
use time::OffsetDateTime;

use super::*;

on_both_backends!(logpush_files_in_a_bucket_are_imported_once,);

const SECRET: &str = "moto-secret-access-key-Xy71";

/// Moto, or a skip message when it is not installed here (CI installs it).
async fn moto() -> Option<MotoServer> {
    match MotoServer::start().await {
        Ok(moto) => Some(moto),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: {e:#}");
            None
        }
        Err(e) => panic!("{e:#}"),
    }
}

async fn cloudflare(app: &TestApp, method: Method, path: &str, body: Value) -> Value {
    let response = app
        .http
        .request(method, format!("{}{path}", app.emulator.base_url()))
        .bearer_auth(CF_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("emulator");
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert!(status.is_success(), "{path}: {body}");
    body
}

async fn logpush_files_in_a_bucket_are_imported_once(backend: Backend) {
    let Some(moto) = moto().await else {
        return;
    };
    moto.create_bucket("ai-logs").await.expect("bucket");
    let world = PushWorld {
        emulator: Some(EmulatorConfig {
            r2_endpoint: Some(moto.endpoint.clone()),
            ..pushing_emulator()
        }),
        editor_token: true,
        public_url: false,
    };
    let Some(app) = spawn_app_in(backend, test_config(), world).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let integration = app.create_integration(&admin).await;
    let buckets = format!("/api/v1/integrations/{integration}/buckets");

    // Settings that cannot work are refused, with what to fix.
    let good = json!({"endpoint": moto.endpoint, "bucket": "ai-logs", "prefix": "logs",
        "access_key_id": "test", "secret_access_key": SECRET});
    let mut missing = good.clone();
    missing["bucket"] = json!("no-such-bucket");
    let (status, body) = app
        .call(Method::POST, &buckets, Some(&admin), Some(missing))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "bucket_unreachable");
    let mut bad = good.clone();
    bad["endpoint"] = json!("file:///etc");
    let (status, body) = app
        .call(Method::POST, &buckets, Some(&admin), Some(bad))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_endpoint");

    let (status, bucket) = app
        .call(Method::POST, &buckets, Some(&admin), Some(good))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bucket}");
    let bucket_id = bucket["id"].as_i64().expect("id");

    // The gateway logs to Logpush with the integration's key; the job writes to R2 (Moto),
    // 50 records a file, every second file twice.
    let public_key = app
        .get_ok(&admin, &format!("/api/v1/integrations/{integration}/push"))
        .await["public_key"]
        .clone();
    cloudflare(
        &app,
        Method::PUT,
        &format!("/accounts/{ACCOUNT}/ai-gateway/gateways/prod-chat"),
        json!({"cache_invalidate_on_update": false, "cache_ttl": 300, "collect_logs": true,
            "rate_limiting_interval": 60, "rate_limiting_limit": 600,
            "logpush": true, "logpush_public_key": public_key}),
    )
    .await;
    cloudflare(
        &app,
        Method::POST,
        &format!("/accounts/{ACCOUNT}/logpush/jobs"),
        json!({"dataset": "ai_gateway_events", "max_upload_records": 50,
            "destination_conf": format!("r2://ai-logs/logs/{{DATE}}?account-id={ACCOUNT}&access-key-id=test&secret-access-key={SECRET}")}),
    )
    .await;
    let emulator = &app.emulator.emulator;
    emulator.set_push_faults(PushFaults { duplicate_every: 2 });
    let now = OffsetDateTime::now_utc();
    emulator.simulate_requests(
        ACCOUNT,
        "prod-chat",
        SeedSpec {
            count: 200,
            from: now - time::Duration::minutes(10),
            to: now,
            seed: 7,
        },
    );
    assert_eq!(emulator.flush_pushes().await, 4);
    assert_eq!(emulator.stats().push_duplicates, 2);

    let import = format!("{buckets}/{bucket_id}/import");
    // While another instance imports the bucket, "Import now" says so and leaves it be.
    let lease = format!("bucket-import:{bucket_id}");
    assert!(app
        .store
        .acquire_lease(&lease, "another-instance", 60_000)
        .await
        .expect("lease"));
    let (status, busy) = app.call(Method::POST, &import, Some(&admin), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{busy}");
    app.store
        .release_lease(&lease, "another-instance")
        .await
        .expect("release");
    let (status, report) = app.call(Method::POST, &import, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["files_new"], 6, "{report}");
    assert_eq!(report["files_imported"], 6, "{report}");
    assert_eq!(report["records_stored"], 200, "{report}");
    assert_eq!(report["duplicates"], 100, "the duplicate files: {report}");
    // A second pass finds nothing new.
    let (status, again) = app.call(Method::POST, &import, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (again["files_listed"].as_u64(), again["files_new"].as_u64()),
        (Some(6), Some(0))
    );

    let traces = all_traces(&app, &admin, "gateway=prod-chat").await;
    assert_eq!(traces.len(), 200);
    assert!(traces.iter().all(|t| t["source"] == "logpush"));
    // Decrypted: the response bodies' usage gave the tokens the Metrics did not carry.
    let mut stored: Vec<(i64, Option<i64>, Option<i64>)> = traces
        .iter()
        .map(|t| {
            (
                langguard_clock::parse_ms(t["created_at"].as_str().expect("time")).expect("ms"),
                t["tokens_in"].as_i64(),
                t["tokens_out"].as_i64(),
            )
        })
        .collect();
    let mut sent: Vec<(i64, Option<i64>, Option<i64>)> = emulator
        .pushed_records()
        .iter()
        .map(|r| {
            (
                r.created_at_ms,
                r.tokens_in.map(i64::from),
                r.tokens_out.map(i64::from),
            )
        })
        .collect();
    stored.sort();
    sent.sort();
    assert_eq!(stored, sent);

    let listed = app.get_ok(&admin, &buckets).await;
    let listed = &listed[0];
    assert_eq!(listed["files_imported"], 6);
    assert_eq!(
        listed["records_imported"], 300,
        "every record read, duplicates included"
    );
    assert_eq!(listed["last_error"], Value::Null);
    assert_eq!(listed["recent_files"].as_array().map(Vec::len), Some(6));
    assert!(listed.get("secret_access_key").is_none());
    assert!(!app
        .seen
        .lock()
        .expect("seen")
        .iter()
        .any(|body| body.contains(SECRET)));

    // Another integration's bucket id is not found here; removing stops imports.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!(
                "/api/v1/integrations/{}/buckets/{bucket_id}",
                integration + 1000
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("{buckets}/{bucket_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.get_ok(&admin, &buckets).await, json!([]));
    assert_eq!(
        all_traces(&app, &admin, "gateway=prod-chat").await.len(),
        200
    );
}
