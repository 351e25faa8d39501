//! Who may do what: roles on every route, sign-in throttling, API keys, the audit log, the session cookie.

use super::*;

on_both_backends!(
    each_route_for_each_role,
    failed_sign_ins_are_throttled_and_health_answers,
    api_keys_are_shown_once_scoped_and_revocable,
    admin_actions_and_failed_sign_ins_are_audited,
    the_session_cookie_signs_in_and_is_secure_when_configured,
);

async fn each_route_for_each_role(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let member = app.login_as(Role::Member).await;
    let viewer = app.login_as(Role::Viewer).await;
    let id = app.create_integration(&admin).await;

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
        (Method::GET, "/api/v1/people".into(), None, false),
        (Method::GET, "/api/v1/people/keys".into(), None, false),
        (Method::GET, "/api/v1/people/anomalies".into(), None, false),
        (
            Method::PUT,
            "/api/v1/people/keys".into(),
            Some(json!({"user_key": "user_id"})),
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
    let users = app.get_ok(&admin, "/api/v1/users").await;
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
    let _ = app.get_ok(&member, "/api/v1/users").await;
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
    let admin = app.login_as(Role::Admin).await;
    let id = app.create_integration(&admin).await;
    let mut keys = std::collections::HashMap::new();
    for scope in ["ingest", "read", "write", "admin"] {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/api-keys",
                Some(&admin),
                Some(if scope == "ingest" {
                    json!({"name": "ingest key", "scope": scope, "expires_in_days": 30, "integration_id": id})
                } else {
                    json!({"name": format!("{scope} key"), "scope": scope, "expires_in_days": 30})
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let key = body["key"].as_str().expect("key shown once").to_owned();
        assert!(key.starts_with("lgr_"));
        assert!(key.starts_with(body["prefix"].as_str().expect("prefix")));
        keys.insert(scope, (key, body["id"].as_i64().expect("id")));
    }
    let list = app.get_ok(&admin, "/api/v1/api-keys").await;
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
    let admin = app.login_as(Role::Admin).await;
    let viewer = app.login_as(Role::Viewer).await;
    let id = app.create_integration(&admin).await;
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

    let audit = app.get_ok(&admin, "/api/v1/audit").await;
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
    let page = app.get_ok(&admin, "/api/v1/audit?limit=2").await;
    let before = page["next_before"].as_i64().expect("more pages");
    let next = app
        .get_ok(&admin, &format!("/api/v1/audit?limit=2&before={before}"))
        .await;
    assert!(next["items"][0]["id"].as_i64().expect("id") < before);
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
