//! Every request: the metrics token, cross-site writes refused, security headers on every answer.

use super::*;
use crate::sign_in::no_redirects;

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
