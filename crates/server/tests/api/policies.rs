//! Policies end to end: violations, backtests, re-evaluation, and bodies fetched for policies.

use super::*;

on_both_backends!(
    policies_violations_and_backtests_end_to_end,
    bodies_are_fetched_for_policies_searchable_and_shown,
);

pub(crate) const SLOW_CALLS: &str = r#"package langguard.slow_calls

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
    let admin = app.login_as(Role::Admin).await;
    let viewer = app.login_as(Role::Viewer).await;
    let member = app.login_as(Role::Member).await;

    // The built-ins are there from the first start, with the product's ids and defaults.
    let policies = app.get_ok(&viewer, "/api/v1/policies").await;
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
    let id = app.create_integration(&admin).await;
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
    let detail = app
        .get_ok(&viewer, &format!("/api/v1/traces/{slow_trace}"))
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
    let page = app
        .get_ok(
            &viewer,
            "/api/v1/violations?policy=slow_calls&status=resolved&limit=1",
        )
        .await;
    assert_eq!(page["total"].as_u64(), Some(rest.len() as u64));
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));

    // Monitoring counts them by severity.
    let overview = app
        .get_ok(
            &viewer,
            "/api/v1/monitoring/overview?from=2000-01-01T00:00:00Z",
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
    let versions = app
        .get_ok(&viewer, &format!("/api/v1/policies/{slow_id}/versions"))
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

async fn bodies_are_fetched_for_policies_searchable_and_shown(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let id = app.create_integration(&admin).await;
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
        let detail = app.get_ok(&admin, &format!("/api/v1/traces/{tid}")).await;
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
