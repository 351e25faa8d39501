//! Saved views: everyone keeps their own, Members and Admins share; someone else's own view
//! doesn't exist to others, a shared one is changed by its owner or an Admin; what a client
//! gets wrong.

use super::*;

on_both_backends!(views_are_kept_shared_and_guarded, bad_views_are_refused,);

async fn views_are_kept_shared_and_guarded(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let member = app.login_as(Role::Member).await;
    let viewer = app.login_as(Role::Viewer).await;

    // A whole address pasted from the browser keeps its filters, not its page cursor.
    let (status, mine) = app
        .call(
            Method::POST,
            "/api/v1/saved-views",
            Some(&member),
            Some(json!({"name": "OpenAI errors",
                        "query": "https://lg.example.com/traces?status=error&provider=openai&cursor=xyz&metadata=team%3Dsearch"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    assert_eq!(
        mine["query"],
        "status=error&provider=openai&metadata=team%3Dsearch"
    );
    assert_eq!(
        mine["url"],
        "/traces?status=error&provider=openai&metadata=team%3Dsearch"
    );
    assert_eq!(mine["shared"], false);
    assert_eq!(mine["mine"], true);
    assert_eq!(mine["owner"], "member@example.com");
    let mine_id = mine["id"].as_i64().expect("id");

    let (status, shared) = app
        .call(
            Method::POST,
            "/api/v1/saved-views",
            Some(&member),
            Some(json!({"name": "Slow calls", "query": "min_duration_ms=5000&sort=duration", "shared": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{shared}");
    let shared_id = shared["id"].as_i64().expect("id");

    // The viewer keeps views of their own (the same name is theirs to use) but can't share.
    let (status, own) = app
        .call(
            Method::POST,
            "/api/v1/saved-views",
            Some(&viewer),
            Some(json!({"name": "OpenAI errors", "query": "provider=openai"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/saved-views",
            Some(&viewer),
            Some(json!({"name": "Mine for all", "query": "", "shared": true})),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");

    // The viewer sees their own and the shared one, not the member's own.
    let list = app.get_ok(&viewer, "/api/v1/saved-views").await;
    let names: Vec<(&str, bool)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|v| {
            (
                v["name"].as_str().expect("name"),
                v["mine"].as_bool().expect("mine"),
            )
        })
        .collect();
    assert_eq!(names, [("OpenAI errors", true), ("Slow calls", false)]);
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/api/v1/saved-views/{mine_id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/saved-views/{mine_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // A shared view is changed by its owner or an Admin, not by others.
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/saved-views/{shared_id}"),
            Some(&viewer),
            Some(json!({"name": "Hijacked"})),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, renamed) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/saved-views/{shared_id}"),
            Some(&admin),
            Some(json!({"name": "Slow calls (5 s)"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Slow calls (5 s)");
    assert_eq!(renamed["owner"], "member@example.com");
    assert_eq!(renamed["mine"], false);
    assert_eq!(renamed["query"], "min_duration_ms=5000&sort=duration");

    // Names are unique per owner.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/saved-views",
            Some(&member),
            Some(json!({"name": "OpenAI errors", "query": "provider=openai"})),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");

    // Sharing is audited; deleting one's own view works, someone else's shared one doesn't.
    let audit = app.get_ok(&admin, "/api/v1/audit").await;
    assert!(
        audit["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["action"] == "saved_view.shared"),
        "{audit}"
    );
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/saved-views/{shared_id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/saved-views/{mine_id}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let list = app.get_ok(&member, "/api/v1/saved-views").await;
    assert_eq!(list["items"].as_array().expect("items").len(), 1);

    // Made a Viewer, the owner no longer changes what everyone sees.
    let users = app.get_ok(&admin, "/api/v1/users").await;
    let member_id = users["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|u| u["email"] == "member@example.com")
        .and_then(|u| u["id"].as_i64())
        .expect("member");
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{member_id}"),
            Some(&admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/saved-views/{shared_id}"),
            Some(&member),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
}

async fn bad_views_are_refused(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let member = app.login_as(Role::Member).await;
    assert_each_refused(
        &app,
        "/api/v1/saved-views",
        &member,
        vec![
            (json!({"query": "status=error"}), "invalid_view"),
            (
                json!({"name": "  ", "query": "status=error"}),
                "invalid_view",
            ),
            (
                json!({"name": "x".repeat(101), "query": ""}),
                "invalid_view",
            ),
            (json!({"name": "x", "query": "colour=red"}), "invalid_view"),
            (
                json!({"name": "x", "query": "/monitoring?range=24h"}),
                "invalid_view",
            ),
            (
                json!({"name": "x", "query": format!("q={}", "a".repeat(5_000))}),
                "invalid_view",
            ),
            (
                json!({"name": "x", "query": "status=error", "owner": 1}),
                "invalid_body",
            ),
            (json!({"name": 7}), "invalid_body"),
        ],
    )
    .await;
    let (status, _) = app
        .call(Method::GET, "/api/v1/saved-views", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .call(
            Method::PATCH,
            "/api/v1/saved-views/999",
            Some(&member),
            Some(json!({"name": "y"})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert!(app.get_ok(&member, "/api/v1/saved-views").await["items"]
        .as_array()
        .expect("items")
        .is_empty());
}
