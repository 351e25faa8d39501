//! Webhooks reach only public addresses unless an admin allows more.

use super::*;

on_both_backends!(webhooks_reach_only_public_addresses_unless_allowed,);

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
