//! One integration: edit (name, interval, enabled, bodies), delete, how data arrives (set up
//! push through Cloudflare, switch a gateway's counted source), and its sync history.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use langguard_store::{BodyMode, Integration, Role};
use serde::Deserialize;

use super::form::CsrfForm;
use super::format::{count, duration, moment};
use super::session::WebUser;
use super::{page_failure, problem, refuse, render, Frame};
use crate::AppState;
use langguard_ops::buckets::{self, BucketInput, BucketView};
use langguard_ops::integrations::{self, IntegrationChange};
use langguard_ops::push_setup::{self, PushSetupRequest, PushSetupView};
use langguard_ops::{Actor, OpsError};

#[derive(Template)]
#[template(path = "integration_detail.html")]
struct DetailPage {
    frame: Frame,
    admin: bool,
    id: i64,
    name: String,
    interval: i64,
    trailing_window: i64,
    enabled: bool,
    bodies: &'static str,
    body_modes: [&'static str; 3],
    runs: Vec<Vec<String>>,
    /// The push history's latest rows (minute × source).
    pushes: Vec<Vec<String>>,
    /// How data arrives per gateway and what to set up for pushes (admins).
    push: Option<PushSetupView>,
    /// The Logpush buckets imported from (admins).
    buckets: Option<Vec<BucketView>>,
    bucket_poll_seconds: u64,
    /// The last day's coverage against Cloudflare's analytics.
    coverage: langguard_ops::coverage::CoverageView,
    /// `(value, label)` of each source a gateway can count from.
    source_choices: [(&'static str, &'static str); 3],
    error: Option<String>,
    notice: Option<String>,
}

async fn page(
    state: &AppState,
    user: &WebUser,
    integration: &Integration,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let runs = match state.ops.store.list_sync_runs(integration.id, 50).await {
        Ok(runs) => runs,
        Err(e) => return page_failure("sync history", e),
    };
    let push = if user.is_admin() {
        match push_setup::setup(&state.ops, integration.id, state.config.public_url.as_ref()).await
        {
            Ok(push) => Some(push),
            Err(e) => return page_failure("push setup", e),
        }
    } else {
        None
    };
    let pushes = match push_setup::history(&state.ops, integration.id, 30).await {
        Ok(pushes) => pushes
            .into_iter()
            .map(|p| {
                vec![
                    p.minute,
                    p.source,
                    count(p.requests),
                    count(p.received),
                    count(p.stored),
                    count(p.duplicates),
                    count(p.other_source),
                    count(p.rejected),
                ]
            })
            .collect(),
        Err(e) => return page_failure("push history", e),
    };
    let buckets = if user.is_admin() {
        match buckets::list(&state.ops, integration.id).await {
            Ok(buckets) => Some(buckets),
            Err(e) => return page_failure("buckets", e),
        }
    } else {
        None
    };
    let now = langguard_clock::now_ms();
    let coverage = match langguard_ops::coverage::view(
        &state.ops,
        integration.id,
        now - 86_400_000,
        now,
    )
    .await
    {
        Ok(coverage) => coverage,
        Err(e) => return page_failure("coverage", e),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut response = render(&DetailPage {
        frame: Frame::new(user, "Integration", "integrations"),
        admin: user.is_admin(),
        id: integration.id,
        name: integration.name.clone(),
        interval: integration.sync_interval_minutes,
        trailing_window: integration.trailing_window_minutes,
        enabled: integration.enabled,
        bodies: integration.bodies.mode.as_str(),
        body_modes: ["off", "sampled", "all"],
        runs: runs
            .iter()
            .map(|r| {
                vec![
                    moment(Some(r.started_at_ms)),
                    r.trigger.as_str().to_string(),
                    r.status.as_str().to_string(),
                    count(r.counts.items_fetched),
                    count(r.counts.items_ingested),
                    duration(r.finished_at_ms.map(|f| (f - r.started_at_ms) as f64)),
                    r.error.clone().unwrap_or_default(),
                ]
            })
            .collect(),
        pushes,
        push,
        buckets,
        bucket_poll_seconds: state.config.bucket_poll.as_secs(),
        coverage,
        source_choices: [
            ("logs_api", "Logs API"),
            ("otlp", "OpenTelemetry"),
            ("logpush", "Logpush"),
        ],
        error,
        notice,
    });
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

pub async fn detail(State(state): State<AppState>, user: WebUser, Path(id): Path<i64>) -> Response {
    match state.ops.store.get_integration(id).await {
        Ok(i) => page(&state, &user, &i, None, None).await,
        Err(langguard_store::StoreError::NotFound { .. }) => {
            (StatusCode::NOT_FOUND, "no such integration").into_response()
        }
        Err(e) => page_failure("integration", e),
    }
}

#[derive(Deserialize)]
pub struct EditForm {
    csrf: Option<String>,
    name: String,
    sync_interval_minutes: String,
    /// Absent from forms saved before the field existed: the setting stays as it is.
    trailing_window_minutes: Option<String>,
    bodies: String,
    enabled: Option<String>,
}

pub async fn update(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<EditForm>,
) -> Response {
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Admin) {
        return refused;
    }
    let current = match state.ops.store.get_integration(id).await {
        Ok(i) => i,
        Err(e) => return page_failure("integration", e),
    };
    let change = (|| {
        let interval = form
            .sync_interval_minutes
            .trim()
            .parse::<i64>()
            .map_err(|_| {
                OpsError::invalid(
                    "invalid_body",
                    "the sync interval is a whole number of minutes",
                )
            })?;
        let trailing_window = form
            .trailing_window_minutes
            .as_deref()
            .map(|minutes| {
                minutes.trim().parse::<i64>().map_err(|_| {
                    OpsError::invalid(
                        "invalid_body",
                        "the late logs window is a whole number of minutes",
                    )
                })
            })
            .transpose()?;
        let mode = BodyMode::parse(&form.bodies)
            .ok_or_else(|| OpsError::invalid("invalid_body", "bodies are off, sampled or all"))?;
        Ok::<_, OpsError>(IntegrationChange {
            name: Some(form.name.clone()),
            sync_interval_minutes: Some(interval),
            trailing_window_minutes: trailing_window,
            enabled: Some(form.enabled.is_some()),
            bodies: Some(mode),
            ..IntegrationChange::default()
        })
    })();
    let change = match change {
        Ok(c) => c,
        Err(e) => return page(&state, &user, &current, Some(e.to_string()), None).await,
    };
    match integrations::change(&state.ops, Actor::User(&user.user), id, change).await {
        Ok(updated) => page(&state, &user, &updated, None, Some("Saved.".into())).await,
        Err(e) => page(&state, &user, &current, Some(problem(e)), None).await,
    }
}

pub async fn delete(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Admin) {
        return refused;
    }
    let current = match state.ops.store.get_integration(id).await {
        Ok(i) => i,
        Err(e) => return page_failure("integration", e),
    };
    match integrations::remove(&state.ops, Actor::User(&user.user), id).await {
        Ok(_) => Redirect::to("/integrations").into_response(),
        Err(e @ OpsError::Conflict(_)) => {
            page(&state, &user, &current, Some(e.to_string()), None).await
        }
        Err(e) => page_failure("integration", e),
    }
}

/// Every admin action of "How data arrives" and "Logpush buckets": role and CSRF first, then
/// the action, then the page again with the action's notice or its error.
async fn admin_action<Fut>(
    state: &AppState,
    user: &WebUser,
    headers: &HeaderMap,
    csrf: Option<&str>,
    id: i64,
    action: impl FnOnce() -> Fut,
) -> Response
where
    Fut: std::future::Future<Output = Result<String, OpsError>>,
{
    if let Some(refused) = refuse(user, headers, csrf, Role::Admin) {
        return refused;
    }
    let current = match state.ops.store.get_integration(id).await {
        Ok(i) => i,
        Err(e) => return page_failure("integration", e),
    };
    match action().await {
        Ok(notice) => page(state, user, &current, None, Some(notice)).await,
        Err(e) => page(state, user, &current, Some(problem(e)), None).await,
    }
}

#[derive(Deserialize)]
pub struct PushSetupForm {
    csrf: Option<String>,
    gateway: String,
    otlp: Option<String>,
    logpush: Option<String>,
    count: String,
}

/// "Set up push": does it through Cloudflare's API with the saved token.
pub async fn set_up_push(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<PushSetupForm>,
) -> Response {
    let request = PushSetupRequest {
        gateway: form.gateway,
        otlp: form.otlp.is_some(),
        logpush: form.logpush.is_some(),
        count: Some(form.count).filter(|c| !c.is_empty()),
        content_type: None,
    };
    let public_url = state.config.public_url.clone();
    admin_action(
        &state,
        &user,
        &headers,
        form.csrf.as_deref(),
        id,
        || async {
            let done = push_setup::set_up(&state.ops, &user.user, id, request, public_url.as_ref())
                .await?;
            Ok(format!(
                "Push set up for {}: {} counts from {}.",
                done.gateway.gateway,
                done.gateway.source_label,
                done.gateway
                    .source_since
                    .as_deref()
                    .unwrap_or("the beginning")
            ))
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct SourceForm {
    csrf: Option<String>,
    source: String,
}

/// Switches the source a gateway counts from (with a handover instant).
pub async fn switch_source(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path((id, gateway)): Path<(i64, String)>,
    Form(form): Form<SourceForm>,
) -> Response {
    admin_action(
        &state,
        &user,
        &headers,
        form.csrf.as_deref(),
        id,
        || async {
            let view = push_setup::set_source(
                &state.ops,
                Actor::User(&user.user),
                id,
                &gateway,
                &form.source,
            )
            .await?;
            Ok(format!(
                "{} now counts from {} (since {}).",
                view.gateway,
                view.source_label,
                view.source_since.as_deref().unwrap_or("the beginning")
            ))
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct BucketForm {
    csrf: Option<String>,
    endpoint: String,
    bucket: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    region: String,
    access_key_id: String,
    secret_access_key: String,
}

/// Adds a Logpush bucket (listed once with the credentials first).
pub async fn add_bucket(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<BucketForm>,
) -> Response {
    let input = BucketInput {
        endpoint: form.endpoint,
        bucket: form.bucket,
        prefix: form.prefix,
        region: Some(form.region).filter(|r| !r.trim().is_empty()),
        access_key_id: form.access_key_id,
        secret_access_key: form.secret_access_key,
    };
    admin_action(
        &state,
        &user,
        &headers,
        form.csrf.as_deref(),
        id,
        || async {
            let b = buckets::add(&state.ops, Actor::User(&user.user), id, input).await?;
            Ok(format!(
                "Bucket {} added; its new files are imported every {} seconds.",
                b.bucket,
                state.config.bucket_poll.as_secs()
            ))
        },
    )
    .await
}

/// "Import now" on a bucket.
pub async fn import_bucket(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path((id, bucket_id)): Path<(i64, i64)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    admin_action(
        &state,
        &user,
        &headers,
        form.csrf.as_deref(),
        id,
        || async {
            let r = buckets::import_now(&state.ops, id, bucket_id).await?;
            Ok(format!(
                "Imported {} new files: {} records stored, {} already there.",
                r.files_imported, r.records_stored, r.duplicates
            ))
        },
    )
    .await
}

/// "Remove" on a bucket: no more imports from it; what it brought stays.
pub async fn remove_bucket(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path((id, bucket_id)): Path<(i64, i64)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    admin_action(
        &state,
        &user,
        &headers,
        form.csrf.as_deref(),
        id,
        || async {
            buckets::remove(&state.ops, Actor::User(&user.user), id, bucket_id).await?;
            Ok("Bucket removed; what it brought stays.".to_owned())
        },
    )
    .await
}
