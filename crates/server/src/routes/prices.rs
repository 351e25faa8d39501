//! Cost Estimates (PRODUCT-SPEC §7): an admin's prices per model, USD per 1,000 tokens, for the
//! logs Cloudflare could not price. They match a model name exactly and apply to logs imported
//! from then on; the rest are priced from the bundled table.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use langguard_clock::format_ms;
use langguard_store::{ModelPrice, Role, User};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/cost-estimates", get(list).post(set).delete(remove))
}

pub(crate) fn view(p: &ModelPrice) -> Value {
    json!({
        "model": p.model,
        "input_per_1k": p.input_per_1k,
        "output_per_1k": p.output_per_1k,
        "updated_at": format_ms(p.updated_at_ms),
    })
}

/// A model name and two prices, checked.
fn check_price(model: &str, input: f64, output: f64) -> Result<String, ApiError> {
    let model = model.trim();
    if model.is_empty() || model.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "invalid_model",
            "the model name is 1 to 200 characters, exactly as the logs name it",
        ));
    }
    for (name, price) in [("input_per_1k", input), ("output_per_1k", output)] {
        if !price.is_finite() || !(0.0..=1_000.0).contains(&price) {
            return Err(ApiError::bad_request(
                "invalid_price",
                format!("{name} is USD per 1,000 tokens, between 0 and 1000"),
            ));
        }
    }
    Ok(model.to_string())
}

#[utoipa::path(get, path = "/api/v1/cost-estimates", tag = "cost estimates", responses((status = 200, description = "`{items: [{model, input_per_1k, output_per_1k, updated_at}], table}`: the admin's prices and the bundled table they override")), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(State(state): State<AppState>, _user: CurrentUser) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = state
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
    let price = set_price(
        &state,
        &user.0,
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
    delete_price(&state, &user.0, &q.model).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks, saves and audits a model's price (API and web UI alike).
pub(crate) async fn set_price(
    state: &AppState,
    actor: &User,
    model: &str,
    input_per_1k: f64,
    output_per_1k: f64,
) -> Result<ModelPrice, ApiError> {
    let model = check_price(model, input_per_1k, output_per_1k)?;
    let price = state
        .store
        .set_model_price(&model, input_per_1k, output_per_1k)
        .await?;
    state
        .audit(
            Some(actor),
            "cost_estimate.set",
            Some(format!("model:{model}")),
            json!({"input_per_1k": price.input_per_1k, "output_per_1k": price.output_per_1k}),
            None,
        )
        .await;
    Ok(price)
}

pub(crate) async fn delete_price(
    state: &AppState,
    actor: &User,
    model: &str,
) -> Result<(), ApiError> {
    state.store.delete_model_price(model).await?;
    state
        .audit(
            Some(actor),
            "cost_estimate.deleted",
            Some(format!("model:{model}")),
            json!({}),
            None,
        )
        .await;
    Ok(())
}
