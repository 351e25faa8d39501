//! Budgets: a monthly budget in New York crossing its thresholds in the middle of November
//! (each announced once, the forecast and the day it runs out in the event), starting again
//! in December; the REST views with the burn-down; and what a client gets wrong. The evaluator
//! is called with the time the test gives; no sleeps.

use langguard_ops::budgets::evaluate::evaluate;
use langguard_store::NewInteraction;

use super::*;

on_both_backends!(
    a_monthly_budget_in_new_york_announces_each_threshold_once_a_month,
    budgets_show_spend_per_group_and_a_burndown,
    bad_budgets_and_roles_are_refused,
);

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-11-01T04:00Z: midnight in New York (still EDT), the start of its November.
const NOV_1_NY: i64 = 1_793_505_600_000;

/// One call of `model` at `at_ms` costing `usd`.
fn call(model: &str, at_ms: i64, usd: f64) -> NewInteraction {
    gateway_call(format!("{model}-{at_ms}"), model, at_ms, usd)
}

async fn setup(backend: Backend) -> Option<(TestApp, String, i64, i64)> {
    spawn_with_outbox(backend, &["budget.threshold"]).await
}

/// The `budget.threshold` events queued so far, oldest first.
async fn notices(app: &TestApp, admin: &str, hook: i64) -> Vec<Value> {
    let deliveries = app
        .get_ok(admin, &format!("/api/v1/webhooks/{hook}/deliveries"))
        .await;
    let mut out: Vec<Value> = deliveries["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| {
            assert_eq!(d["event"], "budget.threshold");
            d["body"]["data"].clone()
        })
        .collect();
    out.reverse();
    out
}

async fn evaluate_at(app: &TestApp, at_ms: i64) -> langguard_ops::budgets::evaluate::BudgetReport {
    evaluate(
        app.store.as_ref(),
        at_ms,
        Some("https://langguard.example.com"),
    )
    .await
    .expect("evaluate")
}

async fn a_monthly_budget_in_new_york_announces_each_threshold_once_a_month(backend: Backend) {
    let Some((app, admin, integration, hook)) = setup(backend).await else {
        return;
    };
    let (status, budget) = app
        .call(
            Method::POST,
            "/api/v1/budgets",
            Some(&admin),
            Some(json!({
                "name": "Per model", "amount_usd": 100, "period": "month",
                "time_zone": "America/New_York", "group_by": "model",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{budget}");
    assert_eq!(budget["thresholds"], json!([50, 80, 100]));
    assert_eq!(budget["time_zone"], "America/New_York");
    // $30 at 23:30 on 31 October in New York — already November in UTC, not in this budget.
    let mut batch = vec![call("gpt-4o", NOV_1_NY - 30 * 60_000, 30.0)];
    // $3 a day at noon (EST) from 1 to 15 November, and $10 on another model.
    batch.extend((0..15).map(|d| call("gpt-4o", NOV_1_NY + d * DAY + 13 * HOUR, 3.0)));
    batch.push(call("claude-3-5-sonnet", NOV_1_NY + DAY + 13 * HOUR, 10.0));
    app.seed(integration, "gw", batch).await;

    // 15 November, 18:00 in New York: $45 of $100.
    let nov_15 = NOV_1_NY + 14 * DAY + 19 * HOUR;
    let report = evaluate_at(&app, nov_15).await;
    assert_eq!((report.budgets, report.groups, report.notified), (1, 2, 0));
    assert!(notices(&app, &admin, hook).await.is_empty());

    // $9 more on the 16th: $54, past 50 %.
    app.seed(
        integration,
        "gw",
        vec![call("gpt-4o", NOV_1_NY + 15 * DAY + 13 * HOUR, 9.0)],
    )
    .await;
    let nov_16 = nov_15 + DAY;
    assert_eq!(evaluate_at(&app, nov_16).await.notified, 1);
    assert_eq!(
        evaluate_at(&app, nov_16 + 60_000).await.notified,
        0,
        "once per threshold"
    );
    let got = notices(&app, &admin, hook).await;
    assert_eq!(got.len(), 1);
    let n = &got[0];
    assert_eq!(n["budgetName"], "Per model");
    assert_eq!(n["group"], "gpt-4o");
    assert_eq!(n["threshold"], 50);
    assert_eq!(n["amountUsd"], 100.0);
    assert_eq!(n["spentUsd"], 54.0);
    assert_eq!(n["percent"], 54.0);
    assert_eq!(n["timeZone"], "America/New_York");
    assert_eq!(n["periodStart"], "2026-11-01T04:00:00.000Z");
    // The clocks went back on 1 November: December begins at 05:00 UTC.
    assert_eq!(n["periodEnd"], "2026-12-01T05:00:00.000Z");
    // The last 7 days ran at $27/7 a day; 14.25 days are left: 54 + 27/7 × 14.25.
    let forecast = n["forecastUsd"].as_f64().expect("forecast");
    assert!((forecast - 108.964_285).abs() < 1e-3, "{forecast}");
    // $46 to go at $27/7 a day is 11.93 days on: 28 November, 21:13 UTC, to the hour.
    assert_eq!(n["crossesAt"], "2026-11-28T21:00:00.000Z");
    let traces = n["tracesUrl"].as_str().expect("traces url");
    assert!(
        traces
            .starts_with("https://langguard.example.com/traces?from=2026-11-01T04%3A00%3A00.000Z"),
        "{traces}"
    );
    assert!(traces.contains("model=gpt-4o"), "{traces}");
    assert_eq!(
        n["budgetsUrl"],
        format!(
            "https://langguard.example.com/budgets#budget-{}",
            budget["id"]
        )
    );

    // $30 on the 17th: $84 — 80 % is announced, 50 % is not again; the other model never.
    app.seed(
        integration,
        "gw",
        vec![call("gpt-4o", NOV_1_NY + 16 * DAY + 13 * HOUR, 30.0)],
    )
    .await;
    assert_eq!(evaluate_at(&app, nov_16 + DAY).await.notified, 1);
    assert_eq!(evaluate_at(&app, nov_16 + DAY + HOUR).await.notified, 0);
    let got = notices(&app, &admin, hook).await;
    let thresholds: Vec<&Value> = got.iter().map(|n| &n["threshold"]).collect();
    assert_eq!(thresholds, [&json!(50), &json!(80)]);
    assert_eq!(got[1]["spentUsd"], 84.0);

    // December starts from nothing; $60 on its first morning announces 50 % again.
    let dec_1 = NOV_1_NY + 30 * DAY + HOUR;
    assert_eq!(evaluate_at(&app, dec_1 + HOUR).await.notified, 0);
    app.seed(
        integration,
        "gw",
        vec![call("gpt-4o", dec_1 + 90 * 60_000, 60.0)],
    )
    .await;
    assert_eq!(evaluate_at(&app, dec_1 + 2 * HOUR).await.notified, 1);
    let got = notices(&app, &admin, hook).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[2]["threshold"], 50);
    assert_eq!(got[2]["periodStart"], "2026-12-01T05:00:00.000Z");
    assert_eq!(got[2]["spentUsd"], 60.0);
}

async fn budgets_show_spend_per_group_and_a_burndown(backend: Backend) {
    let Some((app, admin, integration, _hook)) = setup(backend).await else {
        return;
    };
    let viewer = app.login_as(Role::Viewer).await;
    let now = langguard_clock::now_ms();
    app.seed(
        integration,
        "gw",
        vec![call("gpt-4o", now, 12.5), call("gpt-4o-mini", now, 2.5)],
    )
    .await;
    let (status, created) = app
        .call(
            Method::POST,
            "/api/v1/budgets",
            Some(&admin),
            Some(json!({"name": "Models", "amount_usd": 50, "group_by": "model", "thresholds": [90, 25]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["thresholds"], json!([25, 90]));
    assert_eq!(created["period"], "month");
    assert_eq!(created["time_zone"], "UTC");
    let id = created["id"].as_i64().expect("id");
    let groups = created["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["group"], "gpt-4o");
    assert_eq!(groups[0]["spent_usd"], 12.5);
    assert_eq!(groups[0]["percent"], 25.0);
    assert_eq!(groups[0]["over"], false);
    assert!(groups[0]["traces_url"]
        .as_str()
        .expect("url")
        .contains("model=gpt-4o"));

    // Viewers read: the list and one budget with its burn-down, day by day to the month's end.
    let list = app.get_ok(&viewer, "/api/v1/budgets").await;
    assert_eq!(list["items"][0]["name"], "Models");
    let detail = app
        .get_ok(&viewer, &format!("/api/v1/budgets/{id}?group=gpt-4o-mini"))
        .await;
    assert_eq!(detail["burndown_group"], "gpt-4o-mini");
    let days = detail["burndown"].as_array().expect("burndown");
    assert!((28..=31).contains(&days.len()), "{}", days.len());
    assert_eq!(
        days[0]["date"].as_str(),
        detail["period_start"].as_str().and_then(|s| s.get(..10))
    );
    let last = days.last().expect("a day");
    assert!((last["pace_usd"].as_f64().expect("pace") - 50.0).abs() < 1e-9);
    let today = days
        .iter()
        .rev()
        .find(|d| d["forecast_usd"].is_null())
        .expect("today");
    assert_eq!(today["spent_usd"], 2.5);

    // PATCH changes what it names; enabled: false stops the notices.
    let (status, changed) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/budgets/{id}"),
            Some(&admin),
            Some(json!({"amount_usd": 10, "group_by": null, "enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["group_by"], Value::Null);
    assert_eq!(changed["groups"][0]["spent_usd"], 15.0);
    assert_eq!(changed["groups"][0]["over"], true);
    assert_eq!(evaluate_at(&app, now + 60_000).await.budgets, 0);

    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/budgets/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/api/v1/budgets/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

async fn bad_budgets_and_roles_are_refused(backend: Backend) {
    let Some((app, admin, _integration, _hook)) = setup(backend).await else {
        return;
    };
    let viewer = app.login_as(Role::Viewer).await;
    let member = app.login_as(Role::Member).await;
    assert_each_refused(
        &app,
        "/api/v1/budgets",
        &admin,
        vec![
            (json!({"amount_usd": 10}), "invalid_budget"),
            (json!({"name": "x"}), "invalid_budget"),
            (json!({"name": "x", "amount_usd": 0}), "invalid_budget"),
            (json!({"name": "x", "amount_usd": -5}), "invalid_budget"),
            (
                json!({"name": "x", "amount_usd": 10, "period": "year"}),
                "invalid_budget",
            ),
            (
                json!({"name": "x", "amount_usd": 10, "time_zone": "Mars/Olympus"}),
                "invalid_budget",
            ),
            (
                json!({"name": "x", "amount_usd": 10, "thresholds": [0]}),
                "invalid_budget",
            ),
            (
                json!({"name": "x", "amount_usd": 10, "group_by": "colour"}),
                "invalid_budget",
            ),
            (
                json!({"name": "x", "amount_usd": 10, "scope": {"integration_id": 999}}),
                "invalid_budget",
            ),
            (json!({"name": "x", "amount_usd": "ten"}), "invalid_body"),
            (
                json!({"name": "x", "amount_usd": 10, "thresholds": [-1]}),
                "invalid_body",
            ),
            (
                json!({"name": "x", "amount_usd": 10, "currency": "EUR"}),
                "invalid_body",
            ),
        ],
    )
    .await;
    let budget = json!({"name": "Team", "amount_usd": 2000});
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/budgets",
            Some(&viewer),
            Some(budget.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = app
        .call(
            Method::POST,
            "/api/v1/budgets",
            Some(&member),
            Some(budget.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().expect("id");
    let (status, body) = app
        .call(Method::POST, "/api/v1/budgets", Some(&admin), Some(budget))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    for (method, body) in [
        (Method::PATCH, Some(json!({"amount_usd": 1}))),
        (Method::DELETE, None),
    ] {
        let (status, _) = app
            .call(
                method,
                &format!("/api/v1/budgets/{id}"),
                Some(&viewer),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/budgets/{id}"),
            Some(&member),
            Some(json!({"period": "fortnight"})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_budget");
    // A refused change leaves the budget as it was.
    assert_eq!(
        app.get_ok(&viewer, &format!("/api/v1/budgets/{id}")).await["period"],
        "month"
    );
    let (status, body) = app
        .call(Method::DELETE, "/api/v1/budgets/424242", Some(&admin), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = app.call(Method::GET, "/api/v1/budgets", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
