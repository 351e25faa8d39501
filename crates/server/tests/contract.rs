//! The API's contract from a client's side: the served OpenAPI document validates with
//! `openapi-spec-validator`, and a client generated from it by `openapi-python-client` (both
//! from PyPI; `.ci/run` installs them) drives real calls against the real server, parsing every
//! response into the generated models.

#[macro_use]
mod common;

use std::process::Command;

use common::*;

#[tokio::test]
async fn a_client_generated_from_the_openapi_document_works_against_the_server() {
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let integration = app.create_integration(&admin).await;
    let run = app.sync_now(&admin, integration).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/contract/check_openapi.py"
    );
    let base = app.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &base, ADMIN.0, ADMIN.1, &integration.to_string()])
            .output()
    })
    .await
    .expect("joined")
    .expect(
        "python3 runs the contract check (it needs `pip install openapi-spec-validator \
         openapi-python-client`, as .ci/run does)",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the contract check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("contract ok"), "{stdout}\n{stderr}");
    println!("{stdout}");
}

/// `/metrics` passes Prometheus's own linter (`promtool check metrics`, from Debian's
/// `prometheus` package): every metric has HELP and TYPE, names follow the conventions.
#[tokio::test]
async fn the_metrics_pass_promtool() {
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let integration = app.create_integration(&admin).await;
    app.sync_now(&admin, integration).await;
    // An API error and a policy pass, so their metrics are in the exposition too.
    app.call(
        reqwest::Method::GET,
        "/api/v1/no-such-route",
        Some(&admin),
        None,
    )
    .await;
    policies_caught_up(&app, &admin).await;
    let exposition = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    for metric in [
        "langguard_gateway_requests_total",
        "langguard_http_request_duration_seconds",
        "langguard_api_errors_total",
        "langguard_policy_evaluations_total",
    ] {
        assert!(
            exposition.contains(&format!("# HELP {metric} ")),
            "{metric} has no HELP"
        );
    }
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool runs (Debian's `prometheus` package, as .ci/run installs)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(exposition.as_bytes())
            .expect("write");
        child.wait_with_output().expect("promtool finishes")
    })
    .await
    .expect("joined");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
}
