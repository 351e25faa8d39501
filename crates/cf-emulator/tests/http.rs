//! End-to-end behaviour of the emulator's HTTP API, driven through the axum router in-process
//! (and once over real TCP for the cut-connection fault).

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use langguard_cf_emulator::{
    Direction, Emulator, EmulatorConfig, Faults, SeedSpec, TokenSpec, TokenStatus,
};
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;
use tower::ServiceExt;

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "test-token";
const LOGS: &str =
    "/client/v4/accounts/0123456789abcdef0123456789abcdef/ai-gateway/gateways/prod-chat/logs";
const SEEDED: usize = 120;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

fn emulator_with(config: EmulatorConfig) -> Emulator {
    let emulator = Emulator::new(config);
    emulator.add_account(ACCOUNT);
    emulator.add_token(TOKEN, TokenSpec::user(&[ACCOUNT]));
    emulator.add_gateway(ACCOUNT, "prod-chat");
    emulator.seed_logs(
        ACCOUNT,
        "prod-chat",
        SeedSpec {
            count: SEEDED,
            from: datetime!(2026-08-12 00:00 UTC),
            to: datetime!(2026-08-13 00:00 UTC),
            seed: 7,
        },
    );
    emulator
}

fn emulator() -> Emulator {
    emulator_with(EmulatorConfig::default())
}

fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

async fn send(
    router: &Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Body) {
    let mut request = Request::builder().uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::empty()).expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body)
}

async fn call_as(router: &Router, uri: &str, token: &str) -> Reply {
    let bearer = format!("Bearer {token}");
    let (status, headers, body) = send(router, uri, &[("authorization", &bearer)]).await;
    let bytes = body.collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

/// `method uri` with a JSON `body` (none when empty) as `token`: the status and the JSON reply
/// (`null` when it isn't JSON).
async fn call_with(
    router: &Router,
    method: &str,
    token: &str,
    uri: String,
    body: &'static str,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(if body.is_empty() {
            Body::empty()
        } else {
            Body::from(body)
        })
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
    )
}

async fn call(router: &Router, uri: &str) -> Reply {
    call_as(router, uri, TOKEN).await
}

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

fn assert_failure(reply: &Reply, status: u16, code: u64) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.body["success"], false);
    assert_eq!(reply.body["errors"][0]["code"], code, "{}", reply.body);
    assert_eq!(reply.body["messages"], json!([]));
    assert_eq!(reply.body["result"], Value::Null);
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["result"]
        .as_array()
        .expect("result array")
        .iter()
        .map(|log| log["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn list_logs_uses_the_v4_envelope_and_result_info() {
    let router = emulator().router();
    let reply = call(&router, LOGS).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(header(&reply, "content-type"), "application/json");
    assert_eq!(reply.body["success"], true);
    assert_eq!(reply.body["errors"], json!([]));
    assert_eq!(reply.body["messages"], json!([]));
    assert_eq!(
        reply.body["result_info"],
        json!({"page": 1, "per_page": 20, "count": 20, "total_count": SEEDED})
    );
    let rows = reply.body["result"].as_array().expect("rows");
    // Default direction is desc.
    let created: Vec<&str> = rows
        .iter()
        .map(|r| r["created_at"].as_str().unwrap_or(""))
        .collect();
    assert!(created.windows(2).all(|pair| pair[0] >= pair[1]));
    for row in rows {
        for field in [
            "id",
            "created_at",
            "provider",
            "model",
            "path",
            "duration",
            "success",
            "cached",
            "status_code",
            "tokens_in",
            "tokens_out",
            "custom_cost",
            "request_content_type",
            "response_content_type",
            "step",
        ] {
            assert!(row.get(field).is_some(), "{field} missing in {row}");
        }
        let created_at = row["created_at"].as_str().expect("created_at");
        assert_eq!(created_at.len(), 24, "{created_at}");
        assert!(created_at.ends_with('Z'));
        if let Some(metadata) = row.get("metadata") {
            let text = metadata.as_str().expect("metadata is a JSON string");
            serde_json::from_str::<Value>(text).expect("metadata parses");
        }
        if row.get("cost").is_some() {
            assert!(row["cost"].is_number());
        }
    }

    let full = call(&router, &format!("{LOGS}?per_page=50&page=3")).await;
    assert_eq!(
        full.body["result_info"],
        json!({"page": 3, "per_page": 50, "count": SEEDED - 100, "total_count": SEEDED})
    );
}

#[tokio::test]
async fn per_page_out_of_range_is_a_validation_error_not_a_clamp() {
    let router = emulator().router();
    for bad in ["51", "100", "0", "abc"] {
        let reply = call(&router, &format!("{LOGS}?per_page={bad}")).await;
        assert_failure(&reply, 400, 7001);
        assert_eq!(
            reply.body["errors"][0],
            json!({"code": 7001, "message": "Input Validation Error", "path": ["query", "per_page"]})
        );
    }
    let ok = call(&router, &format!("{LOGS}?per_page=1")).await;
    assert_eq!(ok.body["result_info"]["count"], 1);
}

#[tokio::test]
async fn a_page_past_the_end_is_empty_not_an_error() {
    let router = emulator().router();
    let reply = call(&router, &format!("{LOGS}?per_page=50&page=4")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["result"], json!([]));
    assert_eq!(reply.body["result_info"]["count"], 0);
    assert_eq!(reply.body["result_info"]["total_count"], SEEDED);
}

#[tokio::test]
async fn json_filters_apply_and_the_dotted_sdk_form_is_ignored() {
    let router = emulator().router();
    let filters = r#"[{"key":"provider","operator":"eq","value":["anthropic"]}]"#;
    let filtered = call(
        &router,
        &format!("{LOGS}?per_page=50&filters={}", encode(filters)),
    )
    .await;
    assert_eq!(filtered.status, StatusCode::OK);
    let total = filtered.body["result_info"]["total_count"]
        .as_u64()
        .expect("total");
    assert!(total > 0 && total < SEEDED as u64, "{total}");
    for row in filtered.body["result"].as_array().expect("rows") {
        assert_eq!(row["provider"], "anthropic");
    }

    let dotted = call(
        &router,
        &format!("{LOGS}?filters.key=provider&filters.operator=eq&filters.value=anthropic"),
    )
    .await;
    assert_eq!(dotted.body["result_info"]["total_count"], SEEDED);

    let unknown_key = r#"[{"key":"prompts.prompt_id","operator":"eq","value":["x"]}]"#;
    let reply = call(&router, &format!("{LOGS}?filters={}", encode(unknown_key))).await;
    assert_failure(&reply, 400, 7001);
    assert_eq!(reply.body["errors"][0]["path"], json!(["query", "filters"]));
}

#[tokio::test]
async fn importer_style_created_at_paging_visits_every_log_once_in_order() {
    let emulator = emulator();
    // Two late logs sharing one millisecond with each other.
    emulator.append_logs(
        ACCOUNT,
        "prod-chat",
        2,
        datetime!(2026-08-12 12:00:00.123 UTC),
    );
    let router = emulator.router();
    let cursor = "2026-08-12T06:00:00.000Z";
    let filters = format!(r#"[{{"key":"created_at","operator":"gt","value":["{cursor}"]}}]"#);
    let mut seen = Vec::new();
    for page in 1.. {
        let reply = call(
            &router,
            &format!(
                "{LOGS}?per_page=7&page={page}&order_by=created_at&order_by_direction=asc&filters={}",
                encode(&filters)
            ),
        )
        .await;
        let page_ids = ids(&reply);
        if page_ids.is_empty() {
            break;
        }
        seen.extend(page_ids);
    }
    let cursor_ms = OffsetDateTime::parse(cursor, &time::format_description::well_known::Rfc3339)
        .expect("cursor");
    let all = emulator.log_ids(ACCOUNT, "prod-chat");
    assert_eq!(all.len(), SEEDED + 2);
    let reply = call(
        &router,
        &format!("{LOGS}?per_page=50&order_by_direction=asc"),
    )
    .await;
    assert_eq!(reply.body["result_info"]["total_count"], SEEDED + 2);
    // `log_ids` is in (created_at, id) order: the expected result is its tail after the cursor.
    let expected: Vec<String> = {
        let mut rows = Vec::new();
        for page in 1..=3 {
            let r = call(
                &router,
                &format!("{LOGS}?per_page=50&page={page}&direction=asc"),
            )
            .await;
            for row in r.body["result"].as_array().expect("rows") {
                let created = OffsetDateTime::parse(
                    row["created_at"].as_str().expect("created_at"),
                    &time::format_description::well_known::Rfc3339,
                )
                .expect("timestamp");
                if created > cursor_ms {
                    rows.push(row["id"].as_str().expect("id").to_owned());
                }
            }
        }
        rows
    };
    assert!(!expected.is_empty());
    assert_eq!(seen, expected);
    let tail: Vec<String> = all[all.len() - expected.len()..].to_vec();
    assert_eq!(seen, tail);
}

#[tokio::test]
async fn ordering_validation_and_deprecated_parameters() {
    let router = emulator().router();
    let reply = call(
        &router,
        &format!("{LOGS}?order_by=provider&order_by_direction=asc&per_page=50"),
    )
    .await;
    let providers: Vec<&str> = reply.body["result"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["provider"].as_str().unwrap_or(""))
        .collect();
    assert!(
        providers.windows(2).all(|pair| pair[0] <= pair[1]),
        "{providers:?}"
    );

    assert_failure(
        &call(&router, &format!("{LOGS}?order_by=cost")).await,
        400,
        7001,
    );
    assert_failure(
        &call(&router, &format!("{LOGS}?order_by_direction=up")).await,
        400,
        7001,
    );

    let window = call(
        &router,
        &format!(
            "{LOGS}?per_page=50&start_date={}&end_date={}&success=true",
            encode("2026-08-12T06:00:00Z"),
            encode("2026-08-12T12:00:00Z")
        ),
    )
    .await;
    assert_eq!(window.status, StatusCode::OK);
    for row in window.body["result"].as_array().expect("rows") {
        let created = row["created_at"].as_str().expect("created_at");
        assert!(("2026-08-12T06:00:00.000Z"..="2026-08-12T12:00:00.000Z").contains(&created));
        assert_eq!(row["success"], true);
    }
}

#[tokio::test]
async fn authentication_and_authorization_errors_use_cloudflare_codes() {
    let emulator = emulator();
    emulator.add_account("other-account");
    let mut no_permission = TokenSpec::user(&[ACCOUNT]);
    no_permission.ai_gateway_read = false;
    emulator.add_token("no-permission", no_permission);
    emulator.add_token("other-account-only", TokenSpec::user(&["other-account"]));
    emulator.add_token("ghost-account", TokenSpec::user(&["never-created"]));
    let mut disabled = TokenSpec::user(&[ACCOUNT]);
    disabled.status = TokenStatus::Disabled;
    emulator.add_token("disabled", disabled);
    let mut expired = TokenSpec::user(&[ACCOUNT]);
    expired.status = TokenStatus::Expired;
    emulator.add_token("expired", expired);
    emulator.add_token("revoked", TokenSpec::user(&[ACCOUNT]));
    emulator.revoke_token("revoked");
    emulator.add_token("owned", TokenSpec::account_owned(ACCOUNT));
    let router = emulator.router();

    // Missing and garbled headers.
    let (status, _, body) = send(&router, LOGS, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value =
        serde_json::from_slice(&body.collect().await.expect("body").to_bytes()).expect("json");
    assert_eq!(
        body["errors"][0],
        json!({"code": 6003, "message": "Invalid request headers",
               "error_chain": [{"code": 6111, "message": "Invalid format for Authorization header"}]})
    );
    let (status, _, _) = send(&router, LOGS, &[("authorization", "Token abc")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(&router, "/client/v4/user/tokens/verify", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Unknown / revoked / non-active tokens on resource routes.
    for token in ["unknown", "revoked", "disabled", "expired"] {
        let reply = call_as(&router, LOGS, token).await;
        assert_failure(&reply, 403, 9109);
        assert_eq!(reply.body["errors"][0]["message"], "Invalid access token");
    }
    // Permission and account scope.
    for token in ["no-permission", "other-account-only"] {
        let reply = call_as(&router, LOGS, token).await;
        assert_failure(&reply, 403, 10000);
        assert_eq!(reply.body["errors"][0]["message"], "Authentication error");
    }
    let ghost = "/client/v4/accounts/never-created/ai-gateway/gateways";
    assert_failure(&call_as(&router, ghost, "ghost-account").await, 403, 10000);
    assert_failure(&call(&router, ghost).await, 403, 10000);

    // Verify routes.
    let fixture = json!({"success": false, "errors": [{"code": 1000, "message": "Invalid API Token"}],
                         "messages": [], "result": null});
    for token in ["unknown", "revoked", "owned"] {
        let reply = call_as(&router, "/client/v4/user/tokens/verify", token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body, fixture);
    }
    let verify = call(&router, "/client/v4/user/tokens/verify").await;
    assert_eq!(verify.status, StatusCode::OK);
    assert_eq!(
        verify.body["messages"],
        json!([{"code": 10000, "message": "This API Token is valid and active", "type": null}])
    );
    assert_eq!(verify.body["result"]["status"], "active");
    let id = verify.body["result"]["id"].as_str().expect("id");
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    for field in ["not_before", "expires_on"] {
        assert!(verify.body["result"][field]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
    }
    let account_verify = format!("/client/v4/accounts/{ACCOUNT}/tokens/verify");
    assert_eq!(
        call_as(&router, &account_verify, "owned").await.status,
        StatusCode::OK
    );
    assert_eq!(
        call_as(&router, &account_verify, TOKEN).await.status,
        StatusCode::UNAUTHORIZED
    );
    let disabled = call_as(&router, "/client/v4/user/tokens/verify", "disabled").await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert_eq!(disabled.body["result"]["status"], "disabled");
    let expired = call_as(&router, "/client/v4/user/tokens/verify", "expired").await;
    assert_eq!(expired.body["result"]["status"], "expired");

    // Lookups.
    let gateways = format!("/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways");
    assert_failure(
        &call(&router, &format!("{gateways}/missing")).await,
        404,
        7002,
    );
    assert_failure(
        &call(&router, &format!("{gateways}/missing/logs")).await,
        404,
        7002,
    );
    assert_failure(
        &call(&router, &format!("{LOGS}/01KZTM03BRZGWSPE1FRFKS26YR")).await,
        404,
        7002,
    );
    let no_route = call(&router, "/client/v4/accounts/x/ai-gateway/nothing").await;
    assert_failure(&no_route, 404, 7000);
    assert_eq!(
        no_route.body["errors"][0]["message"],
        "No route for that URI"
    );
}

#[tokio::test]
async fn gateways_list_and_get() {
    let emulator = emulator();
    emulator.add_gateway(ACCOUNT, "default");
    let router = emulator.router();
    let gateways = format!("/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways");
    let reply = call(&router, &gateways).await;
    assert_eq!(
        reply.body["result_info"],
        json!({"page": 1, "per_page": 20, "count": 2, "total_count": 2})
    );
    assert_eq!(reply.body["result"][0]["id"], "prod-chat");
    assert_eq!(reply.body["result"][1]["is_default"], true);
    assert_eq!(
        call(&router, &format!("{gateways}?per_page=100"))
            .await
            .status,
        StatusCode::OK
    );
    assert_failure(
        &call(&router, &format!("{gateways}?per_page=101")).await,
        400,
        7001,
    );
    let one = call(&router, &format!("{gateways}/default")).await;
    assert_eq!(one.body["result"]["id"], "default");
    assert!(one.body.get("result_info").is_none());
}

#[tokio::test]
async fn log_detail_and_bodies() {
    let emulator = emulator();
    let router = emulator.router();
    let (mut stored, mut missing) = (0, 0);
    for id in emulator.log_ids(ACCOUNT, "prod-chat") {
        let detail = call(&router, &format!("{LOGS}/{id}")).await;
        assert_eq!(detail.status, StatusCode::OK);
        for field in [
            "request_head",
            "request_head_complete",
            "request_size",
            "response_head",
            "response_head_complete",
            "response_size",
        ] {
            assert!(detail.body["result"].get(field).is_some(), "{field}");
        }
        let bearer = format!("Bearer {TOKEN}");
        let (status, headers, body) = send(
            &router,
            &format!("{LOGS}/{id}/response"),
            &[("authorization", &bearer)],
        )
        .await;
        let bytes = body.collect().await.expect("body").to_bytes();
        if status == StatusCode::OK {
            stored += 1;
            let content_type = headers["content-type"].to_str().expect("ascii");
            assert!(content_type == "application/json" || content_type == "text/event-stream");
            // Raw body, no envelope.
            if content_type == "application/json" {
                let body: Value = serde_json::from_slice(&bytes).expect("json body");
                assert!(body.get("result_info").is_none());
            }
            let request = call(&router, &format!("{LOGS}/{id}/request")).await;
            assert!(
                request.body.get("model").is_some()
                    || request.body.get("messages").is_some()
                    || request.body.get("contents").is_some()
            );
        } else {
            missing += 1;
            let body: Value = serde_json::from_slice(&bytes).expect("json error");
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert_eq!(body["errors"][0]["code"], 7002);
            assert_eq!(detail.body["result"]["request_head"], "");
        }
    }
    assert!(
        stored > 0 && missing > 0,
        "stored {stored}, missing {missing}"
    );
    let stats = emulator.stats();
    assert_eq!(stats.get_log_calls, SEEDED as u64);
    assert_eq!(stats.body_calls, SEEDED as u64 + stored);
}

#[tokio::test]
async fn rate_limit_blocks_with_headers_until_the_window_ends() {
    let emulator = emulator_with(EmulatorConfig {
        rate_limit_quota: 3,
        rate_limit_window: Duration::from_secs(300),
        ..EmulatorConfig::default()
    });
    let router = emulator.router();
    for remaining in [2, 1, 0] {
        let reply = call(&router, LOGS).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(header(&reply, "ratelimit-policy"), "\"default\";q=3;w=300");
        assert!(header(&reply, "ratelimit").starts_with(&format!("\"default\";r={remaining};t=")));
        assert!(reply.headers.get("retry-after").is_none());
    }
    for _ in 0..2 {
        let reply = call(&router, "/client/v4/user/tokens/verify").await;
        assert_failure(&reply, 429, 10100);
        assert_eq!(
            reply.body["errors"][0]["message"],
            "More than 3 requests per 300 seconds reached. Please wait and consider throttling your request speed"
        );
        let retry_after: u64 = header(&reply, "retry-after").parse().expect("retry-after");
        assert!((299..=300).contains(&retry_after), "{retry_after}");
        assert!(header(&reply, "ratelimit").starts_with("\"default\";r=0;t="));
    }
    // Another token has its own window; requests without a token are not counted.
    emulator.add_token("second", TokenSpec::user(&[ACCOUNT]));
    assert_eq!(
        call_as(&router, LOGS, "second").await.status,
        StatusCode::OK
    );
    let stats = emulator.stats();
    assert_eq!(stats.rate_limited, 2);
    assert_eq!(stats.verify_calls, 2);
    assert_eq!(stats.list_logs_calls, 4);
}

#[tokio::test]
async fn injected_rate_limits_and_server_errors() {
    let emulator = emulator();
    let router = emulator.router();
    emulator.set_faults(Faults {
        rate_limit_next: 2,
        retry_after_secs: 7,
        server_error_next: 3,
        ..Faults::default()
    });
    for _ in 0..2 {
        let reply = call(&router, LOGS).await;
        assert_failure(&reply, 429, 10100);
        assert_eq!(header(&reply, "retry-after"), "7");
    }
    for status in [500, 502, 503] {
        let reply = call(&router, LOGS).await;
        assert_eq!(reply.status.as_u16(), status);
        assert_eq!(reply.body["success"], false);
        assert_eq!(reply.body["result"], Value::Null);
        assert!(reply.body["errors"][0]["code"].is_number());
    }
    assert_eq!(call(&router, LOGS).await.status, StatusCode::OK);
    let stats = emulator.stats();
    assert_eq!(
        (
            stats.rate_limited,
            stats.server_errors,
            stats.list_logs_calls
        ),
        (2, 3, 6)
    );
    assert_eq!(emulator.faults().server_error_next, 0);

    // Faults come after authentication: a bad token still gets its 403.
    emulator.set_faults(Faults {
        server_error_next: 1,
        ..Faults::default()
    });
    assert_failure(&call_as(&router, LOGS, "unknown").await, 403, 9109);
    emulator.reset_stats();
    assert_eq!(emulator.stats().requests, 0);
}

#[tokio::test]
async fn cut_connection_sends_headers_then_breaks_the_body() {
    let emulator = emulator();
    let router = emulator.router();
    emulator.set_faults(Faults {
        cut_connection_next: 1,
        ..Faults::default()
    });
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = send(&router, LOGS, &[("authorization", &bearer)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.collect().await.is_err());
    // Only the next N responses are cut.
    assert_eq!(call(&router, LOGS).await.status, StatusCode::OK);
}

#[tokio::test]
async fn cut_connection_over_tcp_leaves_a_truncated_chunked_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let running = emulator().spawn().await.expect("spawn");
    assert!(running.base_url().starts_with("http://127.0.0.1:"));
    assert!(running.base_url().ends_with("/client/v4"));
    running.emulator.set_faults(Faults {
        cut_connection_next: 1,
        ..Faults::default()
    });
    let mut stream = tokio::net::TcpStream::connect(running.addr)
        .await
        .expect("connect");
    let request = format!(
        "GET {LOGS}?per_page=50 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut received = Vec::new();
    // The server closes (or resets) the connection mid-body; both end the read.
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("\"success\":true"));
    assert!(!text.ends_with("0\r\n\r\n"), "body must not be complete");
}

#[tokio::test]
async fn live_logs_become_visible_after_the_delay_and_late_appends_at_once() {
    let emulator = emulator();
    let router = emulator.router();
    emulator.set_faults(Faults {
        visibility_delay: Duration::from_millis(1500),
        ..Faults::default()
    });
    let live = emulator.start_live_traffic(ACCOUNT, "live", 100.0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    live.stop();
    let stored = emulator.log_ids(ACCOUNT, "live").len();
    assert!(stored > 0);
    let live_logs = LOGS.replace("prod-chat", "live");
    let hidden = call(&router, &live_logs).await;
    assert_eq!(
        hidden.body["result_info"]["total_count"], 0,
        "stored {stored}"
    );
    let id = &emulator.log_ids(ACCOUNT, "live")[0];
    assert_failure(
        &call(&router, &format!("{live_logs}/{id}")).await,
        404,
        7002,
    );

    tokio::time::sleep(Duration::from_millis(1700)).await;
    let visible = call(&router, &live_logs).await;
    assert_eq!(visible.body["result_info"]["total_count"], stored);

    // A log appended with an old created_at is listed at once, in its old position.
    let old = datetime!(2026-08-12 00:00:00.001 UTC);
    let late = emulator.append_logs(ACCOUNT, "prod-chat", 3, old);
    let first = call(
        &router,
        &format!("{LOGS}?order_by_direction=asc&per_page=3"),
    )
    .await;
    let mut expected = late.clone();
    expected.sort();
    assert_eq!(ids(&first), expected);
    for row in first.body["result"].as_array().expect("rows") {
        assert_eq!(row["created_at"], "2026-08-12T00:00:00.001Z");
    }
}

#[tokio::test]
async fn same_seed_gives_the_same_data() {
    let a = emulator();
    let b = emulator();
    assert_eq!(
        a.log_ids(ACCOUNT, "prod-chat"),
        b.log_ids(ACCOUNT, "prod-chat")
    );
    let when = datetime!(2026-08-14 00:00 UTC);
    assert_eq!(
        a.append_logs(ACCOUNT, "prod-chat", 5, when),
        b.append_logs(ACCOUNT, "prod-chat", 5, when)
    );
    let page_a = call(&a.router(), LOGS).await.body;
    let page_b = call(&b.router(), LOGS).await.body;
    assert_eq!(page_a, page_b);

    let asc = emulator_with(EmulatorConfig {
        default_order_direction: Direction::Asc,
        ..EmulatorConfig::default()
    });
    let first = call(&asc.router(), LOGS).await;
    assert_eq!(ids(&first)[0], asc.log_ids(ACCOUNT, "prod-chat")[0]);
}

#[tokio::test]
async fn delete_logs_removes_what_its_filters_match_and_needs_edit_rights() {
    let emulator = emulator();
    emulator.add_token("editor", TokenSpec::editor(&[ACCOUNT]));
    let router = emulator.router();
    let delete = |token: &'static str, query: &'static str| {
        call_with(&router, "DELETE", token, format!("{LOGS}?{query}"), "")
    };
    let before = emulator.log_ids(ACCOUNT, "prod-chat");
    // A read-only token may list but not delete.
    let (status, body) = delete(TOKEN, "limit=5").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(emulator.log_ids(ACCOUNT, "prod-chat").len(), SEEDED);

    let (status, body) = delete("editor", "limit=20&order_by_direction=asc").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["success"], true);
    let after = emulator.log_ids(ACCOUNT, "prod-chat");
    // The 20 oldest went; the rest are untouched.
    assert_eq!(after, before[20..]);

    let (status, body) = delete("editor", "limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], 7001);
}

#[tokio::test]
async fn patching_a_log_sets_feedback_score_and_metadata_and_needs_edit_rights() {
    let emulator = emulator();
    emulator.add_token("editor", TokenSpec::editor(&[ACCOUNT]));
    let router = emulator.router();
    let id = emulator.log_ids(ACCOUNT, "prod-chat")[3].clone();
    let call = |method: &'static str, token: &'static str, uri: String, body: &'static str| {
        call_with(&router, method, token, uri, body)
    };
    let log = format!("{LOGS}/{id}");
    let (status, _) = call("PATCH", TOKEN, log.clone(), r#"{"feedback":-1}"#).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a read-only token can't rate logs"
    );
    let (status, body) = call(
        "PATCH",
        "editor",
        log.clone(),
        r#"{"feedback":-1,"score":0.25,"metadata":{"team":"qa","n":3}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, got) = call("GET", TOKEN, log.clone(), "").await;
    assert_eq!(got["result"]["feedback"], -1);
    assert_eq!(got["result"]["score"], 0.25);
    let metadata: Value =
        serde_json::from_str(got["result"]["metadata"].as_str().expect("a JSON string"))
            .expect("JSON");
    assert_eq!(metadata, serde_json::json!({"team": "qa", "n": 3}));
    // The list filters see the change.
    let filters = encode(r#"[{"key":"feedback","operator":"eq","value":[-1]}]"#);
    let (_, listed) = call(
        "GET",
        TOKEN,
        format!("{LOGS}?filters={filters}&per_page=50"),
        "",
    )
    .await;
    assert!(listed["result"]
        .as_array()
        .expect("rows")
        .iter()
        .any(|row| row["id"] == id.as_str()));

    for bad in [
        r#"{"feedback":5}"#,
        r#"{"score":"high"}"#,
        r#"{"colour":1}"#,
        "not json",
    ] {
        let (status, body) = call("PATCH", "editor", log.clone(), bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["errors"][0]["code"], 7001);
    }
    let (status, _) = call("PATCH", "editor", format!("{LOGS}/no-such-log"), "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
