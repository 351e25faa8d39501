//! The integration lifecycle: test, create, list, read, change, delete, Sync Now, sync runs.
//! Admins manage; Members and Viewers read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use langguard_secrets::Binding;
use langguard_store::{
    BodyMode, BodySettings, Integration, IntegrationPatch, NewIntegration, Role, SealFor, SyncRun,
    SyncTrigger, User,
};
use langguard_sync::{test_connection, SyncError};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::views::{connection_failure, IntegrationView, SyncRunView};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/integrations/test", post(test))
        .route("/integrations", get(list).post(create))
        .route("/integrations/{id}", get(read).patch(update).delete(remove))
        .route("/integrations/{id}/sync", post(sync_now))
        .route("/integrations/{id}/sync-runs", get(sync_runs))
        .route("/sync-runs/{id}", get(sync_run))
}

/// Only Cloudflare AI Gateway today; the field is there so more kinds can follow.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone, Copy, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Cloudflare,
}

pub(crate) fn check_account_id(account_id: &str) -> Result<String, ApiError> {
    let account_id = account_id.trim();
    if account_id.is_empty()
        || account_id.len() > 64
        || !account_id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(ApiError::bad_request(
            "invalid_account_id",
            "account_id must be the Cloudflare Account ID: up to 64 letters and digits (dashboard → Account home → Account ID)",
        ));
    }
    Ok(account_id.to_owned())
}

pub(crate) fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be 1 to 100 characters",
        ));
    }
    Ok(name.to_owned())
}

pub(crate) fn check_token(token: &str) -> Result<String, ApiError> {
    let token = token.trim();
    if token.is_empty() || token.len() > 512 {
        return Err(ApiError::bad_request(
            "invalid_api_token",
            "api_token must be a Cloudflare API token",
        ));
    }
    Ok(token.to_owned())
}

pub(crate) fn check_interval(minutes: i64) -> Result<i64, ApiError> {
    if !(1..=1440).contains(&minutes) {
        return Err(ApiError::bad_request(
            "invalid_sync_interval",
            "sync_interval_minutes must be between 1 and 1440",
        ));
    }
    Ok(minutes)
}

fn check_lookback(days: Option<i64>) -> Result<Option<i64>, ApiError> {
    if days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(ApiError::bad_request(
            "invalid_lookback",
            "lookback_days must be between 1 and 3650, or null for all history",
        ));
    }
    Ok(days)
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestBody {
    #[serde(rename = "type")]
    kind: Kind,
    account_id: String,
    api_token: String,
}

#[utoipa::path(post, path = "/api/v1/integrations/test", tag = "integrations", request_body = TestBody, responses((status = 200, description = "`{ok: true, gateways}` or `{ok: false, error: {code, message, hint}}`"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn test(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<TestBody>,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let Kind::Cloudflare = body.kind;
    let account_id = check_account_id(&body.account_id)?;
    let token = check_token(&body.api_token)?;
    Ok(Json(
        match test_connection(&state.client_config, &account_id, &token).await {
            Ok(check) => {
                json!({"ok": true, "token_kind": check.token_kind, "gateways": check.gateways})
            }
            Err(e) => connection_failure(&e),
        },
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    #[serde(rename = "type")]
    kind: Kind,
    name: String,
    account_id: String,
    api_token: String,
    sync_interval_minutes: Option<i64>,
    /// Days of history the first sync imports; `null` for all of it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    lookback_days: Option<Option<i64>>,
    enabled: Option<bool>,
}

#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations", request_body = CreateBody, responses((status = 201, description = "Created; the token is never returned", body = IntegrationView), (status = 409, description = "Name taken", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<IntegrationView>), ApiError> {
    user.require(Role::Admin)?;
    let Kind::Cloudflare = body.kind;
    let integration = add(
        &state,
        &user.0,
        IntegrationInput {
            name: &body.name,
            account_id: &body.account_id,
            api_token: &body.api_token,
            enabled: body.enabled.unwrap_or(true),
            sync_interval_minutes: body.sync_interval_minutes.unwrap_or(15),
            lookback_days: body.lookback_days.unwrap_or(Some(7)),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(IntegrationView::from(&integration)),
    ))
}

#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations", responses((status = 200, description = "`{items: [integration]}`"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(State(state): State<AppState>, _user: CurrentUser) -> Result<Json<Value>, ApiError> {
    let items: Vec<IntegrationView> = state
        .store
        .list_integrations()
        .await?
        .iter()
        .map(IntegrationView::from)
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations", params(("id" = i64, Path, description = "Integration id")), responses((status = 200, description = "The integration", body = IntegrationView), (status = 404, description = "No such integration", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<IntegrationView>, ApiError> {
    Ok(Json(IntegrationView::from(
        &state.store.get_integration(id).await?,
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateBody {
    name: Option<String>,
    account_id: Option<String>,
    api_token: Option<String>,
    sync_interval_minutes: Option<i64>,
    /// Days of history the first sync imports; `null` for all of it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    lookback_days: Option<Option<i64>>,
    enabled: Option<bool>,
    /// Fetch request and response bodies for policies: `off`, `sampled` or `all` (two
    /// Cloudflare API calls per log, inside the integration's rate budget).
    #[schema(value_type = Option<String>)]
    bodies: Option<BodyMode>,
    /// For `sampled`: 1 to 100 (default 10).
    bodies_sample_percent: Option<i64>,
    /// Days stored bodies are kept (1 to 3,650; default 30).
    bodies_retention_days: Option<i64>,
}

/// The integration's body settings with the request's changes, checked.
fn body_settings(
    current: BodySettings,
    mode: Option<BodyMode>,
    sample_percent: Option<i64>,
    retention_days: Option<i64>,
) -> Result<Option<BodySettings>, ApiError> {
    if mode.is_none() && sample_percent.is_none() && retention_days.is_none() {
        return Ok(None);
    }
    let settings = BodySettings {
        mode: mode.unwrap_or(current.mode),
        sample_percent: sample_percent.unwrap_or(current.sample_percent),
        retention_days: retention_days.unwrap_or(current.retention_days),
    };
    if !(1..=100).contains(&settings.sample_percent) {
        return Err(ApiError::bad_request(
            "invalid_body",
            "bodies_sample_percent must be between 1 and 100",
        ));
    }
    if !(1..=3_650).contains(&settings.retention_days) {
        return Err(ApiError::bad_request(
            "invalid_body",
            "bodies_retention_days must be between 1 and 3650",
        ));
    }
    Ok(Some(settings))
}

#[utoipa::path(patch, path = "/api/v1/integrations/{id}", tag = "integrations", params(("id" = i64, Path, description = "Integration id")), request_body = UpdateBody, responses((status = 200, description = "Changed", body = IntegrationView), (status = 404, description = "No such integration", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<IntegrationView>, ApiError> {
    user.require(Role::Admin)?;
    // Which fields changed, never their values: one of them may be the token.
    let changed: Vec<&str> = [
        ("name", body.name.is_some()),
        ("account_id", body.account_id.is_some()),
        ("api_token", body.api_token.is_some()),
        ("enabled", body.enabled.is_some()),
        (
            "sync_interval_minutes",
            body.sync_interval_minutes.is_some(),
        ),
        ("lookback_days", body.lookback_days.is_some()),
        ("bodies", body.bodies.is_some()),
        (
            "bodies_sample_percent",
            body.bodies_sample_percent.is_some(),
        ),
        (
            "bodies_retention_days",
            body.bodies_retention_days.is_some(),
        ),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    let current = state.store.get_integration(id).await?;
    let bodies = body_settings(
        current.bodies,
        body.bodies,
        body.bodies_sample_percent,
        body.bodies_retention_days,
    )?;
    let patch = IntegrationPatch {
        bodies,
        name: body.name.as_deref().map(check_name).transpose()?,
        account_id: body
            .account_id
            .as_deref()
            .map(check_account_id)
            .transpose()?,
        sealed_api_token: body
            .api_token
            .as_deref()
            .map(|t| check_token(t).map(|t| state.sealer.seal(&t, Binding::IntegrationToken(id))))
            .transpose()?,
        enabled: body.enabled,
        sync_interval_minutes: body.sync_interval_minutes.map(check_interval).transpose()?,
        lookback_days: body.lookback_days.map(check_lookback).transpose()?,
    };
    let integration = change(&state, &user.0, id, patch, &changed).await?;
    Ok(Json(IntegrationView::from(&integration)))
}

#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "integrations", params(("id" = i64, Path, description = "Integration id")), responses((status = 204, description = "Deleted with its data"), (status = 409, description = "A sync is running", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Admin)?;
    remove_with_data(&state, &user.0, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/integrations/{id}/sync", tag = "integrations", params(("id" = i64, Path, description = "Integration id")), responses((status = 202, description = "`{run_id, status, already_running}`"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn sync_now(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    user.require(Role::Admin)?;
    let body = match start_sync(&state, &user.0, id).await? {
        SyncStart::Started(run) => {
            json!({"run_id": run.id, "status": run.status.as_str(), "already_running": false})
        }
        SyncStart::AlreadyRunning(run_id) => {
            json!({"run_id": run_id, "status": "running", "already_running": true})
        }
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunsQuery {
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/integrations/{id}/sync-runs", tag = "sync runs", params(("id" = i64, Path, description = "Integration id")), params(RunsQuery), responses((status = 200, description = "`{items: [sync run]}`, newest first"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn sync_runs(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    state.store.get_integration(id).await?;
    let runs = state
        .store
        .list_sync_runs(id, query.limit.unwrap_or(50).clamp(1, 500))
        .await?;
    let items: Vec<SyncRunView> = runs.iter().map(SyncRunView::from).collect();
    Ok(Json(json!({ "items": items })))
}

#[utoipa::path(get, path = "/api/v1/sync-runs/{id}", tag = "sync runs", params(("id" = i64, Path, description = "Sync run id")), responses((status = 200, description = "The run", body = SyncRunView), (status = 404, description = "No such run", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn sync_run(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<SyncRunView>, ApiError> {
    Ok(Json(SyncRunView::from(
        &state.store.get_sync_run(id).await?,
    )))
}

/// A new Cloudflare integration, as the API and the web UI take it (checked by [`add`]).
pub(crate) struct IntegrationInput<'a> {
    pub name: &'a str,
    pub account_id: &'a str,
    pub api_token: &'a str,
    pub enabled: bool,
    pub sync_interval_minutes: i64,
    pub lookback_days: Option<i64>,
}

/// Checks, seals the token, saves and audits a new integration.
pub(crate) async fn add(
    state: &AppState,
    actor: &User,
    input: IntegrationInput<'_>,
) -> Result<Integration, ApiError> {
    let integration = state
        .store
        .create_integration(NewIntegration {
            name: check_name(input.name)?,
            account_id: check_account_id(input.account_id)?,
            api_token: SealFor::new(
                state
                    .sealer
                    .sealing(check_token(input.api_token)?, Binding::IntegrationToken),
            ),
            enabled: input.enabled,
            sync_interval_minutes: check_interval(input.sync_interval_minutes)?,
            lookback_days: check_lookback(input.lookback_days)?,
        })
        .await?;
    state
        .audit(
            Some(actor),
            "integration.created",
            Some(format!("integration:{}", integration.id)),
            json!({"name": integration.name, "account_id": integration.account_id}),
            None,
        )
        .await;
    Ok(integration)
}

/// Applies a checked patch and audits which fields changed (never their values: one may be
/// the token).
pub(crate) async fn change(
    state: &AppState,
    actor: &User,
    id: i64,
    patch: IntegrationPatch,
    changed: &[&str],
) -> Result<Integration, ApiError> {
    let integration = state.store.update_integration(id, patch).await?;
    state
        .audit(
            Some(actor),
            "integration.updated",
            Some(format!("integration:{id}")),
            json!({"changed": changed}),
            None,
        )
        .await;
    Ok(integration)
}

/// Deletes an integration with everything imported through it, unless a sync of it is running.
pub(crate) async fn remove_with_data(
    state: &AppState,
    actor: &User,
    id: i64,
) -> Result<Integration, ApiError> {
    // A run that is finishing gets a moment; one in full swing is not cut off.
    if !state
        .engine
        .wait_for(id, std::time::Duration::from_secs(5))
        .await
    {
        return Err(ApiError::Conflict(
            "a sync of this integration is running; delete it when the sync has finished".into(),
        ));
    }
    let removed = state.store.get_integration(id).await?;
    state.store.delete_integration(id).await?;
    state
        .audit(
            Some(actor),
            "integration.deleted",
            Some(format!("integration:{id}")),
            json!({"name": removed.name, "interactions_deleted": removed.interactions_synced}),
            None,
        )
        .await;
    Ok(removed)
}

/// What Sync Now did.
pub(crate) enum SyncStart {
    Started(SyncRun),
    /// Pressing it again while a sync runs shows that sync instead of starting another.
    AlreadyRunning(Option<i64>),
}

pub(crate) async fn start_sync(
    state: &AppState,
    actor: &User,
    id: i64,
) -> Result<SyncStart, ApiError> {
    match state.engine.start(id, SyncTrigger::Manual).await {
        Ok(run) => {
            state
                .audit(
                    Some(actor),
                    "integration.synced",
                    Some(format!("integration:{id}")),
                    json!({"run_id": run.id}),
                    None,
                )
                .await;
            Ok(SyncStart::Started(run))
        }
        Err(SyncError::AlreadyRunning { run_id }) => Ok(SyncStart::AlreadyRunning(run_id)),
        Err(e) => Err(e.into()),
    }
}
