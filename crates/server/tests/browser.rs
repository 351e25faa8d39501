//! The web UI in a real browser: Debian's chromium driven through chromedriver (WebDriver),
//! against the real server and the Cloudflare emulator. Fields are found by their visible
//! labels, as a person (or a screen reader) finds them. Screenshots go to
//! `target/tmp/screenshots/`.
//!
//! Without chromedriver on the PATH these tests say so and pass, unless
//! `LANGGUARD_REQUIRE_BROWSER` is set (CI sets it, after installing chromium).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

struct Browser {
    client: Client,
    _driver: Driver,
    /// One browser at a time: three headless chromiums on two cores make every wait a guess.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The chromedriver process, stopped when dropped (also when a test panics).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn browser() -> Option<Browser> {
    let found = Command::new("chromedriver")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("LANGGUARD_REQUIRE_BROWSER").is_none(),
            "chromedriver is not installed (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "SKIPPED: browser tests need chromedriver (apt-get install chromium chromium-driver)"
        );
        return None;
    }
    let turn = ONE_AT_A_TIME.lock().await;
    let port = free_port();
    let driver = Driver(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let mut caps = serde_json::Map::new();
    let mut options = serde_json::json!({"args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1280,900"
    ]});
    if std::path::Path::new("/usr/bin/chromium").exists() {
        options["binary"] = "/usr/bin/chromium".into();
    }
    caps.insert("goog:chromeOptions".into(), options);
    caps.insert(
        "goog:loggingPrefs".into(),
        serde_json::json!({"browser": "ALL"}),
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        if let Ok(client) = ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            return Some(Browser {
                client,
                _driver: driver,
                _turn: turn,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

/// The select a visible label names.
async fn select_field(c: &Client, label: &str) -> Element {
    c.find(Locator::XPath(&format!(
        "//select[@id=//label[normalize-space()='{label}']/@for]"
    )))
    .await
    .unwrap_or_else(|e| panic!("no select labelled {label:?}: {e}"))
}

/// The input a visible label names.
async fn field(c: &Client, label: &str) -> Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&format!(
            "//input[@id=//label[normalize-space()='{label}']/@for]"
        )))
        .await
        .unwrap_or_else(|e| panic!("no field labelled {label:?}: {e}"))
}

/// Types `text` into the input a visible label names.
async fn fill(c: &Client, label: &str, text: &str) {
    field(c, label)
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("typing into {label:?}: {e}"));
}

/// Replaces what the input a visible label names holds with `text`.
async fn refill(c: &Client, label: &str, text: &str) {
    field(c, label)
        .await
        .clear()
        .await
        .unwrap_or_else(|e| panic!("clearing {label:?}: {e}"));
    fill(c, label, text).await;
}

async fn click(c: &Client, kind: &str, text: &str) {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&format!(
            "//{kind}[normalize-space()='{text}']"
        )))
        .await
        .unwrap_or_else(|e| panic!("no {kind} {text:?}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {text:?}: {e}"));
}

/// The page's visible text (asked again when a navigation replaced the page meanwhile).
async fn page_text(c: &Client) -> String {
    for _ in 0..50 {
        if let Ok(body) = c.find(Locator::Css("body")).await {
            if let Ok(text) = body.text().await {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page has no readable body");
}

/// Waits until the page shows `text`.
async fn wait_for_text(c: &Client, text: &str) {
    for _ in 0..200 {
        if page_text(c).await.contains(text) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page never showed {text:?}:\n{}", page_text(c).await);
}

/// chromedriver's console log (not in W3C WebDriver; chromedriver keeps the old endpoint).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(r#"{"type": "browser"}"#.to_string()),
        )
    }
}

/// Fails on any script error the pages logged since the last look. A refused request (the 403
/// page a viewer is shown on purpose, say) is the browser reporting the status, not an error
/// of the page's, and is left out.
async fn assert_no_console_errors(c: &Client) {
    let log = c
        .issue_cmd(BrowserLog)
        .await
        .expect("the browser's console log");
    let errors: Vec<String> = log
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["level"] == "SEVERE")
                .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                .filter(|m| !m.contains("Failed to load resource"))
                .collect()
        })
        .unwrap_or_default();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

async fn screenshot(c: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

async fn sign_in(c: &Client, base: &str, email: &str, password: &str) {
    c.goto(&format!("{base}/integrations")).await.expect("open");
    let url = c.current_url().await.expect("url");
    assert_eq!(url.path(), "/login", "signed-out visitors go to Sign in");
    fill(c, "Email", email).await;
    fill(c, "Password", password).await;
    click(c, "button", "Sign in").await;
    wait_for_text(c, "Integrations").await;
}

#[tokio::test]
async fn an_admin_adds_a_cloudflare_integration_and_syncs_it() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = spawn_app().await;
    sign_in(c, &app.base, ADMIN.0, ADMIN.1).await;
    wait_for_text(c, "No integrations yet").await;

    // The product docs' steps, by their labels.
    click(c, "a", "Add Integration").await;
    click(c, "a", "AI Gateways").await;
    click(c, "a", "Cloudflare").await;
    fill(c, "Name", "Production").await;
    fill(c, "Account ID", ACCOUNT).await;
    let token = field(c, "API Token").await;
    assert_eq!(
        token.attr("type").await.expect("type").as_deref(),
        Some("password"),
        "the token is typed into a password field"
    );
    token.send_keys("not-the-token").await.expect("token");
    click(c, "button", "Test Connection").await;
    wait_for_text(c, "Connection failed").await;
    wait_for_text(c, "Troubleshooting").await;
    screenshot(c, "test-connection-failed").await;

    token.clear().await.expect("clear");
    token.send_keys(CF_TOKEN).await.expect("token");
    click(c, "button", "Test Connection").await;
    wait_for_text(c, "Connected.").await;
    let text = page_text(c).await;
    assert!(
        text.contains("prod-chat") && text.contains("support"),
        "{text}"
    );
    screenshot(c, "test-connection-ok").await;

    click(c, "button", "Save").await;
    wait_for_text(c, "Production").await;
    assert_eq!(c.current_url().await.expect("url").path(), "/integrations");
    assert!(
        !page_text(c).await.contains(CF_TOKEN),
        "the token is never shown"
    );

    click(c, "button", "Sync Now").await;
    wait_for_text(c, "Sync started").await;
    // The card shows what was imported once the sync is done.
    let mut synced = false;
    for _ in 0..100 {
        c.refresh().await.expect("reload");
        let text = page_text(c).await;
        // Rows count up while the sync runs; the status changes when it ends.
        let counted =
            text.contains("Interactions synced\n350") || text.contains("Interactions synced 350");
        if counted && text.contains("Connected") {
            synced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(synced, "{}", page_text(c).await);
    screenshot(c, "integrations-after-sync").await;

    // Its page: sync history, edit, delete.
    click(c, "a", "Edit and sync history").await;
    wait_for_text(c, "Sync history").await;
    wait_for_text(c, "succeeded").await;
    // How data arrives: the pulled gateways, and what to set up for pushes.
    wait_for_text(c, "How data arrives").await;
    let text = page_text(c).await;
    assert!(text.contains("Logs API"), "{text}");
    assert!(text.contains("/v1/traces"), "{text}");
    assert!(text.contains("ai_gateway_events"), "{text}");
    assert!(text.contains("BEGIN PUBLIC KEY"), "{text}");
    assert!(text.contains("Logpush buckets"), "{text}");
    // A gateway's counted source is switched from its row, with a handover instant.
    c.find(Locator::Css("#source-prod-chat"))
        .await
        .expect("the source chooser")
        .select_by_value("otlp")
        .await
        .expect("choose OpenTelemetry");
    c.find(Locator::Css(
        "form[action$='/gateways/prod-chat/source'] button",
    ))
    .await
    .expect("switch")
    .click()
    .await
    .expect("click");
    wait_for_text(c, "prod-chat now counts from OpenTelemetry").await;
    // Set up push needs the address Cloudflare reaches LangGuard at; the page says so.
    fill(c, "Gateway", "prod-chat").await;
    click(c, "button", "Set up push").await;
    wait_for_text(c, "to the HTTPS address Cloudflare reaches LangGuard at").await;
    refill(c, "Name", "Production EU").await;
    click(c, "button", "Save").await;
    wait_for_text(c, "Saved.").await;
    wait_for_text(c, "Production EU").await;
    // Narrow screens get the same page, laid out in one column.
    c.set_window_size(420, 900).await.expect("narrow");
    screenshot(c, "integration-narrow").await;
    c.set_window_size(1280, 900).await.expect("wide");
    c.find(Locator::XPath(
        "//button[normalize-space()='Delete Integration']",
    ))
    .await
    .expect("delete")
    .click()
    .await
    .expect("click delete");
    c.accept_alert().await.expect("confirm the deletion");
    wait_for_text(c, "No integrations yet").await;
    assert_no_console_errors(c).await;
    b.client.clone().close().await.expect("close");
}

#[tokio::test]
async fn a_viewer_sees_no_admin_controls() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    app.create_integration(&admin).await;
    app.login_as(Role::Viewer).await;
    sign_in(c, &app.base, "viewer@example.com", "viewer-password-123").await;
    wait_for_text(c, "Interactions synced").await;
    let text = page_text(c).await;
    assert!(!text.contains("Add Integration"), "{text}");
    assert!(!text.contains("Sync Now"), "{text}");
    screenshot(c, "viewer-integrations").await;
    c.goto(&format!("{}/integrations/new", app.base))
        .await
        .expect("open");
    wait_for_text(c, "Not allowed").await;
    c.goto(&format!("{}/policies", app.base))
        .await
        .expect("open");
    wait_for_text(c, "Metadata Tagging").await;
    let text = page_text(c).await;
    assert!(!text.contains("New Policy"), "{text}");
    assert!(
        c.find_all(Locator::Css("select[name=mode]"))
            .await
            .expect("selects")
            .is_empty(),
        "viewers see modes, not switches"
    );
    c.goto(&format!("{}/policies/new", app.base))
        .await
        .expect("open");
    wait_for_text(c, "Not allowed").await;
    // Alerts: read, not written.
    c.goto(&format!("{}/alerts", app.base)).await.expect("open");
    wait_for_text(c, "Firing and pending").await;
    let text = page_text(c).await;
    assert!(!text.contains("New alert rule"), "{text}");
    assert!(!text.contains("Create rule"), "{text}");
    // Budgets: read, not written.
    c.goto(&format!("{}/budgets", app.base))
        .await
        .expect("open");
    wait_for_text(c, "No budgets yet.").await;
    let text = page_text(c).await;
    assert!(!text.contains("New budget"), "{text}");
    assert_no_console_errors(c).await;
    b.client.clone().close().await.expect("close");
}

/// The text of the element an XPath names.
async fn text_of(c: &Client, xpath: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("nothing at {xpath}: {e}"))
        .text()
        .await
        .expect("text")
}

/// A Monitoring card's value by its label.
async fn card_value(c: &Client, label: &str) -> String {
    text_of(
        c,
        &format!("//div[contains(@class,'stat')][span[@class='label' and normalize-space()='{label}']]/span[@class='value']"),
    )
    .await
}

#[tokio::test]
async fn monitoring_and_the_trace_explorer_show_what_the_api_returns() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let id = app.create_integration(&admin).await;
    app.sync_now(&admin, id).await;
    let (_, m) = app
        .call(reqwest::Method::GET, "/api/v1/metrics", Some(&admin), None)
        .await;
    let (_, errors) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/traces?status=error&limit=100&from=2000-01-01T00:00:00Z",
            Some(&admin),
            None,
        )
        .await;
    let error_count = errors["items"].as_array().expect("items").len();
    assert!(error_count > 0 && error_count < 50);

    sign_in(c, &app.base, ADMIN.0, ADMIN.1).await;
    click(c, "a", "Monitoring").await;
    wait_for_text(c, "Total Requests").await;
    assert_eq!(
        card_value(c, "Total Requests").await,
        m["requests"].to_string()
    );
    let rate = m["success_rate"].as_f64().expect("rate");
    assert_eq!(
        card_value(c, "Success Rate").await,
        format!("{:.1} %", rate * 100.0)
    );
    assert_eq!(
        card_value(c, "Rate-Limit Events").await,
        m["rate_limited"].to_string()
    );
    let page = page_text(c).await;
    assert!(
        page.contains("By Model") && page.contains("Integration health"),
        "{page}"
    );
    // Integration health says how much of what Cloudflare counted LangGuard holds, as the
    // overview API does.
    let (_, overview) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/monitoring/overview",
            Some(&admin),
            None,
        )
        .await;
    let label = overview["integrations"][0]["coverage"]["label"]
        .as_str()
        .expect("a coverage label")
        .to_owned();
    assert_eq!(label, "100.0 %", "{overview}");
    let coverage_cell = text_of(
        c,
        "//table[.//th[normalize-space()='Coverage']]/tbody/tr[1]/td[6]",
    )
    .await;
    assert_eq!(coverage_cell, label);
    screenshot(c, "monitoring").await;

    // The integration's page has the Coverage card: per gateway, Cloudflare's count beside
    // what is held.
    c.goto(&format!("{}/integrations/{id}", app.base))
        .await
        .expect("open the integration");
    wait_for_text(c, "Cloudflare counted").await;
    let card = text_of(c, "//section[@aria-labelledby='coverage-heading']").await;
    assert!(card.contains("100.0 %"), "{card}");
    let (_, coverage) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/integrations/{id}/coverage"),
            Some(&admin),
            None,
        )
        .await;
    for g in coverage["gateways"].as_array().expect("gateways") {
        let gateway = g["gateway"].as_str().expect("name");
        let row = text_of(
            c,
            &format!(
                "//section[@aria-labelledby='coverage-heading']//tr[td[1][normalize-space()='{gateway}']]"
            ),
        )
        .await;
        assert!(
            row.contains(&g["cloudflare"].to_string()) && row.contains(&g["stored"].to_string()),
            "{gateway}: {row} vs {g}"
        );
    }
    screenshot(c, "integration-coverage").await;

    // Trace Explorer with a filter applied: only errors, as many as the API lists.
    click(c, "a", "Trace Explorer").await;
    wait_for_text(c, "Export CSV").await;
    select_field(c, "Status")
        .await
        .select_by_value("error")
        .await
        .expect("choose Error");
    click(c, "button", "Apply").await;
    wait_for_text(c, "Error").await;
    let mut statuses = Vec::new();
    for _ in 0..50 {
        let cells = c
            .find_all(Locator::XPath(
                "//table[contains(@class,'traces')]/tbody/tr/td[2]",
            ))
            .await
            .expect("rows");
        statuses.clear();
        for cell in cells {
            statuses.push(cell.text().await.unwrap_or_default());
        }
        if statuses.len() == error_count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(statuses.len(), error_count);
    assert!(statuses.iter().all(|s| s == "Error"), "{statuses:?}");
    // A row opens its detail in the drawer.
    c.find(Locator::XPath(
        "//table[contains(@class,'traces')]/tbody/tr[1]/td[1]/a",
    ))
    .await
    .expect("first row")
    .click()
    .await
    .expect("open the drawer");
    wait_for_text(c, "Overview").await;
    wait_for_text(c, "Input/Output").await;
    screenshot(c, "trace-explorer").await;
    // Cloudflare's log fields are searchable, and the drawer shows them.
    c.goto(&format!("{}/traces?q=dlp_action%3AFLAG", app.base))
        .await
        .expect("open");
    c.find(Locator::XPath(
        "//table[contains(@class,'traces')]/tbody/tr[1]/td[1]/a",
    ))
    .await
    .expect("a DLP-flagged trace")
    .click()
    .await
    .expect("open the drawer");
    wait_for_text(c, "Log fields").await;
    let drawer = page_text(c).await;
    assert!(
        drawer.contains("\"dlp_action\": \"FLAG\"") && drawer.contains("credentials"),
        "{drawer}"
    );
    assert_no_console_errors(c).await;
    // The page checks its filters as the API does: a range that can't match says so.
    c.goto(&format!("{}/traces?min_tokens=10&max_tokens=5", app.base))
        .await
        .expect("open");
    wait_for_text(c, "nothing could match").await;
    c.goto(&format!(
        "{}/traces?metadata=not%20a%20key%3Dx&integration_id={id}",
        app.base
    ))
    .await
    .expect("open");
    wait_for_text(c, "Metadata filters are key=value").await;
    b.client.clone().close().await.expect("close");
}

#[tokio::test]
async fn policies_are_switched_tested_and_violations_worked_through() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let id = app.create_integration(&admin).await;
    app.sync_now(&admin, id).await;
    // The built-ins have found things once the worker has caught up.
    policies_caught_up(&app, &admin).await;
    sign_in(c, &app.base, ADMIN.0, ADMIN.1).await;

    // Switch a built-in on from the list.
    click(c, "a", "Policies").await;
    wait_for_text(c, "Latency & Health Threshold").await;
    select_field(c, "Mode of Latency & Health Threshold")
        .await
        .select_by_value("enforce")
        .await
        .expect("enforce");
    c.find(Locator::XPath(
        "//form[.//select[@id=//label[normalize-space()='Mode of Latency & Health Threshold']/@for]]//button",
    ))
    .await
    .expect("its Save")
    .click()
    .await
    .expect("save");
    wait_for_text(c, "Policy worker").await;
    let (_, policies) = app
        .call(reqwest::Method::GET, "/api/v1/policies", Some(&admin), None)
        .await;
    let latency = policies["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["builtin_id"] == "latency-health-threshold")
        .expect("built-in");
    assert_eq!(latency["mode"], "enforce");

    // Test it on the editor's sample input (a 7.2 s call).
    click(c, "a", "Latency & Health Threshold").await;
    wait_for_text(c, "Sample input (JSON)").await;
    click(c, "button", "Test").await;
    wait_for_text(c, "high_latency").await;
    // The built-in's settings are a form: raise the threshold above the sample's 7.2 s.
    refill(c, "max_latency_ms", "8000").await;
    click(c, "button", "Test").await;
    wait_for_text(c, "No violations on this input").await;
    click(c, "button", "Save").await;
    wait_for_text(c, "Saved (version 2)").await;
    let (_, saved) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/policies/{}", latency["id"]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(saved["config"]["max_latency_ms"], 8000);
    click(c, "button", "Backtest").await;
    wait_for_text(c, "Nothing was stored").await;
    screenshot(c, "policy-editor").await;

    // Acknowledge two violations in bulk.
    click(c, "a", "Violations").await;
    wait_for_text(c, "violations match").await;
    let boxes = c
        .find_all(Locator::Css("input[type=checkbox][name=ids]"))
        .await
        .expect("checkboxes");
    assert!(boxes.len() >= 2, "violations listed");
    let mut ticked = Vec::new();
    for b in boxes.iter().take(2) {
        ticked.push(b.attr("value").await.expect("value").expect("an id"));
        b.click().await.expect("tick");
    }
    click(c, "button", "Acknowledge").await;
    wait_for_text(c, "violations match").await;
    for id in &ticked {
        let (_, v) = app
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/violations/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(v["status"], "acknowledged", "{v}");
    }
    screenshot(c, "violations").await;
    assert_no_console_errors(c).await;
    b.client.clone().close().await.expect("close");
}

#[tokio::test]
async fn an_admin_adds_a_user_and_an_api_key_in_settings() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = spawn_app().await;
    sign_in(c, &app.base, ADMIN.0, ADMIN.1).await;
    click(c, "a", "Settings").await;
    wait_for_text(c, "Add User").await;
    fill(c, "Email", "new.member@example.com").await;
    fill(c, "Password", "member-password-123").await;
    select_field(c, "Role")
        .await
        .select_by_value("member")
        .await
        .expect("member");
    click(c, "button", "Add User").await;
    wait_for_text(c, "Added new.member@example.com").await;
    // The new member can sign in through the API.
    app.login("new.member@example.com", "member-password-123")
        .await;

    click(c, "a", "API Keys").await;
    fill(c, "Name", "CI reader").await;
    click(c, "button", "Create API Key").await;
    wait_for_text(c, "not shown again").await;
    let key = text_of(c, "//p[contains(@class,'result')]/code").await;
    assert!(key.starts_with("lgr_"), "{key}");
    let (status, _) = app
        .call(reqwest::Method::GET, "/api/v1/traces", Some(&key), None)
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "the shown key works");
    c.refresh().await.expect("reload");
    wait_for_text(c, "CI reader").await;
    assert!(!page_text(c).await.contains(&key), "shown once");
    click(c, "a", "Cost Estimates").await;
    fill(c, "Model Name", "ft:acme-internal-v7").await;
    fill(c, "Input Cost", "0.01").await;
    fill(c, "Output Cost", "0.03").await;
    click(c, "button", "Add Model").await;
    wait_for_text(c, "Saved the price of ft:acme-internal-v7").await;
    let (_, prices) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/cost-estimates",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(prices["items"][0]["output_per_1k"], 0.03);
    click(c, "a", "Audit Log").await;
    wait_for_text(c, "api_key.created").await;
    screenshot(c, "settings-audit").await;
    assert_no_console_errors(c).await;
    b.client.clone().close().await.expect("close");
}

#[tokio::test]
async fn the_console_check_sees_script_errors() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = spawn_app().await;
    c.goto(&format!("{}/login", app.base)).await.expect("open");
    c.execute(
        "setTimeout(() => { throw new Error('deliberate boom'); }, 0);",
        vec![],
    )
    .await
    .expect("script");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = c.issue_cmd(BrowserLog).await.expect("log");
    assert!(
        log.to_string().contains("deliberate boom"),
        "the check reads the console: {log}"
    );
    b.client.clone().close().await.expect("close");
}

#[tokio::test]
async fn alert_rules_are_tested_created_and_their_alerts_silenced() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let id = app.create_integration(&admin).await;
    app.sync_now(&admin, id).await;
    sign_in(c, &app.base, ADMIN.0, ADMIN.1).await;

    click(c, "a", "Alerts").await;
    wait_for_text(c, "No alert rules yet.").await;
    fill(c, "Name", "Any requests").await;
    select_field(c, "Metric")
        .await
        .select_by_value("requests")
        .await
        .expect("metric");
    fill(c, "Threshold", "0").await;
    refill(c, "For (minutes)", "0").await;
    refill(c, "Minimum requests", "0").await;
    select_field(c, "One alert per")
        .await
        .select_by_value("gateway")
        .await
        .expect("group");
    // Test: the emulator's seeded week of traffic makes it fire.
    click(c, "button", "Test on the last 7 days").await;
    wait_for_text(c, "Nothing was saved or sent").await;
    assert!(
        page_text(c).await.contains("it would have fired"),
        "{}",
        page_text(c).await
    );
    click(c, "button", "Create rule").await;
    wait_for_text(c, "requests above 0 requests over 15 min").await;

    // The evaluator runs (here with the test's clock): traffic in the last minutes fires it.
    let now = langguard_clock::now_ms();
    let minute = now - now % 60_000 - 60_000;
    app.seed(
        id,
        "browser-gw",
        vec![gateway_call("browser-alert-1", "gpt-4o", minute, 0.0)],
    )
    .await;
    let report = langguard_ops::alerts::evaluate::evaluate(app.store.as_ref(), now, None)
        .await
        .expect("evaluate");
    assert!(report.fired >= 1, "{report:?}");
    click(c, "a", "Alerts").await;
    wait_for_text(c, "Firing and pending").await;
    wait_for_text(c, "browser-gw").await;
    let open = text_of(c, "//table[@id='open-alerts']").await;
    assert!(open.contains("firing"), "{open}");

    // Silence the first one for an hour, then end the silence.
    fill(c, "Reason", "deploy in progress").await;
    click(c, "button", "Silence").await;
    wait_for_text(c, "deploy in progress").await;
    wait_for_text(c, "(silenced)").await;
    let (_, silences) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/alerts/silences",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(silences["items"][0]["reason"], "deploy in progress");
    screenshot(c, "alerts").await;
    click(c, "button", "End now").await;
    wait_for_text(c, "No silences in effect.").await;

    // Disable the rule from its row.
    click(c, "button", "Disable").await;
    wait_for_text(c, "Enable").await;
    let (_, rules) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/alerts/rules",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(rules["items"][0]["enabled"], false);
    assert_no_console_errors(c).await;
    b.client.clone().close().await.expect("close");
}

#[tokio::test]
async fn a_budget_is_created_and_shows_its_burndown() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let id = app.create_integration(&admin).await;
    let now = langguard_clock::now_ms();
    app.seed(
        id,
        "browser-gw",
        vec![gateway_call("browser-budget-1", "browser-model", now, 30.0)],
    )
    .await;
    sign_in(c, &app.base, ADMIN.0, ADMIN.1).await;

    click(c, "a", "Budgets").await;
    wait_for_text(c, "No budgets yet.").await;
    fill(c, "Name", "Browser budget").await;
    fill(c, "Amount (USD)", "40").await;
    refill(c, "Time zone", "Europe/Berlin").await;
    fill(c, "Model", "browser-model").await;
    click(c, "button", "Create budget").await;
    wait_for_text(c, "$40.00").await;
    let text = page_text(c).await;
    assert!(text.contains("per month in Europe/Berlin"), "{text}");
    assert!(text.contains("$30.00"), "{text}");
    assert!(text.contains("75.0 %"), "{text}");
    assert!(text.contains("notifies at 50 %, 80 %, 100 %"), "{text}");
    let meter = c
        .find(Locator::Css("table.budget-groups meter"))
        .await
        .expect("meter");
    assert_eq!(
        meter.attr("value").await.expect("value").as_deref(),
        Some("75")
    );
    let chart = c.find(Locator::Css(".burndown svg")).await.expect("chart");
    assert_eq!(
        chart.attr("aria-label").await.expect("label").as_deref(),
        Some("Burn-down of Browser budget")
    );
    assert!(
        text.contains("Even pace") && text.contains("Forecast"),
        "{text}"
    );
    screenshot(c, "budgets").await;

    click(c, "button", "Disable").await;
    wait_for_text(c, "(disabled)").await;
    let (_, list) = app
        .call(reqwest::Method::GET, "/api/v1/budgets", Some(&admin), None)
        .await;
    assert_eq!(list["items"][0]["enabled"], false);
    assert_eq!(list["items"][0]["scope"]["model"], "browser-model");
    click(c, "button", "Delete").await;
    wait_for_text(c, "No budgets yet.").await;
    assert_no_console_errors(c).await;
    b.client.clone().close().await.expect("close");
}

#[tokio::test]
async fn a_trace_explorer_view_is_saved_shared_and_reopened() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    sign_in(c, &app.base, ADMIN.0, ADMIN.1).await;
    c.goto(&format!(
        "{}/traces?status=error&metadata=team%3Dsearch&cursor=abc",
        app.base
    ))
    .await
    .expect("open");
    wait_for_text(c, "No saved views yet").await;
    fill(c, "View name", "Search team errors").await;
    c.find(Locator::XPath(
        "//label[normalize-space()='Share with everyone']/input",
    ))
    .await
    .expect("share box")
    .click()
    .await
    .expect("tick");
    click(c, "button", "Save view").await;
    wait_for_text(c, "(shared)").await;
    let (_, views) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/saved-views",
            Some(&admin),
            None,
        )
        .await;
    let view = &views["items"][0];
    assert_eq!(view["name"], "Search team errors");
    assert_eq!(view["shared"], true);
    assert_eq!(view["query"], "status=error&metadata=team%3Dsearch");

    // Cleared, then reopened by its link: the filters come back.
    click(c, "a", "Clear").await;
    wait_for_text(c, "Search team errors").await;
    click(c, "a", "Search team errors").await;
    wait_for_text(c, "Saved views").await;
    let url = c.current_url().await.expect("url");
    assert_eq!(url.query(), Some("status=error&metadata=team%3Dsearch"));
    let status = select_field(c, "Status").await;
    assert_eq!(
        status.prop("value").await.expect("value").as_deref(),
        Some("error")
    );
    // Its own address opens it too.
    let id = view["id"].as_i64().expect("id");
    c.goto(&format!("{}/traces/views/{id}", app.base))
        .await
        .expect("open");
    wait_for_text(c, "Saved views").await;
    assert_eq!(
        c.current_url().await.expect("url").query(),
        Some("status=error&metadata=team%3Dsearch")
    );
    click(c, "button", "Delete").await;
    wait_for_text(c, "No saved views yet").await;
    assert_no_console_errors(c).await;
    b.client.clone().close().await.expect("close");
}

#[tokio::test]
async fn people_are_named_by_a_key_listed_and_opened() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let id = app.create_integration(&admin).await;
    let now = langguard_clock::now_ms();
    let calls = (0..4)
        .map(|n| langguard_store::NewInteraction {
            metadata: Some(
                if n < 3 {
                    r#"{"user_id":"ana","team":"search"}"#
                } else {
                    r#"{"user_id":"bo","team":"search"}"#
                }
                .into(),
            ),
            ..gateway_call(
                format!("browser-person-{n}"),
                "gpt-4o",
                now - n * 60_000,
                2.5,
            )
        })
        .collect();
    app.seed(id, "browser-gw", calls).await;
    sign_in(c, &app.base, ADMIN.0, ADMIN.1).await;

    click(c, "a", "People").await;
    wait_for_text(c, "No metadata key names a user yet.").await;
    fill(c, "User key", "user_id").await;
    fill(c, "Team key", "team").await;
    click(c, "button", "Save keys").await;
    wait_for_text(c, "still being counted").await;
    // The evaluator's upkeep counts the logs stored before the key was named.
    langguard_ops::people::upkeep(app.store.as_ref(), now, Duration::from_secs(30))
        .await
        .expect("upkeep");
    click(c, "a", "Users").await;
    wait_for_text(c, "2 users with traffic in the last 30 days").await;
    let text = page_text(c).await;
    assert!(!text.contains("still being counted"), "{text}");
    // Without a session key each hour is a session; nobody has enough of them to be judged.
    assert!(
        text.contains("Spend anomalies") && text.contains("No anomalous session"),
        "{text}"
    );
    let first = text_of(c, "//table[contains(@class,'people')]/tbody/tr[1]").await;
    assert!(
        first.contains("ana") && first.contains("$7.50") && first.contains("gpt-4o (openai)"),
        "{first}"
    );
    screenshot(c, "people").await;

    click(c, "a", "Teams").await;
    wait_for_text(c, "1 team with traffic").await;
    assert!(page_text(c).await.contains("$10.00"));

    click(c, "a", "Users").await;
    wait_for_text(c, "2 users").await;
    click(c, "a", "ana").await;
    wait_for_text(c, "Spend per day").await;
    let chart = c.find(Locator::Css("figure svg")).await.expect("chart");
    assert_eq!(
        chart.attr("aria-label").await.expect("label").as_deref(),
        Some("Spend per day of ana")
    );
    assert!(page_text(c).await.contains("100.0 %"));
    click(c, "a", "View traces").await;
    wait_for_text(c, "Trace Explorer").await;
    let url = c.current_url().await.expect("url");
    assert!(
        url.query()
            .unwrap_or_default()
            .contains("metadata=user_id%3Dana"),
        "{url}"
    );
    assert_no_console_errors(c).await;
    b.client.clone().close().await.expect("close");
}
