//! Policies: CRUD with compile-on-save and version history, `test` on a sample input,
//! `backtest` over stored history (nothing stored), re-evaluation of history, and the policy
//! worker's progress. Members and Admins write; Viewers read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use langguard_ops::lists::{PolicyList, PolicyVersionList};
use langguard_ops::policies::{
    self, BacktestView, HistoryRequest, PolicyChange, PolicyInput, PolicyStatusView,
    PolicyTestView, ReevaluationView,
};
use langguard_ops::views::PolicyView;
use langguard_ops::Actor;
use langguard_store::{PolicyCategory, PolicyId, PolicyMode, Role, Severity};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{time_param, ApiJson, ApiPath};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/policies", get(list).post(create))
        .route("/policies/test", post(test))
        .route("/policies/backtest", post(backtest))
        .route("/policies/status", get(status))
        .route("/policies/{id}", get(read).patch(update).delete(remove))
        .route("/policies/{id}/versions", get(versions))
        .route("/policies/{id}/reevaluate", post(reevaluate))
}

#[utoipa::path(get, path = "/api/v1/policies", operation_id = "list_policies", tag = "policies", responses((status = 200, description = "`{items: [policy]}`", body = PolicyList), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<PolicyList>, ApiError> {
    let items: Vec<PolicyView> = state
        .ops
        .store
        .list_policies()
        .await?
        .iter()
        .map(PolicyView::from)
        .collect();
    Ok(Json(PolicyList::from(items)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreatePolicyRequest {
    /// lowercase_underscores; the Rego must declare `package langguard.<name>`.
    name: String,
    display_name: Option<String>,
    description: Option<String>,
    /// `Security & Access`, `Models & Compliance`, `Budget & Operations` or `Audit`.
    #[schema(value_type = String)]
    category: PolicyCategory,
    /// `critical`, `high`, `medium` or `low`.
    #[schema(value_type = String)]
    severity: Severity,
    /// `enforce`, `permissive` (default) or `disabled`.
    #[schema(value_type = Option<String>)]
    mode: Option<PolicyMode>,
    /// `input.config` for the policy (an object).
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
    rego: String,
}

#[utoipa::path(post, path = "/api/v1/policies", operation_id = "create_policy", tag = "policies", request_body = CreatePolicyRequest, responses((status = 201, description = "Created (compiled first)", body = PolicyView), (status = 422, description = "The Rego does not compile: `{error: {code: invalid_rego, message, line, column}}`", body = crate::error::ErrorBody), (status = 409, description = "Name taken", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreatePolicyRequest>,
) -> Result<(StatusCode, Json<PolicyView>), ApiError> {
    user.require(Role::Member)?;
    let input = PolicyInput {
        name: body.name,
        display_name: body.display_name,
        description: body.description,
        category: body.category,
        severity: body.severity,
        mode: body.mode,
        config: body.config,
        rego: body.rego,
    };
    let policy = policies::add(&state.ops, Actor::User(&user.0), input).await?;
    Ok((StatusCode::CREATED, Json(PolicyView::from(&policy))))
}

#[utoipa::path(get, path = "/api/v1/policies/{id}", operation_id = "get_policy", tag = "policies", params(("id" = i64, Path, description = "Policy id")), responses((status = 200, description = "The policy", body = PolicyView), (status = 404, description = "No such policy", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<PolicyId>,
) -> Result<Json<PolicyView>, ApiError> {
    Ok(Json(PolicyView::from(
        &state.ops.store.get_policy(id).await?,
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdatePolicyRequest {
    display_name: Option<String>,
    description: Option<String>,
    #[schema(value_type = Option<String>)]
    category: Option<PolicyCategory>,
    #[schema(value_type = Option<String>)]
    severity: Option<Severity>,
    #[schema(value_type = Option<String>)]
    mode: Option<PolicyMode>,
    /// The legacy toggle: `false` disables, `true` enforces a disabled policy.
    enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
    rego: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/policies/{id}", operation_id = "update_policy", tag = "policies", params(("id" = i64, Path, description = "Policy id")), request_body = UpdatePolicyRequest, responses((status = 200, description = "Updated; a new Rego text or config is a new version", body = PolicyView), (status = 422, description = "The Rego does not compile", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<PolicyId>,
    ApiJson(body): ApiJson<UpdatePolicyRequest>,
) -> Result<Json<PolicyView>, ApiError> {
    user.require(Role::Member)?;
    let change = PolicyChange {
        display_name: body.display_name,
        description: body.description,
        category: body.category,
        severity: body.severity,
        mode: body.mode,
        enabled: body.enabled,
        config: body.config,
        rego: body.rego,
    };
    let policy = policies::change(&state.ops, Actor::User(&user.0), id, change).await?;
    Ok(Json(PolicyView::from(&policy)))
}

#[utoipa::path(delete, path = "/api/v1/policies/{id}", operation_id = "delete_policy", tag = "policies", params(("id" = i64, Path, description = "Policy id")), responses((status = 204, description = "Deleted, with its versions and violations"), (status = 404, description = "No such policy", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<PolicyId>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Member)?;
    policies::remove(&state.ops, Actor::User(&user.0), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/policies/{id}/versions", operation_id = "list_policy_versions", tag = "policies", params(("id" = i64, Path, description = "Policy id")), responses((status = 200, description = "`{items: [{version, rego, config, created_at}]}`, newest first", body = PolicyVersionList)), security(("bearer" = []), ("session_cookie" = [])))]
async fn versions(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<PolicyId>,
) -> Result<Json<PolicyVersionList>, ApiError> {
    let items = policies::versions(&state.ops, id).await?;
    Ok(Json(PolicyVersionList::from(items)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TestPolicyRequest {
    rego: String,
    /// The whole `input` document (`{trace: {…}, config: {…}}`).
    #[schema(value_type = Object)]
    input: Value,
    /// Replaces `input.config` when given.
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
}

#[utoipa::path(post, path = "/api/v1/policies/test", operation_id = "test_policy", tag = "policies", request_body = TestPolicyRequest, responses((status = 200, description = "`{violations: [result]}`", body = PolicyTestView), (status = 422, description = "Doesn't compile (`invalid_rego`, with line and column) or can't be evaluated (`evaluation_error`)", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn test(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<TestPolicyRequest>,
) -> Result<Json<PolicyTestView>, ApiError> {
    // Running Rego is writing policy: Viewers and read-scope keys may not.
    user.require(Role::Member)?;
    let Value::Object(input) = body.input else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "input must be a JSON object (the policy's `input` document)",
        ));
    };
    let findings = policies::test(&state.ops, &body.rego, input, body.config).await?;
    let violations: Vec<Value> = findings.into_iter().map(|f| f.result).collect();
    Ok(Json(PolicyTestView { violations }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BacktestRequest {
    /// A saved policy (its current text and config unless `rego`/`config` are given)…
    policy_id: Option<PolicyId>,
    /// …or a new text (its package names it).
    rego: Option<String>,
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
    /// RFC 3339; default 24 hours before `to`.
    from: Option<String>,
    /// RFC 3339; default now.
    to: Option<String>,
    integration_id: Option<i64>,
    /// Flagged interactions returned as samples (default 10, at most 100).
    samples: Option<usize>,
}

impl BacktestRequest {
    fn request(self) -> Result<HistoryRequest, ApiError> {
        Ok(HistoryRequest {
            policy_id: self.policy_id,
            from_ms: time_param("from", self.from.as_deref())?,
            to_ms: time_param("to", self.to.as_deref())?,
            rego: self.rego,
            config: self.config,
            integration_id: self.integration_id,
            samples: self.samples,
        })
    }
}

#[utoipa::path(post, path = "/api/v1/policies/backtest", operation_id = "backtest_policy", tag = "policies", request_body = BacktestRequest, responses((status = 200, description = "`{evaluated, flagged, violations, by_type, errors, complete, samples: [{trace, violations}]}`; nothing is stored. `complete` is false when the run reached its time limit first.", body = BacktestView), (status = 422, description = "The Rego does not compile", body = crate::error::ErrorBody), (status = 403, description = "Viewers and read-scope keys can't run policies", body = crate::error::ErrorBody), (status = 429, description = "A backtest of yours is already running, or as many as the server runs at once", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn backtest(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<BacktestRequest>,
) -> Result<Json<BacktestView>, ApiError> {
    user.require(Role::Member)?;
    let request = body.request()?;
    Ok(Json(
        policies::backtest(&state.ops, &user.0, &request).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReevaluateRequest {
    from: Option<String>,
    to: Option<String>,
    integration_id: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/policies/{id}/reevaluate", operation_id = "reevaluate_policy", tag = "policies", params(("id" = i64, Path, description = "Policy id")), request_body = ReevaluateRequest, responses((status = 200, description = "`{evaluated, new_violations}`: the saved policy over past interactions, storing what it finds (findings already stored are kept as they are)", body = ReevaluationView), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn reevaluate(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<PolicyId>,
    ApiJson(body): ApiJson<ReevaluateRequest>,
) -> Result<Json<ReevaluationView>, ApiError> {
    user.require(Role::Member)?;
    let view = policies::reevaluate(
        &state.ops,
        &user.0,
        id,
        time_param("from", body.from.as_deref())?,
        time_param("to", body.to.as_deref())?,
        body.integration_id,
    )
    .await?;
    Ok(Json(view))
}

#[utoipa::path(get, path = "/api/v1/policies/status", operation_id = "get_policy_status", tag = "policies", responses((status = 200, description = "`{cursor, latest_interaction_id, lag, evaluated_at, policies_enabled}`: how far the policy worker has come", body = PolicyStatusView)), security(("bearer" = []), ("session_cookie" = [])))]
async fn status(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<PolicyStatusView>, ApiError> {
    Ok(Json(policies::status(&state.ops).await?))
}
