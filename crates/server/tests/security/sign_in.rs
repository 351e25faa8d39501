//! Signing in: throttling that follows the real client and never locks the owner out, and returns only to the UI's own pages.

use super::*;

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

/// A client that shows redirects instead of following them.
pub(crate) fn no_redirects() -> reqwest::Client {
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
