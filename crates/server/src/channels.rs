//! What each kind of channel receives for an event, and how it is sent: Slack's and Microsoft
//! Teams' incoming-webhook messages, PagerDuty Events API v2 events (trigger and resolve with
//! one dedup key per alert), and email over SMTP. The signed webhook gets the event's own
//! document (see `webhooks`). Every message links back to the filtered Trace Explorer or the
//! Alerts page.

use std::time::Duration;

use langguard_ops::webhook_target::TargetPolicy;
use langguard_ops::webhooks::EmailSettings;
use langguard_store::{Delivery, WebhookEvent};
use serde_json::{json, Value};

/// An event as people read it, whatever carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub title: String,
    pub lines: Vec<String>,
    /// `(label, URL)` of the page to open.
    pub links: Vec<(String, String)>,
    /// PagerDuty's severity: `critical`, `error`, `warning` or `info`.
    pub severity: &'static str,
}

fn text(data: &Value, key: &str) -> Option<String> {
    match &data[key] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn figure(value: &Value, unit: &str) -> String {
    match value.as_f64() {
        None => "no data".into(),
        Some(v) if unit == "USD" => format!("${v:.2}"),
        Some(v) if unit == "%" => format!("{v:.1} %"),
        Some(v) if v.fract() == 0.0 => format!("{v:.0} {unit}"),
        Some(v) => format!("{v:.1} {unit}"),
    }
}

/// The message of a delivery's `{event, timestamp, data}` document.
pub fn message(event: WebhookEvent, body: &str) -> Message {
    let doc: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let data = &doc["data"];
    match event {
        WebhookEvent::AlertFiring | WebhookEvent::AlertResolved => {
            let firing = event == WebhookEvent::AlertFiring;
            let rule = text(data, "ruleName").unwrap_or_else(|| "An alert rule".into());
            let group = text(data, "groupLabel")
                .map(|g| format!(" — {g}"))
                .unwrap_or_default();
            let state = match (firing, data["reminder"].as_bool() == Some(true)) {
                (true, true) => "Still firing",
                (true, false) => "Firing",
                (false, _) => "Resolved",
            };
            let unit = text(data, "unit").unwrap_or_default();
            let metric = text(data, "metric").unwrap_or_default();
            let mut lines = vec![format!(
                "{metric} is {} ({} {} over {} min)",
                figure(&data["value"], &unit),
                text(data, "condition").unwrap_or_default(),
                figure(&data["threshold"], &unit),
                text(data, "windowMinutes").unwrap_or_default(),
            )];
            if let Some(at) = text(data, if firing { "firedAt" } else { "resolvedAt" }) {
                lines.push(format!(
                    "{} at {at}",
                    if firing { "Fired" } else { "Resolved" }
                ));
            }
            let mut links = Vec::new();
            if let Some(url) = text(data, "tracesUrl") {
                links.push(("View traces".to_owned(), url));
            }
            if let Some(url) = text(data, "alertsUrl") {
                links.push(("Open alerts".to_owned(), url));
            }
            Message {
                title: format!("{state}: {rule}{group}"),
                lines,
                links,
                severity: if firing { "error" } else { "info" },
            }
        }
        WebhookEvent::BudgetThreshold => {
            let name = text(data, "budgetName").unwrap_or_else(|| "A budget".into());
            let group = text(data, "groupLabel")
                .or_else(|| text(data, "group"))
                .map(|g| format!(" — {g}"))
                .unwrap_or_default();
            let threshold = data["threshold"].as_u64().unwrap_or(0);
            let mut lines = vec![format!(
                "{} spent of {} ({}) in the {} from {}",
                figure(&data["spentUsd"], "USD"),
                figure(&data["amountUsd"], "USD"),
                figure(&data["percent"], "%"),
                text(data, "period").unwrap_or_else(|| "period".into()),
                text(data, "periodLabel").unwrap_or_default(),
            )];
            lines.push(format!(
                "Forecast for the period: {}",
                figure(&data["forecastUsd"], "USD")
            ));
            if threshold < 100 {
                if let Some(at) = text(data, "crossesAt") {
                    lines.push(format!("At this rate the budget runs out at {at}"));
                }
            }
            let mut links = Vec::new();
            if let Some(url) = text(data, "tracesUrl") {
                links.push(("View traces".to_owned(), url));
            }
            if let Some(url) = text(data, "budgetsUrl") {
                links.push(("Open budgets".to_owned(), url));
            }
            Message {
                title: format!("Budget {name}{group} reached {threshold} %"),
                lines,
                links,
                severity: if threshold >= 100 { "error" } else { "warning" },
            }
        }
        WebhookEvent::Test => Message {
            title: "LangGuard test message".into(),
            lines: vec![text(data, "message").unwrap_or_default()],
            links: vec![],
            severity: "info",
        },
        other => {
            // Everything else: its name and its fields, as sent to signed webhooks.
            let lines = data
                .as_object()
                .map(|fields| {
                    fields
                        .iter()
                        .filter_map(|(k, _)| text(data, k).map(|v| format!("{k}: {v}")))
                        .take(12)
                        .collect()
                })
                .unwrap_or_default();
            Message {
                title: format!("LangGuard: {}", other.as_str()),
                lines,
                links: vec![],
                severity: match text(data, "severity").as_deref() {
                    Some("critical") => "critical",
                    Some("high") => "error",
                    _ => "warning",
                },
            }
        }
    }
}

/// Text for Slack's `mrkdwn`: the three characters Slack asks to escape, so a model or
/// gateway name from traffic can't @-mention a channel or make a link.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text for a Teams TextBlock, whose markdown would turn `[text](url)` written by traffic (a
/// model's name) into a disguised link: the pair is kept apart. (Backslash escapes are not
/// part of the Adaptive Card markdown subset and would show.)
fn teams_escape(text: &str) -> String {
    text.replace("](", "] (")
}

/// Slack's incoming-webhook message: `text` for notifications, blocks for the channel.
pub fn slack(m: &Message) -> Value {
    let lines: Vec<String> = m.lines.iter().map(|l| slack_escape(l)).collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": m.title.chars().take(150).collect::<String>()}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}}),
    ];
    if !m.links.is_empty() {
        blocks.push(json!({
            "type": "actions",
            "elements": m.links.iter().map(|(label, url)| json!({
                "type": "button",
                "text": {"type": "plain_text", "text": label},
                "url": url,
            })).collect::<Vec<_>>(),
        }));
    }
    json!({"text": slack_escape(&m.title), "blocks": blocks})
}

/// A Teams incoming webhook (Workflows) message: one Adaptive Card.
pub fn teams(m: &Message) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock", "text": teams_escape(&m.title), "weight": "Bolder", "size": "Medium", "wrap": true
    })];
    body.extend(
        m.lines
            .iter()
            .map(|l| json!({"type": "TextBlock", "text": teams_escape(l), "wrap": true})),
    );
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": m.links.iter().map(|(label, url)| json!({
                    "type": "Action.OpenUrl", "title": label, "url": url,
                })).collect::<Vec<_>>(),
            },
        }],
    })
}

/// A PagerDuty Events API v2 event: alerts trigger and resolve under one dedup key (the
/// alert's), so PagerDuty's incident follows the alert; other events only trigger.
pub fn pagerduty(routing_key: &str, delivery: &Delivery, m: &Message) -> Value {
    let doc: Value = serde_json::from_str(&delivery.body).unwrap_or(Value::Null);
    let data = &doc["data"];
    let dedup_key = match (delivery.event, data["ruleId"].as_i64()) {
        // An alert is its rule, its group and when it started: firing, reminders and the
        // resolution of one alert share the key (its id is not known when it first fires).
        (WebhookEvent::AlertFiring | WebhookEvent::AlertResolved, Some(rule)) => {
            let key = format!(
                "langguard-alert-{rule}-{}-{}",
                data["startedAt"].as_str().unwrap_or(""),
                data["group"].as_str().unwrap_or(""),
            );
            // PagerDuty takes at most 255 characters.
            key.chars().take(255).collect()
        }
        // One incident per budget, group and period: a higher threshold updates it.
        (WebhookEvent::BudgetThreshold, _) => format!(
            "langguard-budget-{}-{}-{}",
            data["budgetId"],
            data["group"].as_str().unwrap_or(""),
            data["periodStart"].as_str().unwrap_or(""),
        ),
        _ => format!("langguard-{}-{}", delivery.event.as_str(), delivery.id),
    };
    if delivery.event == WebhookEvent::AlertResolved {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": m.title.chars().take(1024).collect::<String>(),
            "source": "langguard",
            "severity": m.severity,
            "timestamp": doc["timestamp"],
            "component": data["groupLabel"],
            "group": data["groupBy"],
            "class": data["metric"],
            "custom_details": data,
        },
        "links": m.links.iter().map(|(label, url)| json!({"href": url, "text": label})).collect::<Vec<_>>(),
        "client": "LangGuard",
        "client_url": m.links.last().map(|(_, url)| url.clone()),
    })
}

/// The subject and plain-text body of an email.
pub fn email_text(m: &Message) -> (String, String) {
    let mut body = m.lines.join("\n");
    for (label, url) in &m.links {
        body.push_str(&format!("\n\n{label}: {url}"));
    }
    body.push_str("\n\n— LangGuard\n");
    (format!("[LangGuard] {}", m.title), body)
}

/// Sends an email through the channel's SMTP server; the server's addresses are checked
/// against the same rules as webhook receivers first.
pub async fn send_email(
    settings: &EmailSettings,
    password: &str,
    targets: &TargetPolicy,
    timeout: Duration,
    m: &Message,
) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    // The name is looked up once, checked, and the connection made to the address checked:
    // a second lookup by the SMTP library could answer otherwise (DNS rebinding).
    let host = settings.host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<std::net::SocketAddr> =
        tokio::time::timeout(timeout, tokio::net::lookup_host((host, settings.port)))
            .await
            .map_err(|_| "the SMTP server's name did not resolve in time".to_owned())?
            .map_err(|e| format!("the SMTP server's name did not resolve: {e}"))?
            .collect();
    for address in &addresses {
        targets
            .check(host, address.ip())
            .map_err(|e| e.to_string())?;
    }
    let address = addresses
        .first()
        .ok_or_else(|| "the SMTP server's name has no address".to_owned())?;
    let tls_parameters = || -> Result<TlsParameters, String> {
        // The certificate is checked against the name, whatever address was connected to.
        let mut builder = TlsParameters::builder(host.to_owned());
        if let Some(pem) = &settings.ca_pem {
            let cert = Certificate::from_pem(pem.as_bytes())
                .map_err(|e| format!("the channel's CA certificate does not parse: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build()
            .map_err(|e| format!("TLS could not be set up: {e}"))
    };
    let tls = match settings.tls.as_str() {
        "tls" => Tls::Wrapper(tls_parameters()?),
        "none" => Tls::None,
        _ => Tls::Required(tls_parameters()?),
    };
    let mut transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.ip().to_string())
            .port(settings.port)
            .tls(tls)
            .timeout(Some(timeout));
    if let (Some(user), false) = (&settings.username, password.is_empty()) {
        transport = transport.credentials(Credentials::new(user.clone(), password.to_owned()));
    }
    let (subject, body) = email_text(m);
    let mut mail = lettre::Message::builder()
        .from(
            settings
                .from
                .parse()
                .map_err(|e| format!("from is not an address: {e}"))?,
        )
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &settings.to {
        mail = mail.to(to
            .parse()
            .map_err(|e| format!("{to:?} is not an address: {e}"))?);
    }
    let mail = mail
        .body(body)
        .map_err(|e| format!("the message could not be built: {e}"))?;
    transport
        .build()
        .send(mail)
        .await
        .map(|_| ())
        .map_err(|e| format!("the SMTP server refused or failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firing() -> String {
        json!({
            "event": "alert.firing",
            "timestamp": "2026-12-01T12:00:00.000Z",
            "data": {
                "alertId": 7, "ruleId": 2, "ruleName": "OpenAI errors", "metric": "error_rate", "unit": "%",
                "condition": "above", "threshold": 5.0, "value": 12.25, "windowMinutes": 15,
                "groupBy": "model", "group": "gpt-4o", "groupLabel": "gpt-4o",
                "startedAt": "2026-12-01T11:55:00.000Z", "firedAt": "2026-12-01T12:00:00.000Z",
                "tracesUrl": "https://lg.example.com/traces?model=gpt-4o",
                "alertsUrl": "https://lg.example.com/alerts?rule_id=1", "reminder": false,
            }
        })
        .to_string()
    }

    fn delivery(event: WebhookEvent, body: String) -> Delivery {
        Delivery {
            id: 3,
            webhook_id: 1,
            event,
            body,
            status: langguard_store::DeliveryStatus::Pending,
            attempts: 0,
            response_code: None,
            error: None,
            created_at_ms: 0,
            next_attempt_at_ms: None,
            delivered_at_ms: None,
        }
    }

    #[test]
    fn an_alert_reads_as_a_sentence_with_its_links() {
        let m = message(WebhookEvent::AlertFiring, &firing());
        assert_eq!(m.title, "Firing: OpenAI errors — gpt-4o");
        assert_eq!(m.lines[0], "error_rate is 12.2 % (above 5.0 % over 15 min)");
        assert_eq!(m.links[0].0, "View traces");
        let slack = slack(&m);
        assert_eq!(slack["text"], "Firing: OpenAI errors — gpt-4o");
        assert_eq!(
            slack["blocks"][2]["elements"][0]["url"],
            "https://lg.example.com/traces?model=gpt-4o"
        );
        let teams = teams(&m);
        let card = &teams["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["actions"][0]["type"], "Action.OpenUrl");
    }

    #[test]
    fn pagerduty_triggers_and_resolves_one_incident_per_alert() {
        let key = "0123456789abcdef0123456789abcdef";
        let m = message(WebhookEvent::AlertFiring, &firing());
        let trigger = pagerduty(key, &delivery(WebhookEvent::AlertFiring, firing()), &m);
        assert_eq!(trigger["event_action"], "trigger");
        assert_eq!(
            trigger["dedup_key"],
            "langguard-alert-2-2026-12-01T11:55:00.000Z-gpt-4o"
        );
        assert_eq!(trigger["payload"]["severity"], "error");
        assert_eq!(trigger["payload"]["source"], "langguard");
        let resolved = firing().replace("alert.firing", "alert.resolved");
        let resolve = pagerduty(
            key,
            &delivery(WebhookEvent::AlertResolved, resolved.clone()),
            &message(WebhookEvent::AlertResolved, &resolved),
        );
        assert_eq!(resolve["event_action"], "resolve");
        assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
        assert!(resolve.get("payload").is_none());
    }

    #[test]
    fn a_budget_threshold_names_the_group_and_keeps_one_incident_per_period() {
        let body = json!({
            "event": "budget.threshold",
            "timestamp": "2026-11-16T15:00:00.000Z",
            "data": {
                "budgetId": 4, "budgetName": "Team spend", "group": "search",
                "groupLabel": "search", "amountUsd": 2000.0, "spentUsd": 1012.5,
                "percent": 50.6, "threshold": 50, "forecastUsd": 2100.0,
                "period": "month", "periodLabel": "2026-11-01", "periodStart": "2026-11-01T04:00:00.000Z",
                "crossesAt": "2026-11-29T10:00:00.000Z",
                "budgetsUrl": "https://lg.example.com/budgets#budget-4",
            }
        })
        .to_string();
        let m = message(WebhookEvent::BudgetThreshold, &body);
        assert_eq!(m.title, "Budget Team spend — search reached 50 %");
        assert_eq!(
            m.lines[0],
            "$1012.50 spent of $2000.00 (50.6 %) in the month from 2026-11-01"
        );
        assert_eq!(m.lines[1], "Forecast for the period: $2100.00");
        assert!(m.lines[2].contains("2026-11-29T10:00:00.000Z"));
        assert_eq!(
            m.links,
            vec![(
                "Open budgets".to_owned(),
                "https://lg.example.com/budgets#budget-4".to_owned()
            )]
        );
        let event = pagerduty("k", &delivery(WebhookEvent::BudgetThreshold, body), &m);
        assert_eq!(
            event["dedup_key"],
            "langguard-budget-4-search-2026-11-01T04:00:00.000Z"
        );
        assert_eq!(event["payload"]["severity"], "warning");
    }

    #[test]
    fn text_from_traffic_cannot_mention_or_link_in_chat() {
        let m = Message {
            title: "LangGuard: <!channel> & co".into(),
            lines: vec![
                "model: <https://evil.example|Sign in> [x](https://evil.example) *bold*".into(),
            ],
            links: vec![],
            severity: "warning",
        };
        let slack = slack(&m);
        assert_eq!(slack["text"], "LangGuard: &lt;!channel&gt; &amp; co");
        let section = slack["blocks"][1]["text"]["text"].as_str().expect("text");
        assert!(
            !section.contains('<') && !section.contains('>'),
            "{section}"
        );
        let teams = teams(&m);
        let line = teams["attachments"][0]["content"]["body"][1]["text"]
            .as_str()
            .expect("text");
        assert!(line.contains("[x] (https://evil.example)"), "{line}");
    }

    #[test]
    fn other_events_list_their_fields() {
        let body =
            json!({"event": "sync.failed", "data": {"integrationName": "Prod", "error": "401"}})
                .to_string();
        let m = message(WebhookEvent::SyncFailed, &body);
        assert_eq!(m.title, "LangGuard: sync.failed");
        assert!(m.lines.contains(&"integrationName: Prod".to_string()));
        let (subject, text) = email_text(&m);
        assert_eq!(subject, "[LangGuard] LangGuard: sync.failed");
        assert!(text.contains("error: 401"));
    }
}
