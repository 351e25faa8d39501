//! The integration lifecycle: test, create, list, read, change, delete, Sync Now, sync runs.
//! Admins manage; Members and Viewers read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use langguard_ops::integrations::{
    self, ConnectionTestView, IntegrationChange, IntegrationInput, SyncStartView,
};
use langguard_ops::lists::{IntegrationList, SyncRunList};
use langguard_ops::Actor;
use langguard_store::{BodyMode, Role};
use serde::{Deserialize, Deserializer};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::AppState;
use langguard_ops::views::{IntegrationView, SyncRunView};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/integrations/test", post(test))
        .route("/integrations", get(list).post(create))
        .route("/integrations/{id}", get(read).patch(update).delete(remove))
        .route("/integrations/{id}/sync", post(sync_now))
        .route("/integrations/{id}/sync-runs", get(sync_runs))
        .route("/integrations/{id}/coverage", get(coverage))
        .route("/sync-runs/{id}", get(sync_run))
}

/// Only Cloudflare AI Gateway today; the field is there so more kinds can follow.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone, Copy, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Cloudflare,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestConnectionRequest {
    #[serde(rename = "type")]
    kind: Kind,
    account_id: String,
    api_token: String,
}

#[utoipa::path(post, path = "/api/v1/integrations/test", operation_id = "test_connection", tag = "integrations", request_body = TestConnectionRequest, responses((status = 200, description = "`{ok: true, gateways}` or `{ok: false, error: {code, message, hint}}`", body = ConnectionTestView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn test(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<TestConnectionRequest>,
) -> Result<Json<ConnectionTestView>, ApiError> {
    user.require(Role::Admin)?;
    let Kind::Cloudflare = body.kind;
    let tested = integrations::test(&state.ops, &body.account_id, &body.api_token).await?;
    Ok(Json(ConnectionTestView::from(&tested)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateIntegrationRequest {
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
    /// Minutes behind its cursor each sync looks again for logs Cloudflare made visible late
    /// (1 to 1,440; default 30). A gateway where later ones are seen widens its own window.
    trailing_window_minutes: Option<i64>,
    enabled: Option<bool>,
}

#[utoipa::path(post, path = "/api/v1/integrations", operation_id = "create_integration", tag = "integrations", request_body = CreateIntegrationRequest, responses((status = 201, description = "Created; the token is never returned", body = IntegrationView), (status = 409, description = "Name taken", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateIntegrationRequest>,
) -> Result<(StatusCode, Json<IntegrationView>), ApiError> {
    user.require(Role::Admin)?;
    let Kind::Cloudflare = body.kind;
    let defaults = IntegrationInput::new(&body.name, &body.account_id, &body.api_token);
    let input = IntegrationInput {
        enabled: body.enabled.unwrap_or(defaults.enabled),
        sync_interval_minutes: body
            .sync_interval_minutes
            .unwrap_or(defaults.sync_interval_minutes),
        lookback_days: body.lookback_days.unwrap_or(defaults.lookback_days),
        trailing_window_minutes: body
            .trailing_window_minutes
            .unwrap_or(defaults.trailing_window_minutes),
        ..defaults
    };
    let integration = integrations::add(&state.ops, Actor::User(&user.0), input).await?;
    Ok((
        StatusCode::CREATED,
        Json(IntegrationView::from(&integration)),
    ))
}

#[utoipa::path(get, path = "/api/v1/integrations", operation_id = "list_integrations", tag = "integrations", responses((status = 200, description = "`{items: [integration]}`", body = IntegrationList), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<IntegrationList>, ApiError> {
    let items: Vec<IntegrationView> = state
        .ops
        .store
        .list_integrations()
        .await?
        .iter()
        .map(IntegrationView::from)
        .collect();
    Ok(Json(IntegrationList::from(items)))
}

#[utoipa::path(get, path = "/api/v1/integrations/{id}", operation_id = "get_integration", tag = "integrations", params(("id" = i64, Path, description = "Integration id")), responses((status = 200, description = "The integration", body = IntegrationView), (status = 404, description = "No such integration", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<IntegrationView>, ApiError> {
    Ok(Json(IntegrationView::from(
        &state.ops.store.get_integration(id).await?,
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateIntegrationRequest {
    name: Option<String>,
    account_id: Option<String>,
    api_token: Option<String>,
    sync_interval_minutes: Option<i64>,
    /// Days of history the first sync imports; `null` for all of it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    lookback_days: Option<Option<i64>>,
    /// Minutes behind its cursor each sync looks again for late-visible logs (1 to 1,440).
    trailing_window_minutes: Option<i64>,
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

#[utoipa::path(patch, path = "/api/v1/integrations/{id}", operation_id = "update_integration", tag = "integrations", params(("id" = i64, Path, description = "Integration id")), request_body = UpdateIntegrationRequest, responses((status = 200, description = "Changed", body = IntegrationView), (status = 404, description = "No such integration", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateIntegrationRequest>,
) -> Result<Json<IntegrationView>, ApiError> {
    user.require(Role::Admin)?;
    let change = IntegrationChange {
        name: body.name,
        account_id: body.account_id,
        api_token: body.api_token,
        enabled: body.enabled,
        sync_interval_minutes: body.sync_interval_minutes,
        lookback_days: body.lookback_days,
        trailing_window_minutes: body.trailing_window_minutes,
        bodies: body.bodies,
        bodies_sample_percent: body.bodies_sample_percent,
        bodies_retention_days: body.bodies_retention_days,
    };
    let integration = integrations::change(&state.ops, Actor::User(&user.0), id, change).await?;
    Ok(Json(IntegrationView::from(&integration)))
}

#[utoipa::path(delete, path = "/api/v1/integrations/{id}", operation_id = "delete_integration", tag = "integrations", params(("id" = i64, Path, description = "Integration id")), responses((status = 204, description = "Deleted with its data"), (status = 409, description = "A sync is running", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Admin)?;
    integrations::remove(&state.ops, Actor::User(&user.0), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/integrations/{id}/sync", operation_id = "sync_integration", tag = "integrations", params(("id" = i64, Path, description = "Integration id")), responses((status = 202, description = "`{run_id, status, already_running}`", body = SyncStartView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn sync_now(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<SyncStartView>), ApiError> {
    user.require(Role::Admin)?;
    let start = integrations::start_sync(&state.ops, Actor::User(&user.0), id).await?;
    Ok((StatusCode::ACCEPTED, Json(SyncStartView::from(&start))))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunsQuery {
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/integrations/{id}/sync-runs", operation_id = "list_sync_runs", tag = "sync runs", params(("id" = i64, Path, description = "Integration id"), RunsQuery), responses((status = 200, description = "`{items: [sync run]}`, newest first", body = SyncRunList), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn sync_runs(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<Json<SyncRunList>, ApiError> {
    state.ops.store.get_integration(id).await?;
    let runs = state
        .ops
        .store
        .list_sync_runs(id, query.limit.unwrap_or(50).clamp(1, 500))
        .await?;
    let items: Vec<SyncRunView> = runs.iter().map(SyncRunView::from).collect();
    Ok(Json(SyncRunList::from(items)))
}

#[utoipa::path(get, path = "/api/v1/sync-runs/{id}", operation_id = "get_sync_run", tag = "sync runs", params(("id" = i64, Path, description = "Sync run id")), responses((status = 200, description = "The run", body = SyncRunView), (status = 404, description = "No such run", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn sync_run(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<SyncRunView>, ApiError> {
    Ok(Json(SyncRunView::from(
        &state.ops.store.get_sync_run(id).await?,
    )))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct CoverageQuery {
    /// RFC 3339; default 24 hours before `to`.
    from: Option<String>,
    /// RFC 3339; default now.
    to: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/integrations/{id}/coverage", operation_id = "get_integration_coverage", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id"), CoverageQuery),
    responses((status = 200, description = "Per gateway and hour, the requests Cloudflare's analytics counted (`cloudflare`) against the interactions held (`stored`), with coverage ratios; `status` `unknown` with a `reason` when the token cannot read analytics", body = langguard_ops::coverage::CoverageView),
        (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody),
        (status = 404, description = "No such integration", body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
async fn coverage(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<CoverageQuery>,
) -> Result<Json<langguard_ops::coverage::CoverageView>, ApiError> {
    let scope = langguard_ops::metrics::scope(
        crate::extract::time_param("from", q.from.as_deref())?,
        crate::extract::time_param("to", q.to.as_deref())?,
        Some(id),
        None,
        None,
        None,
    )?;
    let (from, to) = (
        scope.from_ms.unwrap_or_default(),
        scope.to_ms.unwrap_or_default(),
    );
    Ok(Json(
        langguard_ops::coverage::view(&state.ops, id, from, to).await?,
    ))
}
