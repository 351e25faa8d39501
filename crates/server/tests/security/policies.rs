//! Policies can't hurt the host: a policy that explodes is quarantined, running Rego needs Member, backtests are limited.

use super::*;

on_both_backends!(
    a_policy_that_explodes_on_real_input_is_quarantined_and_the_server_stays_up,
    running_rego_needs_member_and_backtests_are_limited,
);

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
