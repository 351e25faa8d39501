//! The security review's findings, each as a client reproduces it against the real server: a
//! fresh database, the Cloudflare emulator, and this test binary as the policy sandbox.

#[macro_use]
mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    a_policy_that_explodes_on_real_input_is_quarantined_and_the_server_stays_up,
    running_rego_needs_member_and_backtests_are_limited,
    webhooks_reach_only_public_addresses_unless_allowed,
);

async fn login_from(app: &TestApp, forwarded_for: &str, password: &str) -> StatusCode {
    app.http
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": ADMIN.0, "password": password}))
        .send()
        .await
        .expect("response")
        .status()
}

#[tokio::test]
async fn sign_in_throttling_follows_the_client_behind_a_trusted_proxy_and_never_locks_the_owner_out(
) {
    // Behind a proxy (this test's loopback peer) that LangGuard trusts: each client counts on
    // its own, so an attacker's failures lock out nobody else.
    let app = spawn_app_with(langguard_server::ServerConfig {
        trusted_proxies: vec!["127.0.0.1/32".parse().expect("cidr")],
        ..test_config()
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            login_from(&app, "203.0.113.66", "wrong-password-xx").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_from(&app, "203.0.113.66", ADMIN.1).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the guessing address is throttled"
    );
    assert_eq!(
        login_from(&app, "198.51.100.10", ADMIN.1).await,
        StatusCode::OK,
        "the owner, elsewhere, still signs in"
    );
    // A client can't pick its own address: what it writes left of the proxy's entry is ignored.
    assert_eq!(
        login_from(&app, "198.51.100.10, 203.0.113.66", ADMIN.1).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // An account guessed at from many addresses is slowed down, never locked: its owner signs
    // in, and from a browser that signed in before (its device cookie) without waiting.
    let device = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("x-forwarded-for", "198.51.100.10")
        .json(&json!({"email": ADMIN.0, "password": ADMIN.1}))
        .send()
        .await
        .expect("login")
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("langguard_device="))
        .and_then(|c| c.split(';').next())
        .expect("a device cookie")
        .to_owned();
    for i in 0..langguard_server::auth::ACCOUNT_SLOW_AFTER {
        assert_eq!(
            login_from(&app, &format!("192.0.2.{}", i + 1), "wrong-password-xx").await,
            StatusCode::UNAUTHORIZED
        );
    }
    let with_device = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("x-forwarded-for", "203.0.113.200")
        .header("cookie", &device)
        .json(&json!({"email": ADMIN.0, "password": ADMIN.1}))
        .send()
        .await
        .expect("login");
    assert_eq!(with_device.status(), StatusCode::OK);
    assert_eq!(
        login_from(&app, "203.0.113.201", ADMIN.1).await,
        StatusCode::OK,
        "slowed down, not locked out"
    );
    // A device cookie made up by someone else is no device cookie.
    let forged = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("x-forwarded-for", "203.0.113.202")
        .header("cookie", "langguard_device=AAAA")
        .json(&json!({"email": ADMIN.0, "password": "wrong-password-xx"}))
        .send()
        .await
        .expect("login");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // Without trusted proxies the headers are ignored: changing them doesn't escape the limit.
    let direct = spawn_app().await;
    for i in 0..5 {
        let spoof = format!("192.0.2.{i}");
        assert_eq!(
            login_from(&direct, &spoof, "wrong-password-xx").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_from(&direct, "192.0.2.99", ADMIN.1).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn metrics_ask_for_their_token_when_one_is_set() {
    let app = spawn_app_with(langguard_server::ServerConfig {
        metrics_token: Some("scrape-secret-123".into()),
        ..test_config()
    })
    .await;
    let url = format!("{}/metrics", app.base);
    for token in [None, Some("wrong"), Some("scrape-secret-12")] {
        let mut request = app.http.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("response");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        let body = response.text().await.expect("body");
        assert!(!body.contains("langguard_"), "{body}");
    }
    let response = app
        .http
        .get(&url)
        .bearer_auth("scrape-secret-123")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.expect("body").contains("langguard_"));
}

async fn webhooks_reach_only_public_addresses_unless_allowed(backend: Backend) {
    use langguard_ops::webhook_target::{Lookup, TargetPolicy};
    use langguard_server::webhooks::WebhookSettings;
    // `rebind.example` looks public and resolves to a private address; loopback is allowed
    // (only) for 127.0.0.1, where nothing listens on port 1.
    let lookup = Lookup::Fixed(std::collections::HashMap::from([(
        "rebind.example".to_owned(),
        vec!["10.0.0.5".parse().expect("ip")],
    )]));
    let Some(app) = spawn_app_on(
        backend,
        langguard_server::ServerConfig {
            webhooks: Some(WebhookSettings {
                tick: std::time::Duration::from_millis(20),
                max_retries: 0,
                disable_after: 1_000_000,
                targets: TargetPolicy::parse("127.0.0.1/32").expect("policy"),
                lookup,
                ..WebhookSettings::default()
            }),
            ..test_config()
        },
    )
    .await
    else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    for url in [
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00::1]/x",
        "https://100.64.1.1/x",
        "http://[::1]:8080/api/v1/users",
        "https://0x0a000005/x",
    ] {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/webhooks",
                Some(&admin),
                Some(json!({"url": url, "events": ["policy.violation"]})),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_url");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("LANGGUARD_WEBHOOK_ALLOW_PRIVATE")),
            "{body}"
        );
    }
    let mut hooks = Vec::new();
    for url in ["https://rebind.example/hook", "http://127.0.0.1:1/closed"] {
        let (status, hook) = app
            .call(
                Method::POST,
                "/api/v1/webhooks",
                Some(&admin),
                Some(json!({"url": url, "events": ["policy.violation"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hook}");
        hooks.push(hook["id"].as_i64().expect("id"));
    }
    // The audit log keeps where a webhook points, not the path or query that often carry its
    // credential.
    let (_, audit) = app
        .call(Method::GET, "/api/v1/audit?limit=200", Some(&admin), None)
        .await;
    let created: Vec<&Value> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["action"] == "webhook.created")
        .collect();
    assert_eq!(created.len(), 2, "{audit}");
    assert!(created
        .iter()
        .any(|e| e["details"]["url"] == "https://rebind.example/…"));
    assert!(!audit.to_string().contains("/hook"), "{audit}");

    // A policy that flags every interaction, so there are violations to send.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(&admin),
            Some(json!({"name": "every_call", "category": "Audit", "severity": "low",
                "mode": "enforce",
                "rego": "package langguard.every_call\nimport rego.v1\nviolation contains r if {\n  r := {\"type\": \"seen\", \"message\": \"seen\"}\n}\n"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let integration = app.create_integration(&admin).await;
    app.sync_now(&admin, integration).await;
    policies_caught_up(&app, &admin).await;
    let mut errors = Vec::new();
    for id in &hooks {
        // Hundreds of violations queue hundreds of deliveries, sent oldest first, while the
        // API lists the newest 200: the store is asked for the first attempted one.
        let mut error = None;
        for _ in 0..1_500 {
            error = app
                .store
                .list_deliveries(*id, 100_000)
                .await
                .expect("deliveries")
                .into_iter()
                .find_map(|d| d.error);
            if error.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        errors.push(error.expect("a delivery was attempted"));
    }
    // The name resolved to a private address: refused before any connection.
    assert!(errors[0].contains("private addresses"), "{}", errors[0]);
    assert!(errors[0].contains("rebind.example"), "{}", errors[0]);
    // An allowed address where nothing listens: what failed, not the system's words.
    assert_eq!(errors[1], "could not connect to the receiver");
}

#[tokio::test]
async fn cookie_signed_api_writes_must_come_from_the_ui() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"email": ADMIN.0, "password": ADMIN.1}))
        .send()
        .await
        .expect("login");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    let token = response.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let user = |n: u32| json!({"email": format!("u{n}@example.com"), "password": "a long password 123", "role": "viewer"});
    let post = |headers: &[(&str, String)], n: u32| {
        let mut request = app
            .http
            .post(format!("{}/api/v1/users", app.base))
            .json(&user(n));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send()
    };
    let own_origin = app.base.clone();
    for (n, headers) in [
        vec![("cookie", cookie.clone())],
        vec![
            ("cookie", cookie.clone()),
            ("origin", "https://evil.example".into()),
        ],
        vec![
            ("cookie", cookie.clone()),
            ("sec-fetch-site", "cross-site".into()),
        ],
        vec![
            ("cookie", cookie.clone()),
            ("sec-fetch-site", "same-site".into()),
            ("origin", own_origin.clone()),
        ],
        vec![
            ("cookie", cookie.clone()),
            ("x-csrf-token", "forged".into()),
        ],
        // Credentials a browser adds by itself (behind an auth proxy) are no bearer token.
        vec![
            ("cookie", cookie.clone()),
            ("authorization", "Basic dXNlcjpwYXNz".into()),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let response = post(&headers, n as u32).await.expect("response");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "cross_site_request", "{body}");
    }
    for (n, headers) in [
        vec![("cookie", cookie.clone()), ("origin", own_origin.clone())],
        vec![
            ("cookie", cookie.clone()),
            ("sec-fetch-site", "same-origin".into()),
        ],
        // A bearer token is never sent by a browser on its own: no origin needed.
        vec![
            ("authorization", format!("Bearer {token}")),
            ("origin", "https://elsewhere.example".into()),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let response = post(&headers, 100 + n as u32).await.expect("response");
        assert_eq!(response.status(), StatusCode::CREATED, "{headers:?}");
    }
    // Reading needs nothing more than the cookie.
    let response = app
        .http
        .get(format!("{}/api/v1/users", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn sign_in_returns_only_to_pages_of_the_ui() {
    let app = spawn_app().await;
    let http = no_redirects();
    for (next, want) in [
        ("/%09/evil.example/phish", "/"),
        ("/\t/evil.example/phish", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/%2F%2Fevil.example", "/"),
        ("/traces?q=model%3Agpt-4o", "/traces?q=model%3Agpt-4o"),
    ] {
        let response = http
            .post(format!("{}/login", app.base))
            .form(&[("email", ADMIN.0), ("password", ADMIN.1), ("next", next)])
            .send()
            .await
            .expect("response");
        assert!(
            response.status().is_redirection(),
            "{next}: {}",
            response.status()
        );
        let location = response.headers()["location"].to_str().expect("text");
        assert_eq!(location, want, "next={next:?}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let http = no_redirects();
    let get = |path: &str, token: Option<&str>| {
        let mut request = http.get(format!("{}{path}", app.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    for (path, token, cached) in [
        ("/login", None, false),
        ("/monitoring", None, false),
        ("/api/v1/integrations", Some(admin.as_str()), false),
        ("/api/v1/nope", Some(admin.as_str()), false),
        ("/api/v1/integrations", None, false),
        ("/healthz", None, false),
        ("/static/app.css", None, true),
        ("/favicon.ico", None, true),
    ] {
        let response = get(path, token).await.expect("response");
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().expect("csp");
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "{path}: plain HTTP"
        );
        let cache = h["cache-control"].to_str().expect("text");
        assert_eq!(cache == "no-store", !cached, "{path}: {cache}");
    }
    let favicon = get("/favicon.ico", None).await.expect("favicon");
    assert_eq!(favicon.status(), StatusCode::OK);
    assert_eq!(favicon.headers()["content-type"], "image/svg+xml");

    // Served over HTTPS (a https:// public URL): Secure cookies and HSTS.
    let secure = spawn_app_with(langguard_server::ServerConfig {
        secure_cookies: true,
        ..test_config()
    })
    .await;
    let response = http
        .get(format!("{}/login", secure.base))
        .send()
        .await
        .expect("response");
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

/// Allocates a terabyte when it sees a real interaction; harmless on the empty input of the
/// save-time check.
const REAL_INPUT_BOMB: &str = r#"package langguard.real_input_bomb
import rego.v1
violation contains r if {
    n := count(input.trace.observations) * 1000000000000
    count(numbers.range(1, n)) > 0
    r := {"type": "never", "message": "unreachable"}
}
"#;

/// Asks for a terabyte on any input, `input.config.n` numbers of it.
const RANGE_BOMB: &str = r#"package langguard.range_bomb
import rego.v1
violation contains r if {
    count(numbers.range(1, input.config.n)) > 0
    r := {"type": "never", "message": "unreachable"}
}
"#;

async fn alive(app: &TestApp) {
    let status = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("the server answers")
        .status();
    assert_eq!(status, StatusCode::OK);
}

async fn policy_named(app: &TestApp, token: &str, name: &str) -> Value {
    let (_, list) = app
        .call(Method::GET, "/api/v1/policies", Some(token), None)
        .await;
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no policy {name}"))
}

async fn a_policy_that_explodes_on_real_input_is_quarantined_and_the_server_stays_up(
    backend: Backend,
) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let member = app.login_as(Role::Member).await;
    let (status, hook) = app
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(&admin),
            Some(json!({"url": "https://hooks.example.com/langguard", "events": ["policy.quarantined"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    // The save-time check evaluates on an empty input, where this policy is harmless.
    let (status, saved) = app
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(&member),
            Some(
                json!({"name": "real_input_bomb", "category": "Audit", "severity": "low",
                        "mode": "enforce", "rego": REAL_INPUT_BOMB}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    assert_eq!(saved["quarantine_reason"], Value::Null);

    let integration = app.create_integration(&admin).await;
    let run = app.sync_now(&admin, integration).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    policies_caught_up(&app, &admin).await;
    alive(&app).await;

    let policy = policy_named(&app, &member, "real_input_bomb").await;
    assert_eq!(policy["mode"], "disabled", "{policy}");
    assert_eq!(policy["enabled"], false);
    let reason = policy["quarantine_reason"].as_str().expect("a reason");
    assert!(reason.contains("memory budget"), "{reason}");
    assert!(policy["quarantined_at"].as_str().is_some(), "{policy}");
    // The three interactions that crossed the limit are recorded as evaluation errors; the
    // rest were not evaluated by a quarantined policy.
    let id = policy["id"].as_i64().expect("id");
    let errors = all_violations(&app, &admin, "policy=real_input_bomb").await;
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors
        .iter()
        .all(|v| v["type"] == "policy_evaluation_error"));
    // The other policies evaluated every interaction meanwhile.
    let (_, status) = app
        .call(Method::GET, "/api/v1/policies/status", Some(&admin), None)
        .await;
    assert_eq!(status["lag"], 0, "{status}");

    // Audited, and queued to the webhook subscribed to it.
    let (_, audit) = app
        .call(Method::GET, "/api/v1/audit?limit=200", Some(&admin), None)
        .await;
    let entries: Vec<&Value> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["action"] == "policy.quarantined")
        .collect();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["resource"], format!("policy:{id}"));
    let (_, deliveries) = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/{}/deliveries", hook["id"]),
            Some(&admin),
            None,
        )
        .await;
    let quarantined: Vec<&Value> = deliveries["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|d| d["event"] == "policy.quarantined")
        .collect();
    assert_eq!(quarantined.len(), 1, "{deliveries}");

    // The UI shows why, on the list and on the policy's page.
    let cookie = format!("{}={member}", langguard_server::SESSION_COOKIE);
    for page in ["/policies".to_owned(), format!("/policies/{id}")] {
        let html = app
            .http
            .get(format!("{}{page}", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html");
        assert!(html.contains("Quarantined:"), "{page}");
        assert!(html.contains("memory budget"), "{page}");
    }

    // Turning it back on lifts the quarantine (someone looked at it).
    let (status, back) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/policies/{id}"),
            Some(&member),
            Some(json!({"mode": "permissive"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["quarantine_reason"], Value::Null);
    alive(&app).await;
}

async fn running_rego_needs_member_and_backtests_are_limited(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let viewer = app.login_as(Role::Viewer).await;
    let member = app.login_as(Role::Member).await;
    let read_key = app.api_key(&admin, "reader", "read").await;

    let bomb = json!({"rego": RANGE_BOMB, "input": {"trace": {}}, "config": {"n": 1e12}});
    let backtest = json!({"rego": RANGE_BOMB, "config": {"n": 1e12}});
    for token in [&viewer, &read_key] {
        for (path, body) in [
            ("/api/v1/policies/test", &bomb),
            ("/api/v1/policies/backtest", &backtest),
        ] {
            let (status, body) = app
                .call(Method::POST, path, Some(token), Some(body.clone()))
                .await;
            assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        }
    }
    alive(&app).await;

    // A Member may test; the bomb is an evaluation error with what happened, and the server
    // stays up.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/policies/test",
            Some(&member),
            Some(bomb.clone()),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "policy_limit_exceeded",
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("memory budget")),
        "{body}"
    );
    alive(&app).await;

    // A bomb saved as a policy is refused when it explodes on the empty input of the check.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(&member),
            Some(json!({"name": "eager", "category": "Audit", "severity": "low",
                "rego": "package langguard.eager\nimport rego.v1\nbig := numbers.range(1, 1000000000000)\nviolation contains r if {\n  count(big) > 0\n  r := {\"type\": \"x\", \"message\": \"y\"}\n}\n"})),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "policy_limit_exceeded",
    );
    alive(&app).await;

    // A backtest over history that keeps crossing the limit stops with the reason.
    let integration = app.create_integration(&admin).await;
    app.sync_now(&admin, integration).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/policies/backtest",
            Some(&member),
            Some(
                json!({"rego": RANGE_BOMB, "config": {"n": 1e12}, "from": "2000-01-01T00:00:00Z"}),
            ),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "policy_limit_exceeded",
    );

    // One backtest per user at a time: a second while the first runs gets 429.
    let slow = json!({"rego": "package langguard.slow\nimport rego.v1\nviolation contains r if {\n  xs := numbers.range(1, 300)\n  count([1 | some x in xs; some y in xs; x == y + 100000]) > 0\n  r := {\"type\": \"x\", \"message\": \"y\"}\n}\n",
                      "from": "2000-01-01T00:00:00Z"});
    let start = |token: String| {
        let http = app.http.clone();
        let url = format!("{}/api/v1/policies/backtest", app.base);
        let slow = slow.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let response = http
                .post(url)
                .bearer_auth(token)
                .json(&slow)
                .send()
                .await
                .expect("answered");
            let status = response.status();
            let body = response.json::<Value>().await.expect("JSON");
            (status, body, started.elapsed())
        })
    };
    // Two by the same member at once, one by the admin: the member's second is refused.
    let runs = [
        start(member.clone()),
        start(member.clone()),
        start(admin.clone()),
    ];
    let mut answers = Vec::new();
    for run in runs {
        answers.push(run.await.expect("joined"));
    }
    // How long a whole slow backtest takes here: a cancelled one must free its place sooner.
    let whole = answers
        .iter()
        .filter(|a| a.0 == StatusCode::OK)
        .map(|a| a.2)
        .min()
        .expect("a backtest ran");
    let mut member_statuses = [answers[0].0, answers[1].0];
    member_statuses.sort();
    assert_eq!(
        member_statuses,
        [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS],
        "{answers:?}"
    );
    let refused = if answers[0].0 == StatusCode::OK {
        &answers[1].1
    } else {
        &answers[0].1
    };
    assert_eq!(refused["error"]["code"], "too_many_requests", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already have")),
        "{refused}"
    );
    assert_eq!(answers[2].0, StatusCode::OK, "{:?}", answers[2]);
    // Its place is free again.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/policies/backtest",
            Some(&member),
            Some(json!({"rego": RANGE_BOMB, "config": {"n": 3}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A client that goes away stops its backtest: its place is free again at once.
    let probe = || async {
        app.call(
            Method::POST,
            "/api/v1/policies/backtest",
            Some(&member),
            Some(json!({"rego": RANGE_BOMB, "config": {"n": 3},
                        "from": "2100-01-01T00:00:00Z", "to": "2100-01-02T00:00:00Z"})),
        )
        .await
        .0
    };
    let mut cancelled = false;
    // The client is a bare TCP connection, so going away is exactly closing it.
    let address = app.base.trim_start_matches("http://").to_owned();
    let slow_body = slow.to_string();
    let request = format!(
        "POST /api/v1/policies/backtest HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {member}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{slow_body}",
        slow_body.len()
    );
    for _ in 0..50 {
        let mut client = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        tokio::io::AsyncWriteExt::write_all(&mut client, request.as_bytes())
            .await
            .expect("send");
        // Until the slow backtest holds the member's place (a probe may take it first).
        let mut holding = false;
        let mut waited = 0;
        while waited < 2_000 {
            match probe().await {
                StatusCode::TOO_MANY_REQUESTS => {
                    holding = true;
                    break;
                }
                _ => waited += 1,
            }
        }
        if !holding {
            continue;
        }
        drop(client);
        let gone = std::time::Instant::now();
        while gone.elapsed() < whole / 2 {
            if probe().await == StatusCode::OK {
                cancelled = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        break;
    }
    assert!(
        cancelled,
        "a backtest whose client went away still held its place (a whole one takes {whole:?})"
    );
    alive(&app).await;
}
