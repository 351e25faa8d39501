//! `GET /api/v1/openapi.json`: the API's OpenAPI document, generated from the handlers'
//! annotations, so it cannot drift from the code.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "LangGuard API",
        description = "AI governance and observability for Cloudflare AI Gateway. Errors are `{\"error\": {\"code\", \"message\"}}`; times RFC 3339 UTC; money USD; durations ms.",
    ),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::session::login,
        super::session::logout,
        super::session::me,
        super::users::list,
        super::users::create,
        super::users::update,
        super::users::remove,
        super::integrations::test,
        super::integrations::list,
        super::integrations::create,
        super::integrations::read,
        super::integrations::update,
        super::integrations::remove,
        super::integrations::sync_now,
        super::integrations::sync_runs,
        super::integrations::sync_run,
        super::integrations::coverage,
        super::ingest::otlp_traces,
        super::ingest::logpush,
        super::ingest::setup,
        super::ingest::set_source,
        super::ingest::set_up,
        super::ingest::history,
        super::buckets::list,
        super::buckets::add,
        super::buckets::remove,
        super::buckets::import,
        super::metrics::metrics,
        super::metrics::timeseries,
        super::metrics::breakdown,
        super::monitoring::overview,
        super::traces::list,
        super::traces::export,
        super::traces::read,
        super::policies::list,
        super::policies::create,
        super::policies::read,
        super::policies::update,
        super::policies::remove,
        super::policies::versions,
        super::policies::test,
        super::policies::backtest,
        super::policies::reevaluate,
        super::policies::status,
        super::violations::list,
        super::violations::read,
        super::violations::update,
        super::violations::bulk,
        super::prices::list,
        super::prices::set,
        super::prices::remove,
        super::webhooks::list,
        super::webhooks::create,
        super::webhooks::read,
        super::webhooks::update,
        super::webhooks::remove,
        super::webhooks::deliveries,
        super::webhooks::test,
        super::alerts::list,
        super::alerts::list_rules,
        super::alerts::create_rule,
        super::alerts::read_rule,
        super::alerts::update_rule,
        super::alerts::remove_rule,
        super::alerts::backtest,
        super::alerts::list_silences,
        super::alerts::create_silence,
        super::alerts::end_silence,
        super::budgets::list,
        super::budgets::create,
        super::budgets::read,
        super::budgets::update,
        super::budgets::remove,
        super::saved_views::list,
        super::saved_views::create,
        super::saved_views::read,
        super::saved_views::update,
        super::saved_views::remove,
        super::people::list,
        super::people::read_keys,
        super::people::anomalies,
        super::people::set_keys,
        super::people::read,
        super::access::list_keys,
        super::access::create_key,
        super::access::revoke_key,
        super::access::audit,
        openapi_json,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Security)
)]
pub(crate) struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from /auth/login, or an API key (`lgr_…`)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::SESSION_COOKIE))),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "get_openapi_document", tag = "meta", responses((status = 200, description = "This document", body = Object)))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
