//! Bad input, systematically: thousands of random requests — methods, paths, query strings,
//! headers and bodies (JSON of the wrong shape, huge numbers, deep nesting, invalid UTF-8,
//! forms, garbage) — at every route of the real server, as every kind of caller. None may get
//! a 5xx, and the server answers afterwards. Deterministic: the seed is fixed (set
//! LANGGUARD_FUZZ_SEED to explore others; a failure prints the seed and the request).

mod common;

use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Requests per run: enough to reach every route many times with each kind of caller.
const REQUESTS: usize = 3_000;

/// The web UI's routes (the API's come from its OpenAPI document).
const WEB_ROUTES: &[&str] = &[
    "/",
    "/login",
    "/logout",
    "/monitoring",
    "/traces",
    "/traces/{id}",
    "/traces/{id}/drawer",
    "/traces/views",
    "/traces/views/{id}",
    "/traces/views/{id}/delete",
    "/policies",
    "/policies/new",
    "/policies/test",
    "/policies/backtest",
    "/policies/{id}",
    "/policies/{id}/mode",
    "/violations",
    "/violations/bulk",
    "/violations/{id}",
    "/alerts",
    "/alerts/rules",
    "/alerts/rules/{id}/toggle",
    "/alerts/rules/{id}/delete",
    "/alerts/backtest",
    "/alerts/silences",
    "/alerts/silences/{id}/end",
    "/budgets",
    "/budgets/{id}/toggle",
    "/budgets/{id}/delete",
    "/people",
    "/people/keys",
    "/people/{kind}/{identity}",
    "/integrations",
    "/integrations/new",
    "/integrations/test",
    "/integrations/{id}",
    "/integrations/{id}/sync",
    "/integrations/{id}/delete",
    "/integrations/{id}/push-setup",
    "/integrations/{id}/buckets",
    "/integrations/{id}/buckets/{bucket_id}/import",
    "/integrations/{id}/buckets/{bucket_id}/delete",
    "/integrations/{id}/gateways/{gateway}/source",
    "/settings",
    "/settings/users",
    "/settings/api-keys",
    "/settings/api-keys/{id}/revoke",
    "/settings/audit",
    "/settings/cost-estimates",
    "/settings/cost-estimates/delete",
    "/settings/webhooks",
    "/settings/webhooks/{id}",
    "/settings/webhooks/{id}/test",
    "/static/app.css",
    "/static/app.js",
    "/favicon.ico",
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/traces",
    "/nowhere",
];

const PARAMS: &[&str] = &[
    "from",
    "to",
    "limit",
    "cursor",
    "q",
    "model",
    "provider",
    "gateway",
    "status",
    "cached",
    "integration_id",
    "group_by",
    "bucket",
    "format",
    "sort",
    "order",
    "severity",
    "policy",
    "trace_id",
    "next",
    "range",
    "before",
    "page",
    "min_cost",
    "max_tokens",
    "has_violations",
];

const NASTY: &[&str] = &[
    "",
    "0",
    "-1",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1e308",
    "NaN",
    "null",
    "true",
    "2026-11-30T00:00:00Z",
    "9999-99-99T99:99:99Z",
    "1970-01-01T00:00:00.000000001Z",
    "%00",
    "%ff%fe",
    "%",
    "'; DROP TABLE interactions; --",
    "\"unterminated",
    "NOT (a OR",
    "model:",
    "../../etc/passwd",
    "//evil.example",
    "<script>alert(1)</script>",
    "Ω≈ç√∫",
    "ＡＢＣ",
];

struct Caller {
    name: &'static str,
    token: Option<String>,
    /// A session token sent as the cookie (with its CSRF token, sometimes).
    cookie: Option<String>,
    /// Whose sessions these are: they are opened again every so often, since the requests
    /// sign them out.
    user: Option<i64>,
}

/// A fresh session for `user`, straight in the store (the random requests may have changed
/// passwords); `None` once the requests deleted the user.
async fn session(app: &TestApp, user: i64) -> Option<String> {
    let (token, hash) = langguard_server::auth::new_session_token();
    app.store
        .create_session(&hash, user, i64::MAX / 2)
        .await
        .ok()
        .map(|()| token)
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

fn random_json(rng: &mut SmallRng, depth: u32) -> Value {
    match rng.gen_range(0..if depth > 3 { 7 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen::<i64>()),
        3 => json!([1e308, -1e308, 0.5, u64::MAX as f64][rng.gen_range(0..4)]),
        4 => json!(NASTY[rng.gen_range(0..NASTY.len())]),
        5 => json!("x".repeat(rng.gen_range(0..3_000))),
        6 => json!(PARAMS[rng.gen_range(0..PARAMS.len())]),
        7 => Value::Array(
            (0..rng.gen_range(0..5))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            // Objects with the field names routes take, so shapes are nearly right.
            let keys = [
                "name",
                "email",
                "password",
                "role",
                "rego",
                "input",
                "config",
                "mode",
                "severity",
                "category",
                "url",
                "events",
                "secret",
                "account_id",
                "api_token",
                "type",
                "scope",
                "expires_in_days",
                "integration_id",
                "status",
                "notes",
                "ids",
                "policy_id",
                "from",
                "to",
                "samples",
                "enabled",
                "sync_interval_minutes",
                "lookback_days",
                "trailing_window_minutes",
                "model",
                "input_cost_per_1k",
                "output_cost_per_1k",
                "bodies",
                "gateway",
                "source",
                "otlp",
                "logpush",
                "count",
                "content_type",
                "endpoint",
                "bucket",
                "prefix",
                "access_key_id",
                "secret_access_key",
            ];
            Value::Object(
                (0..rng.gen_range(0..7))
                    .map(|_| {
                        (
                            keys[rng.gen_range(0..keys.len())].to_owned(),
                            random_json(rng, depth + 1),
                        )
                    })
                    .collect(),
            )
        }
    }
}

fn random_body(rng: &mut SmallRng) -> (Option<&'static str>, Vec<u8>) {
    match rng.gen_range(0..9) {
        0 => (None, Vec::new()),
        1..=3 => (
            Some("application/json"),
            random_json(rng, 0).to_string().into_bytes(),
        ),
        4 => (
            Some("application/json"),
            nested(rng.gen_range(100..5_000)).into_bytes(),
        ),
        5 => (
            Some("application/json"),
            (0..rng.gen_range(0..200))
                .map(|_| rng.gen::<u8>())
                .collect(),
        ),
        6 => {
            let pairs: Vec<String> = (0..rng.gen_range(0..6))
                .map(|_| {
                    format!(
                        "{}={}",
                        [
                            "csrf", "email", "password", "name", "rego", "mode", "next", "ids",
                            "events", "url", "role", "sample", "config"
                        ][rng.gen_range(0..13)],
                        urlencode(NASTY[rng.gen_range(0..NASTY.len())])
                    )
                })
                .collect();
            (
                Some("application/x-www-form-urlencoded"),
                pairs.join("&").into_bytes(),
            )
        }
        7 => (Some("text/plain"), b"{\"name\": \"x\"}".to_vec()),
        _ => (
            Some("application/json"),
            // Past the body limit.
            format!("{{\"name\": \"{}\"}}", "y".repeat(70 * 1024)).into_bytes(),
        ),
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn random_path(rng: &mut SmallRng, template: &str, ids: &[String]) -> String {
    let mut path = template.to_owned();
    while let Some(start) = path.find('{') {
        let Some(end) = path[start..].find('}') else {
            break;
        };
        let value = match rng.gen_range(0..4) {
            0 => ids[rng.gen_range(0..ids.len())].clone(),
            1 => rng.gen_range(-5i64..50).to_string(),
            2 => urlencode(NASTY[rng.gen_range(0..NASTY.len())]),
            _ => "99999999999999999999".to_owned(),
        };
        path.replace_range(start..start + end + 1, &value);
    }
    if rng.gen_bool(0.6) {
        let query: Vec<String> = (0..rng.gen_range(1..6))
            .map(|_| {
                let value = if rng.gen_bool(0.7) {
                    urlencode(NASTY[rng.gen_range(0..NASTY.len())])
                } else {
                    // Raw, not always valid percent-encoding.
                    ["%zz", "a%2", "%C3%28", "+", "&&", "=="][rng.gen_range(0..6)].to_owned()
                };
                format!("{}={value}", PARAMS[rng.gen_range(0..PARAMS.len())])
            })
            .collect();
        path.push('?');
        path.push_str(&query.join("&"));
    }
    path
}

#[tokio::test]
async fn random_requests_to_every_route_never_get_a_5xx() {
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let member = app.login_as(Role::Member).await;
    let viewer = app.login_as(Role::Viewer).await;
    let integration = app.create_integration(&admin).await;
    app.sync_now(&admin, integration).await;
    let keys = [
        app.api_key(&admin, "read", "read").await,
        app.api_key(&admin, "write", "write").await,
    ];
    // The pushers' kind of key: it reaches the push routes and nothing else.
    let (_, ingest) = app
        .call(
            Method::POST,
            "/api/v1/api-keys",
            Some(&admin),
            Some(json!({"name": "ingest", "scope": "ingest", "expires_in_days": 30, "integration_id": integration})),
        )
        .await;
    let ingest = ingest["key"].as_str().expect("ingest key").to_owned();
    // Things for the random requests to find, change and delete — none of them a caller's
    // own user or key (ids from 4 on; the callers' are 1 to 3).
    let mut targets: Vec<String> = vec![integration.to_string()];
    for n in 0..3 {
        let (_, user) = app
            .call(Method::POST, "/api/v1/users", Some(&admin), Some(json!({"email": format!("t{n}@example.com"), "password": "throwaway password 1", "role": "viewer"})))
            .await;
        // Its id, not its text, is what the random paths need.
        let (_, key) = app
            .call(
                Method::POST,
                "/api/v1/api-keys",
                Some(&admin),
                Some(json!({"name": format!("t{n}"), "scope": "read", "expires_in_days": 30})),
            )
            .await;
        let (_, policy) = app
            .call(Method::POST, "/api/v1/policies", Some(&admin), Some(json!({"name": format!("target_{n}"), "category": "Audit", "severity": "low", "rego": format!("package langguard.target_{n}\nimport rego.v1\nviolation contains r if {{\n  r := {{\"type\": \"t\", \"message\": \"m\"}}\n}}\n")})))
            .await;
        let (_, hook) = app
            .call(Method::POST, "/api/v1/webhooks", Some(&admin), Some(json!({"url": format!("https://hooks{n}.example.com/x"), "events": ["sync.failed"]})))
            .await;
        for made in [&user, &key, &policy, &hook] {
            if let Some(id) = made["id"].as_i64().filter(|id| *id > 3) {
                targets.push(id.to_string());
            }
        }
    }
    targets.extend(["7", "42", "150", "349"].map(str::to_owned));
    let ids = targets;
    let mut callers = [
        Caller {
            name: "anonymous",
            token: None,
            cookie: None,
            user: None,
        },
        Caller {
            name: "admin",
            token: Some(admin.clone()),
            cookie: None,
            user: Some(1),
        },
        Caller {
            name: "member",
            token: Some(member),
            cookie: None,
            user: Some(2),
        },
        Caller {
            name: "viewer",
            token: Some(viewer),
            cookie: None,
            user: Some(3),
        },
        Caller {
            name: "read key",
            token: Some(keys[0].clone()),
            cookie: None,
            user: None,
        },
        Caller {
            name: "write key",
            token: Some(keys[1].clone()),
            cookie: None,
            user: None,
        },
        Caller {
            name: "admin by cookie",
            token: None,
            cookie: Some(String::new()),
            user: Some(1),
        },
        Caller {
            name: "member by cookie",
            token: None,
            cookie: Some(String::new()),
            user: Some(2),
        },
        Caller {
            name: "viewer by cookie",
            token: None,
            cookie: Some(String::new()),
            user: Some(3),
        },
        Caller {
            name: "ingest key",
            token: Some(ingest),
            cookie: None,
            user: None,
        },
        Caller {
            name: "garbage token",
            token: Some("lgr_not-a-key-at-all".into()),
            cookie: None,
            user: None,
        },
    ];

    // Every API route and method, from the OpenAPI document the server serves.
    let (status, openapi) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // Each route with the methods it takes: most requests use one of them (else nearly all
    // would stop at 405), the rest any method.
    let mut routes: Vec<(String, Vec<Method>)> = openapi["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .map(|m| {
                    m.keys()
                        .filter_map(|k| Method::from_bytes(k.to_uppercase().as_bytes()).ok())
                        .collect()
                })
                .unwrap_or_default();
            (path.clone(), methods)
        })
        .collect();
    assert!(routes.len() > 30, "{routes:?}");
    routes.extend(
        WEB_ROUTES
            .iter()
            .map(|r| ((*r).to_owned(), vec![Method::GET, Method::POST])),
    );

    let seed: u64 = std::env::var("LANGGUARD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1a6_6a7d);
    let mut rng = SmallRng::seed_from_u64(seed);
    let methods = [
        Method::GET,
        Method::POST,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
        Method::HEAD,
        Method::OPTIONS,
    ];
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    let mut handled = std::collections::BTreeMap::<&str, bool>::new();
    for n in 0..REQUESTS {
        if n % 100 == 0 {
            // The requests sign sessions out and change passwords: the callers sign in again.
            for caller in callers.iter_mut() {
                if let Some(fresh) = match caller.user {
                    Some(user) => session(&app, user).await,
                    None => None,
                } {
                    if caller.cookie.is_some() {
                        caller.cookie = Some(fresh);
                    } else {
                        caller.token = Some(fresh);
                    }
                }
            }
        }
        let caller = &callers[rng.gen_range(0..callers.len())];
        let (template, allowed) = &routes[rng.gen_range(0..routes.len())];
        let path = random_path(&mut rng, template, &ids);
        let method = if !allowed.is_empty() && rng.gen_bool(0.85) {
            allowed[rng.gen_range(0..allowed.len())].clone()
        } else {
            methods[rng.gen_range(0..methods.len())].clone()
        };
        let (content_type, mut body) = random_body(&mut rng);
        // Signed in by cookie, half the requests carry the session's real CSRF token (in the
        // form, or as htmx's header), so the handlers behind the check are reached too.
        let csrf = caller
            .cookie
            .as_deref()
            .filter(|_| rng.gen_bool(0.5))
            .map(langguard_server::auth::csrf_token);
        if let (Some(token), Some("application/x-www-form-urlencoded")) = (&csrf, content_type) {
            let mut with_token = format!("csrf={token}&").into_bytes();
            with_token.extend_from_slice(&body);
            body = with_token;
        }
        let mut request = app
            .http
            .request(method.clone(), format!("{}{path}", app.base));
        if let Some(token) = &caller.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(session) = &caller.cookie {
            request = request.header(
                "cookie",
                format!("{}={session}", langguard_server::SESSION_COOKIE),
            );
        }
        if let Some(token) = &csrf {
            request = request.header("x-csrf-token", token.as_str());
        }
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        for (name, values) in [
            (
                "x-forwarded-for",
                &["1.2.3.4", "garbage", "::1, 10.0.0.1"][..],
            ),
            (
                "origin",
                &["https://evil.example", "null", "http://127.0.0.1"][..],
            ),
            ("x-csrf-token", &["", "forged"][..]),
            ("sec-fetch-site", &["cross-site", "same-origin", "none"][..]),
            ("hx-request", &["true"][..]),
            ("accept", &["text/html", "*/*", "application/json"][..]),
        ] {
            if rng.gen_bool(0.2) {
                request = request.header(name, values[rng.gen_range(0..values.len())]);
            }
        }
        let response = request.body(body.clone()).send().await.unwrap_or_else(|e| {
            panic!(
                "seed {seed} request {n}: {method} {path} as {}: no answer: {e}",
                caller.name
            )
        });
        let status = response.status();
        *by_status.entry(status.as_u16()).or_default() += 1;
        let reached = !matches!(status.as_u16(), 401 | 403 | 404 | 405);
        *handled.entry(template.as_str()).or_default() |= reached;
        if status.is_server_error() {
            let text = response.text().await.unwrap_or_default();
            panic!(
                "seed {seed} request {n}: {method} {path} as {} with {:?} body {:?} → {status}: {text}",
                caller.name,
                content_type,
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
    }
    eprintln!("statuses over {REQUESTS} requests: {by_status:?}");
    // The requests got past routing and roles into the handlers of nearly every route (a few
    // answer 404 to anything random: unknown paths, ids that exist for no one).
    let missed: Vec<&str> = handled
        .iter()
        .filter(|(_, reached)| !**reached)
        .map(|(route, _)| *route)
        .collect();
    eprintln!("routes no request got into: {missed:?}");
    assert!(
        missed.len() * 10 <= handled.len(),
        "only {} of {} routes were reached past routing and roles: missed {missed:?}",
        handled.len() - missed.len(),
        handled.len()
    );
    // Still alive, still answering, and still reading its own data (the random requests may
    // have signed the admin out or changed passwords, so the store is asked directly).
    for path in ["/healthz", "/readyz"] {
        let (status, _) = app.call(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let users = app.store.count_users().await;
    assert!(users.is_ok_and(|n| n >= 1));
}
