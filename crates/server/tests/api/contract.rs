//! The API's promises to every client: 4xx answers with an error body, and an OpenAPI document that covers every route.

use super::*;

on_both_backends!(
    bad_input_gets_a_4xx_with_an_error_body,
    the_openapi_document_covers_every_route,
);

async fn bad_input_gets_a_4xx_with_an_error_body(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let id = app.create_integration(&admin).await;
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
    let list = app.get_ok(&admin, "/api/v1/integrations").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["name"], "Production");
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
        ("get", "/api/v1/integrations/{id}/coverage"),
        ("get", "/api/v1/sync-runs/{id}"),
        ("get", "/api/v1/integrations/{id}/push"),
        ("put", "/api/v1/integrations/{id}/gateways/{gateway}/source"),
        ("post", "/api/v1/integrations/{id}/push/setup"),
        ("get", "/api/v1/integrations/{id}/push-history"),
        ("get", "/api/v1/integrations/{id}/buckets"),
        ("post", "/api/v1/integrations/{id}/buckets"),
        ("delete", "/api/v1/integrations/{id}/buckets/{bucket_id}"),
        (
            "post",
            "/api/v1/integrations/{id}/buckets/{bucket_id}/import",
        ),
        ("post", "/api/v1/ingest/logpush"),
        ("post", "/v1/traces"),
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
        ("post", "/api/v1/webhooks/{id}/test"),
        ("get", "/api/v1/alerts"),
        ("get", "/api/v1/alerts/rules"),
        ("post", "/api/v1/alerts/rules"),
        ("get", "/api/v1/alerts/rules/{id}"),
        ("patch", "/api/v1/alerts/rules/{id}"),
        ("delete", "/api/v1/alerts/rules/{id}"),
        ("post", "/api/v1/alerts/rules/backtest"),
        ("get", "/api/v1/alerts/silences"),
        ("post", "/api/v1/alerts/silences"),
        ("delete", "/api/v1/alerts/silences/{id}"),
        ("get", "/api/v1/budgets"),
        ("post", "/api/v1/budgets"),
        ("get", "/api/v1/budgets/{id}"),
        ("patch", "/api/v1/budgets/{id}"),
        ("delete", "/api/v1/budgets/{id}"),
        ("get", "/api/v1/saved-views"),
        ("post", "/api/v1/saved-views"),
        ("get", "/api/v1/saved-views/{id}"),
        ("patch", "/api/v1/saved-views/{id}"),
        ("delete", "/api/v1/saved-views/{id}"),
        ("get", "/api/v1/people"),
        ("get", "/api/v1/people/keys"),
        ("put", "/api/v1/people/keys"),
        ("get", "/api/v1/people/anomalies"),
        ("get", "/api/v1/people/{kind}/{identity}"),
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
