//! HTTP routes under `/client/v4` and the pipeline every API request goes through.
//!
//! Pipeline order (documented because tests depend on it):
//! 1. injected latency (`Faults::latency`), then the request is counted in [`crate::Stats`];
//! 2. authentication: credentials header (400 / 6003) and token validity (403 / 9109 or, on the
//!    verify routes, 401 / 1000);
//! 3. the token's rate limit (429 / 10100) — so rejected credentials never use up a quota;
//! 4. injected faults: queued 429s, queued 5xx, random 5xx;
//! 5. authorization of AI Gateway routes (403 / 10000);
//! 6. the route itself: query validation (400 / 7001), then lookups (404 / 7002).
//!
//! Every response carries `Ratelimit` and `Ratelimit-Policy`; a request that cannot be tied to
//! a token reports an untouched window.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::time::Instant;

use crate::auth::{self, Access, TokenRecord, TokenStatus};
use crate::bodies::{render_bodies, StoredBody};
use crate::emulator::{lock, read, write, Emulator, Shared};
use crate::envelope::{json_response, success_body, ApiError, Message, ResultInfo};
use crate::faults::{cut_connection_response, InjectedFault};
use crate::listing::select_page_with_ties;
use crate::log_record::{now_millis, BodyHead, DetailItem, ListItem, LogPatch, LogRecord};
use crate::push::routes as push_routes;
use crate::query::{parse_gateway_query, parse_log_query, Pagination, QueryParams};
use crate::rate_limit::RateStatus;
use crate::stats::Endpoint;

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

const GATEWAYS: &str = "/client/v4/accounts/{account_id}/ai-gateway/gateways";
const GATEWAY: &str = "/client/v4/accounts/{account_id}/ai-gateway/gateways/{gateway_id}";
const LOGS: &str = "/client/v4/accounts/{account_id}/ai-gateway/gateways/{gateway_id}/logs";
const LOG: &str = "/client/v4/accounts/{account_id}/ai-gateway/gateways/{gateway_id}/logs/{log_id}";
const LOG_REQUEST: &str =
    "/client/v4/accounts/{account_id}/ai-gateway/gateways/{gateway_id}/logs/{log_id}/request";
const LOG_RESPONSE: &str =
    "/client/v4/accounts/{account_id}/ai-gateway/gateways/{gateway_id}/logs/{log_id}/response";
const USER_VERIFY: &str = "/client/v4/user/tokens/verify";
const ACCOUNT_VERIFY: &str = "/client/v4/accounts/{account_id}/tokens/verify";
const GRAPHQL: &str = "/client/v4/graphql";
const LOGPUSH_JOBS: &str = "/client/v4/accounts/{account_id}/logpush/jobs";
const LOGPUSH_JOB: &str = "/client/v4/accounts/{account_id}/logpush/jobs/{job_id}";

pub(crate) fn router(emulator: Emulator) -> Router {
    Router::new()
        .route(USER_VERIFY, get(verify_user_token))
        .route(ACCOUNT_VERIFY, get(verify_account_token))
        .route(GATEWAYS, get(list_gateways))
        .route(GATEWAY, get(get_gateway).put(push_routes::update_gateway))
        .route(
            LOGPUSH_JOBS,
            get(push_routes::list_jobs).post(push_routes::create_job),
        )
        .route(
            LOGPUSH_JOB,
            get(push_routes::get_job)
                .put(push_routes::update_job)
                .delete(push_routes::delete_job),
        )
        .route(LOGS, get(list_logs).delete(delete_logs))
        .route(GRAPHQL, post(crate::analytics::graphql))
        .route(LOG, get(get_log).patch(patch_log))
        .route(LOG_REQUEST, get(get_log_request))
        .route(LOG_RESPONSE, get(get_log_response))
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .with_state(emulator)
}

type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

fn query_params(query: QueryPairs) -> Result<QueryParams, ApiError> {
    query
        .map(|Query(pairs)| QueryParams::new(pairs))
        .map_err(|_| ApiError::validation(&["query"]))
}

async fn verify_user_token(State(emulator): State<Emulator>, headers: HeaderMap) -> Response {
    serve(
        &emulator,
        Endpoint::Verify,
        &headers,
        Access::VerifyUser,
        verify_response,
    )
    .await
}

async fn verify_account_token(
    State(emulator): State<Emulator>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Path(account)) = path else {
        return no_route(State(emulator)).await;
    };
    let access = Access::VerifyAccount { account: &account };
    serve(
        &emulator,
        Endpoint::Verify,
        &headers,
        access,
        verify_response,
    )
    .await
}

fn verify_response(_: &Shared, token: &TokenRecord) -> Result<Response, ApiError> {
    // Cloudflare's success message only speaks for active tokens; the emulator sends none
    // for disabled or expired ones and lets `result.status` tell.
    const ACTIVE: [Message; 1] = [Message {
        code: 10000,
        message: "This API Token is valid and active",
        kind: None,
    }];
    let messages: &[Message] = if token.spec.status == TokenStatus::Active {
        &ACTIVE
    } else {
        &[]
    };
    success_body(token.verify_result(), messages, None).map(json_response)
}

async fn list_gateways(
    State(emulator): State<Emulator>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Response {
    let Ok(Path(account)) = path else {
        return no_route(State(emulator)).await;
    };
    let access = Access::read(&account);
    serve(
        &emulator,
        Endpoint::ListGateways,
        &headers,
        access,
        |shared, _| {
            let params = query_params(query)?;
            let mut query = parse_gateway_query(&params, shared.config.gateways_max_per_page)?;
            if let Some(clamp) = shared.config.gateways_clamp_per_page {
                query.pagination.per_page = query.pagination.per_page.min(clamp.max(1));
            }
            let store = read(&shared.store);
            let matching: Vec<_> = store
                .gateways(&account)
                .unwrap_or_default()
                .iter()
                .filter(|gateway| {
                    query
                        .search
                        .as_deref()
                        .is_none_or(|needle| gateway.id.contains(needle))
                })
                .collect();
            let page: Vec<_> = matching
                .iter()
                .skip(query.pagination.offset())
                .take(query.pagination.limit())
                .map(|gateway| gateway.json())
                .collect();
            let info = ResultInfo {
                page: query.pagination.page,
                per_page: query.pagination.per_page,
                count: page.len(),
                total_count: matching.len(),
            };
            success_body(page, &[], Some(info)).map(json_response)
        },
    )
    .await
}

async fn get_gateway(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Path((account, gateway_id))) = path else {
        return no_route(State(emulator)).await;
    };
    let access = Access::read(&account);
    serve(
        &emulator,
        Endpoint::GetGateway,
        &headers,
        access,
        |shared, _| {
            let store = read(&shared.store);
            let gateway = store
                .gateway(&account, &gateway_id)
                .ok_or_else(ApiError::not_found)?;
            success_body(gateway.json(), &[], None).map(json_response)
        },
    )
    .await
}

async fn list_logs(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Response {
    let Ok(Path((account, gateway_id))) = path else {
        return no_route(State(emulator)).await;
    };
    let access = Access::read(&account);
    serve(
        &emulator,
        Endpoint::ListLogs,
        &headers,
        access,
        |shared, _| {
            let params = query_params(query)?;
            let query = parse_log_query(&params, shared.config.default_order_direction)?;
            if query.pagination.per_page < shared.config.logs_min_per_page {
                return Err(ApiError::validation(&["query", "per_page"]));
            }
            if lock(&shared.faults).rejects_filters(params.get("filters")) {
                return Err(ApiError::validation(&["query", "filters"]));
            }
            let delete = lock(&shared.faults).delete_on_list();
            if delete > 0 {
                let deleted = write(&shared.store)
                    .gateway_mut(&account, &gateway_id)
                    .map(|gateway| gateway.logs.remove_spread(delete))
                    .unwrap_or_default();
                lock(&shared.deleted_on_list).extend(deleted);
            }
            let tie_seed = shared
                .config
                .unstable_tie_order
                .then(|| lock(&shared.faults).tie_seed());
            let mut page = {
                let store = read(&shared.store);
                let gateway = store
                    .gateway(&account, &gateway_id)
                    .ok_or_else(ApiError::not_found)?;
                // An account on the new log system: the Logs API answers, with nothing in it.
                let logs = if store.logs_api_serves(&account) {
                    gateway.logs.as_slice()
                } else {
                    &[]
                };
                select_page_with_ties(
                    logs,
                    &query,
                    now_millis(),
                    shared.config.sub_millisecond_time,
                    tie_seed,
                )
            };
            if lock(&shared.faults).take_short_page() {
                page.items.truncate(page.items.len() / 2);
            }
            let rows: Vec<ListItem<'_>> = page.items.iter().map(|log| log.list_item()).collect();
            let info = ResultInfo {
                page: query.pagination.page,
                per_page: query.pagination.per_page,
                count: rows.len(),
                total_count: page.total_count,
            };
            let body = success_body(rows, &[], Some(info))?;
            if lock(&shared.faults).take_cut_connection() {
                Ok(cut_connection_response(body))
            } else {
                Ok(json_response(body))
            }
        },
    )
    .await
}

/// `DELETE …/logs`: deletes the logs matching `filters` (the list call's), at most `limit`
/// (default and maximum 10,000) in `order_by` order. Needs AI Gateway edit rights.
async fn delete_logs(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Response {
    const MAX_DELETE: u32 = 10_000;
    let Ok(Path((account, gateway_id))) = path else {
        return no_route(State(emulator)).await;
    };
    let access = Access::edit(&account);
    serve(
        &emulator,
        Endpoint::DeleteLogs,
        &headers,
        access,
        |shared, _| {
            let params = query_params(query)?;
            let limit = match params.get("limit") {
                None => MAX_DELETE,
                Some(raw) => raw
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_DELETE).contains(n))
                    .ok_or_else(|| ApiError::validation(&["query", "limit"]))?,
            };
            let mut query = parse_log_query(&params, shared.config.default_order_direction)?;
            query.pagination = Pagination {
                page: 1,
                per_page: limit,
            };
            let mut store = write(&shared.store);
            let gateway = store
                .gateway_mut(&account, &gateway_id)
                .ok_or_else(ApiError::not_found)?;
            let ids: Vec<String> = select_page_with_ties(
                gateway.logs.as_slice(),
                &query,
                now_millis(),
                shared.config.sub_millisecond_time,
                None,
            )
            .items
            .iter()
            .map(|log| log.id.clone())
            .collect();
            gateway
                .logs
                .remove(&ids.iter().map(String::as_str).collect());
            success_body(serde_json::json!({ "success": true }), &[], None).map(json_response)
        },
    )
    .await
}

type LogPath = Result<Path<(String, String, String)>, PathRejection>;

async fn get_log(State(emulator): State<Emulator>, path: LogPath, headers: HeaderMap) -> Response {
    let Ok(Path((account, gateway_id, log_id))) = path else {
        return no_route(State(emulator)).await;
    };
    let access = Access::read(&account);
    serve(
        &emulator,
        Endpoint::GetLog,
        &headers,
        access,
        |shared, _| {
            let log = find_visible_log(shared, &account, &gateway_id, &log_id)?;
            let (request, response) = render_bodies(&log);
            let head = |body: &StoredBody| {
                if log.payload_stored {
                    body.head()
                } else {
                    // The request happened and had a size, but its payload was not kept.
                    BodyHead {
                        head: String::new(),
                        complete: false,
                        size: body.text.len(),
                    }
                }
            };
            let detail = DetailItem::new(&log, head(&request), head(&response));
            success_body(detail, &[], None).map(json_response)
        },
    )
    .await
}

/// `PATCH …/logs/{id}`: sets feedback, score or metadata after the fact (API-NOTES §2);
/// needs edit rights, like deleting logs.
async fn patch_log(
    State(emulator): State<Emulator>,
    path: LogPath,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(Path((account, gateway_id, log_id))) = path else {
        return no_route(State(emulator)).await;
    };
    serve(
        &emulator,
        Endpoint::PatchLog,
        &headers,
        Access::edit(&account),
        |shared, _| {
            let patch = LogPatch::parse(&body).map_err(|field| ApiError::validation(&[field]))?;
            let mut store = write(&shared.store);
            let gateway = store
                .gateway_mut(&account, &gateway_id)
                .ok_or_else(ApiError::not_found)?;
            if !gateway.logs.update(&log_id, |log| log.apply_patch(&patch)) {
                return Err(ApiError::not_found());
            }
            success_body(serde_json::json!({}), &[], None).map(json_response)
        },
    )
    .await
}

/// Which stored body a body route returns.
#[derive(Clone, Copy)]
enum BodyPart {
    Request,
    Response,
}

async fn get_log_request(
    State(emulator): State<Emulator>,
    path: LogPath,
    headers: HeaderMap,
) -> Response {
    log_body(emulator, path, headers, BodyPart::Request).await
}

async fn get_log_response(
    State(emulator): State<Emulator>,
    path: LogPath,
    headers: HeaderMap,
) -> Response {
    log_body(emulator, path, headers, BodyPart::Response).await
}

/// The raw stored body with its own content type and no envelope; 404 / 7002 when the
/// payload was not stored.
async fn log_body(
    emulator: Emulator,
    path: LogPath,
    headers: HeaderMap,
    part: BodyPart,
) -> Response {
    let Ok(Path((account, gateway_id, log_id))) = path else {
        return no_route(State(emulator)).await;
    };
    let access = Access::read(&account);
    serve(&emulator, Endpoint::Body, &headers, access, |shared, _| {
        let log = find_visible_log(shared, &account, &gateway_id, &log_id)?;
        if !log.payload_stored {
            return Err(ApiError::not_found());
        }
        let (request, response) = render_bodies(&log);
        let body = match part {
            BodyPart::Request => request,
            BodyPart::Response => response,
        };
        Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(body.content_type),
            )],
            body.text,
        )
            .into_response())
    })
    .await
}

/// A log that exists and is already visible; anything else is 404 / 7002.
fn find_visible_log(
    shared: &Shared,
    account: &str,
    gateway_id: &str,
    log_id: &str,
) -> Result<Arc<LogRecord>, ApiError> {
    let store = read(&shared.store);
    if !store.logs_api_serves(account) {
        return Err(ApiError::not_found());
    }
    store
        .gateway(account, gateway_id)
        .and_then(|gateway| gateway.logs.get(log_id))
        .filter(|log| log.is_visible_at(now_millis()))
        .cloned()
        .ok_or_else(ApiError::not_found)
}

/// Fallback for unknown paths and methods: 404 / 7000, no authentication.
pub(crate) async fn no_route(State(emulator): State<Emulator>) -> Response {
    let shared = &emulator.shared;
    apply_latency(shared).await;
    shared.stats.record_request(Endpoint::Unrouted);
    let status = lock(&shared.limiter).anonymous_status();
    finish(shared, ApiError::no_route().into_response(), status)
}

async fn apply_latency(shared: &Shared) {
    let latency = lock(&shared.faults).latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

/// Runs the request pipeline described in the module docs around `handle`.
pub(crate) async fn serve<F>(
    emulator: &Emulator,
    endpoint: Endpoint,
    headers: &HeaderMap,
    access: Access<'_>,
    handle: F,
) -> Response
where
    F: FnOnce(&Shared, &TokenRecord) -> Result<Response, ApiError>,
{
    let shared = emulator.shared.as_ref();
    apply_latency(shared).await;
    shared.stats.record_request(endpoint);
    let (response, rate) = process(shared, headers, access, handle);
    finish(shared, response, rate)
}

fn process<F>(
    shared: &Shared,
    headers: &HeaderMap,
    access: Access<'_>,
    handle: F,
) -> (Response, RateStatus)
where
    F: FnOnce(&Shared, &TokenRecord) -> Result<Response, ApiError>,
{
    let anonymous = lock(&shared.limiter).anonymous_status();
    let authenticated = auth::credentials(headers)
        .and_then(|secret| Ok((read(&shared.tokens).authenticate(&secret, access)?, secret)));
    let (token, secret) = match authenticated {
        Ok(found) => found,
        Err(error) => return (error.into_response(), anonymous),
    };
    let rate = lock(&shared.limiter).check(&secret, Instant::now());
    let outcome = admit(shared, &token, access, rate).and_then(|()| handle(shared, &token));
    let response = outcome.unwrap_or_else(|error| {
        tracing::debug!(code = error.code(), status = %error.status, "API error");
        error.into_response()
    });
    (response, rate)
}

/// Steps 3–5 of the pipeline: rate limit, injected faults, authorization.
fn admit(
    shared: &Shared,
    token: &TokenRecord,
    access: Access<'_>,
    rate: RateStatus,
) -> Result<(), ApiError> {
    let (quota, window_secs) = {
        let limiter = lock(&shared.limiter);
        (limiter.quota(), limiter.window_secs())
    };
    if rate.limited {
        return Err(ApiError::rate_limited(
            quota,
            window_secs,
            rate.retry_after_secs(),
        ));
    }
    let fault = lock(&shared.faults).next_fault();
    match fault {
        Some(InjectedFault::RateLimit { retry_after_secs }) => {
            return Err(ApiError::rate_limited(quota, window_secs, retry_after_secs));
        }
        Some(InjectedFault::ServerError(status)) => {
            shared.stats.record_server_error();
            return Err(ApiError::server_error(status));
        }
        None => {}
    }
    if let Access::Resource { account, need } = access {
        let account_exists = read(&shared.store).has_account(account);
        token.authorize(account, need, account_exists)?;
    }
    Ok(())
}

/// Adds the rate-limit headers and counts 429s.
fn finish(shared: &Shared, mut response: Response, rate: RateStatus) -> Response {
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        shared.stats.record_rate_limited();
    }
    let policy = lock(&shared.limiter).policy_header_value();
    let headers = response.headers_mut();
    // Both values are plain ASCII built from numbers, so conversion cannot fail in practice.
    if let Ok(value) = HeaderValue::from_str(&rate.header_value()) {
        headers.insert(RATELIMIT, value);
    }
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(RATELIMIT_POLICY, value);
    }
    response
}
