//! Notification channels against real local receivers: Slack and Microsoft Teams incoming
//! webhooks and PagerDuty's Events API v2 (receivers that check the documented payload
//! shapes), and email through a real SMTP server (aiosmtpd from PyPI) that requires STARTTLS
//! and a password. An alert fires and resolves with the clock the test gives; the dispatcher
//! delivers through the outbox; "Send test" queues a test message.

use std::process::Stdio;

use langguard_ops::alerts::evaluate::evaluate;
use langguard_store::NewInteraction;
use tokio::io::AsyncBufReadExt;

use super::*;

on_both_backends!(
    alerts_reach_slack_teams_pagerduty_and_email,
    bad_channels_are_refused_and_credentials_never_shown,
);

const MIN: i64 = 60_000;
const T0: i64 = 1_790_000_040_000 - 1_790_000_040_000 % MIN;
const ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12";
const SLACK_SECRET: &str = "T0000/B0000/slacksecretXXXX";
const TEAMS_SECRET: &str = "sig=teamssecretYYYY";
const SMTP_PASSWORD: &str = "smtp-password-ZZZZ";

/// What the chat and paging receivers got: `(path, JSON body)`.
type Got = Arc<std::sync::Mutex<Vec<(String, Value)>>>;

/// One loopback server standing in for hooks.slack.com, Teams' workflow endpoint and
/// events.pagerduty.com; each answers as the real one does, and refuses a body that is not
/// in its documented shape (so a wrong shape shows up as a failed delivery, not a pass).
async fn spawn_receivers() -> (String, Got) {
    let got: Got = Arc::default();
    let record = got.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
        let got = record.clone();
        async move {
            let path = uri.path().to_owned();
            let Ok(json) = serde_json::from_str::<Value>(&body) else {
                return (StatusCode::BAD_REQUEST, "invalid_payload".to_owned());
            };
            let problem = if path.starts_with("/slack/") {
                slack_problem(&json)
            } else if path.starts_with("/teams/") {
                teams_problem(&json)
            } else if path == "/pagerduty/v2/enqueue" {
                pagerduty_problem(&json)
            } else {
                Some(format!("no receiver at {path}"))
            };
            if let Some(problem) = problem {
                return (StatusCode::BAD_REQUEST, problem);
            }
            got.lock().expect("lock").push((path.clone(), json.clone()));
            if path.starts_with("/pagerduty/") {
                let answer = json!({"status": "success", "message": "Event processed",
                                    "dedup_key": json["dedup_key"]});
                (StatusCode::ACCEPTED, answer.to_string())
            } else {
                (StatusCode::OK, "ok".to_owned())
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, got)
}

/// Slack: `text` (the notification's words) and Block Kit blocks of known types.
fn slack_problem(m: &Value) -> Option<String> {
    if m["text"].as_str().is_none_or(|t| t.is_empty()) {
        return Some("missing_text".into());
    }
    let blocks = m["blocks"].as_array()?;
    for block in blocks {
        match block["type"].as_str() {
            Some("header") if block["text"]["type"] == "plain_text" => {}
            Some("section") if block["text"]["type"] == "mrkdwn" => {}
            Some("actions")
                if block["elements"].as_array().is_some_and(|e| {
                    e.iter()
                        .all(|b| b["type"] == "button" && b["url"].as_str().is_some())
                }) => {}
            _ => return Some(format!("invalid_blocks: {block}")),
        }
    }
    None
}

/// Teams (Workflows): a `message` with one Adaptive Card attachment.
fn teams_problem(m: &Value) -> Option<String> {
    let card = &m["attachments"][0];
    let ok = m["type"] == "message"
        && card["contentType"] == "application/vnd.microsoft.card.adaptive"
        && card["content"]["type"] == "AdaptiveCard"
        && card["content"]["version"].as_str().is_some()
        && card["content"]["body"]
            .as_array()
            .is_some_and(|b| b.iter().all(|e| e["type"] == "TextBlock"));
    (!ok).then(|| "not an Adaptive Card message".into())
}

/// PagerDuty Events API v2: routing key, action, dedup key; a trigger's summary, source and
/// severity.
fn pagerduty_problem(e: &Value) -> Option<String> {
    if e["routing_key"].as_str().map(str::len) != Some(32) {
        return Some("Invalid routing key".into());
    }
    if e["dedup_key"]
        .as_str()
        .is_none_or(|k| k.is_empty() || k.len() > 255)
    {
        return Some("Invalid dedup_key".into());
    }
    match e["event_action"].as_str() {
        Some("resolve" | "acknowledge") => None,
        Some("trigger") => {
            let p = &e["payload"];
            let ok = p["summary"].as_str().is_some_and(|s| s.len() <= 1024)
                && p["source"].as_str().is_some()
                && ["critical", "error", "warning", "info"]
                    .contains(&p["severity"].as_str().unwrap_or(""));
            (!ok).then(|| "Event object is invalid".into())
        }
        _ => Some("Invalid event_action".into()),
    }
}

/// aiosmtpd on a free loopback port, with STARTTLS (a certificate from a throwaway CA made
/// with the OpenSSL command line) and one user; killed when dropped.
struct SmtpServer {
    child: tokio::process::Child,
    port: u16,
    ca_pem: String,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl (apt-get install openssl)");
    assert!(status.success(), "openssl {args:?}");
}

async fn spawn_smtp() -> SmtpServer {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=LangGuard test CA",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        d.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/smtp_server.py");
    let out = d.join("mail.jsonl");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .args(["--port", &port.to_string(), "--user", "alerts@example.com"])
        .args(["--password", SMTP_PASSWORD])
        .arg("--cert")
        .arg(d.join("cert.pem"))
        .arg("--key")
        .arg(d.join("key.pem"))
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the SMTP server starts within 30 s (pip install aiosmtpd)")
        .expect("read");
    assert_eq!(ready.as_deref(), Some("ready"), "aiosmtpd did not start");
    SmtpServer {
        child,
        port,
        ca_pem: std::fs::read_to_string(d.join("ca.pem")).expect("ca"),
        out,
        _dir: dir,
    }
}

impl SmtpServer {
    fn mail(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    }
}

fn failing_calls(minute_ms: i64) -> Vec<NewInteraction> {
    (0..10)
        .map(|k| NewInteraction {
            status_code: Some(500),
            success: false,
            ..gateway_call(
                format!("call-{minute_ms}-{k}"),
                "gpt-4o",
                minute_ms + k * 100,
                0.002,
            )
        })
        .collect()
}

/// Polls until `done` holds (the dispatcher runs on its own tick); panics after 10 s.
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(found) = probe() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} did not happen within 10 s");
}

async fn app_with_dispatcher(backend: Backend) -> Option<TestApp> {
    spawn_app_on(
        backend,
        ServerConfig {
            webhooks: Some(WebhookSettings {
                tick: Duration::from_millis(20),
                retry_base: Duration::from_millis(50),
                // The receivers run on this machine: an admin allowed loopback.
                targets: langguard_ops::webhook_target::TargetPolicy::parse("127.0.0.1")
                    .expect("policy"),
                ..WebhookSettings::default()
            }),
            public_url: Some("https://langguard.example.com".parse().expect("url")),
            ..test_config()
        },
    )
    .await
}

async fn add_channel(app: &TestApp, admin: &str, channel: Value) -> Value {
    let (status, created) = app
        .call(Method::POST, "/api/v1/webhooks", Some(admin), Some(channel))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn alerts_reach_slack_teams_pagerduty_and_email(backend: Backend) {
    let Some(app) = app_with_dispatcher(backend).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let (base, got) = spawn_receivers().await;
    let smtp = spawn_smtp().await;
    let alert_events = json!(["alert.firing", "alert.resolved"]);

    let slack = add_channel(
        &app,
        &admin,
        json!({"kind": "slack", "name": "#ops",
        "url": format!("{base}/slack/services/{SLACK_SECRET}"), "events": alert_events}),
    )
    .await;
    assert_eq!(slack["kind"], "slack");
    assert_eq!(slack["url"], format!("{base}/…"), "shown by its host only");
    let teams = add_channel(
        &app,
        &admin,
        json!({"kind": "teams", "name": "AI platform",
        "url": format!("{base}/teams/workflows/abc?{TEAMS_SECRET}"), "events": alert_events}),
    )
    .await;
    let pagerduty = add_channel(
        &app,
        &admin,
        json!({"kind": "pagerduty", "name": "On call",
        "url": format!("{base}/pagerduty/v2/enqueue"), "secret": ROUTING_KEY,
        "events": alert_events}),
    )
    .await;
    assert_eq!(pagerduty["secret_set"], true);
    let email = add_channel(
        &app,
        &admin,
        json!({"kind": "email", "name": "Finance",
        "secret": SMTP_PASSWORD, "events": alert_events,
        "email": {"host": "127.0.0.1", "port": smtp.port, "tls": "starttls",
                  "username": "alerts@example.com", "from": "langguard@example.com",
                  "to": ["oncall@example.com", "finance@example.com"], "ca_pem": smtp.ca_pem}}),
    )
    .await;
    assert_eq!(email["url"], format!("smtp://127.0.0.1:{}", smtp.port));
    assert_eq!(email["email"]["to"][1], "finance@example.com");

    // Five minutes of gpt-4o failing every call; a rule on the error rate fires at once.
    let integration = app.create_integration(&admin).await;
    for m in 0..5 {
        app.seed(integration, "gw", failing_calls(T0 + m * MIN))
            .await;
    }
    let (status, rule) = app
        .call(
            Method::POST,
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(
                json!({"name": "gpt-4o failing", "metric": "error_rate", "threshold": 10,
                        "window_minutes": 5, "for_minutes": 0, "min_requests": 10,
                        "scope": {"model": "gpt-4o"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let public = Some("https://langguard.example.com");
    let report = evaluate(app.store.as_ref(), T0 + 5 * MIN, public)
        .await
        .expect("evaluate");
    assert_eq!(report.fired, 1);

    let by_path = |prefix: &'static str| {
        let got = got.clone();
        move || -> Vec<Value> {
            got.lock()
                .expect("lock")
                .iter()
                .filter(|(p, _)| p.starts_with(prefix))
                .map(|(_, b)| b.clone())
                .collect()
        }
    };
    let slack_got = by_path("/slack/");
    let firing = eventually("Slack's message", || slack_got().into_iter().next()).await;
    assert_eq!(firing["text"], "Firing: gpt-4o failing");
    let button = &firing["blocks"][2]["elements"][0];
    assert_eq!(button["text"]["text"], "View traces");
    let traces = button["url"].as_str().expect("url");
    assert!(
        traces.starts_with("https://langguard.example.com/traces?")
            && traces.contains("model=gpt-4o"),
        "{traces}"
    );
    let teams_got = by_path("/teams/");
    let card = eventually("Teams' card", || teams_got().into_iter().next()).await;
    let content = &card["attachments"][0]["content"];
    assert_eq!(content["body"][0]["text"], "Firing: gpt-4o failing");
    assert_eq!(content["actions"][0]["url"], traces);
    let pd_got = by_path("/pagerduty/");
    let trigger = eventually("PagerDuty's trigger", || pd_got().into_iter().next()).await;
    assert_eq!(trigger["routing_key"], ROUTING_KEY);
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(trigger["links"][0]["href"], traces);
    let dedup = trigger["dedup_key"].as_str().expect("dedup").to_owned();
    let mail = eventually("the email", || smtp.mail().into_iter().next()).await;
    assert_eq!(mail["authenticated"], true);
    assert_eq!(mail["tls"], true, "STARTTLS before the password");
    assert_eq!(mail["from"], "langguard@example.com");
    assert_eq!(
        mail["to"],
        json!(["oncall@example.com", "finance@example.com"])
    );
    let data = mail["data"].as_str().expect("data");
    assert!(
        data.contains("Subject: [LangGuard] Firing: gpt-4o failing"),
        "{data}"
    );
    assert!(
        data.contains("https://langguard.example.com/traces?"),
        "{data}"
    );

    // The traffic stops: the alert resolves, and PagerDuty's incident with it (same key).
    let report = evaluate(app.store.as_ref(), T0 + 12 * MIN, public)
        .await
        .expect("evaluate");
    assert_eq!(report.resolved, 1);
    let resolve = eventually("PagerDuty's resolve", || pd_got().into_iter().nth(1)).await;
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], dedup);
    let resolved = eventually("Slack's resolution", || slack_got().into_iter().nth(1)).await;
    assert_eq!(resolved["text"], "Resolved: gpt-4o failing");
    eventually("the second email", || smtp.mail().into_iter().nth(1)).await;

    // Send test: queued through the outbox to that channel alone, logged as delivered.
    let id = teams["id"].as_i64().expect("id");
    let (status, queued) = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/test"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let test = eventually("the test card", || teams_got().into_iter().nth(2)).await;
    assert_eq!(
        test["attachments"][0]["content"]["body"][0]["text"],
        "LangGuard test message"
    );
    assert_eq!(
        slack_got().len(),
        2,
        "only the channel tested gets the test"
    );
    let delivery = queued["delivery_id"].as_i64().expect("delivery id");
    let mut logged = Value::Null;
    for _ in 0..500 {
        let log = app
            .get_ok(&admin, &format!("/api/v1/webhooks/{id}/deliveries"))
            .await;
        logged = log["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|d| d["id"] == delivery)
            .cloned()
            .unwrap_or(Value::Null);
        if logged["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(logged["status"], "succeeded", "{logged}");
    assert_eq!(logged["event"], "test");
    assert_eq!(logged["response_code"], 200);
}

async fn bad_channels_are_refused_and_credentials_never_shown(backend: Backend) {
    let Some(app) = app_with_dispatcher(backend).await else {
        return;
    };
    let admin = app.login_as(Role::Admin).await;
    let member = app.login_as(Role::Member).await;
    let smtp = |extra: Value| {
        let mut email = json!({"host": "smtp.example.com", "from": "lg@example.com",
                               "to": ["ops@example.com"]});
        for (k, v) in extra.as_object().expect("object") {
            email[k] = v.clone();
        }
        email
    };
    for (bad, code) in [
        (
            json!({"kind": "slack", "events": ["alert.firing"]}),
            "invalid_url",
        ),
        (
            json!({"kind": "fax", "url": "https://x.example.com", "events": ["alert.firing"]}),
            "invalid_body",
        ),
        (
            json!({"kind": "pagerduty", "secret": "short", "events": ["alert.firing"]}),
            "invalid_secret",
        ),
        (
            json!({"kind": "pagerduty", "events": ["alert.firing"]}),
            "invalid_secret",
        ),
        (
            json!({"kind": "slack", "url": "http://hooks.slack.example.com/x", "events": ["alert.firing"]}),
            "invalid_url",
        ),
        (
            json!({"kind": "teams", "url": "https://169.254.169.254/x", "events": ["alert.firing"]}),
            "invalid_url",
        ),
        (
            json!({"kind": "email", "events": ["alert.firing"]}),
            "invalid_email",
        ),
        (
            json!({"kind": "email", "events": ["alert.firing"], "secret": "pw",
                "email": smtp(json!({"tls": "none"}))}),
            "invalid_email",
        ),
        (
            json!({"kind": "email", "events": ["alert.firing"], "email": smtp(json!({"to": []}))}),
            "invalid_email",
        ),
        (
            json!({"kind": "email", "events": ["alert.firing"], "email": smtp(json!({"from": "nobody"}))}),
            "invalid_email",
        ),
        (
            json!({"kind": "email", "events": ["alert.firing"], "email": smtp(json!({"tls": "maybe"}))}),
            "invalid_email",
        ),
        (
            json!({"kind": "email", "events": ["alert.firing"], "email": smtp(json!({"host": "10.1.2.3"}))}),
            "invalid_url",
        ),
        (
            json!({"kind": "slack", "url": "https://hooks.slack.com/services/x", "events": ["test"]}),
            "invalid_events",
        ),
    ] {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/webhooks",
                Some(&admin),
                Some(bad.clone()),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, code);
    }
    let slack = add_channel(
        &app,
        &admin,
        json!({"kind": "slack",
        "url": format!("https://hooks.slack.com/services/{SLACK_SECRET}"),
        "events": ["alert.firing"]}),
    )
    .await;
    let pagerduty = add_channel(
        &app,
        &admin,
        json!({"kind": "pagerduty", "secret": ROUTING_KEY,
        "events": ["alert.firing"]}),
    )
    .await;
    assert_eq!(pagerduty["url"], "https://events.pagerduty.com/v2/enqueue");
    let email = add_channel(
        &app,
        &admin,
        json!({"kind": "email", "secret": SMTP_PASSWORD,
        "events": ["alert.firing"], "email": smtp(json!({"username": "lg"}))}),
    )
    .await;
    assert_eq!(email["secret_set"], true);
    // An SMTP server without authentication: no password, nothing sealed, and it says so.
    let open_relay = add_channel(
        &app,
        &admin,
        json!({"kind": "email", "events": ["alert.firing"], "email": smtp(json!({}))}),
    )
    .await;
    assert_eq!(open_relay["secret_set"], false, "{open_relay}");
    // A new password for plain-text SMTP to a remote server is refused like a new channel's.
    let email_id = email["id"].as_i64().expect("id");
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{email_id}"),
            Some(&admin),
            Some(json!({"email": smtp(json!({"tls": "none"}))})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_email");
    let (status, renamed) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{email_id}"),
            Some(&admin),
            Some(json!({"name": "Finance"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Finance");
    assert_eq!(renamed["email"]["username"], "lg");
    // A stored credential doesn't follow the channel to a new destination unasked.
    let pagerduty_id = pagerduty["id"].as_i64().expect("id");
    for (id, change) in [
        (
            email_id,
            json!({"email": smtp(json!({"host": "smtp.attacker.example", "username": "lg"}))}),
        ),
        (
            pagerduty_id,
            json!({"url": "https://events.attacker.example/v2/enqueue"}),
        ),
    ] {
        let (status, body) = app
            .call(
                Method::PATCH,
                &format!("/api/v1/webhooks/{id}"),
                Some(&admin),
                Some(change),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_secret");
    }
    let (status, moved) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{pagerduty_id}"),
            Some(&admin),
            Some(
                json!({"url": "https://events.eu.pagerduty.com/v2/enqueue", "secret": ROUTING_KEY}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");

    // Members neither see channels nor test them; nobody tests a channel that isn't there.
    let id = slack["id"].as_i64().expect("id");
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/test"),
            Some(&member),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/webhooks/999999/test",
            Some(&admin),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // No credential in any answer or audit entry.
    let mut seen = String::new();
    for path in [
        "/api/v1/webhooks".to_owned(),
        format!("/api/v1/webhooks/{id}"),
        "/api/v1/audit?limit=100".to_owned(),
    ] {
        seen.push_str(&app.get_ok(&admin, &path).await.to_string());
    }
    for secret in [SLACK_SECRET, ROUTING_KEY, SMTP_PASSWORD] {
        assert!(!seen.contains(secret), "{secret} leaked: {seen}");
    }
}
