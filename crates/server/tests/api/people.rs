//! People and teams: an admin names the metadata keys, stored logs are counted by the
//! backfill and new ones at ingest (folded in by the minute's upkeep), the list and an identity's page say what the raw logs say,
//! and each links to exactly that identity's traces.

use super::*;
use langguard_store::NewInteraction;

on_both_backends!(
    people_are_counted_listed_and_linked,
    bad_people_requests_are_refused,
    a_user_who_triples_their_spend_is_flagged_everywhere,
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
    // Cy's call was appended at ingest and is folded in (a user row, a team row, Cy's hour
    // session); the 41 stored before are read once per key by the backfill.
    assert_eq!(upkeep.folded, 3);
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
        // Sessions are a user's: no session key without a user key.
        (json!({"session_key": "session_id"}), "invalid_identity_key"),
        (
            json!({"user_key": "user_id", "session_key": "a b"}),
            "invalid_identity_key",
        ),
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
        ("/api/v1/people/anomalies?days=0", "invalid_days"),
        ("/api/v1/people/anomalies?days=31", "invalid_days"),
        ("/api/v1/people/anomalies?limit=0", "invalid_limit"),
        ("/api/v1/people/anomalies?limit=501", "invalid_limit"),
        ("/api/v1/people/anomalies?color=red", "invalid_query"),
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

/// A call of `usd` by `user` in session `session`, `minutes_ago` minutes back.
fn session_call(
    n: usize,
    user: &str,
    session: &str,
    minutes_ago: i64,
    usd: f64,
    now: i64,
) -> NewInteraction {
    NewInteraction {
        metadata: Some(format!(
            r#"{{"user_id":"{user}","session_id":"{session}"}}"#
        )),
        ..gateway_call(
            format!("spend-{n}"),
            "gpt-4o",
            now - minutes_ago * 60_000,
            usd,
        )
    }
}

async fn a_user_who_triples_their_spend_is_flagged_everywhere(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let viewer = app.login_as(Role::Viewer).await;
    let integration = app.create_integration(&admin).await;
    let now = langguard_clock::now_ms();
    let mut n = 0;
    let mut sessions = |user: &str, name: &str, minutes_ago: i64, calls: usize, usd: f64| {
        (0..calls)
            .map(|c| {
                n += 1;
                session_call(n, user, name, minutes_ago - c as i64, usd, now)
            })
            .collect::<Vec<_>>()
    };
    let mut stored = Vec::new();
    // Ana's habit: a $1 session a day for 20 days; 30 colleagues spend the same. Then Ana
    // triples: $3 in today's session.
    for day in 1..=20 {
        stored.extend(sessions("ana", &format!("ana-{day}"), day * 1_440, 4, 0.25));
        for u in 0..30 {
            if day <= 12 {
                stored.extend(sessions(
                    &format!("u{u}"),
                    &format!("u{u}-{day}"),
                    day * 1_440,
                    4,
                    0.25,
                ));
            }
        }
    }
    stored.extend(sessions("ana", "ana-tripled", 90, 4, 0.75));
    // Five times a small habit, still below what a session costs in this organisation: not
    // anomalous.
    for day in 1..=12 {
        stored.extend(sessions(
            "lowe",
            &format!("lowe-{day}"),
            day * 1_440,
            1,
            0.10,
        ));
    }
    stored.extend(sessions("lowe", "lowe-busy", 60, 5, 0.10));
    // A newcomer's first big session: too few earlier sessions to know their habit.
    for day in 1..=3 {
        stored.extend(sessions(
            "newbie",
            &format!("newbie-{day}"),
            day * 1_440,
            1,
            0.10,
        ));
    }
    stored.extend(sessions("newbie", "newbie-big", 30, 5, 1.0));
    app.seed(integration, "gw", stored).await;
    // The policies judged these calls before any session was (so none was anomalous then).
    policies_caught_up(&app, &viewer).await;

    let (status, keys) = app
        .call(
            Method::PUT,
            "/api/v1/people/keys",
            Some(&admin),
            Some(json!({"user_key": "user_id", "session_key": "session_id"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(keys["session_key"], "session_id");
    let upkeep = langguard_ops::people::upkeep(app.store.as_ref(), now, Duration::from_secs(30))
        .await
        .expect("upkeep");
    assert_eq!(upkeep.anomalies_flagged, 1, "{upkeep:?}");
    // Judged once: a second round finds nothing new.
    let again = langguard_ops::people::upkeep(app.store.as_ref(), now, Duration::from_secs(30))
        .await
        .expect("upkeep");
    assert_eq!((again.sessions_judged, again.anomalies_flagged), (0, 0));

    let list = app.get_ok(&viewer, "/api/v1/people/anomalies").await;
    assert_eq!(list["session_key"], "session_id");
    let found = list["anomalies"].as_array().expect("anomalies");
    assert_eq!(found.len(), 1, "{list}");
    let a = &found[0];
    assert_eq!(a["user"], "ana");
    assert_eq!(a["session"], "ana-tripled");
    assert_eq!(a["hour"], Value::Null);
    assert_eq!(a["requests"], 4);
    assert_eq!(a["spend_usd"], 3.0);
    assert_eq!(a["user_p95_usd"], 1.0);
    assert_eq!(a["baseline_sessions"], 20);
    assert_eq!(a["org_p99_usd"], 1.0);
    assert_eq!(a["times_p95"], 3.0);
    assert_eq!(a["person_url"], "/people/user/ana");
    // Its link lists exactly the session's four calls.
    let link = a["traces_url"].as_str().expect("link");
    let traces = all_traces(&app, &viewer, link.strip_prefix("/traces?").expect("link")).await;
    assert_eq!(traces.len(), 4, "{link}");
    // One user's anomalies; another's are none.
    let lowe = app
        .get_ok(&viewer, "/api/v1/people/anomalies?user=lowe")
        .await;
    assert_eq!(lowe["anomalies"], json!([]));

    // The People list counts it on Ana's row.
    let people = app.get_ok(&viewer, "/api/v1/people?limit=200").await;
    let count = |who: &str| {
        people["people"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["identity"] == who))
            .map(|p| p["anomalies"].clone())
    };
    assert_eq!(count("ana"), Some(json!(1)));
    assert_eq!(count("newbie"), Some(json!(0)));

    // The built-in policy flags the session's calls once it is judged anomalous.
    app.seed(
        integration,
        "gw",
        vec![session_call(9_000, "ana", "ana-tripled", 1, 0.75, now)],
    )
    .await;
    policies_caught_up(&app, &viewer).await;
    let violations = all_violations(&app, &viewer, "policy=spend-anomaly").await;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("ana's session ana-tripled")),
        "{}",
        violations[0]
    );

    // And an alert rule on the metric fires.
    let (status, rule) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(json!({"name": "Spend anomalies", "metric": "spend_anomalies", "threshold": 0, "window_minutes": 1440})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let report = langguard_ops::alerts::evaluate::evaluate(app.store.as_ref(), now, None)
        .await
        .expect("evaluate");
    assert_eq!(report.fired, 1, "{report:?}");
    // The metric counts over all traffic: a scoped or grouped rule is refused.
    for body in [
        json!({"name": "x", "metric": "spend_anomalies", "scope": {"model": "gpt-4o"}}),
        json!({"name": "x", "metric": "spend_anomalies", "group_by": "model"}),
    ] {
        let (status, got) = app
            .call(
                Method::POST,
                "/api/v1/alerts/rules",
                Some(&admin),
                Some(body),
            )
            .await;
        assert_error(status, &got, StatusCode::BAD_REQUEST, "invalid_rule");
    }
}
