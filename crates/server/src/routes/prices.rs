//! Cost Estimates (PRODUCT-SPEC §7): an admin's prices per model, USD per 1,000 tokens, for the
//! logs Cloudflare could not price. They match a model name exactly and apply to logs imported
//! from then on; the rest are priced from the bundled table.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use langguard_ops::lists::PriceList;
use langguard_ops::prices::{self, PriceView};
use langguard_ops::Actor;
use langguard_store::Role;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/cost-estimates", get(list).post(set).delete(remove))
}

#[utoipa::path(get, path = "/api/v1/cost-estimates", operation_id = "list_cost_estimates", tag = "cost estimates", responses((status = 200, description = "`{items: [{model, input_per_1k, output_per_1k, updated_at}], table}`: the admin's prices and the bundled table they override", body = PriceList)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<PriceList>, ApiError> {
    let items: Vec<PriceView> = state
        .ops
        .store
        .list_model_prices()
        .await?
        .iter()
        .map(PriceView::from)
        .collect();
    Ok(Json(PriceList {
        items,
        table: langguard_pricing::PRICE_TABLE_VERSION,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetCostEstimateRequest {
    /// Exactly as the logs name it, version suffix included.
    model: String,
    /// USD per 1,000 input tokens.
    input_per_1k: f64,
    /// USD per 1,000 output tokens.
    output_per_1k: f64,
}

#[utoipa::path(post, path = "/api/v1/cost-estimates", operation_id = "set_cost_estimate", tag = "cost estimates", request_body = SetCostEstimateRequest, responses((status = 200, description = "Set (added or replaced)", body = PriceView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn set(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<SetCostEstimateRequest>,
) -> Result<Json<PriceView>, ApiError> {
    user.require(Role::Admin)?;
    let price = prices::set(
        &state.ops,
        Actor::User(&user.0),
        &body.model,
        body.input_per_1k,
        body.output_per_1k,
    )
    .await?;
    Ok(Json(PriceView::from(&price)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelQuery {
    model: String,
}

#[utoipa::path(delete, path = "/api/v1/cost-estimates", operation_id = "delete_cost_estimate", tag = "cost estimates", params(ModelQuery), responses((status = 204, description = "Removed: the model is priced from the table again"), (status = 404, description = "No price for that model", body = crate::error::ErrorBody), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<ModelQuery>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Admin)?;
    prices::remove(&state.ops, Actor::User(&user.0), &q.model).await?;
    Ok(StatusCode::NO_CONTENT)
}
