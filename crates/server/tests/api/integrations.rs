//! Integrations: test a connection, save, Sync Now, the figures it imports, and the scheduler.

use super::*;

on_both_backends!(
    test_save_sync_now_and_metrics_match_the_emulator,
    the_scheduler_syncs_enabled_integrations_on_its_own,
);

async fn test_save_sync_now_and_metrics_match_the_emulator(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;

    let (status, body) = app
        .call(Method::POST, "/api/v1/integrations/test", Some(&admin), Some(json!({"type": "cloudflare", "account_id": ACCOUNT, "api_token": "revoked-or-wrong"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], false);
    assert_eq!(body["error"]["code"], "auth_failed");
    assert!(body["error"]["hint"]
        .as_str()
        .unwrap_or_default()
        .contains("Confirm the API token hasn't been revoked or expired"));

    let (_, body) = app
        .call(
            Method::POST,
            "/api/v1/integrations/test",
            Some(&admin),
            Some(json!({"type": "cloudflare", "account_id": ACCOUNT, "api_token": CF_TOKEN})),
        )
        .await;
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(body["gateways"], json!(["prod-chat", "support"]));

    let id = app.create_integration(&admin).await;
    let integration = app
        .get_ok(&admin, &format!("/api/v1/integrations/{id}"))
        .await;
    assert_eq!(integration["api_token_set"], true);
    assert_eq!(integration["sync_interval_minutes"], 15);
    assert_eq!(integration["lookback_days"], 7);
    assert_eq!(integration["trailing_window_minutes"], 30);
    assert!(integration.get("api_token").is_none());

    // The trailing window: 1 minute to a day, changed like any other setting.
    for bad in [json!(0), json!(1_441), json!("30")] {
        let (status, body) = app
            .call(
                Method::PATCH,
                &format!("/api/v1/integrations/{id}"),
                Some(&admin),
                Some(json!({ "trailing_window_minutes": bad })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, changed) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/integrations/{id}"),
            Some(&admin),
            Some(json!({"trailing_window_minutes": 45})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["trailing_window_minutes"], 45);

    let (status, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/integrations/{id}/sync"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = app
        .wait_for_run(&admin, body["run_id"].as_i64().expect("run id"))
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["items_ingested"], 350);
    assert_eq!(run["trigger"], "manual");

    // The sync compared every hour with Cloudflare's analytics: all of it is held.
    let coverage = app
        .get_ok(
            &admin,
            &format!("/api/v1/integrations/{id}/coverage?from=2000-01-01T00:00:00Z"),
        )
        .await;
    assert_eq!(coverage["status"], "ok", "{coverage}");
    assert_eq!(coverage["ratio"], 1.0, "{coverage}");
    let hours = coverage["hours"].as_array().expect("hours");
    assert!(!hours.is_empty());
    assert!(hours
        .iter()
        .all(|h| h["cloudflare"] == h["stored"] && h["state"] != "short"));
    let gateways: Vec<&str> = coverage["gateways"]
        .as_array()
        .expect("gateways")
        .iter()
        .filter_map(|g| g["gateway"].as_str())
        .collect();
    assert_eq!(gateways, ["prod-chat", "support"]);
    // Monitoring's integration health carries it too.
    let overview = app
        .get_ok(
            &admin,
            "/api/v1/monitoring/overview?from=2000-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(
        overview["integrations"][0]["coverage"]["status"], "ok",
        "{overview}"
    );
    assert_eq!(overview["integrations"][0]["coverage"]["label"], "100.0 %");
    for (bad, expected) in [
        (
            format!("/api/v1/integrations/{id}/coverage?from=yesterday"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/integrations/{id}/coverage?hours=3"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/integrations/999999/coverage".to_owned(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (status, body) = app.call(Method::GET, &bad, Some(&admin), None).await;
        assert_eq!(status, expected, "{bad}: {body}");
    }

    let metrics = app
        .get_ok(&admin, "/api/v1/metrics?from=2000-01-01T00:00:00Z")
        .await;
    let on_cloudflare = app.emulator.emulator.log_ids(ACCOUNT, "prod-chat").len()
        + app.emulator.emulator.log_ids(ACCOUNT, "support").len();
    assert_eq!(
        metrics["requests"].as_u64(),
        Some(on_cloudflare as u64),
        "{metrics}"
    );
    for key in [
        "errors",
        "error_rate",
        "success_rate",
        "cache_hits",
        "cache_hit_rate",
        "rate_limited",
        "tokens_in",
        "tokens_out",
        "cost_usd",
    ] {
        assert!(metrics.get(key).is_some(), "{key}");
    }
    let gw = app
        .get_ok(
            &admin,
            &format!(
                "/api/v1/metrics?from=2000-01-01T00:00:00Z&integration_id={id}&gateway=support"
            ),
        )
        .await;
    assert_eq!(gw["requests"], 200);

    let list = app.get_ok(&admin, "/api/v1/integrations").await;
    assert_eq!(list["items"][0]["status"], "connected");
    assert_eq!(list["items"][0]["interactions_synced"], 350);
    assert!(list["items"][0]["next_sync_at"].is_string());
    let runs = app
        .get_ok(&admin, &format!("/api/v1/integrations/{id}/sync-runs"))
        .await;
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(1));

    // Sync Now while a sync runs shows that run instead of starting a second.
    app.emulator.emulator.set_faults(Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    });
    let (_, first) = app
        .call(
            Method::POST,
            &format!("/api/v1/integrations/{id}/sync"),
            Some(&admin),
            None,
        )
        .await;
    let (status, second) = app
        .call(
            Method::POST,
            &format!("/api/v1/integrations/{id}/sync"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(second["run_id"], first["run_id"]);
    assert_eq!(second["already_running"], true);
    app.wait_for_run(&admin, first["run_id"].as_i64().expect("id"))
        .await;

    // PATCH replaces the token (never shown) and other settings.
    let (status, patched) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/integrations/{id}"),
            Some(&admin),
            Some(json!({"sync_interval_minutes": 30, "enabled": false, "api_token": CF_TOKEN})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["sync_interval_minutes"], 30);
    assert_eq!(patched["status"], "disabled");

    // The token is nowhere: not in a response, not in the database files.
    for body in app.seen.lock().expect("lock").iter() {
        assert!(
            !body.contains(CF_TOKEN),
            "a response carried the token: {body}"
        );
    }
    let logs = String::from_utf8_lossy(&captured_logs().lock().expect("logs")).into_owned();
    assert!(
        logs.contains("retrying Cloudflare call") || logs.contains("DEBUG"),
        "the log was captured"
    );
    assert!(!logs.contains(CF_TOKEN), "the token reached the server log");
    for entry in std::fs::read_dir(app.dir.path()).expect("dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("file");
        assert!(
            !bytes
                .windows(CF_TOKEN.len())
                .any(|w| w == CF_TOKEN.as_bytes()),
            "the token is in a database file"
        );
    }

    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/integrations/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/api/v1/integrations/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        app.store
            .count_interactions(&Default::default())
            .await
            .expect("count"),
        0
    );
}

async fn the_scheduler_syncs_enabled_integrations_on_its_own(backend: Backend) {
    let Some(app) = spawn_app_on(
        backend,
        ServerConfig {
            scheduler: true,
            scheduler_tick: Duration::from_millis(100),
            ..ServerConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let id = app.create_integration(&admin).await;
    let (status, disabled) = app
        .call(Method::POST, "/api/v1/integrations", Some(&admin), Some(json!({"type": "cloudflare", "name": "Paused", "account_id": ACCOUNT, "api_token": CF_TOKEN, "enabled": false})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut synced = None;
    for _ in 0..100 {
        let runs = app
            .get_ok(&admin, &format!("/api/v1/integrations/{id}/sync-runs"))
            .await;
        if let Some(run) = runs["items"]
            .as_array()
            .and_then(|r| r.first())
            .filter(|r| r["status"] == "succeeded")
        {
            synced = Some(run.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run = synced.expect("the scheduler ran a sync");
    assert_eq!(run["trigger"], "schedule");
    assert_eq!(run["items_ingested"], 350);
    // Not again before the interval (15 minutes) is up, and never for a disabled one.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let runs = app
        .get_ok(&admin, &format!("/api/v1/integrations/{id}/sync-runs"))
        .await;
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(1));
    let paused = disabled["id"].as_i64().expect("id");
    let runs = app
        .get_ok(&admin, &format!("/api/v1/integrations/{paused}/sync-runs"))
        .await;
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(0));
}
