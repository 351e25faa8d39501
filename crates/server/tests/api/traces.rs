//! Traces and metrics: exact figures, Prometheus, search, sort, export and the monitoring overview.

use super::*;

on_both_backends!(
    traces_and_metrics_agree_with_an_exact_computation,
    prometheus_metrics_parse_and_describe_the_import,
    search_sort_export_and_the_monitoring_overview,
);

async fn traces_and_metrics_agree_with_an_exact_computation(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let id = app.create_integration(&admin).await;
    app.sync_now(&admin, id).await;

    let traces = all_traces(&app, &admin, "from=2000-01-01T00:00:00Z").await;
    assert_eq!(traces.len(), 350);
    let ids: std::collections::HashSet<_> = traces.iter().map(|t| t["id"].as_i64()).collect();
    assert_eq!(ids.len(), 350, "pages neither skip nor repeat");
    let times: Vec<&str> = traces
        .iter()
        .filter_map(|t| t["created_at"].as_str())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // The exact figures, computed from the rows.
    let count = |f: &dyn Fn(&Value) -> bool| traces.iter().filter(|t| f(t)).count() as i64;
    let errors = count(&|t| t["status"] == "error");
    let cache_hits = count(&|t| t["cached"] == true);
    let rate_limited = count(&|t| t["status_code"] == 429);
    let tokens_in: i64 = traces.iter().filter_map(|t| t["tokens_in"].as_i64()).sum();
    let cost: f64 = traces.iter().filter_map(|t| t["cost_usd"].as_f64()).sum();
    let mut durations: Vec<f64> = traces
        .iter()
        .filter_map(|t| t["duration_ms"].as_f64())
        .collect();
    durations.sort_by(f64::total_cmp);
    let m = app
        .get_ok(&admin, "/api/v1/metrics?from=2000-01-01T00:00:00Z")
        .await;
    assert_eq!(m["requests"], 350);
    assert_eq!(m["errors"].as_i64(), Some(errors));
    assert_eq!(m["cache_hits"].as_i64(), Some(cache_hits));
    assert_eq!(m["rate_limited"].as_i64(), Some(rate_limited));
    assert_eq!(m["tokens_in"].as_i64(), Some(tokens_in));
    assert!((m["cost_usd"].as_f64().expect("cost") - cost).abs() < 1e-9);
    for (q, key) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
        let exact = durations[(q * (durations.len() - 1) as f64) as usize];
        let got = m["latency_ms"][key].as_f64().expect("percentile");
        assert!(
            (got - exact).abs() <= exact * 0.01 + 1e-9,
            "{key}: {got} vs {exact}"
        );
    }

    // Filters.
    let support = all_traces(&app, &admin, "gateway=support").await;
    assert_eq!(support.len(), 200);
    assert!(support.iter().all(|t| t["gateway"] == "support"));
    let failed = all_traces(&app, &admin, "status=error").await;
    assert_eq!(failed.len() as i64, errors);
    let hits = all_traces(&app, &admin, "cached=true").await;
    assert_eq!(hits.len() as i64, cache_hits);

    // Detail.
    let first = traces[0]["id"].as_i64().expect("id");
    let detail = app.get_ok(&admin, &format!("/api/v1/traces/{first}")).await;
    assert_eq!(detail["log_id"], traces[0]["log_id"]);
    // The built-in policies' findings on this trace (if any) come with it.
    assert!(detail["violations"].is_array());

    // Time series and breakdowns add up to the totals.
    let series = app
        .get_ok(
            &admin,
            "/api/v1/metrics/timeseries?from=2000-01-01T00:00:00Z&bucket=day",
        )
        .await;
    assert_eq!(series["series"].as_array().map(Vec::len), Some(1));
    assert!(series["series"][0]["group"].is_null());
    let sum = |s: &Value| {
        s["points"]
            .as_array()
            .expect("points")
            .iter()
            .filter_map(|p| p["requests"].as_i64())
            .sum::<i64>()
    };
    assert_eq!(sum(&series["series"][0]), 350);
    let from = traces
        .last()
        .and_then(|t| t["created_at"].as_str())
        .expect("oldest")
        .to_owned();
    let by_gateway = app
        .get_ok(
            &admin,
            &format!("/api/v1/metrics/timeseries?from={from}&bucket=minute&group_by=gateway"),
        )
        .await;
    let groups: Vec<(String, i64)> = by_gateway["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| (s["group"].as_str().unwrap_or_default().to_owned(), sum(s)))
        .collect();
    assert_eq!(
        groups,
        [("prod-chat".to_owned(), 150), ("support".to_owned(), 200)]
    );
    let breakdown = app
        .get_ok(
            &admin,
            "/api/v1/metrics/breakdown?from=2000-01-01T00:00:00Z&group_by=model",
        )
        .await;
    let total: i64 = breakdown["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["requests"].as_i64())
        .sum();
    assert_eq!(total, 350);

    // Bad input.
    for (path, code) in [
        ("/api/v1/traces?cursor=nonsense", "invalid_cursor"),
        ("/api/v1/traces?limit=0", "invalid_limit"),
        ("/api/v1/traces?status=maybe", "invalid_query"),
        ("/api/v1/metrics/timeseries?bucket=week", "invalid_query"),
        (
            "/api/v1/metrics/timeseries?from=2000-01-01T00:00:00Z&bucket=minute",
            "too_many_buckets",
        ),
        ("/api/v1/metrics/breakdown", "invalid_query"),
    ] {
        let (status, body) = app.call(Method::GET, path, Some(&admin), None).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, code);
    }
}

async fn prometheus_metrics_parse_and_describe_the_import(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let id = app.create_integration(&admin).await;
    app.sync_now(&admin, id).await;
    let resp = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/plain"));
    let text = resp.text().await.expect("body");
    // Every sample line is `name{labels} value` with a langguard_ name and a number.
    let mut names = std::collections::HashSet::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
        let name = series.split('{').next().unwrap_or_default();
        assert!(name.starts_with("langguard_"), "{line}");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
        names.insert(name.to_owned());
    }
    for want in [
        "langguard_sync_runs_total",
        "langguard_interactions_imported_total",
        "langguard_gateway_requests_total",
        "langguard_cloudflare_requests_total",
        "langguard_gateway_lag_seconds",
        "langguard_integration_status",
        "langguard_http_request_duration_seconds_bucket",
        "langguard_syncs_running",
    ] {
        assert!(names.contains(want), "{want} missing");
    }
    assert!(
        text.contains("provider=\"") && text.contains("model=\""),
        "traffic is labelled by provider and model"
    );
    assert!(!text.contains(CF_TOKEN));
}

/// The raw body of a GET, with its content type.
async fn get_text(app: &TestApp, token: &str, path: &str) -> (StatusCode, String, String) {
    let resp = app
        .http
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, resp.text().await.expect("body"))
}

async fn search_sort_export_and_the_monitoring_overview(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let id = app.create_integration(&admin).await;
    app.sync_now(&admin, id).await;
    let all = all_traces(&app, &admin, "from=2000-01-01T00:00:00Z").await;
    assert_eq!(all.len(), 350);
    let count = |f: &dyn Fn(&Value) -> bool| all.iter().filter(|t| f(t)).count();

    // Search and filters through the query string (Cloudflare's emulated traffic has teams
    // in its metadata).
    let errors = all_traces(&app, &admin, "q=status:error").await;
    assert_eq!(errors.len(), count(&|t| t["status"] == "error"));
    let team = all
        .iter()
        .find_map(|t| t["metadata"]["team"].as_str())
        .expect("some metadata has a team")
        .to_owned();
    let in_team = all_traces(&app, &admin, &format!("metadata=team={team}")).await;
    assert_eq!(in_team.len(), count(&|t| t["metadata"]["team"] == team));
    let searched = all_traces(
        &app,
        &admin,
        &format!("q=team:{team}%20NOT%20cached:true&min_duration_ms=100"),
    )
    .await;
    assert_eq!(
        searched.len(),
        count(&|t| t["metadata"]["team"] == team
            && t["cached"] == false
            && t["duration_ms"].as_i64() >= Some(100))
    );
    assert!(!searched.is_empty());

    // Cloudflare's extra log fields: on the trace as it listed them, as filters and in search.
    let with = |key: &str, value: &Value| count(&|t| &t[key] == value);
    let flagged = all_traces(&app, &admin, "dlp_action=FLAG").await;
    assert_eq!(flagged.len(), with("dlp_action", &Value::from("FLAG")));
    assert!(
        !flagged.is_empty(),
        "the emulator's traffic has DLP matches"
    );
    assert!(flagged
        .iter()
        .all(|t| t["dlp_profiles"][0]["check"] == "REQUEST"));
    let liked = all_traces(&app, &admin, "feedback=1&byok=false").await;
    assert_eq!(
        liked.len(),
        count(&|t| t["feedback"] == 1 && t["byok"] == false)
    );
    let byok = all_traces(&app, &admin, "q=byok:true").await;
    assert_eq!(byok.len(), with("byok", &Value::from(true)));
    assert!(byok.iter().all(|t| t["cost_source"] == "byok"
        && t["cost_usd"] == 0.0
        && t["cost_estimate_usd"].as_f64() > Some(0.0)));
    let agent = all
        .iter()
        .find_map(|t| t["user_agent"].as_str())
        .expect("some logs name their client")
        .to_owned();
    let by_agent = all_traces(
        &app,
        &admin,
        &format!("q=user_agent:%22{}%22", agent.replace(' ', "%20")),
    )
    .await;
    assert_eq!(
        by_agent.len(),
        with("user_agent", &Value::from(agent.as_str()))
    );

    // Sorting pages through in order, and a cursor keeps its sort.
    let by_cost = all_traces(&app, &admin, "sort=cost&order=asc").await;
    assert_eq!(by_cost.len(), 350);
    let costs: Vec<f64> = by_cost
        .iter()
        .map(|t| t["cost_usd"].as_f64().unwrap_or(-1.0))
        .collect();
    assert!(costs.windows(2).all(|w| w[0] <= w[1]), "cheapest first");
    let page = app
        .get_ok(&admin, "/api/v1/traces?sort=duration&limit=5")
        .await;
    let cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
    for (path, status, code) in [
        (
            format!("/api/v1/traces?cursor={cursor}"),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            "/api/v1/traces?q=%22unclosed".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_search",
        ),
        (
            "/api/v1/traces?min_cost=2&max_cost=1".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
        (
            "/api/v1/traces?metadata=novalue".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_metadata_filter",
        ),
        (
            "/api/v1/traces?sort=name".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/traces?feedback=sideways".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/traces/export?format=xml".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_format",
        ),
        (
            "/api/v1/traces/export?limit=10".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
    ] {
        let (got, body) = app.call(Method::GET, &path, Some(&admin), None).await;
        assert_error(got, &body, status, code);
    }

    // JSON Lines export: exactly the listing's items, in its order.
    let (status, content_type, body) = get_text(
        &app,
        &admin,
        "/api/v1/traces/export?format=jsonl&from=2000-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines, all);

    // CSV export: a header row, then one row per trace that reads back to the same values.
    let (status, content_type, body) = get_text(
        &app,
        &admin,
        "/api/v1/traces/export?format=csv&status=error",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[..3], ["id", "integration_id", "gateway"]);
    assert!(header.iter().any(|h| h == "metadata"));
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let expected: Vec<&Value> = all.iter().filter(|t| t["status"] == "error").collect();
    assert_eq!(rows.len(), expected.len());
    for (row, item) in rows.iter().zip(&expected) {
        for (column, value) in header.iter().zip(row.iter()) {
            let want = &item[column.as_str()];
            let got: Value = match want {
                Value::Null => {
                    assert_eq!(value, "", "{column}");
                    continue;
                }
                // Text a spreadsheet would run as a formula carries a leading `'` (Workers AI
                // models all start with `@`); the rest is as the API has it.
                Value::String(text) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
                    Value::String(value.strip_prefix('\'').expect("neutralised").to_owned())
                }
                Value::String(_) => Value::String(value.to_owned()),
                // Numbers, booleans and metadata objects are written as their JSON text.
                _ => serde_json::from_str(value).expect("JSON text"),
            };
            assert_eq!(&got, want, "{column}");
        }
    }

    // Monitoring overview.
    let overview = app
        .get_ok(
            &admin,
            "/api/v1/monitoring/overview?from=2000-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(overview["metrics"]["requests"], 350);
    let integration = &overview["integrations"][0];
    assert_eq!(integration["id"], id);
    assert_eq!(integration["traffic"]["requests"], 350);
    assert_eq!(
        integration["traffic"]["errors"].as_u64(),
        Some(count(&|t| t["status"] == "error") as u64)
    );
    assert!(["healthy", "warning", "critical"].contains(
        &integration["traffic"]["health"]
            .as_str()
            .unwrap_or_default()
    ));
    assert_eq!(integration["interactions_synced"], 350);
    let run = &overview["recent_syncs"][0];
    assert_eq!(run["integration_id"], id);
    assert_eq!(run["integration_name"], integration["name"]);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["items_ingested"], 350);
}
