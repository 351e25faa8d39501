//! Webhooks: signed events, retries, and the delivery log.

use super::*;
use crate::policies::SLOW_CALLS;

on_both_backends!(webhooks_deliver_signed_events_and_retry,);

/// What a receiver got: (signature header, body) per request.
type Received = Arc<std::sync::Mutex<Vec<(String, String)>>>;

type ReceiverState = (Received, Arc<std::sync::atomic::AtomicUsize>);

/// A webhook receiver on loopback that records what it gets and fails the first `failures`
/// requests with a 500.
struct Receiver {
    url: String,
    got: Received,
}

async fn spawn_receiver(failures: usize) -> Receiver {
    use axum::extract::State as AxumState;
    let got: Received = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let state = (got.clone(), calls);
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                move |AxumState((got, calls)): AxumState<ReceiverState>,
                      headers: axum::http::HeaderMap,
                      body: String| async move {
                    let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if n < failures {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let signature = headers
                        .get("x-langguard-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    got.lock().expect("lock").push((signature, body));
                    axum::http::StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, got }
}

async fn webhooks_deliver_signed_events_and_retry(backend: Backend) {
    let Some(app) = spawn_app_on(
        backend,
        ServerConfig {
            scheduler: false,
            policy_idle_wait: Duration::from_millis(20),
            webhooks: Some(WebhookSettings {
                tick: Duration::from_millis(20),
                retry_base: Duration::from_millis(50),
                // The receiver runs on this machine: an admin allowed loopback.
                targets: langguard_ops::webhook_target::TargetPolicy::parse("127.0.0.1")
                    .expect("policy"),
                ..WebhookSettings::default()
            }),
            ..ServerConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let member = app.login_as(Role::Member).await;
    let receiver = spawn_receiver(2).await;
    const SECRET: &str = "receiver-secret-0123456789";

    let hook = json!({"url": receiver.url, "secret": SECRET, "min_severity": "high",
                      "events": ["policy.violation", "sync.failed", "integration.status_changed"]});
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(&member),
            Some(hook.clone()),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    for (bad, code) in [
        (
            json!({"url": "http://example.com/x", "events": ["sync.failed"]}),
            "invalid_url",
        ),
        (
            json!({"url": receiver.url, "events": ["nope"]}),
            "invalid_events",
        ),
        (
            json!({"url": receiver.url, "events": ["sync.failed"], "secret": "short"}),
            "invalid_secret",
        ),
    ] {
        let (status, body) = app
            .call(Method::POST, "/api/v1/webhooks", Some(&admin), Some(bad))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, code);
    }
    let (status, created) = app
        .call(Method::POST, "/api/v1/webhooks", Some(&admin), Some(hook))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(
        created.get("secret").is_none(),
        "a given secret is never echoed"
    );
    assert_eq!(created["secret_set"], true);
    let hook_id = created["id"].as_i64().expect("id");
    let (_, generated) = app
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(&admin),
            Some(json!({"url": receiver.url, "events": ["sync.failed"], "enabled": false})),
        )
        .await;
    assert!(generated["secret"]
        .as_str()
        .is_some_and(|s| s.starts_with("lgw_")));

    // A high-severity policy, then an import: its violations go out, signed.
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(&member),
            Some(
                json!({"name": "slow_calls", "category": "Budget & Operations",
                        "severity": "high", "mode": "enforce", "config": {"max_ms": 1500},
                        "rego": SLOW_CALLS}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = app.create_integration(&admin).await;
    app.sync_now(&admin, id).await;
    policies_caught_up(&app, &admin).await;
    let mut expected = 0;
    for severity in ["critical", "high"] {
        let page = app
            .get_ok(
                &admin,
                &format!("/api/v1/violations?severity={severity}&limit=1"),
            )
            .await;
        expected += page["total"].as_u64().expect("total") as usize;
    }
    assert!(expected > 0);
    // Waits until the receiver has `want` events of kind `event`; returns every event so far.
    let wait_for = |event: &'static str, want: usize| {
        let got = receiver.got.clone();
        async move {
            for _ in 0..500 {
                let events: Vec<(String, String)> = got.lock().expect("lock").clone();
                let n = events
                    .iter()
                    .filter(|(_, body)| body.contains(&format!("\"event\":\"{event}\"")))
                    .count();
                if n >= want {
                    return events;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("the receiver did not get {want} {event} events");
        }
    };
    let received = wait_for("policy.violation", expected).await;
    let mut violations = std::collections::HashSet::new();
    for (signature, body) in &received {
        assert_eq!(
            signature,
            &langguard_server::webhooks::sign(SECRET, body.as_bytes()),
            "signed with the secret"
        );
        let event: Value = serde_json::from_str(body).expect("JSON body");
        assert!(event["timestamp"].as_str().is_some());
        if event["event"] == "policy.violation" {
            assert!(
                ["critical", "high"].contains(&event["data"]["severity"].as_str().unwrap_or(""))
            );
            assert!(event["data"]["traceId"].as_str().is_some());
            assert!(
                violations.insert(event["data"]["violationId"].as_i64()),
                "each violation once"
            );
        } else {
            // The new integration's first sync: pending → connected.
            assert_eq!(event["event"], "integration.status_changed", "{event}");
            assert_eq!(event["data"]["to"], "connected");
        }
    }
    assert_eq!(violations.len(), expected);

    // The two refused requests were retried: the log shows it once everything is sent.
    let mut log = Value::Null;
    for _ in 0..250 {
        log = app
            .call(
                Method::GET,
                &format!("/api/v1/webhooks/{hook_id}/deliveries"),
                Some(&admin),
                None,
            )
            .await
            .1;
        if log["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|d| d["status"] == "succeeded"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let items = log["items"].as_array().expect("deliveries");
    let sent: Vec<&Value> = items
        .iter()
        .filter(|d| d["event"] == "policy.violation")
        .collect();
    assert_eq!(sent.len(), expected);
    assert!(sent.iter().all(|d| d["status"] == "succeeded"));
    let retried: i64 = items
        .iter()
        .map(|d| (d["attempts"].as_i64().unwrap_or(0) - 1).max(0))
        .sum();
    assert_eq!(retried, 2, "two failed attempts were retried");

    // A failing sync: sync.failed and the status change go out too.
    app.emulator.emulator.revoke_token(CF_TOKEN);
    let run = app.sync_now(&admin, id).await;
    assert_eq!(run["status"], "failed");
    let received = wait_for("sync.failed", 1).await;
    let failed: Vec<Value> = received
        .iter()
        .map(|(_, body)| serde_json::from_str::<Value>(body).expect("JSON"))
        .filter(|e| e["event"] == "sync.failed")
        .collect();
    assert_eq!(failed[0]["data"]["integrationId"], id);
    assert!(failed[0]["data"]["error"].as_str().is_some());
    let received = wait_for("integration.status_changed", 2).await;
    assert!(received.iter().any(|(_, body)| {
        let e: Value = serde_json::from_str(body).unwrap_or_default();
        e["event"] == "integration.status_changed"
            && e["data"]["to"] == "failed"
            && e["data"]["integrationId"] == id
    }));
}
