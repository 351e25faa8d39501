//! Cost estimates: prices for what Cloudflare did not price.

use super::*;

on_both_backends!(cost_estimates_price_what_cloudflare_did_not,);

async fn cost_estimates_price_what_cloudflare_did_not(backend: Backend) {
    let Some(app) = spawn_app_on(backend, test_config()).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let viewer = app.login_as(Role::Viewer).await;
    const MODEL: &str = "ft:acme-internal-v7";
    let price = json!({"model": MODEL, "input_per_1k": 0.01, "output_per_1k": 0.03});
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/cost-estimates",
            Some(&viewer),
            Some(price.clone()),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/cost-estimates",
            Some(&admin),
            Some(json!({"model": MODEL, "input_per_1k": -1, "output_per_1k": 0.03})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_price");
    let (status, saved) = app
        .call(
            Method::POST,
            "/api/v1/cost-estimates",
            Some(&admin),
            Some(price),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let list = app.get_ok(&viewer, "/api/v1/cost-estimates").await;
    assert_eq!(list["items"][0]["model"], MODEL);
    assert!(list["table"]
        .as_str()
        .is_some_and(|t| t.contains("genai-prices")));

    let id = app.create_integration(&admin).await;
    app.sync_now(&admin, id).await;
    let traces = all_traces(&app, &admin, &format!("model={MODEL}")).await;
    let estimated: Vec<&Value> = traces
        .iter()
        .filter(|t| {
            t["cost_source"] == "estimated" && t["cached"] == false && t["status"] == "success"
        })
        .collect();
    assert!(
        !estimated.is_empty(),
        "the emulator has unpriced calls of {MODEL}"
    );
    for t in estimated {
        let want = t["tokens_in"].as_f64().unwrap_or(0.0) / 1_000.0 * 0.01
            + t["tokens_out"].as_f64().unwrap_or(0.0) / 1_000.0 * 0.03;
        let got = t["cost_usd"].as_f64().expect("priced");
        assert!((got - want).abs() < 1e-9, "{t}");
    }
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/cost-estimates?model={}", MODEL.replace(':', "%3A")),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(
            Method::DELETE,
            "/api/v1/cost-estimates?model=nothing",
            Some(&admin),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}
