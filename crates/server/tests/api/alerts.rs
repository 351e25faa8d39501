//! Alerts: rules firing and resolving on synthetic traffic with a clock the test controls
//! (the evaluator is called with the time; no sleeps), per-group rules, the minimum volume,
//! the `for` duration, silences, the backtest, and what a client gets wrong.

use langguard_ops::alerts::evaluate::evaluate;
use langguard_store::NewInteraction;

use super::*;

on_both_backends!(
    a_grouped_rule_fires_after_its_duration_and_resolves,
    silences_hold_notifications_back_until_they_end,
    no_traffic_and_the_backtest,
    bad_rules_and_roles_are_refused,
    a_rule_notifies_only_the_channels_it_names,
);

const MIN: i64 = 60_000;
/// A whole minute, well before now (the evaluator reads whatever time it is given).
const T0: i64 = 1_790_000_040_000 - 1_790_000_040_000 % MIN;

/// `n` calls of `model` in the minute starting at `minute_ms`, `failed` of them failures.
fn calls(model: &str, minute_ms: i64, n: usize, failed: usize) -> Vec<NewInteraction> {
    (0..n)
        .map(|k| {
            let at = minute_ms + k as i64 * 100;
            let success = k >= failed;
            NewInteraction {
                status_code: Some(if success { 200 } else { 500 }),
                success,
                ..gateway_call(format!("{model}-{minute_ms}-{k}"), model, at, 0.002)
            }
        })
        .collect()
}

async fn setup(backend: Backend) -> Option<(TestApp, String, i64, i64)> {
    spawn_with_outbox(backend, &["alert.firing", "alert.resolved"]).await
}

/// The events queued for the webhook, oldest first: `(event, data)`.
async fn notifications(app: &TestApp, admin: &str, hook: i64) -> Vec<(String, Value)> {
    let deliveries = app
        .get_ok(admin, &format!("/api/v1/webhooks/{hook}/deliveries"))
        .await;
    let mut out: Vec<(String, Value)> = deliveries["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| {
            (
                d["event"].as_str().expect("event").to_owned(),
                d["body"]["data"].clone(),
            )
        })
        .collect();
    out.reverse();
    out
}

async fn evaluate_at(
    app: &TestApp,
    at_ms: i64,
) -> langguard_ops::alerts::evaluate::EvaluationReport {
    evaluate(
        app.store.as_ref(),
        at_ms,
        Some("https://langguard.example.com"),
    )
    .await
    .expect("evaluate")
}

async fn alerts(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    app.get_ok(token, &format!("/api/v1/alerts?{query}")).await["items"]
        .as_array()
        .expect("items")
        .clone()
}

async fn a_grouped_rule_fires_after_its_duration_and_resolves(backend: Backend) {
    let Some((app, admin, integration, hook)) = setup(backend).await else {
        return;
    };
    let (status, rule) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(json!({
                "name": "OpenAI errors",
                "metric": "error_rate",
                "threshold": 10,
                "window_minutes": 5,
                "for_minutes": 2,
                "min_requests": 20,
                "renotify_minutes": 60,
                "scope": {"provider": "openai"},
                "group_by": "model",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    assert_eq!(rule["condition"], "above");
    assert_eq!(rule["unit"], "%");
    let rule_id = rule["id"].as_i64().expect("id");

    // Ten minutes of traffic: gpt-4o fails half its calls, gpt-4o-mini none, and o1 fails every
    // call but makes only 2 a minute — below the minimum volume of 20 in 5 minutes.
    for m in 0..10 {
        let minute = T0 + m * MIN;
        let mut batch = calls("gpt-4o", minute, 10, 5);
        batch.extend(calls("gpt-4o-mini", minute, 10, 0));
        batch.extend(calls("o1", minute, 2, 2));
        app.seed(integration, "gw", batch).await;
    }

    // Minute 5: the window [0, 5) breaches for gpt-4o; pending, nobody told.
    let report = evaluate_at(&app, T0 + 5 * MIN + 30_000).await;
    assert_eq!((report.opened, report.fired), (1, 0));
    let open = alerts(&app, &admin, "state=open").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["group"], "gpt-4o");
    assert_eq!(open[0]["state"], "pending");
    assert_eq!(open[0]["value"], 50.0);
    assert!(notifications(&app, &admin, hook).await.is_empty());

    // Evaluating the same minute again changes nothing.
    let again = evaluate_at(&app, T0 + 5 * MIN + 45_000).await;
    assert_eq!((again.opened, again.fired, again.notified), (0, 0, 0));

    // Minute 6: still pending (held one minute of two); minute 7: fires and is announced.
    assert_eq!(evaluate_at(&app, T0 + 6 * MIN).await.fired, 0);
    let report = evaluate_at(&app, T0 + 7 * MIN).await;
    assert_eq!((report.fired, report.notified), (1, 1));
    let firing = alerts(&app, &admin, "state=firing").await;
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0]["rule_name"], "OpenAI errors");
    assert!(firing[0]["traces_url"]
        .as_str()
        .expect("url")
        .contains("model=gpt-4o"));
    let sent = notifications(&app, &admin, hook).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "alert.firing");
    let data = &sent[0].1;
    assert_eq!(data["ruleId"], rule_id);
    assert_eq!(data["group"], "gpt-4o");
    assert_eq!(data["groupBy"], "model");
    assert_eq!(data["value"], 50.0);
    assert_eq!(data["threshold"], 10.0);
    assert_eq!(data["reminder"], false);
    let url = data["tracesUrl"].as_str().expect("url");
    assert!(
        url.starts_with("https://langguard.example.com/traces?")
            && url.contains("provider=openai")
            && url.contains("model=gpt-4o")
            && url.contains("status=error"),
        "{url}"
    );
    // The rule says one fires.
    let rules = app.get_ok(&admin, "/api/v1/alerts/rules").await;
    assert_eq!(rules["items"][0]["firing"], 1);

    // Traffic stops after minute 10: by minute 14 the window holds 1 minute of traffic, too
    // little to judge, and the alert resolves — announced, since people were told it fired.
    assert_eq!(evaluate_at(&app, T0 + 12 * MIN).await.resolved, 0);
    let report = evaluate_at(&app, T0 + 14 * MIN).await;
    assert_eq!((report.resolved, report.notified), (1, 1));
    let sent = notifications(&app, &admin, hook).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].0, "alert.resolved");
    assert_eq!(sent[1].1["state"], "resolved");
    assert!(sent[1].1["resolvedAt"].is_string());
    let history = alerts(&app, &admin, &format!("rule_id={rule_id}")).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["state"], "resolved");
    assert!(alerts(&app, &admin, "state=open").await.is_empty());

    // Disabling a rule resolves what it had open.
    app.seed(integration, "gw", calls("gpt-4o", T0 + 20 * MIN, 30, 30))
        .await;
    let report = evaluate_at(&app, T0 + 21 * MIN).await;
    assert_eq!(report.opened, 1);
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/alerts/rules/{rule_id}"),
            Some(&admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    evaluate_at(&app, T0 + 22 * MIN).await;
    assert!(alerts(&app, &admin, "state=open").await.is_empty());
}

async fn silences_hold_notifications_back_until_they_end(backend: Backend) {
    let Some((app, admin, integration, hook)) = setup(backend).await else {
        return;
    };
    let (_, rule) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(json!({"name": "Spend", "metric": "cost_usd", "threshold": 0.05, "window_minutes": 5})),
        )
        .await;
    let rule_id = rule["id"].as_i64().expect("id");
    for m in 0..30 {
        app.seed(integration, "gw", calls("gpt-4o", T0 + m * MIN, 10, 0))
            .await;
    }
    // Silences start now (the real clock), so this test's clock runs from then on too.
    let (status, silence) = app
        .call(
            Method::POST,
            "/api/v1/alerts/silences",
            Some(&admin),
            Some(
                json!({"rule_id": rule_id, "minutes": 30, "reason": "provider incident, tracked"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{silence}");
    assert_eq!(silence["active"], true);
    let silence_id = silence["id"].as_i64().expect("id");
    let now = langguard_clock::now_ms();

    // The traffic, moved to now: $0.10 every 5 minutes, over the $0.05 threshold.
    let base = now - now % MIN - 10 * MIN;
    for m in 0..10 {
        app.seed(integration, "gw", calls("claude", base + m * MIN, 10, 0))
            .await;
    }
    let report = evaluate_at(&app, now).await;
    assert_eq!((report.fired, report.notified), (1, 0));
    let firing = alerts(&app, &admin, "state=firing").await;
    assert_eq!(firing[0]["silenced"], true);
    assert!(firing[0]["notified_at"].is_null());
    assert!(notifications(&app, &admin, hook).await.is_empty());

    // Ending the silence: the next evaluation tells people, once.
    let (status, ended) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/alerts/silences/{silence_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ended["active"], false);
    let later = langguard_clock::now_ms().max(now) + 1;
    assert_eq!(evaluate_at(&app, later).await.notified, 1);
    assert_eq!(evaluate_at(&app, later + MIN).await.notified, 0);
    let sent = notifications(&app, &admin, hook).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "alert.firing");
    assert!(alerts(&app, &admin, "state=firing").await[0]["notified_at"].is_string());
    let listed = app
        .get_ok(&admin, "/api/v1/alerts/silences?active=false")
        .await;
    assert_eq!(listed["items"][0]["reason"], "provider incident, tracked");
    assert_eq!(listed["items"][0]["rule_name"], "Spend");
}

async fn no_traffic_and_the_backtest(backend: Backend) {
    let Some((app, admin, integration, hook)) = setup(backend).await else {
        return;
    };
    // A gateway-grouped "no traffic" rule: gw speaks, then falls silent.
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(json!({"name": "Silence", "metric": "no_traffic", "window_minutes": 10, "group_by": "gateway"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    app.seed(integration, "gw", calls("gpt-4o", T0, 5, 0)).await;
    assert_eq!(evaluate_at(&app, T0 + 5 * MIN).await.opened, 0);
    let report = evaluate_at(&app, T0 + 11 * MIN).await;
    assert_eq!((report.fired, report.notified), (1, 1));
    let sent = notifications(&app, &admin, hook).await;
    assert_eq!(sent[0].1["metric"], "no_traffic");
    assert_eq!(sent[0].1["group"], "gw");
    app.seed(integration, "gw", calls("gpt-4o", T0 + 12 * MIN, 1, 0))
        .await;
    assert_eq!(evaluate_at(&app, T0 + 13 * MIN).await.resolved, 1);

    // The backtest replays the last week (the server's clock): two bursts of errors two
    // days ago, an hour apart, each fire once; the rule needs them to hold 3 minutes.
    let now = langguard_clock::now_ms();
    let two_days_ago = now - now % MIN - 2 * 86_400_000;
    for burst in [0, 60] {
        for m in 0..6 {
            let minute = two_days_ago + (burst + m) * MIN;
            app.seed(integration, "gw", calls("gpt-4o", minute, 10, 8))
                .await;
        }
    }
    let (status, replay) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules/backtest",
            Some(&admin),
            Some(json!({"metric": "errors", "threshold": 20, "window_minutes": 5, "for_minutes": 3, "group_by": "model"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(replay["fired"], 2, "{replay}");
    assert_eq!(replay["step_minutes"], 1);
    let episode = &replay["episodes"][0];
    assert_eq!(episode["group"], "gpt-4o");
    assert!(episode["resolved_at"].is_string());
    assert_eq!(episode["peak_value"], 40.0);
    // Without the `for`, the same rule fires sooner and for longer, still twice.
    let (_, quick) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules/backtest",
            Some(&admin),
            Some(json!({"metric": "errors", "threshold": 20, "window_minutes": 5, "group_by": "model"})),
        )
        .await;
    assert_eq!(quick["fired"], 2);
    assert!(quick["firing_minutes"].as_i64() > replay["firing_minutes"].as_i64());
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules/backtest",
            Some(&admin),
            Some(json!({"metric": "coverage", "threshold": 99})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "not_backtestable");
}

async fn bad_rules_and_roles_are_refused(backend: Backend) {
    let Some((app, admin, _integration, _hook)) = setup(backend).await else {
        return;
    };
    let viewer = app.login_as(Role::Viewer).await;
    let member = app.login_as(Role::Member).await;
    assert_each_refused(
        &app,
        "/api/v1/alerts/rules",
        &admin,
        vec![
        (
            json!({"name": "x", "metric": "p95", "threshold": 1}),
            "invalid_rule",
        ),
        (
            json!({"name": "x", "metric": "error_rate", "threshold": 101}),
            "invalid_rule",
        ),
        (
            json!({"name": "x", "metric": "errors", "threshold": -1}),
            "invalid_rule",
        ),
        (json!({"name": "x", "metric": "errors"}), "invalid_rule"),
        (
            json!({"name": "x", "metric": "errors", "threshold": 1, "window_minutes": 1}),
            "invalid_rule",
        ),
        (
            json!({"name": "x", "metric": "violations", "threshold": 1, "group_by": "model"}),
            "invalid_rule",
        ),
        (
            json!({"name": "x", "metric": "errors", "threshold": 1, "scope": {"integration_id": 999}}),
            "invalid_rule",
        ),
        (
            json!({"name": "x", "metric": "errors", "threshold": 1, "colour": "red"}),
            "invalid_body",
        ),
        ],
    )
    .await;
    let rule = json!({"name": "Errors", "metric": "errors", "threshold": 5});
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules",
            Some(&viewer),
            Some(rule.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules",
            Some(&member),
            Some(rule.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_i64().expect("id");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(rule),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    // Viewers read rules and alerts.
    assert_eq!(
        app.get_ok(&viewer, "/api/v1/alerts/rules").await["items"][0]["name"],
        "Errors"
    );
    let _ = app.get_ok(&viewer, "/api/v1/alerts?state=open").await;
    let (status, body) = app
        .call(
            Method::GET,
            "/api/v1/alerts?state=exploded",
            Some(&viewer),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_state");
    // A change keeps what it doesn't mention; null clears group_by.
    let (status, changed) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/alerts/rules/{id}"),
            Some(&member),
            Some(json!({"threshold": 9, "group_by": null, "for_minutes": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["threshold"], 9.0);
    assert_eq!(changed["metric"], "errors");
    assert_eq!(changed["for_minutes"], 5);
    assert!(changed["group_by"].is_null());
    assert_each_refused(
        &app,
        "/api/v1/alerts/silences",
        &member,
        vec![
            (json!({"minutes": 10}), "invalid_body"),
            (json!({"minutes": 10, "reason": " "}), "invalid_silence"),
            (json!({"minutes": 0, "reason": "r"}), "invalid_silence"),
            (
                json!({"until": "2020-01-01T00:00:00Z", "reason": "r"}),
                "invalid_silence",
            ),
            (
                json!({"until": "tomorrow", "reason": "r"}),
                "invalid_silence",
            ),
            (
                json!({"group": "gpt-4o", "minutes": 5, "reason": "r"}),
                "invalid_silence",
            ),
        ],
    )
    .await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/alerts/silences",
            Some(&member),
            Some(json!({"rule_id": 999, "minutes": 5, "reason": "r"})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/alerts/rules/{id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/alerts/rules/{id}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/api/v1/alerts/rules/{id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

async fn a_rule_notifies_only_the_channels_it_names(backend: Backend) {
    let Some((app, admin, integration, subscribed)) = setup(backend).await else {
        return;
    };
    // A second channel that doesn't subscribe to alerts: a rule naming it still reaches it.
    let (status, hook) = app
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(&admin),
            Some(json!({"url": "https://oncall.example.com/langguard", "events": ["policy.violation"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let oncall = hook["id"].as_i64().expect("id");
    let (status, got) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(json!({"name": "Nowhere", "metric": "errors", "channel_ids": [oncall + 1000]})),
        )
        .await;
    assert_error(status, &got, StatusCode::BAD_REQUEST, "invalid_rule");
    let (status, rule) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(
                json!({"name": "Errors to on-call", "metric": "errors", "threshold": 3,
                        "window_minutes": 5, "channel_ids": [oncall, oncall]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    assert_eq!(rule["channel_ids"], json!([oncall]));
    let rule_id = rule["id"].as_i64().expect("id");

    for m in 0..5 {
        app.seed(integration, "gw", calls("gpt-4o", T0 + m * MIN, 10, 2))
            .await;
    }
    let report = evaluate_at(&app, T0 + 5 * MIN).await;
    assert_eq!((report.fired, report.notified), (1, 1));
    let sent = notifications(&app, &admin, oncall).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "alert.firing");
    assert_eq!(sent[0].1["ruleName"], "Errors to on-call");
    assert!(notifications(&app, &admin, subscribed).await.is_empty());

    // A deleted channel leaves the rules that named it: they notify every subscribed one.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{oncall}"),
            Some(&admin),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    let rule = app
        .get_ok(&admin, &format!("/api/v1/alerts/rules/{rule_id}"))
        .await;
    assert_eq!(rule["channel_ids"], json!([]));
}
