//! One module per resource, each exporting its `router()`.

mod access;
mod alerts;
mod buckets;
mod budgets;
pub mod health;
pub(crate) mod ingest;
mod integrations;
mod metrics;
mod monitoring;
mod openapi;
mod people;
mod policies;
mod prices;
mod saved_views;
pub(crate) mod session;
mod traces;
mod users;
mod violations;
mod webhooks;

use axum::Router;

use crate::error::ApiError;
use crate::AppState;

pub fn api_router() -> Router<AppState> {
    Router::new()
        .merge(session::router())
        .merge(users::router())
        .merge(integrations::router())
        .merge(ingest::router())
        .merge(buckets::router())
        .merge(metrics::router())
        .merge(monitoring::router())
        .merge(access::router())
        .merge(openapi::router())
        .merge(traces::router())
        .merge(policies::router())
        .merge(prices::router())
        .merge(violations::router())
        .merge(webhooks::router())
        .merge(alerts::router())
        .merge(budgets::router())
        .merge(saved_views::router())
        .merge(people::router())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; the API lives under /api/v1".into())
}
