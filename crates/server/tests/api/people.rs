//! People and teams: an admin names the metadata keys, stored logs are counted by the
//! backfill and new ones at ingest (folded in by the minute's upkeep), the list and an identity's page say what the raw logs say,
//! and each links to exactly that identity's traces.

use super::*;
use langguard_store::NewInteraction;

on_both_backends!(
    people_are_counted_listed_and_linked,
    bad_people_requests_are_refused,
);

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// A call by `user` of `team` `days_ago` days back.
fn call(n: usize, user: &str, team: &str, days_ago: i64, usd: f64, now: i64) -> NewInteraction {
    NewInteraction {
        metadata: Some(format!(r#"{{"user_id":"{user}","team":"{team}"}}"#)),
        success: !n.is_multiple_of(5),
        cached: n.is_multiple_of(4),
        ..gateway_call(
            format!("people-{n}"),
            if n.is_multiple_of(3) {
                "gpt-4o"
            } else {
                "gpt-4o-mini"
            },
            now - days_ago * DAY - (n as i64 % 7) * 60_000,
            usd,
        )
    }
}

async fn people_are_counted_listed_and_linked(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let viewer = app.login_as(Role::Viewer).await;
    let integration = app.create_integration(&admin).await;
    let now = langguard_clock::now_ms();

    // Before any key: an empty list that says so.
    let list = app.get_ok(&viewer, "/api/v1/people").await;
    assert_eq!(list["key"], Value::Null);
    assert_eq!(list["people"], json!([]));

    // Ana spends most (one call 40 days ago is outside the window), Bo less, Cy once.
    let mut stored: Vec<NewInteraction> = Vec::new();
    for n in 0..30 {
        stored.push(call(
            n,
            "ana@example.com",
            "search",
            n as i64 % 10,
            2.0,
            now,
        ));
    }
    stored.push(call(30, "ana@example.com", "search", 40, 100.0, now));
    for n in 31..41 {
        stored.push(call(n, "bo", "ml platform", 1, 0.5, now));
    }
    app.seed(integration, "gw", stored).await;

    let (status, keys) = app
        .call(
            Method::PUT,
            "/api/v1/people/keys",
            Some(&admin),
            Some(json!({"user_key": "user_id", "team_key": "team"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(keys["user_key"], "user_id");
    assert_eq!(keys["backfilling"], json!(["team", "user"]));
    // Logged as an admin change.
    let audit = app.get_ok(&admin, "/api/v1/audit").await;
    assert!(audit.to_string().contains("settings.people_keys_changed"));

    // A log stored after the key is counted at ingest; the older ones by the backfill.
    app.seed(
        integration,
        "gw",
        vec![call(41, "cy", "search", 0, 1.25, now)],
    )
    .await;
    let list = app.get_ok(&viewer, "/api/v1/people").await;
    assert_eq!(list["backfilling"], true);
    assert_eq!(list["total"], 0, "{list}");
    let upkeep = langguard_ops::people::upkeep(app.store.as_ref(), now, Duration::from_secs(30))
        .await
        .expect("upkeep");
    // Cy's call was appended at ingest and is folded in; the 41 stored before are read once
    // per key by the backfill.
    assert_eq!(upkeep.folded, 2);
    assert_eq!(upkeep.backfilled, 41 * 2);
    let keys = app.get_ok(&viewer, "/api/v1/people/keys").await;
    assert_eq!(keys["backfilling"], json!([]));

    let list = app.get_ok(&viewer, "/api/v1/people").await;
    assert_eq!(list["key"], "user_id");
    assert_eq!(list["window_days"], 30);
    assert_eq!(list["total"], 3);
    let people = list["people"].as_array().expect("people");
    let names: Vec<&str> = people
        .iter()
        .filter_map(|p| p["identity"].as_str())
        .collect();
    assert_eq!(names, ["ana@example.com", "bo", "cy"]);
    let ana = &people[0];
    assert_eq!(ana["requests"], 30);
    assert_eq!(ana["spend_usd"], 60.0);
    assert_eq!(ana["tokens_in"], 300);
    assert_eq!(ana["errors"], 6);
    assert_eq!(ana["error_rate"], 20.0);
    assert_eq!(ana["active_days"], 10);
    assert_eq!(ana["top_model"], "gpt-4o-mini");
    assert_eq!(ana["top_provider"], "openai");
    // First seen is all time: the call 40 days ago.
    let first = ana["first_seen"]
        .as_str()
        .and_then(langguard_clock::parse_ms)
        .expect("first_seen");
    assert!(first <= now - 40 * DAY);
    assert_eq!(ana["url"], "/people/user/ana%40example.com");

    // The traces link lists exactly Ana's calls in the window.
    let link = ana["traces_url"].as_str().expect("link");
    let query = link
        .strip_prefix("/traces?")
        .expect("a Trace Explorer link");
    let traces = all_traces(&app, &viewer, query).await;
    assert_eq!(traces.len(), 30, "{link}");

    // Teams, sorted by requests, found by part of their name.
    let teams = app
        .get_ok(&viewer, "/api/v1/people?kind=team&sort=requests&q=PLAT")
        .await;
    assert_eq!(teams["key"], "team");
    assert_eq!(teams["people"][0]["identity"], "ml platform");
    assert_eq!(teams["people"][0]["requests"], 10);
    assert_eq!(teams["total"], 1);

    // One person's page: spend per day for the span asked, models by spend.
    let detail = app
        .get_ok(&viewer, "/api/v1/people/user/ana%40example.com?days=12")
        .await;
    assert_eq!(detail["person"]["identity"], "ana@example.com");
    let daily = detail["daily"].as_array().expect("daily");
    assert_eq!(daily.len(), 12);
    let spent: f64 = daily.iter().filter_map(|d| d["spend_usd"].as_f64()).sum();
    assert_eq!(spent, 60.0);
    let models = detail["models"].as_array().expect("models");
    assert_eq!(models[0]["model"], "gpt-4o-mini");
    assert_eq!(models[0]["requests"], 20);
    assert_eq!(models[1]["share"], 33.33);

    // Renaming the user key starts users over; teams stay.
    app.call(
        Method::PUT,
        "/api/v1/people/keys",
        Some(&admin),
        Some(json!({"user_key": "email", "team_key": "team"})),
    )
    .await;
    let list = app.get_ok(&viewer, "/api/v1/people").await;
    assert_eq!(list["total"], 0);
    let teams = app.get_ok(&viewer, "/api/v1/people?kind=team").await;
    assert_eq!(teams["total"], 2);
}

async fn bad_people_requests_are_refused(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let member = app.login_as(Role::Member).await;

    let (status, body) = app
        .call(
            Method::PUT,
            "/api/v1/people/keys",
            Some(&member),
            Some(json!({"user_key": "user_id"})),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    for (body, code) in [
        (json!({"user_key": "user=id"}), "invalid_identity_key"),
        (json!({"team_key": "x".repeat(65)}), "invalid_identity_key"),
        (json!({"user_key": 7}), "invalid_body"),
        (json!({"users": "user_id"}), "invalid_body"),
    ] {
        let (status, got) = app
            .call(
                Method::PUT,
                "/api/v1/people/keys",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_error(status, &got, StatusCode::BAD_REQUEST, code);
    }
    // Nothing was named by the refused requests.
    let keys = app.get_ok(&admin, "/api/v1/people/keys").await;
    assert_eq!(keys["user_key"], Value::Null);

    for (path, code) in [
        ("/api/v1/people?kind=robot", "invalid_kind"),
        ("/api/v1/people?sort=size", "invalid_sort"),
        ("/api/v1/people?limit=0", "invalid_limit"),
        ("/api/v1/people?limit=201", "invalid_limit"),
        ("/api/v1/people?offset=-1", "invalid_query"),
        ("/api/v1/people?color=red", "invalid_query"),
        ("/api/v1/people/robot/x", "invalid_kind"),
        ("/api/v1/people/user/x?days=0", "invalid_days"),
        ("/api/v1/people/user/x?days=400", "invalid_days"),
    ] {
        let (status, got) = app.call(Method::GET, path, Some(&member), None).await;
        assert_error(status, &got, StatusCode::BAD_REQUEST, code);
    }
    let (status, got) = app
        .call(
            Method::GET,
            "/api/v1/people/user/nobody",
            Some(&member),
            None,
        )
        .await;
    assert_error(status, &got, StatusCode::NOT_FOUND, "not_found");
}
