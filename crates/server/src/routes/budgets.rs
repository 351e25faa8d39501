//! Budgets: an amount per day, week or month over a scope, with where each stands now and the
//! burn-down of one group. Everyone signed in reads; Members and Admins write.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use langguard_ops::budgets::{self, BudgetDetail, BudgetInput, BudgetView};
use langguard_ops::lists::BudgetList;
use langguard_ops::Actor;
use langguard_store::{AlertScope, Role};
use serde::Deserialize;

use super::alerts::{nullable, ScopeBody};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{now_ms, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/budgets", get(list).post(create))
        .route("/budgets/{id}", get(read).patch(update).delete(remove))
}

/// A budget; on PATCH, fields left out keep their value and `group_by: null` ungroups it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BudgetBody {
    name: Option<String>,
    /// Dollars per period, e.g. 2000.
    amount_usd: Option<f64>,
    /// `day`, `week` (Monday to Monday) or `month` (default; calendar months).
    period: Option<String>,
    /// IANA time zone the period's days begin in, e.g. `America/New_York`; default `UTC`.
    time_zone: Option<String>,
    scope: Option<ScopeBody>,
    /// Each `integration`, `gateway`, `provider` or `model` gets the whole amount; null: one
    /// budget for the scope.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    group_by: Option<Option<String>>,
    /// Percentages of the amount that notify once per period; default `[50, 80, 100]`.
    thresholds: Option<Vec<u32>>,
    enabled: Option<bool>,
}

impl From<BudgetBody> for BudgetInput {
    fn from(b: BudgetBody) -> Self {
        BudgetInput {
            name: b.name,
            amount_usd: b.amount_usd,
            period: b.period,
            time_zone: b.time_zone,
            scope: b.scope.map(AlertScope::from),
            group_by: b.group_by,
            thresholds: b.thresholds,
            enabled: b.enabled,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/budgets", operation_id = "list_budgets", tag = "budgets", responses((status = 200, description = "`{items: [budget]}`: each with its period and spend per group so far, with the forecast", body = BudgetList), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<BudgetList>, ApiError> {
    Ok(Json(BudgetList::from(
        budgets::list(&state.ops, now_ms()).await?,
    )))
}

#[utoipa::path(post, path = "/api/v1/budgets", operation_id = "create_budget", tag = "budgets", request_body = BudgetBody, responses((status = 201, description = "Created; thresholds are checked every minute", body = BudgetView), (status = 400, description = "Bad input (`invalid_budget`): `error.message` says what to fix", body = crate::error::ErrorBody), (status = 409, description = "Name taken", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<BudgetBody>,
) -> Result<(StatusCode, Json<BudgetView>), ApiError> {
    user.require(Role::Member)?;
    let budget = budgets::add(&state.ops, Actor::User(&user.0), body.into()).await?;
    let view = budgets::saved(&state.ops, &budget, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct BudgetQuery {
    /// The group whose burn-down to chart; default the most spent.
    group: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/budgets/{id}", operation_id = "get_budget", tag = "budgets", params(("id" = i64, Path, description = "Budget id"), BudgetQuery), responses((status = 200, description = "The budget with the day-by-day burn-down of one group: spend, the even pace and the forecast", body = BudgetDetail), (status = 404, description = "No such budget", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<BudgetQuery>,
) -> Result<Json<BudgetDetail>, ApiError> {
    Ok(Json(
        budgets::detail(&state.ops, id, q.group.as_deref(), now_ms()).await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/budgets/{id}", operation_id = "update_budget", tag = "budgets", params(("id" = i64, Path, description = "Budget id")), request_body = BudgetBody, responses((status = 200, description = "Updated", body = BudgetView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 404, description = "No such budget", body = crate::error::ErrorBody), (status = 409, description = "Name taken", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<BudgetBody>,
) -> Result<Json<BudgetView>, ApiError> {
    user.require(Role::Member)?;
    let budget = budgets::change(&state.ops, Actor::User(&user.0), id, body.into()).await?;
    Ok(Json(budgets::saved(&state.ops, &budget, now_ms()).await?))
}

#[utoipa::path(delete, path = "/api/v1/budgets/{id}", operation_id = "delete_budget", tag = "budgets", params(("id" = i64, Path, description = "Budget id")), responses((status = 204, description = "Deleted"), (status = 404, description = "No such budget", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Member)?;
    budgets::remove(&state.ops, Actor::User(&user.0), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
