//! The web UI: server-rendered pages (askama templates compiled into the binary), htmx for the
//! interactive parts (vendored, served from `/static`), sharing the API's sessions. Every
//! state-changing request carries the session's CSRF token.

mod alerts;
mod budgets;
mod chart;
mod form;
mod format;
mod integration;
mod monitoring;
mod people;
mod policies;
mod policy_config;
pub(crate) mod session;
mod settings;
mod traces;
mod violations;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use langguard_store::Role;
use serde::Deserialize;

use crate::auth::request_token;
use crate::client::ClientAddr;
use crate::error::ApiError;
use crate::sessions::{sign_in, sign_out};
use crate::AppState;
use form::CsrfForm;
pub use format::{count, moment};
use langguard_ops::integrations::{self, SyncStart};
use langguard_ops::Actor;
use session::{same_token, WebUser};

const HTMX: &[u8] = include_bytes!("../../static/htmx-2.0.11.min.js");
const CSS: &[u8] = include_bytes!("../../static/app.css");
const JS: &[u8] = include_bytes!("../../static/app.js");
const FAVICON: &[u8] = include_bytes!("../../static/favicon.svg");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/monitoring") }))
        .route("/monitoring", get(monitoring::page))
        .route("/traces", get(traces::page))
        .route("/traces/views", post(traces::save_view))
        .route("/traces/views/{id}", get(traces::open_view))
        .route("/traces/views/{id}/delete", post(traces::delete_view))
        .route("/traces/{id}", get(traces::full))
        .route("/traces/{id}/drawer", get(traces::drawer))
        .route("/policies", get(policies::list).post(policies::create))
        .route("/policies/new", get(policies::new_form))
        .route("/policies/test", post(policies::test))
        .route("/policies/backtest", post(policies::backtest))
        .route("/policies/{id}", get(policies::edit).post(policies::update))
        .route("/policies/{id}/mode", post(policies::set_mode))
        .route("/alerts", get(alerts::page))
        .route("/alerts/rules", post(alerts::create_rule))
        .route("/alerts/rules/{id}/{action}", post(alerts::rule_action))
        .route("/alerts/backtest", post(alerts::backtest))
        .route("/alerts/silences", post(alerts::silence))
        .route("/alerts/silences/{id}/end", post(alerts::end_silence))
        .route("/budgets", get(budgets::page).post(budgets::create))
        .route("/budgets/{id}/{action}", post(budgets::action))
        .route("/people", get(people::page))
        .route("/people/keys", post(people::set_keys))
        .route("/people/{kind}/{identity}", get(people::person))
        .route("/violations", get(violations::list))
        .route("/violations/bulk", post(violations::bulk))
        .route("/violations/{id}", get(violations::violation))
        .route(
            "/settings",
            get(|| async { Redirect::to("/settings/users") }),
        )
        .route(
            "/settings/users",
            get(settings::users).post(settings::add_user),
        )
        .route(
            "/settings/api-keys",
            get(settings::api_keys).post(settings::create_key),
        )
        .route("/settings/api-keys/{id}/revoke", post(settings::revoke_key))
        .route("/settings/audit", get(settings::audit))
        .route(
            "/settings/cost-estimates",
            get(settings::cost_estimates).post(settings::set_price),
        )
        .route(
            "/settings/cost-estimates/delete",
            post(settings::delete_price),
        )
        .route(
            "/settings/webhooks",
            get(settings::webhooks).post(settings::add_webhook),
        )
        .route("/settings/webhooks/{id}", get(settings::deliveries))
        .route("/settings/webhooks/{id}/test", post(settings::test_webhook))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/integrations", get(integrations).post(save_integration))
        .route("/integrations/new", get(new_integration))
        .route("/integrations/test", post(test_connection))
        .route("/integrations/{id}/sync", post(sync_now))
        .route(
            "/integrations/{id}",
            get(integration::detail).post(integration::update),
        )
        .route("/integrations/{id}/delete", post(integration::delete))
        .route(
            "/integrations/{id}/push-setup",
            post(integration::set_up_push),
        )
        .route(
            "/integrations/{id}/gateways/{gateway}/source",
            post(integration::switch_source),
        )
        .route("/integrations/{id}/buckets", post(integration::add_bucket))
        .route(
            "/integrations/{id}/buckets/{bucket_id}/import",
            post(integration::import_bucket),
        )
        .route(
            "/integrations/{id}/buckets/{bucket_id}/delete",
            post(integration::remove_bucket),
        )
        .route(
            "/static/htmx-2.0.11.min.js",
            get(|| async { asset(HTMX, "text/javascript") }),
        )
        .route("/static/app.css", get(|| async { asset(CSS, "text/css") }))
        .route(
            "/static/app.js",
            get(|| async { asset(JS, "text/javascript") }),
        )
        .route(
            "/favicon.ico",
            get(|| async { asset(FAVICON, "image/svg+xml") }),
        )
}

fn asset(bytes: &'static [u8], content_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        bytes,
    )
        .into_response()
}

/// A page or form that failed: what the person can act on (no such thing: 404, a refused
/// change: its 4xx and message) as such; anything else is logged and a plain 500.
fn page_failure(page: &str, e: impl Into<ApiError>) -> Response {
    let e = e.into();
    let status = e.status();
    if status.is_server_error() {
        tracing::error!(error = %e, page, "a page could not load its data");
        return (
            status,
            "something went wrong on the server; the details are in its log",
        )
            .into_response();
    }
    (status, e.to_string()).into_response()
}

/// What a person is told when an operation fails: its message, or — for a fault of the
/// server's — a generic sentence, with the cause logged here, once.
fn problem(e: impl Into<ApiError>) -> String {
    match e.into() {
        ApiError::Internal(e) => {
            tracing::error!(error = format!("{e:#}"), "a page's operation failed");
            "something went wrong on the server; the details are in its log".into()
        }
        other => other.to_string(),
    }
}

fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

/// What every page's layout shows.
pub(crate) struct Frame {
    title: &'static str,
    section: &'static str,
    csrf: String,
    email: String,
    role: &'static str,
}

impl Frame {
    fn new(user: &WebUser, title: &'static str, section: &'static str) -> Self {
        Self {
            title,
            section,
            csrf: user.csrf.clone(),
            email: user.user.email.clone(),
            role: user.user.role.as_str(),
        }
    }
}

/// A page an admin only may use, reached by someone else: a 403 page, not the form.
fn forbidden(user: &WebUser) -> Response {
    #[derive(Template)]
    #[template(path = "forbidden.html")]
    struct Page {
        frame: Frame,
    }
    let mut response = render(&Page {
        frame: Frame::new(user, "Not allowed", ""),
    });
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

/// The role and CSRF checks of a state-changing request: `Some(response)` refuses it (a 403
/// page for a role that may not, a 403 for a stale or foreign form).
fn refuse(
    user: &WebUser,
    headers: &HeaderMap,
    form_csrf: Option<&str>,
    at_least: Role,
) -> Option<Response> {
    let allowed = match at_least {
        Role::Admin => user.user.role == Role::Admin,
        Role::Member => matches!(user.user.role, Role::Admin | Role::Member),
        Role::Viewer => true,
    };
    if !allowed {
        return Some(forbidden(user));
    }
    (!csrf_ok(user, headers, form_csrf)).then(csrf_refused)
}

/// Checks the CSRF token of a state-changing request: the form's `csrf` field or htmx's
/// `X-CSRF-Token` header must match the session's.
fn csrf_ok(user: &WebUser, headers: &HeaderMap, form: Option<&str>) -> bool {
    let sent = form.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
    sent.is_some_and(|t| same_token(t, &user.csrf))
}

fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        "this form is stale or came from another site; reload the page and try again",
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    email: String,
    error: Option<String>,
    next: String,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(Query(q): Query<NextQuery>) -> Response {
    render(&LoginPage {
        email: String::new(),
        error: None,
        next: session::local_path(q.next.as_deref()).to_string(),
    })
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    match sign_in(&state, &form.email, form.password, client, &headers).await {
        Ok(session) => {
            let next = session::local_path(form.next.as_deref());
            let cookies = axum::response::AppendHeaders([
                (SET_COOKIE, session.cookie),
                (SET_COOKIE, session.device_cookie),
            ]);
            (cookies, Redirect::to(next)).into_response()
        }
        Err(e) => {
            let status = match &e {
                ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
                ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let message = match e {
                e @ ApiError::Internal(_) => problem(e),
                other => format::sentence(other.to_string()),
            };
            let mut response = render(&LoginPage {
                next: session::local_path(form.next.as_deref()).to_string(),
                email: form.email,
                error: Some(message),
            });
            *response.status_mut() = status;
            response
        }
    }
}

async fn logout(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf_ok(&user, &headers, form.csrf.as_deref()) {
        return csrf_refused();
    }
    let mut parts = axum::http::Request::new(()).into_parts().0;
    parts.headers = headers;
    let cleared = match request_token(&parts) {
        Some(token) => sign_out(&state, &token).await.ok(),
        None => None,
    };
    match cleared {
        Some(cookie) => ([(SET_COOKIE, cookie)], Redirect::to("/login")).into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

struct Card {
    id: i64,
    name: String,
    account_id: String,
    status: &'static str,
    status_label: &'static str,
    status_message: Option<String>,
    last_sync: String,
    interactions_synced: String,
}

#[derive(Template)]
#[template(path = "integrations.html")]
struct IntegrationsPage {
    frame: Frame,
    admin: bool,
    cards: Vec<Card>,
}

async fn integrations(State(state): State<AppState>, user: WebUser) -> Response {
    let list = match state.ops.store.list_integrations().await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "listing integrations failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not list integrations",
            )
                .into_response();
        }
    };
    let cards = list
        .iter()
        .map(|i| Card {
            id: i.id,
            name: i.name.clone(),
            account_id: i.account_id.clone(),
            status: i.status.as_str(),
            status_label: i.status.label(),
            status_message: i.status_message.clone(),
            last_sync: moment(i.last_sync_at_ms),
            interactions_synced: count(i.interactions_synced),
        })
        .collect();
    render(&IntegrationsPage {
        frame: Frame::new(&user, "Integrations", "integrations"),
        admin: user.is_admin(),
        cards,
    })
}

#[derive(Template)]
#[template(path = "integration_new.html")]
struct NewIntegrationPage {
    frame: Frame,
    step: u8,
    name: String,
    account_id: String,
    error: Option<String>,
}

impl NewIntegrationPage {
    fn new(user: &WebUser, step: u8) -> Self {
        Self {
            frame: Frame::new(user, "Add Integration", "integrations"),
            step,
            name: String::new(),
            account_id: String::new(),
            error: None,
        }
    }
}

#[derive(Deserialize)]
struct NewQuery {
    category: Option<String>,
    provider: Option<String>,
}

async fn new_integration(user: WebUser, Query(q): Query<NewQuery>) -> Response {
    if !user.is_admin() {
        return forbidden(&user);
    }
    let step = match (q.category.as_deref(), q.provider.as_deref()) {
        (Some("ai-gateways"), Some("cloudflare")) => 3,
        (Some("ai-gateways"), _) => 2,
        _ => 1,
    };
    render(&NewIntegrationPage::new(&user, step))
}

#[derive(Deserialize)]
struct IntegrationForm {
    csrf: Option<String>,
    name: String,
    account_id: String,
    api_token: String,
}

#[derive(Template)]
#[template(path = "connection_result.html")]
struct ConnectionResult {
    ok: bool,
    gateways: Vec<String>,
    message: String,
    hint: String,
}

async fn test_connection(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<IntegrationForm>,
) -> Response {
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Admin) {
        return refused;
    }
    let result = match integrations::test(&state.ops, &form.account_id, &form.api_token).await {
        Err(e) => ConnectionResult {
            ok: false,
            gateways: Vec::new(),
            message: problem(e),
            hint: "Fill in the Account ID and the API Token.".into(),
        },
        Ok(tested) => match tested {
            Ok(check) => ConnectionResult {
                ok: true,
                gateways: check.gateways,
                message: String::new(),
                hint: String::new(),
            },
            Err(e) => ConnectionResult {
                ok: false,
                gateways: Vec::new(),
                message: e.to_string(),
                hint: e.hint().to_string(),
            },
        },
    };
    render(&result)
}

async fn save_integration(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<IntegrationForm>,
) -> Response {
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Admin) {
        return refused;
    }
    let input = integrations::IntegrationInput::new(&form.name, &form.account_id, &form.api_token);
    let saved = integrations::add(&state.ops, Actor::User(&user.user), input).await;
    match saved {
        Ok(_) => Redirect::to("/integrations").into_response(),
        Err(e) => {
            let mut page = NewIntegrationPage::new(&user, 3);
            page.name = form.name;
            page.account_id = form.account_id;
            page.error = Some(problem(e));
            let mut response = render(&page);
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            response
        }
    }
}

async fn sync_now(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Some(refused) = refuse(&user, &headers, None, Role::Admin) {
        return refused;
    }
    let text = match integrations::start_sync(&state.ops, Actor::User(&user.user), id).await {
        Ok(SyncStart::Started(run)) => {
            format!("Sync started (run {}). Reload to see the figures.", run.id)
        }
        Ok(SyncStart::AlreadyRunning(run_id)) => match run_id {
            Some(run_id) => format!("A sync is already running (run {run_id})."),
            None => "A sync is already running.".to_string(),
        },
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "Sync Now failed to start");
            "The sync could not start; see the server log.".to_string()
        }
    };
    Html(format::escape(&text)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn test_frame(role: &'static str) -> Frame {
        Frame {
            title: "Page",
            section: "integrations",
            csrf: "c".repeat(32),
            email: "a@example.com".into(),
            role,
        }
    }

    fn page(admin: bool, cards: Vec<Card>) -> String {
        IntegrationsPage {
            frame: test_frame(if admin { "admin" } else { "viewer" }),
            admin,
            cards,
        }
        .render()
        .expect("renders")
    }

    fn card(name: &str) -> Card {
        Card {
            id: 7,
            name: name.into(),
            account_id: "acct".into(),
            status: "connected",
            status_label: "Connected",
            status_message: None,
            last_sync: moment(Some(1_767_225_600_000)),
            interactions_synced: count(12_345),
        }
    }

    #[test]
    fn the_integrations_page_shows_admin_controls_to_admins_only() {
        let admin = page(true, vec![card("Production")]);
        assert!(admin.contains("Add Integration") && admin.contains("Sync Now"));
        assert!(admin.contains("12,345") && admin.contains("2026-01-01 00:00 UTC"));
        let viewer = page(false, vec![card("Production")]);
        assert!(!viewer.contains("Add Integration") && !viewer.contains("Sync Now"));
        assert!(page(true, Vec::new()).contains("No integrations yet"));
    }

    #[test]
    fn text_from_users_is_escaped() {
        let html = page(true, vec![card("<script>alert(1)</script>")]);
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
        let login = LoginPage {
            email: "\"><img src=x>".into(),
            error: Some("<b>no</b>".into()),
            next: "/".into(),
        }
        .render()
        .expect("renders");
        assert!(!login.contains("<img src=x>") && !login.contains("<b>no</b>"));
    }

    #[test]
    fn form_fields_have_labels() {
        let mut user_page = NewIntegrationPage {
            frame: test_frame("admin"),
            step: 3,
            name: String::new(),
            account_id: String::new(),
            error: None,
        };
        let html = user_page.render().expect("renders");
        for (id, label) in [
            ("name", "Name"),
            ("account_id", "Account ID"),
            ("api_token", "API Token"),
        ] {
            assert!(
                html.contains(&format!("<label for=\"{id}\">{label}</label>")),
                "{label}"
            );
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(html.contains("type=\"password\""));
        user_page.step = 1;
        assert!(user_page.render().expect("renders").contains("AI Gateways"));
    }
}
