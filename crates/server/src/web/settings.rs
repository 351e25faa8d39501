//! Settings (admins only): Users, API Keys, Audit Log and Webhooks — the admin features the
//! API has, with the same rules (password rules, key expiry choices, HTTPS webhook URLs).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use langguard_store::{ApiKeyScope, ChannelKind, Role, Severity};
use serde::Deserialize;

use super::form::{given, CsrfForm};
use super::format::{clock, count, moment, usd};
use super::session::WebUser;
use super::{csrf_ok, csrf_refused, forbidden, page_failure, problem, refuse, render, Frame};
use crate::AppState;
use langguard_ops::webhooks::{self, EmailSettings, WebhookInput};
use langguard_ops::{keys, prices, users, Actor, OpsError};

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    frame: Frame,
    tab: &'static str,
    rows: Vec<Vec<String>>,
    deliveries: Vec<Vec<String>>,
    next: Option<String>,
    error: Option<String>,
    notice: Option<String>,
    secret: Option<String>,
    table: &'static str,
    /// `(id, name)` of each integration, for an ingest key's integration.
    integrations: Vec<(i64, String)>,
}

impl SettingsPage {
    fn new(user: &WebUser, tab: &'static str) -> Self {
        Self {
            frame: Frame::new(user, "Settings", "settings"),
            tab,
            rows: Vec::new(),
            deliveries: Vec::new(),
            next: None,
            error: None,
            notice: None,
            secret: None,
            table: langguard_pricing::PRICE_TABLE_VERSION,
            integrations: Vec::new(),
        }
    }
}

/// Renders a tab with its rows loaded, and an outcome message.
async fn tab(state: &AppState, user: &WebUser, tab: &'static str, outcome: Outcome) -> Response {
    let mut page = SettingsPage::new(user, tab);
    let loaded: Result<(), langguard_store::StoreError> = async {
        match tab {
            "users" => {
                page.rows = state
                    .ops
                    .store
                    .list_users()
                    .await?
                    .iter()
                    .map(|u| {
                        vec![
                            u.email.clone(),
                            u.role.as_str().to_string(),
                            moment(Some(u.created_at_ms)),
                            moment(u.last_active_at_ms),
                        ]
                    })
                    .collect();
            }
            "api-keys" => {
                let now = crate::now_ms();
                page.integrations = state
                    .ops
                    .store
                    .list_integrations()
                    .await?
                    .into_iter()
                    .map(|i| (i.id, i.name))
                    .collect();
                let integration_name = |id: Option<i64>| {
                    id.map(|id| {
                        page.integrations
                            .iter()
                            .find(|(i, _)| *i == id)
                            .map_or_else(|| format!("integration {id}"), |(_, n)| n.clone())
                    })
                };
                page.rows = state
                    .ops
                    .store
                    .list_api_keys()
                    .await?
                    .iter()
                    .map(|k| {
                        let status = if k.revoked_at_ms.is_some() {
                            "revoked"
                        } else if k.expires_at_ms <= now {
                            "expired"
                        } else {
                            "active"
                        };
                        vec![
                            k.id.to_string(),
                            k.name.clone(),
                            format!("{}…", k.prefix),
                            match integration_name(k.integration_id) {
                                Some(name) => format!("{} ({name})", k.scope.as_str()),
                                None => k.scope.as_str().to_string(),
                            },
                            moment(Some(k.expires_at_ms)),
                            moment(k.last_used_at_ms),
                            status.to_string(),
                        ]
                    })
                    .collect();
            }
            "cost-estimates" => {
                page.rows = state
                    .ops
                    .store
                    .list_model_prices()
                    .await?
                    .iter()
                    .map(|p| {
                        vec![
                            p.model.clone(),
                            usd(p.input_per_1k),
                            usd(p.output_per_1k),
                            moment(Some(p.updated_at_ms)),
                        ]
                    })
                    .collect();
            }
            "webhooks" => {
                page.rows = state
                    .ops
                    .store
                    .list_webhooks()
                    .await?
                    .iter()
                    .map(|w| {
                        vec![
                            w.id.to_string(),
                            w.name.clone(),
                            w.kind.as_str().to_string(),
                            w.url.clone(),
                            w.events
                                .iter()
                                .map(|e| e.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            w.min_severity.as_str().to_string(),
                            match (&w.enabled, &w.disabled_reason) {
                                (true, _) => "yes".to_string(),
                                (false, Some(why)) => format!("no — {why}"),
                                (false, None) => "no".to_string(),
                            },
                            count(w.consecutive_failures),
                        ]
                    })
                    .collect();
            }
            _ => {}
        }
        Ok(())
    }
    .await;
    if let Err(e) = loaded {
        return page_failure("Settings", e);
    }
    let status = if outcome.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    page.error = outcome.error;
    page.notice = outcome.notice;
    page.secret = outcome.secret;
    let mut response = render(&page);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

#[derive(Default)]
struct Outcome {
    error: Option<String>,
    notice: Option<String>,
    secret: Option<String>,
}

fn admin_only(user: &WebUser) -> Option<Response> {
    (!user.is_admin()).then(|| forbidden(user))
}

pub async fn users(State(state): State<AppState>, user: WebUser) -> Response {
    if let Some(no) = admin_only(&user) {
        return no;
    }
    tab(&state, &user, "users", Outcome::default()).await
}

#[derive(Deserialize)]
pub struct UserForm {
    csrf: Option<String>,
    email: String,
    password: String,
    role: String,
}

pub async fn add_user(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<UserForm>,
) -> Response {
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Admin) {
        return refused;
    }
    let outcome = match Role::parse(&form.role) {
        None => Err(OpsError::invalid("invalid_role", "choose a role")),
        Some(role) => users::add(
            &state.ops,
            Actor::User(&user.user),
            &form.email,
            form.password.clone(),
            role,
        )
        .await
        .map(|created| created.email),
    };
    let outcome = match outcome {
        Ok(email) => Outcome {
            notice: Some(format!("Added {email}.")),
            ..Outcome::default()
        },
        Err(e) => Outcome {
            error: Some(problem(e)),
            ..Outcome::default()
        },
    };
    tab(&state, &user, "users", outcome).await
}

pub async fn api_keys(State(state): State<AppState>, user: WebUser) -> Response {
    if let Some(no) = admin_only(&user) {
        return no;
    }
    tab(&state, &user, "api-keys", Outcome::default()).await
}

#[derive(Deserialize)]
pub struct KeyForm {
    csrf: Option<String>,
    name: String,
    scope: String,
    expires_in_days: u32,
    /// For an ingest key; the form sends "" for none.
    #[serde(default)]
    integration_id: String,
}

pub async fn create_key(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> Response {
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Admin) {
        return refused;
    }
    let integration_id = match form.integration_id.trim() {
        "" => Ok(None),
        id => id
            .parse::<i64>()
            .map(Some)
            .map_err(|_| OpsError::invalid("invalid_integration", "Choose an integration.")),
    };
    let created = match (ApiKeyScope::parse(&form.scope), integration_id) {
        (None, _) => Err(OpsError::invalid("invalid_scope", "Choose a scope.")),
        (_, Err(e)) => Err(e),
        (Some(scope), Ok(integration_id)) => {
            keys::add(
                &state.ops,
                &user.user,
                keys::NewKey {
                    name: &form.name,
                    scope,
                    expires_in_days: form.expires_in_days,
                    integration_id,
                },
            )
            .await
        }
    };
    let outcome = match created {
        Ok((key, secret)) => Outcome {
            notice: Some(format!("Created the key {}.", key.name)),
            secret: Some(secret),
            ..Outcome::default()
        },
        Err(e) => Outcome {
            error: Some(problem(e)),
            ..Outcome::default()
        },
    };
    tab(&state, &user, "api-keys", outcome).await
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
}

pub async fn revoke_key(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Admin) {
        return refused;
    }
    match keys::revoke(&state.ops, Actor::User(&user.user), id).await {
        Ok(_) => Redirect::to("/settings/api-keys").into_response(),
        Err(e) => page_failure("API key", e),
    }
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

pub async fn audit(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Some(no) = admin_only(&user) {
        return no;
    }
    let entries = match state.ops.store.list_audit(100, q.before).await {
        Ok(entries) => entries,
        Err(e) => return page_failure("Audit Log", e),
    };
    let mut page = SettingsPage::new(&user, "audit");
    page.next = (entries.len() == 100)
        .then(|| {
            entries
                .last()
                .map(|e| format!("/settings/audit?before={}", e.id))
        })
        .flatten();
    page.rows = entries
        .iter()
        .map(|e| {
            vec![
                clock(e.at_ms),
                e.user_email.clone().unwrap_or_else(|| "–".into()),
                e.action.clone(),
                e.resource.clone().unwrap_or_default(),
                e.address.clone().unwrap_or_default(),
            ]
        })
        .collect();
    render(&page)
}

pub async fn webhooks(State(state): State<AppState>, user: WebUser) -> Response {
    if let Some(no) = admin_only(&user) {
        return no;
    }
    tab(&state, &user, "webhooks", Outcome::default()).await
}

#[derive(Deserialize)]
struct WebhookForm {
    csrf: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    url: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    events: Vec<String>,
    min_severity: Option<String>,
    smtp_host: Option<String>,
    smtp_port: Option<String>,
    smtp_tls: Option<String>,
    smtp_username: Option<String>,
    email_from: Option<String>,
    /// Recipients, separated by commas or new lines.
    email_to: Option<String>,
}

impl WebhookForm {
    fn input(&self) -> Result<WebhookInput, String> {
        let kind = match given(&self.kind) {
            Some(k) => ChannelKind::parse(&k).ok_or_else(|| format!("unknown kind {k:?}"))?,
            None => ChannelKind::Webhook,
        };
        let email = if kind == ChannelKind::Email {
            let port = match given(&self.smtp_port) {
                Some(p) => p
                    .parse()
                    .map_err(|_| "the SMTP port is a number, e.g. 587".to_string())?,
                None => 587,
            };
            Some(EmailSettings {
                host: given(&self.smtp_host).unwrap_or_default(),
                port,
                tls: given(&self.smtp_tls).unwrap_or_else(|| "starttls".into()),
                username: given(&self.smtp_username),
                from: given(&self.email_from).unwrap_or_default(),
                to: self
                    .email_to
                    .as_deref()
                    .unwrap_or("")
                    .split([',', '\n'])
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
                ca_pem: None,
            })
        } else {
            None
        };
        Ok(WebhookInput {
            kind,
            name: given(&self.name),
            url: given(&self.url),
            // A password field left empty means none (and a generated signing secret).
            secret: self.secret.clone().filter(|s| !s.trim().is_empty()),
            email,
            events: self.events.clone(),
            min_severity: self
                .min_severity
                .as_deref()
                .and_then(Severity::parse)
                .unwrap_or(Severity::Low),
            enabled: true,
        })
    }
}

pub async fn add_webhook(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(no) = admin_only(&user) {
        return no;
    }
    let Ok(form) = serde_html_form::from_bytes::<WebhookForm>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "the form was not understood; reload the page",
        )
            .into_response();
    };
    if !csrf_ok(&user, &headers, form.csrf.as_deref()) {
        return csrf_refused();
    }
    let outcome = match form.input() {
        Ok(input) => webhooks::add(&state.ops, Actor::User(&user.user), input)
            .await
            .map(|(_, generated)| generated)
            .map_err(problem),
        Err(why) => Err(why),
    };
    let outcome = match outcome {
        Ok(secret) => Outcome {
            notice: Some("Channel added.".into()),
            secret,
            ..Outcome::default()
        },
        Err(e) => Outcome {
            error: Some(e),
            ..Outcome::default()
        },
    };
    tab(&state, &user, "webhooks", outcome).await
}

/// "Send test": queues a test message through the outbox, then shows the channel's deliveries.
pub async fn test_webhook(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    if let Some(no) = admin_only(&user) {
        return no;
    }
    let form = serde_html_form::from_bytes::<CsrfForm>(&body).ok();
    if !csrf_ok(&user, &headers, form.and_then(|f| f.csrf).as_deref()) {
        return csrf_refused();
    }
    let outcome = match webhooks::send_test(&state.ops, Actor::User(&user.user), id).await {
        Ok(_) => Outcome {
            notice: Some("Test message queued: its delivery appears in the history below.".into()),
            ..Outcome::default()
        },
        Err(e) => Outcome {
            error: Some(problem(e)),
            ..Outcome::default()
        },
    };
    tab(&state, &user, "webhooks", outcome).await
}

/// One webhook with its delivery history.
pub async fn deliveries(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> Response {
    if let Some(no) = admin_only(&user) {
        return no;
    }
    let (webhook, list) = match tokio::try_join!(
        state.ops.store.get_webhook(id),
        state.ops.store.list_deliveries(id, 100)
    ) {
        Ok(found) => found,
        Err(langguard_store::StoreError::NotFound { .. }) => {
            return (StatusCode::NOT_FOUND, "no such webhook").into_response()
        }
        Err(e) => return page_failure("deliveries", e),
    };
    let mut page = SettingsPage::new(&user, "webhooks");
    page.rows = vec![vec![
        webhook.id.to_string(),
        webhook.url.clone(),
        webhook
            .events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        webhook.min_severity.as_str().to_string(),
        if webhook.enabled {
            "yes".into()
        } else {
            "no".into()
        },
        count(webhook.consecutive_failures),
    ]];
    page.deliveries = list
        .iter()
        .map(|d| {
            vec![
                clock(d.created_at_ms),
                d.event.as_str().to_string(),
                d.status.as_str().to_string(),
                d.response_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "–".into()),
                d.attempts.to_string(),
                d.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    if list.is_empty() {
        page.notice = Some("No deliveries yet.".into());
    }
    render(&page)
}

pub async fn cost_estimates(State(state): State<AppState>, user: WebUser) -> Response {
    if let Some(no) = admin_only(&user) {
        return no;
    }
    tab(&state, &user, "cost-estimates", Outcome::default()).await
}

#[derive(Deserialize)]
pub struct PriceForm {
    csrf: Option<String>,
    model: String,
    input_per_1k: Option<String>,
    output_per_1k: Option<String>,
}

pub async fn set_price(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<PriceForm>,
) -> Response {
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Admin) {
        return refused;
    }
    let price = |v: &Option<String>| {
        v.as_deref()
            .map(|v| v.trim().trim_start_matches('$'))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let (input, output) = (price(&form.input_per_1k), price(&form.output_per_1k));
    let outcome = prices::set(
        &state.ops,
        Actor::User(&user.user),
        &form.model,
        input,
        output,
    )
    .await
    .map(|saved| saved.model);
    let outcome = match outcome {
        Ok(model) => Outcome {
            notice: Some(format!("Saved the price of {model}.")),
            ..Outcome::default()
        },
        Err(e) => Outcome {
            error: Some(problem(e)),
            ..Outcome::default()
        },
    };
    tab(&state, &user, "cost-estimates", outcome).await
}

#[derive(Deserialize)]
pub struct ModelForm {
    csrf: Option<String>,
    model: String,
}

pub async fn delete_price(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<ModelForm>,
) -> Response {
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Admin) {
        return refused;
    }
    match prices::remove(&state.ops, Actor::User(&user.user), &form.model).await {
        // Deleted meanwhile (another tab): the list is what was wanted either way.
        Ok(()) | Err(OpsError::NotFound(_)) => {
            Redirect::to("/settings/cost-estimates").into_response()
        }
        Err(e) => page_failure("Cost Estimates", e),
    }
}
