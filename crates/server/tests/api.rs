//! The REST API as a client uses it: the real server on a random port, a fresh database and
//! the Cloudflare emulator.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use langguard_cf_emulator::Faults;
use langguard_server::webhooks::WebhookSettings;
use langguard_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    test_save_sync_now_and_metrics_match_the_emulator,
    each_route_for_each_role,
    bad_input_gets_a_4xx_with_an_error_body,
    failed_sign_ins_are_throttled_and_health_answers,
    api_keys_are_shown_once_scoped_and_revocable,
    admin_actions_and_failed_sign_ins_are_audited,
    the_openapi_document_covers_every_route,
    traces_and_metrics_agree_with_an_exact_computation,
    prometheus_metrics_parse_and_describe_the_import,
    search_sort_export_and_the_monitoring_overview,
    policies_violations_and_backtests_end_to_end,
    bodies_are_fetched_for_policies_searchable_and_shown,
    cost_estimates_price_what_cloudflare_did_not,
    the_session_cookie_signs_in_and_is_secure_when_configured,
    the_scheduler_syncs_enabled_integrations_on_its_own,
    webhooks_deliver_signed_events_and_retry,
);

async fn test_save_sync_now_and_metrics_match_the_emulator(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login(ADMIN.0, ADMIN.1).await;

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

    let id = app.add_integration(&admin).await;
    let (_, integration) = app
        .call(
            Method::GET,
            &format!("/api/v1/integrations/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(integration["api_token_set"], true);
    assert_eq!(integration["sync_interval_minutes"], 15);
    assert_eq!(integration["lookback_days"], 7);
    assert!(integration.get("api_token").is_none());

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

    let (_, metrics) = app
        .call(
            Method::GET,
            "/api/v1/metrics?from=2000-01-01T00:00:00Z",
            Some(&admin),
            None,
        )
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
    let (_, gw) = app
        .call(
            Method::GET,
            &format!(
                "/api/v1/metrics?from=2000-01-01T00:00:00Z&integration_id={id}&gateway=support"
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(gw["requests"], 200);

    let (_, list) = app
        .call(Method::GET, "/api/v1/integrations", Some(&admin), None)
        .await;
    assert_eq!(list["items"][0]["status"], "connected");
    assert_eq!(list["items"][0]["interactions_synced"], 350);
    assert!(list["items"][0]["next_sync_at"].is_string());
    let (_, runs) = app
        .call(
            Method::GET,
            &format!("/api/v1/integrations/{id}/sync-runs"),
            Some(&admin),
            None,
        )
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

async fn each_route_for_each_role(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let member = app
        .create_user(&admin, "member@example.com", "member")
        .await;
    let viewer = app
        .create_user(&admin, "viewer@example.com", "viewer")
        .await;
    let id = app.add_integration(&admin).await;

    let create = json!({"type": "cloudflare", "name": "Other", "account_id": ACCOUNT, "api_token": CF_TOKEN});
    let test = json!({"type": "cloudflare", "account_id": ACCOUNT, "api_token": CF_TOKEN});
    let new_user =
        json!({"email": "x@example.com", "password": "a-long-password-1", "role": "viewer"});
    let routes: Vec<(Method, String, Option<Value>, bool)> = vec![
        // (method, path, body, admin only)
        (Method::GET, "/api/v1/integrations".into(), None, false),
        (
            Method::GET,
            format!("/api/v1/integrations/{id}"),
            None,
            false,
        ),
        (
            Method::GET,
            format!("/api/v1/integrations/{id}/sync-runs"),
            None,
            false,
        ),
        (Method::GET, "/api/v1/metrics".into(), None, false),
        (Method::GET, "/api/v1/auth/me".into(), None, false),
        (
            Method::POST,
            "/api/v1/integrations/test".into(),
            Some(test),
            true,
        ),
        (
            Method::POST,
            "/api/v1/integrations".into(),
            Some(create),
            true,
        ),
        (
            Method::PATCH,
            format!("/api/v1/integrations/{id}"),
            Some(json!({"sync_interval_minutes": 20})),
            true,
        ),
        (
            Method::POST,
            format!("/api/v1/integrations/{id}/sync"),
            None,
            true,
        ),
        (Method::GET, "/api/v1/users".into(), None, true),
        (Method::POST, "/api/v1/users".into(), Some(new_user), true),
    ];
    for (method, path, body, admin_only) in &routes {
        let (status, err) = app.call(method.clone(), path, None, body.clone()).await;
        assert_error(status, &err, StatusCode::UNAUTHORIZED, "unauthorized");
        let (status, err) = app
            .call(
                method.clone(),
                path,
                Some("lgs_not-a-session"),
                body.clone(),
            )
            .await;
        assert_error(status, &err, StatusCode::UNAUTHORIZED, "unauthorized");
        for token in [&member, &viewer] {
            let (status, resp) = app
                .call(method.clone(), path, Some(token), body.clone())
                .await;
            if *admin_only {
                assert_error(status, &resp, StatusCode::FORBIDDEN, "forbidden");
            } else {
                assert_eq!(status, StatusCode::OK, "{method} {path}: {resp}");
            }
        }
        let (status, resp) = app
            .call(method.clone(), path, Some(&admin), body.clone())
            .await;
        assert!(
            status.is_success(),
            "admin {method} {path}: {status} {resp}"
        );
    }
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/integrations/{id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Users: the last admin stays; a demoted or removed user loses access.
    let (_, users) = app
        .call(Method::GET, "/api/v1/users", Some(&admin), None)
        .await;
    let id_of = |email: &str| {
        users["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|u| u["email"] == email)
            .and_then(|u| u["id"].as_i64())
            .expect("user")
    };
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{}", id_of(ADMIN.0)),
            Some(&admin),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{}", id_of("member@example.com")),
            Some(&admin),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .call(Method::GET, "/api/v1/users", Some(&member), None)
        .await;
    assert_eq!(status, StatusCode::OK, "promotion takes effect at once");
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{}", id_of("viewer@example.com")),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call(Method::GET, "/api/v1/integrations", Some(&viewer), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a removed user's session ends"
    );

    // Logging out ends the session.
    let (status, _) = app
        .call(Method::POST, "/api/v1/auth/logout", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call(Method::GET, "/api/v1/auth/me", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn bad_input_gets_a_4xx_with_an_error_body(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let id = app.add_integration(&admin).await;
    let raw = |method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>| {
        let mut req = app
            .http
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(&admin)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        async move {
            let resp = req.send().await.expect("response");
            let status = resp.status();
            (status, resp.json::<Value>().await.expect("JSON error body"))
        }
    };
    let json_ct = Some("application/json");
    let (s, b) = raw(
        Method::POST,
        "/api/v1/integrations",
        json_ct,
        b"{not json".to_vec(),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "malformed_json");
    let (s, b) = raw(
        Method::POST,
        "/api/v1/integrations",
        json_ct,
        br#"{"type":"cloudflare","name":"x"}"#.to_vec(),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_body");
    let (s, b) = raw(
        Method::POST,
        "/api/v1/integrations",
        json_ct,
        br#"{"type":"cloudflare","name":5,"account_id":"a","api_token":"t"}"#.to_vec(),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_body");
    let (s, b) = raw(
        Method::POST,
        "/api/v1/integrations",
        json_ct,
        br#"{"type":"openrouter","name":"x","account_id":"a","api_token":"t"}"#.to_vec(),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_body");
    let (s, b) = raw(
        Method::POST,
        "/api/v1/integrations",
        json_ct,
        br#"{"type":"cloudflare","name":"x","account_id":"not an id!","api_token":"t"}"#.to_vec(),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_account_id");
    let (s, b) = raw(Method::POST, "/api/v1/integrations", json_ct, br#"{"type":"cloudflare","name":"x","account_id":"abc","api_token":"t","sync_interval_minutes":0}"#.to_vec()).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_sync_interval");
    let (s, b) = raw(
        Method::POST,
        "/api/v1/integrations",
        None,
        br#"{"type":"cloudflare"}"#.to_vec(),
    )
    .await;
    assert_error(
        s,
        &b,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let huge = format!(
        r#"{{"type":"cloudflare","name":"{}","account_id":"a","api_token":"t"}}"#,
        "x".repeat(200_000)
    );
    let (s, b) = raw(
        Method::POST,
        "/api/v1/integrations",
        json_ct,
        huge.into_bytes(),
    )
    .await;
    assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let (s, b) = raw(Method::GET, "/api/v1/integrations/abc", None, vec![]).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_path");
    let (s, b) = raw(Method::GET, "/api/v1/integrations/99999", None, vec![]).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = raw(Method::GET, "/api/v1/sync-runs/-1", None, vec![]).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = raw(Method::GET, "/api/v1/metrics?from=yesterday", None, vec![]).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_time");
    let (s, b) = raw(
        Method::GET,
        "/api/v1/metrics?integration_id=x",
        None,
        vec![],
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_query");
    let (s, b) = raw(Method::GET, "/api/v1/nope", None, vec![]).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = raw(
        Method::PATCH,
        &format!("/api/v1/integrations/{id}"),
        json_ct,
        br#"{"name":"Production","surprise":1}"#.to_vec(),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_body");
    let (s, b) = raw(
        Method::POST,
        "/api/v1/integrations",
        json_ct,
        br#"{"type":"cloudflare","name":"Production","account_id":"abc","api_token":"t"}"#.to_vec(),
    )
    .await;
    assert_error(s, &b, StatusCode::CONFLICT, "conflict");
    // Nothing above changed what was stored.
    let (_, list) = app
        .call(Method::GET, "/api/v1/integrations", Some(&admin), None)
        .await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["name"], "Production");
}

async fn failed_sign_ins_are_throttled_and_health_answers(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    for _ in 0..5 {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": ADMIN.0, "password": "wrong-password-xx"})),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": ADMIN.0, "password": ADMIN.1})),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
    );
    let (status, _) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
}

async fn api_keys_are_shown_once_scoped_and_revocable(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let id = app.add_integration(&admin).await;
    let mut keys = std::collections::HashMap::new();
    for scope in ["ingest", "read", "write", "admin"] {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/api-keys",
                Some(&admin),
                Some(
                    json!({"name": format!("{scope} key"), "scope": scope, "expires_in_days": 30}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let key = body["key"].as_str().expect("key shown once").to_owned();
        assert!(key.starts_with("lgr_"));
        assert!(key.starts_with(body["prefix"].as_str().expect("prefix")));
        keys.insert(scope, (key, body["id"].as_i64().expect("id")));
    }
    let (_, list) = app
        .call(Method::GET, "/api/v1/api-keys", Some(&admin), None)
        .await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(4));
    assert!(
        !list.to_string().contains(&keys["read"].0),
        "a listed key shows its secret"
    );

    let patch = json!({"sync_interval_minutes": 25});
    let integration = format!("/api/v1/integrations/{id}");
    let (status, _) = app
        .call(Method::GET, &integration, Some(&keys["ingest"].0), None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "ingest keys only push traces"
    );
    let (status, _) = app
        .call(Method::GET, &integration, Some(&keys["read"].0), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::PATCH,
            &integration,
            Some(&keys["read"].0),
            Some(patch.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            Method::PATCH,
            &integration,
            Some(&keys["write"].0),
            Some(patch.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "integrations are admin-only");
    let (status, _) = app
        .call(
            Method::PATCH,
            &integration,
            Some(&keys["admin"].0),
            Some(patch.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, revoked) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", keys["admin"].1),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, _) = app
        .call(Method::GET, &integration, Some(&keys["admin"].0), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoking takes effect at once"
    );

    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/api-keys",
            Some(&admin),
            Some(json!({"name": "x", "scope": "read", "expires_in_days": 7})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_expiry");
    let (status, _) = app
        .call(Method::GET, "/api/v1/api-keys", Some(&keys["read"].0), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn admin_actions_and_failed_sign_ins_are_audited(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "intruder@example.com", "password": "guess-guess-guess"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let viewer = app
        .create_user(&admin, "viewer@example.com", "viewer")
        .await;
    let id = app.add_integration(&admin).await;
    app.call(
        Method::PATCH,
        &format!("/api/v1/integrations/{id}"),
        Some(&admin),
        Some(json!({"api_token": CF_TOKEN})),
    )
    .await;
    let (_, run) = app
        .call(
            Method::POST,
            &format!("/api/v1/integrations/{id}/sync"),
            Some(&admin),
            None,
        )
        .await;
    app.wait_for_run(&admin, run["run_id"].as_i64().expect("run"))
        .await;
    app.call(
        Method::DELETE,
        &format!("/api/v1/integrations/{id}"),
        Some(&admin),
        None,
    )
    .await;

    let (status, audit) = app
        .call(Method::GET, "/api/v1/audit", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for want in [
        "auth.login_failed",
        "auth.login",
        "user.created",
        "integration.created",
        "integration.updated",
        "integration.synced",
        "integration.deleted",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    // Newest first.
    assert_eq!(actions.first(), Some(&"integration.deleted"));
    let failed = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["action"] == "auth.login_failed")
        .expect("entry");
    assert_eq!(failed["details"]["email"], "intruder@example.com");
    assert!(failed["address"].is_string());
    assert!(!audit.to_string().contains(CF_TOKEN));
    let (status, _) = app
        .call(Method::GET, "/api/v1/audit", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, page) = app
        .call(Method::GET, "/api/v1/audit?limit=2", Some(&admin), None)
        .await;
    let before = page["next_before"].as_i64().expect("more pages");
    let (_, next) = app
        .call(
            Method::GET,
            &format!("/api/v1/audit?limit=2&before={before}"),
            Some(&admin),
            None,
        )
        .await;
    assert!(next["items"][0]["id"].as_i64().expect("id") < before);
}

async fn the_openapi_document_covers_every_route(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let (status, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let routes = [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/auth/me"),
        ("get", "/api/v1/users"),
        ("post", "/api/v1/users"),
        ("patch", "/api/v1/users/{id}"),
        ("delete", "/api/v1/users/{id}"),
        ("post", "/api/v1/integrations/test"),
        ("get", "/api/v1/integrations"),
        ("post", "/api/v1/integrations"),
        ("get", "/api/v1/integrations/{id}"),
        ("patch", "/api/v1/integrations/{id}"),
        ("delete", "/api/v1/integrations/{id}"),
        ("post", "/api/v1/integrations/{id}/sync"),
        ("get", "/api/v1/integrations/{id}/sync-runs"),
        ("get", "/api/v1/sync-runs/{id}"),
        ("get", "/api/v1/metrics"),
        ("get", "/api/v1/metrics/timeseries"),
        ("get", "/api/v1/metrics/breakdown"),
        ("get", "/api/v1/monitoring/overview"),
        ("get", "/api/v1/traces"),
        ("get", "/api/v1/traces/export"),
        ("get", "/api/v1/traces/{id}"),
        ("get", "/api/v1/policies"),
        ("post", "/api/v1/policies"),
        ("get", "/api/v1/policies/{id}"),
        ("patch", "/api/v1/policies/{id}"),
        ("delete", "/api/v1/policies/{id}"),
        ("get", "/api/v1/policies/{id}/versions"),
        ("post", "/api/v1/policies/{id}/reevaluate"),
        ("post", "/api/v1/policies/test"),
        ("post", "/api/v1/policies/backtest"),
        ("get", "/api/v1/policies/status"),
        ("get", "/api/v1/violations"),
        ("get", "/api/v1/violations/{id}"),
        ("patch", "/api/v1/violations/{id}"),
        ("post", "/api/v1/violations/bulk"),
        ("get", "/api/v1/cost-estimates"),
        ("post", "/api/v1/cost-estimates"),
        ("delete", "/api/v1/cost-estimates"),
        ("get", "/api/v1/webhooks"),
        ("post", "/api/v1/webhooks"),
        ("get", "/api/v1/webhooks/{id}"),
        ("patch", "/api/v1/webhooks/{id}"),
        ("delete", "/api/v1/webhooks/{id}"),
        ("get", "/api/v1/webhooks/{id}/deliveries"),
        ("get", "/api/v1/api-keys"),
        ("post", "/api/v1/api-keys"),
        ("delete", "/api/v1/api-keys/{id}"),
        ("get", "/api/v1/audit"),
        ("get", "/api/v1/openapi.json"),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in routes {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    let documented: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |m| m.len()))
        .sum();
    assert_eq!(
        documented,
        routes.len(),
        "a documented route is missing from this test's list"
    );
    for schema in [
        "IntegrationView",
        "SyncRunView",
        "UserView",
        "CreateIntegrationRequest",
        "ErrorBody",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "schema {schema}"
        );
    }
    // Every documented route answers (unauthenticated: 401 or a public answer, never 404/405).
    for (method, path) in routes {
        let path = path.replace("{id}", "1");
        let resp = app
            .http
            .request(
                method.to_uppercase().parse().expect("method"),
                format!("{}{path}", app.base),
            )
            .send()
            .await
            .expect("response");
        assert!(
            ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&resp.status()),
            "{method} {path}: {}",
            resp.status()
        );
    }
}

async fn the_session_cookie_signs_in_and_is_secure_when_configured(backend: Backend) {
    let Some(app) = spawn_app_on(
        backend,
        ServerConfig {
            scheduler: false,
            secure_cookies: true,
            ..ServerConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let resp = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"email": ADMIN.0, "password": ADMIN.1}))
        .send()
        .await
        .expect("login");
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_owned();
    for attribute in [
        "langguard_session=lgs_",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Max-Age=86400",
    ] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    let pair = cookie.split(';').next().expect("name=value");
    let me = app
        .http
        .get(format!("{}/api/v1/auth/me", app.base))
        .header("cookie", pair)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::OK);
    let logout = app
        .http
        .post(format!("{}/api/v1/auth/logout", app.base))
        .header("cookie", pair)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert!(logout
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("Max-Age=0")));
    let me = app
        .http
        .get(format!("{}/api/v1/auth/me", app.base))
        .header("cookie", pair)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
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
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let id = app.add_integration(&admin).await;
    let (status, disabled) = app
        .call(Method::POST, "/api/v1/integrations", Some(&admin), Some(json!({"type": "cloudflare", "name": "Paused", "account_id": ACCOUNT, "api_token": CF_TOKEN, "enabled": false})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut synced = None;
    for _ in 0..100 {
        let (_, runs) = app
            .call(
                Method::GET,
                &format!("/api/v1/integrations/{id}/sync-runs"),
                Some(&admin),
                None,
            )
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
    let (_, runs) = app
        .call(
            Method::GET,
            &format!("/api/v1/integrations/{id}/sync-runs"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(1));
    let paused = disabled["id"].as_i64().expect("id");
    let (_, runs) = app
        .call(
            Method::GET,
            &format!("/api/v1/integrations/{paused}/sync-runs"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(0));
}

/// Everything the Trace Explorer lists, page by page.
async fn all_traces(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    all_pages(app, token, &format!("/api/v1/traces?limit=100&{query}")).await
}

async fn traces_and_metrics_agree_with_an_exact_computation(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let id = app.add_integration(&admin).await;
    app.sync_now(&admin, id).await;

    let traces = all_traces(&app, &admin, "from=2000-01-01T00:00:00Z").await;
    assert_eq!(traces.len(), 350);
    let ids: std::collections::HashSet<_> = traces.iter().map(|t| t["id"].as_i64()).collect();
    assert_eq!(ids.len(), 350, "pages neither skip nor repeat");
    let times: Vec<&str> = traces
        .iter()
        .filter_map(|t| t["created_at"].as_str())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // The exact figures, computed from the rows.
    let count = |f: &dyn Fn(&Value) -> bool| traces.iter().filter(|t| f(t)).count() as i64;
    let errors = count(&|t| t["status"] == "error");
    let cache_hits = count(&|t| t["cached"] == true);
    let rate_limited = count(&|t| t["status_code"] == 429);
    let tokens_in: i64 = traces.iter().filter_map(|t| t["tokens_in"].as_i64()).sum();
    let cost: f64 = traces.iter().filter_map(|t| t["cost_usd"].as_f64()).sum();
    let mut durations: Vec<f64> = traces
        .iter()
        .filter_map(|t| t["duration_ms"].as_f64())
        .collect();
    durations.sort_by(f64::total_cmp);
    let (_, m) = app
        .call(
            Method::GET,
            "/api/v1/metrics?from=2000-01-01T00:00:00Z",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(m["requests"], 350);
    assert_eq!(m["errors"].as_i64(), Some(errors));
    assert_eq!(m["cache_hits"].as_i64(), Some(cache_hits));
    assert_eq!(m["rate_limited"].as_i64(), Some(rate_limited));
    assert_eq!(m["tokens_in"].as_i64(), Some(tokens_in));
    assert!((m["cost_usd"].as_f64().expect("cost") - cost).abs() < 1e-9);
    for (q, key) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
        let exact = durations[(q * (durations.len() - 1) as f64) as usize];
        let got = m["latency_ms"][key].as_f64().expect("percentile");
        assert!(
            (got - exact).abs() <= exact * 0.01 + 1e-9,
            "{key}: {got} vs {exact}"
        );
    }

    // Filters.
    let support = all_traces(&app, &admin, "gateway=support").await;
    assert_eq!(support.len(), 200);
    assert!(support.iter().all(|t| t["gateway"] == "support"));
    let failed = all_traces(&app, &admin, "status=error").await;
    assert_eq!(failed.len() as i64, errors);
    let hits = all_traces(&app, &admin, "cached=true").await;
    assert_eq!(hits.len() as i64, cache_hits);

    // Detail.
    let first = traces[0]["id"].as_i64().expect("id");
    let (status, detail) = app
        .call(
            Method::GET,
            &format!("/api/v1/traces/{first}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["log_id"], traces[0]["log_id"]);
    // The built-in policies' findings on this trace (if any) come with it.
    assert!(detail["violations"].is_array());

    // Time series and breakdowns add up to the totals.
    let (_, series) = app
        .call(
            Method::GET,
            "/api/v1/metrics/timeseries?from=2000-01-01T00:00:00Z&bucket=day",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(series["series"].as_array().map(Vec::len), Some(1));
    assert!(series["series"][0]["group"].is_null());
    let sum = |s: &Value| {
        s["points"]
            .as_array()
            .expect("points")
            .iter()
            .filter_map(|p| p["requests"].as_i64())
            .sum::<i64>()
    };
    assert_eq!(sum(&series["series"][0]), 350);
    let from = traces
        .last()
        .and_then(|t| t["created_at"].as_str())
        .expect("oldest")
        .to_owned();
    let (status, by_gateway) = app
        .call(
            Method::GET,
            &format!("/api/v1/metrics/timeseries?from={from}&bucket=minute&group_by=gateway"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{by_gateway}");
    let groups: Vec<(String, i64)> = by_gateway["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| (s["group"].as_str().unwrap_or_default().to_owned(), sum(s)))
        .collect();
    assert_eq!(
        groups,
        [("prod-chat".to_owned(), 150), ("support".to_owned(), 200)]
    );
    let (_, breakdown) = app
        .call(
            Method::GET,
            "/api/v1/metrics/breakdown?from=2000-01-01T00:00:00Z&group_by=model",
            Some(&admin),
            None,
        )
        .await;
    let total: i64 = breakdown["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["requests"].as_i64())
        .sum();
    assert_eq!(total, 350);

    // Bad input.
    for (path, code) in [
        ("/api/v1/traces?cursor=nonsense", "invalid_cursor"),
        ("/api/v1/traces?limit=0", "invalid_limit"),
        ("/api/v1/traces?status=maybe", "invalid_query"),
        ("/api/v1/metrics/timeseries?bucket=week", "invalid_query"),
        (
            "/api/v1/metrics/timeseries?from=2000-01-01T00:00:00Z&bucket=minute",
            "too_many_buckets",
        ),
        ("/api/v1/metrics/breakdown", "invalid_query"),
    ] {
        let (status, body) = app.call(Method::GET, path, Some(&admin), None).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, code);
    }
}

async fn prometheus_metrics_parse_and_describe_the_import(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let id = app.add_integration(&admin).await;
    app.sync_now(&admin, id).await;
    let resp = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/plain"));
    let text = resp.text().await.expect("body");
    // Every sample line is `name{labels} value` with a langguard_ name and a number.
    let mut names = std::collections::HashSet::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
        let name = series.split('{').next().unwrap_or_default();
        assert!(name.starts_with("langguard_"), "{line}");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
        names.insert(name.to_owned());
    }
    for want in [
        "langguard_sync_runs_total",
        "langguard_interactions_imported_total",
        "langguard_gateway_requests_total",
        "langguard_cloudflare_requests_total",
        "langguard_gateway_lag_seconds",
        "langguard_integration_status",
        "langguard_http_request_duration_seconds_bucket",
        "langguard_syncs_running",
    ] {
        assert!(names.contains(want), "{want} missing");
    }
    assert!(
        text.contains("provider=\"") && text.contains("model=\""),
        "traffic is labelled by provider and model"
    );
    assert!(!text.contains(CF_TOKEN));
}

/// The raw body of a GET, with its content type.
async fn get_text(app: &TestApp, token: &str, path: &str) -> (StatusCode, String, String) {
    let resp = app
        .http
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, resp.text().await.expect("body"))
}

async fn search_sort_export_and_the_monitoring_overview(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let id = app.add_integration(&admin).await;
    app.sync_now(&admin, id).await;
    let all = all_traces(&app, &admin, "from=2000-01-01T00:00:00Z").await;
    assert_eq!(all.len(), 350);
    let count = |f: &dyn Fn(&Value) -> bool| all.iter().filter(|t| f(t)).count();

    // Search and filters through the query string (Cloudflare's emulated traffic has teams
    // in its metadata).
    let errors = all_traces(&app, &admin, "q=status:error").await;
    assert_eq!(errors.len(), count(&|t| t["status"] == "error"));
    let team = all
        .iter()
        .find_map(|t| t["metadata"]["team"].as_str())
        .expect("some metadata has a team")
        .to_owned();
    let in_team = all_traces(&app, &admin, &format!("metadata=team={team}")).await;
    assert_eq!(in_team.len(), count(&|t| t["metadata"]["team"] == team));
    let searched = all_traces(
        &app,
        &admin,
        &format!("q=team:{team}%20NOT%20cached:true&min_duration_ms=100"),
    )
    .await;
    assert_eq!(
        searched.len(),
        count(&|t| t["metadata"]["team"] == team
            && t["cached"] == false
            && t["duration_ms"].as_i64() >= Some(100))
    );
    assert!(!searched.is_empty());

    // Sorting pages through in order, and a cursor keeps its sort.
    let by_cost = all_traces(&app, &admin, "sort=cost&order=asc").await;
    assert_eq!(by_cost.len(), 350);
    let costs: Vec<f64> = by_cost
        .iter()
        .map(|t| t["cost_usd"].as_f64().unwrap_or(-1.0))
        .collect();
    assert!(costs.windows(2).all(|w| w[0] <= w[1]), "cheapest first");
    let (_, page) = app
        .call(
            Method::GET,
            "/api/v1/traces?sort=duration&limit=5",
            Some(&admin),
            None,
        )
        .await;
    let cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
    for (path, status, code) in [
        (
            format!("/api/v1/traces?cursor={cursor}"),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            "/api/v1/traces?q=%22unclosed".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_search",
        ),
        (
            "/api/v1/traces?min_cost=2&max_cost=1".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
        (
            "/api/v1/traces?metadata=novalue".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_metadata_filter",
        ),
        (
            "/api/v1/traces?sort=name".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/traces/export?format=xml".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_format",
        ),
        (
            "/api/v1/traces/export?limit=10".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
    ] {
        let (got, body) = app.call(Method::GET, &path, Some(&admin), None).await;
        assert_error(got, &body, status, code);
    }

    // JSON Lines export: exactly the listing's items, in its order.
    let (status, content_type, body) = get_text(
        &app,
        &admin,
        "/api/v1/traces/export?format=jsonl&from=2000-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines, all);

    // CSV export: a header row, then one row per trace that reads back to the same values.
    let (status, content_type, body) = get_text(
        &app,
        &admin,
        "/api/v1/traces/export?format=csv&status=error",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[..3], ["id", "integration_id", "gateway"]);
    assert!(header.iter().any(|h| h == "metadata"));
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let expected: Vec<&Value> = all.iter().filter(|t| t["status"] == "error").collect();
    assert_eq!(rows.len(), expected.len());
    for (row, item) in rows.iter().zip(&expected) {
        for (column, value) in header.iter().zip(row.iter()) {
            let want = &item[column.as_str()];
            let got: Value = match want {
                Value::Null => {
                    assert_eq!(value, "", "{column}");
                    continue;
                }
                // Text a spreadsheet would run as a formula carries a leading `'` (Workers AI
                // models all start with `@`); the rest is as the API has it.
                Value::String(text) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
                    Value::String(value.strip_prefix('\'').expect("neutralised").to_owned())
                }
                Value::String(_) => Value::String(value.to_owned()),
                // Numbers, booleans and metadata objects are written as their JSON text.
                _ => serde_json::from_str(value).expect("JSON text"),
            };
            assert_eq!(&got, want, "{column}");
        }
    }

    // Monitoring overview.
    let (status, overview) = app
        .call(
            Method::GET,
            "/api/v1/monitoring/overview?from=2000-01-01T00:00:00Z",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{overview}");
    assert_eq!(overview["metrics"]["requests"], 350);
    let integration = &overview["integrations"][0];
    assert_eq!(integration["id"], id);
    assert_eq!(integration["traffic"]["requests"], 350);
    assert_eq!(
        integration["traffic"]["errors"].as_u64(),
        Some(count(&|t| t["status"] == "error") as u64)
    );
    assert!(["healthy", "warning", "critical"].contains(
        &integration["traffic"]["health"]
            .as_str()
            .unwrap_or_default()
    ));
    assert_eq!(integration["interactions_synced"], 350);
    let run = &overview["recent_syncs"][0];
    assert_eq!(run["integration_id"], id);
    assert_eq!(run["integration_name"], integration["name"]);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["items_ingested"], 350);
}

const SLOW_CALLS: &str = r#"package langguard.slow_calls

import rego.v1

violation contains result if {
    some obs in input.trace.observations
    obs.metadata.latency_ms > input.config.max_ms
    result := {
        "type": "slow_call",
        "message": sprintf("%v took %v ms", [obs.model, obs.metadata.latency_ms]),
        "latency_ms": obs.metadata.latency_ms,
    }
}
"#;

async fn policies_violations_and_backtests_end_to_end(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let viewer = app
        .create_user(&admin, "viewer@example.com", "viewer")
        .await;
    let member = app
        .create_user(&admin, "member@example.com", "member")
        .await;

    // The built-ins are there from the first start, with the product's ids and defaults.
    let (_, policies) = app
        .call(Method::GET, "/api/v1/policies", Some(&viewer), None)
        .await;
    let builtins: Vec<(&str, &str, &str)> = policies["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| {
            Some((
                p["builtin_id"].as_str()?,
                p["severity"].as_str()?,
                p["mode"].as_str()?,
            ))
        })
        .collect();
    for want in [
        ("pii-detection", "critical", "enforce"),
        ("credential-surface-discovery", "critical", "enforce"),
        ("latency-health-threshold", "medium", "disabled"),
        ("budget-overrun", "high", "disabled"),
        ("metadata-tagging", "low", "enforce"),
        ("mandatory-trace-logging", "low", "enforce"),
        ("approved-model-version", "high", "disabled"),
    ] {
        assert!(builtins.contains(&want), "{want:?} in {builtins:?}");
    }

    // Broken Rego is refused with the compiler's line and column; so is a wrong package.
    let create = |name: &str, rego: &str| {
        json!({"name": name, "category": "Models & Compliance", "severity": "high",
               "mode": "enforce", "config": {"max_ms": 1500}, "rego": rego})
    };
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(&member),
            Some(create(
                "broken",
                "package langguard.broken\nimport rego.v1\nviolation contains r if {\n  r := \n}\n",
            )),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_rego",
    );
    assert!(body["error"]["line"].as_u64().is_some(), "{body}");
    assert!(body["error"]["column"].as_u64().is_some(), "{body}");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(&member),
            Some(create("other_name", SLOW_CALLS)),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_rego",
    );
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(&viewer),
            Some(create("slow_calls", SLOW_CALLS)),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");

    // Test on a sample input (running Rego takes a Member: Viewers only read).
    let (status, tested) = app
        .call(
            Method::POST,
            "/api/v1/policies/test",
            Some(&member),
            Some(json!({
                "rego": SLOW_CALLS,
                "config": {"max_ms": 100},
                "input": {"trace": {"observations": [
                    {"model": "gpt-4o", "metadata": {"latency_ms": 250}},
                    {"model": "gpt-4o", "metadata": {"latency_ms": 50}}
                ]}}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["violations"].as_array().map(Vec::len), Some(1));
    assert_eq!(tested["violations"][0]["type"], "slow_call");

    let (status, slow) = app
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(&member),
            Some(create("slow_calls", SLOW_CALLS)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{slow}");
    let slow_id = slow["id"].as_i64().expect("id");
    assert_eq!(slow["version"], 1);

    // Import, then let the worker evaluate everything.
    let id = app.add_integration(&admin).await;
    app.sync_now(&admin, id).await;
    policies_caught_up(&app, &admin).await;
    let traces = all_traces(&app, &admin, "from=2000-01-01T00:00:00Z").await;
    assert_eq!(traces.len(), 350);

    // The stored violations are exactly the expected ones.
    let ids_where = |f: &dyn Fn(&Value) -> bool| -> std::collections::BTreeSet<i64> {
        traces
            .iter()
            .filter(|t| f(t))
            .filter_map(|t| t["id"].as_i64())
            .collect()
    };
    let expected_slow = ids_where(&|t| t["duration_ms"].as_i64() > Some(1500));
    assert!(!expected_slow.is_empty() && expected_slow.len() < 350);
    let slow_found = all_violations(&app, &viewer, "policy=slow_calls").await;
    let found_ids: std::collections::BTreeSet<i64> = slow_found
        .iter()
        .filter_map(|v| v["trace_id"].as_i64())
        .collect();
    assert_eq!(found_ids, expected_slow);
    assert_eq!(
        slow_found.len(),
        expected_slow.len(),
        "one finding per slow call"
    );
    assert!(slow_found
        .iter()
        .all(|v| v["type"] == "slow_call" && v["severity"] == "high" && v["status"] == "new"));
    let missing_metadata = ids_where(&|t| {
        t["metadata"]["ai_app_id"].is_null() || t["metadata"]["department"].is_null()
    });
    let tagged: std::collections::BTreeSet<i64> =
        all_violations(&app, &viewer, "policy=metadata-tagging")
            .await
            .iter()
            .filter(|v| v["type"] == "missing_metadata")
            .filter_map(|v| v["trace_id"].as_i64())
            .collect();
    assert_eq!(tagged, missing_metadata);

    // Traces carry their violations; has_violations filters by them.
    let every = all_violations(&app, &viewer, "").await;
    let flagged: std::collections::BTreeSet<i64> = every
        .iter()
        .filter_map(|v| v["trace_id"].as_i64())
        .collect();
    let with = all_traces(&app, &viewer, "has_violations=true").await;
    let without = all_traces(&app, &viewer, "has_violations=false").await;
    assert_eq!(with.len(), flagged.len());
    assert_eq!(with.len() + without.len(), 350);
    let slow_trace = *expected_slow.iter().next().expect("a slow trace");
    let (_, detail) = app
        .call(
            Method::GET,
            &format!("/api/v1/traces/{slow_trace}"),
            Some(&viewer),
            None,
        )
        .await;
    assert!(detail["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .any(|v| v["policy_name"] == "slow_calls"));

    // A backtest of the saved policy finds what live evaluation recorded; one with another
    // threshold finds what that threshold would, and stores nothing.
    let (status, backtest) = app
        .call(
            Method::POST,
            "/api/v1/policies/backtest",
            Some(&member),
            Some(json!({"policy_id": slow_id, "from": "2000-01-01T00:00:00Z", "samples": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{backtest}");
    assert_eq!(backtest["evaluated"], 350);
    assert_eq!(
        backtest["flagged"].as_u64(),
        Some(expected_slow.len() as u64)
    );
    assert_eq!(
        backtest["violations"].as_u64(),
        Some(slow_found.len() as u64)
    );
    assert_eq!(backtest["samples"].as_array().map(Vec::len), Some(3));
    let (_, stricter) = app
        .call(
            Method::POST,
            "/api/v1/policies/backtest",
            Some(&member),
            Some(json!({"rego": SLOW_CALLS, "config": {"max_ms": 3000},
                        "from": "2000-01-01T00:00:00Z"})),
        )
        .await;
    let expected_slower = ids_where(&|t| t["duration_ms"].as_i64() > Some(3000));
    assert_eq!(
        stricter["flagged"].as_u64(),
        Some(expected_slower.len() as u64)
    );
    assert_eq!(
        all_violations(&app, &viewer, "policy=slow_calls")
            .await
            .len(),
        slow_found.len()
    );

    // Working through violations: one, then in bulk; viewers can't; all or nothing.
    let first = slow_found[0]["id"].as_i64().expect("id");
    let (status, acked) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/violations/{first}"),
            Some(&member),
            Some(json!({"status": "acknowledged", "notes": "looking into it"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(
        (acked["status"].as_str(), acked["notes"].as_str()),
        (Some("acknowledged"), Some("looking into it"))
    );
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/violations/{first}"),
            Some(&viewer),
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let rest: Vec<i64> = slow_found[1..]
        .iter()
        .filter_map(|v| v["id"].as_i64())
        .collect();
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/violations/bulk",
            Some(&member),
            Some(json!({"ids": [rest[0], 999_999_999], "status": "resolved"})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, resolved) = app
        .call(
            Method::POST,
            "/api/v1/violations/bulk",
            Some(&member),
            Some(json!({"ids": rest, "status": "resolved", "notes": "expected"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    let (_, page) = app
        .call(
            Method::GET,
            "/api/v1/violations?policy=slow_calls&status=resolved&limit=1",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(page["total"].as_u64(), Some(rest.len() as u64));
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));

    // Monitoring counts them by severity.
    let (_, overview) = app
        .call(
            Method::GET,
            "/api/v1/monitoring/overview?from=2000-01-01T00:00:00Z",
            Some(&viewer),
            None,
        )
        .await;
    let high = &overview["violations"]["by_severity"]["high"];
    assert_eq!(high["total"].as_u64(), Some(slow_found.len() as u64));
    assert_eq!(high["open"], 1);
    assert_eq!(overview["violations"]["policy_lag"], 0);

    // Versions, then deletion with its violations.
    let (status, updated) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/policies/{slow_id}"),
            Some(&member),
            Some(json!({"config": {"max_ms": 2000}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["version"], 2);
    let (_, versions) = app
        .call(
            Method::GET,
            &format!("/api/v1/policies/{slow_id}/versions"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(versions["items"].as_array().map(Vec::len), Some(2));
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/policies/{slow_id}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(
            Method::GET,
            "/api/v1/violations?policy=slow_calls",
            Some(&viewer),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        all_violations(&app, &viewer, "").await.len(),
        every.len() - slow_found.len()
    );
}

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
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let member = app
        .create_user(&admin, "member@example.com", "member")
        .await;
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
    let id = app.add_integration(&admin).await;
    app.sync_now(&admin, id).await;
    policies_caught_up(&app, &admin).await;
    let mut expected = 0;
    for severity in ["critical", "high"] {
        let (_, page) = app
            .call(
                Method::GET,
                &format!("/api/v1/violations?severity={severity}&limit=1"),
                Some(&admin),
                None,
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

async fn bodies_are_fetched_for_policies_searchable_and_shown(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let id = app.add_integration(&admin).await;
    for (bad, code) in [
        (json!({"bodies": "sometimes"}), "invalid_body"),
        (
            json!({"bodies": "sampled", "bodies_sample_percent": 0}),
            "invalid_body",
        ),
        (json!({"bodies_retention_days": 0}), "invalid_body"),
    ] {
        let (status, body) = app
            .call(
                Method::PATCH,
                &format!("/api/v1/integrations/{id}"),
                Some(&admin),
                Some(bad),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"]["code"] == code || body["error"]["code"] == "invalid_body");
    }
    let (status, updated) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/integrations/{id}"),
            Some(&admin),
            Some(json!({"bodies": "all", "bodies_retention_days": 7})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        (
            updated["bodies"].as_str(),
            updated["bodies_retention_days"].as_i64()
        ),
        (Some("all"), Some(7))
    );
    // A policy that sees the request body.
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(&admin),
            Some(json!({"name": "has_prompt", "category": "Audit", "severity": "low",
                "mode": "enforce",
                "rego": "package langguard.has_prompt\nimport rego.v1\nviolation contains r if {\n  input.trace.input != null\n  r := {\"type\": \"prompt_seen\", \"message\": \"the request body was there\"}\n}\n"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    app.sync_now(&admin, id).await;
    policies_caught_up(&app, &admin).await;

    let flagged: std::collections::BTreeSet<i64> =
        all_violations(&app, &admin, "policy=has_prompt")
            .await
            .iter()
            .filter_map(|v| v["trace_id"].as_i64())
            .collect();
    let traces = all_traces(&app, &admin, "").await;
    let mut with_body = std::collections::BTreeSet::new();
    let mut texts: Vec<String> = Vec::new();
    for t in &traces {
        let tid = t["id"].as_i64().expect("id");
        let (_, detail) = app
            .call(
                Method::GET,
                &format!("/api/v1/traces/{tid}"),
                Some(&admin),
                None,
            )
            .await;
        if let Some(input) = detail["input"].as_str() {
            with_body.insert(tid);
            texts.push(format!(
                "{input}\n{}",
                detail["output"].as_str().unwrap_or("")
            ));
        }
    }
    assert!(
        !with_body.is_empty() && with_body.len() < traces.len(),
        "{} of {}",
        with_body.len(),
        traces.len()
    );
    assert_eq!(
        flagged, with_body,
        "the policy saw exactly the stored request bodies"
    );
    // Search looks in the bodies too.
    let word = "semaphore";
    let expected = texts
        .iter()
        .filter(|t| t.to_lowercase().contains(word))
        .count();
    assert!(expected > 0, "the emulator's prompts mention a {word}");
    let found = all_traces(&app, &admin, &format!("q={word}")).await;
    assert_eq!(found.len(), expected);
}

async fn cost_estimates_price_what_cloudflare_did_not(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let viewer = app
        .create_user(&admin, "viewer@example.com", "viewer")
        .await;
    const MODEL: &str = "ft:acme-internal-v7";
    let price = json!({"model": MODEL, "input_per_1k": 0.01, "output_per_1k": 0.03});
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/cost-estimates",
            Some(&viewer),
            Some(price.clone()),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/cost-estimates",
            Some(&admin),
            Some(json!({"model": MODEL, "input_per_1k": -1, "output_per_1k": 0.03})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_price");
    let (status, saved) = app
        .call(
            Method::POST,
            "/api/v1/cost-estimates",
            Some(&admin),
            Some(price),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let (_, list) = app
        .call(Method::GET, "/api/v1/cost-estimates", Some(&viewer), None)
        .await;
    assert_eq!(list["items"][0]["model"], MODEL);
    assert!(list["table"]
        .as_str()
        .is_some_and(|t| t.contains("genai-prices")));

    let id = app.add_integration(&admin).await;
    app.sync_now(&admin, id).await;
    let traces = all_traces(&app, &admin, &format!("model={MODEL}")).await;
    let estimated: Vec<&Value> = traces
        .iter()
        .filter(|t| {
            t["cost_source"] == "estimated" && t["cached"] == false && t["status"] == "success"
        })
        .collect();
    assert!(
        !estimated.is_empty(),
        "the emulator has unpriced calls of {MODEL}"
    );
    for t in estimated {
        let want = t["tokens_in"].as_f64().unwrap_or(0.0) / 1_000.0 * 0.01
            + t["tokens_out"].as_f64().unwrap_or(0.0) / 1_000.0 * 0.03;
        let got = t["cost_usd"].as_f64().expect("priced");
        assert!((got - want).abs() < 1e-9, "{t}");
    }
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/cost-estimates?model={}", MODEL.replace(':', "%3A")),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(
            Method::DELETE,
            "/api/v1/cost-estimates?model=nothing",
            Some(&admin),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}
