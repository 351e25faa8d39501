//! Cost Estimates (PRODUCT-SPEC §7): an admin's prices per model, USD per 1,000 tokens, for the
//! logs Cloudflare could not price. They match a model name exactly and apply to logs imported
//! from then on; the rest are priced from the bundled table.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use langguard_ops::prices::{self, PriceView};
use langguard_ops::Actor;
use langguard_store::{ModelPrice, Role};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/cost-estimates", get(list).post(set).delete(remove))
}

fn view(p: &ModelPrice) -> Value {
    json!(PriceView::from(p))
}

#[utoipa::path(get, path = "/api/v1/cost-estimates", tag = "cost estimates", responses((status = 200, description = "`{items: [{model, input_per_1k, output_per_1k, updated_at}], table}`: the admin's prices and the bundled table they override")), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(State(state): State<AppState>, _user: CurrentUser) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = state
        .ops
        .store
        .list_model_prices()
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(Json(json!({
        "items": items,
        "table": langguard_pricing::PRICE_TABLE_VERSION,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PriceBody {
    /// Exactly as the logs name it, version suffix included.
    model: String,
    /// USD per 1,000 input tokens.
    input_per_1k: f64,
    /// USD per 1,000 output tokens.
    output_per_1k: f64,
}

#[utoipa::path(post, path = "/api/v1/cost-estimates", tag = "cost estimates", request_body = PriceBody, responses((status = 200, description = "Set (added or replaced)"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn set(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<PriceBody>,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let price = prices::set(
        &state.ops,
        Actor::User(&user.0),
        &body.model,
        body.input_per_1k,
        body.output_per_1k,
    )
    .await?;
    Ok(Json(view(&price)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelQuery {
    model: String,
}

#[utoipa::path(delete, path = "/api/v1/cost-estimates", tag = "cost estimates", params(ModelQuery), responses((status = 204, description = "Removed: the model is priced from the table again"), (status = 404, description = "No price for that model", body = crate::error::ErrorBody), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<ModelQuery>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Admin)?;
    prices::remove(&state.ops, Actor::User(&user.0), &q.model).await?;
    Ok(StatusCode::NO_CONTENT)
}
