//! Push ingest: the OTLP/HTTP traces receiver (`POST /v1/traces`, at the root where every
//! exporter's base URL + `/v1/traces` lands), the Logpush HTTP destination
//! (`POST /api/v1/ingest/logpush`) and an integration's push setup
//! (`GET /api/v1/integrations/{id}/push`). Pushers authenticate with an ingest key
//! ([`IngestCaller`]); everything else is `langguard_ops::ingest`.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use langguard_ops::ingest::{self, LogpushOutcome, PushReport};
use langguard_ops::push_setup::{
    self, GatewayPushView, PushMinuteView, PushSetupDone, PushSetupRequest, PushSetupView,
};
use langguard_push::otlp::{self, Encoding, Status};
use langguard_store::Role;

use crate::auth::{CurrentUser, IngestCaller};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::AppState;

/// Largest push body taken as sent (compressed); [`ingest::MAX_INFLATED_BYTES`] once inflated.
pub const MAX_PUSH_BODY_BYTES: usize = 64 * 1024 * 1024;

/// `POST /v1/traces`, outside `/api/v1`.
pub fn otlp_router() -> Router<AppState> {
    Router::new().route("/v1/traces", post(otlp_traces))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ingest/logpush", post(logpush))
        .route("/integrations/{id}/push", get(setup))
        .route("/integrations/{id}/push/setup", post(set_up))
        .route("/integrations/{id}/push-history", get(history))
        .route(
            "/integrations/{id}/gateways/{gateway}/source",
            axum::routing::put(set_source),
        )
}

/// Whether the body is gzip, per `Content-Encoding`; other encodings are refused.
fn gzipped(headers: &HeaderMap) -> Result<bool, ApiError> {
    match headers
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => Ok(false),
        Some("gzip") | Some("x-gzip") => Ok(true),
        Some(_) => Err(ApiError::bad_request(
            "unsupported_encoding",
            "Content-Encoding must be gzip or absent",
        )),
    }
}

#[utoipa::path(post, path = "/v1/traces", operation_id = "otlp_export_traces", tag = "ingest",
    request_body(content = String, description = "An OTLP `ExportTraceServiceRequest` (protobuf or JSON, optionally gzip)", content_type = "application/x-protobuf"),
    params(("X-LangGuard-Gateway" = Option<String>, Header, description = "The gateway the spans belong to"), ("gateway" = Option<String>, Query, description = "The gateway, when a header can't be set")),
    responses((status = 200, description = "Committed: an `ExportTraceServiceResponse`, with `partial_success` when spans were rejected", content_type = "application/x-protobuf"),
        (status = 400, description = "Undecodable"), (status = 401, description = "No valid ingest key"), (status = 403, description = "The key may not push here"),
        (status = 413, description = "Too large"), (status = 429, description = "The writer is behind: retry after `Retry-After`"), (status = 503, description = "Not stored now: retry after `Retry-After`")),
    security(("bearer" = [])))]
pub(crate) async fn otlp_traces(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let encoding = Encoding::from_content_type(content_type);
    let result = async {
        // Who is asking comes first, then a writer slot, and only then is the body read: a
        // stranger or a refused pusher makes the server hold nothing.
        let IngestCaller(integration) =
            IngestCaller::from_request_parts(&mut parts, &state).await?;
        let Some(encoding) = encoding else {
            return Err(ApiError::UnsupportedMediaType);
        };
        let gzip = gzipped(&parts.headers)?;
        let gateway = parts
            .headers
            .get("x-langguard-gateway")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                    .find(|(k, _)| k == "gateway")
                    .map(|(_, v)| v.into_owned())
            });
        if let Some(g) = &gateway {
            ingest::check_gateway(g.trim())?;
        }
        let admitted = ingest::admit(&state.ops)?;
        let body = read_body(body).await?;
        ingest::otlp(
            &state.ops,
            admitted,
            &integration,
            body,
            gzip,
            encoding,
            gateway.as_deref().map(str::trim),
        )
        .await
        .map_err(ApiError::from)
    }
    .await
    .map_err(retryable);
    let encoding = encoding.unwrap_or(Encoding::Json);
    match result {
        Ok(report) => {
            let reason = report.errors.first().cloned();
            let answer = otlp::response(report.rejected_spans(), reason);
            (
                StatusCode::OK,
                [(CONTENT_TYPE, encoding.content_type())],
                otlp::encode_response(&answer, encoding),
            )
                .into_response()
        }
        Err(ApiError::UnsupportedMediaType) => otlp_failure(
            encoding,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send OTLP as application/x-protobuf or application/json".into(),
            None,
        ),
        Err(e) => {
            let status = e.status();
            let retry_after = e.retry_after_secs();
            otlp_failure(encoding, status, e.to_string(), retry_after)
        }
    }
}

/// The body, up to [`MAX_PUSH_BODY_BYTES`] (413 beyond).
async fn read_body(body: axum::body::Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_PUSH_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)
}

/// A server-side failure on a push route (the store, behind authentication or the write) is
/// logged and answered 503 with `Retry-After`, never a 500 an exporter would drop: the pusher
/// keeps its batch and retries. Its cause stays here.
fn retryable(e: ApiError) -> ApiError {
    match e {
        ApiError::Internal(cause) => {
            tracing::error!(error = format!("{cause:#}"), "a push could not be taken");
            ApiError::Unavailable("the push could not be taken right now; retry it".into())
        }
        other => other,
    }
}

fn otlp_failure(
    encoding: Encoding,
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
) -> Response {
    metrics::counter!("langguard_api_errors_total", "code" => "otlp_failure").increment(1);
    let body = Status::for_http(status.as_u16(), message).encode_as(encoding);
    let mut response = (status, [(CONTENT_TYPE, encoding.content_type())], body).into_response();
    if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        response.headers_mut().insert("retry-after", v);
    }
    response
}

/// A Logpush upload's answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct LogpushAnswer {
    /// `true` for Logpush's destination check (nothing stored).
    validation: bool,
    #[serde(flatten)]
    report: PushReport,
}

#[utoipa::path(post, path = "/api/v1/ingest/logpush", operation_id = "ingest_logpush", tag = "ingest",
    request_body(content = String, description = "gzip NDJSON of `ai_gateway_events`", content_type = "application/octet-stream"),
    responses((status = 200, description = "Committed (or the destination check)", body = LogpushAnswer),
        (status = 400, description = "Not gzip", body = crate::error::ErrorBody), (status = 401, description = "No valid ingest key", body = crate::error::ErrorBody),
        (status = 403, description = "The key may not push here", body = crate::error::ErrorBody), (status = 413, description = "Too large", body = crate::error::ErrorBody),
        (status = 429, description = "The writer is behind: retry after `Retry-After`", body = crate::error::ErrorBody), (status = 503, description = "Not stored now: retry after `Retry-After`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn logpush(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<LogpushAnswer>, ApiError> {
    let (mut parts, body) = request.into_parts();
    let outcome = async {
        let IngestCaller(integration) =
            IngestCaller::from_request_parts(&mut parts, &state).await?;
        let gzip = gzipped(&parts.headers)?;
        let admitted = ingest::admit(&state.ops)?;
        let body = read_body(body).await?;
        ingest::logpush(&state.ops, &integration, admitted, body, gzip)
            .await
            .map_err(ApiError::from)
    }
    .await
    .map_err(retryable)?;
    Ok(Json(match outcome {
        LogpushOutcome::Validation => LogpushAnswer {
            validation: true,
            report: PushReport::default(),
        },
        LogpushOutcome::Stored(report) => LogpushAnswer {
            validation: false,
            report,
        },
    }))
}

#[utoipa::path(get, path = "/api/v1/integrations/{id}/push", operation_id = "get_push_setup", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "Per gateway: how data arrives; the OTLP URL and headers, the Logpush destination_conf and the public key", body = PushSetupView),
        (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody),
        (status = 404, description = "No such integration", body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub(crate) async fn setup(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<PushSetupView>, ApiError> {
    user.require(Role::Admin)?;
    Ok(Json(
        push_setup::setup(&state.ops, id, state.config.public_url.as_ref()).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/integrations/{id}/push/setup", operation_id = "set_up_push", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    request_body = PushSetupRequest,
    responses((status = 200, description = "Push set up through Cloudflare's API: the gateway's exporter and/or Logpush key, the Logpush job, and the gateway's counted source", body = PushSetupDone),
        (status = 400, description = "Bad input, or LANGGUARD_PUBLIC_URL not set", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody),
        (status = 403, description = "Role not allowed", body = crate::error::ErrorBody), (status = 404, description = "No such integration", body = crate::error::ErrorBody),
        (status = 422, description = "Cloudflare refused (e.g. the token lacks AI Gateway: Edit); the message says what to fix", body = crate::error::ErrorBody),
        (status = 503, description = "Cloudflare could not be reached; try again", body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub(crate) async fn set_up(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<PushSetupRequest>,
) -> Result<Json<PushSetupDone>, ApiError> {
    user.require(Role::Admin)?;
    Ok(Json(
        push_setup::set_up(
            &state.ops,
            &user.0,
            id,
            body,
            state.config.public_url.as_ref(),
        )
        .await?,
    ))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    /// Rows (minute × source), newest first: 1–1,440 (default 60).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/integrations/{id}/push-history", operation_id = "get_push_history", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id"), HistoryQuery),
    responses((status = 200, description = "What pushes brought, per minute and source, newest first (30 days kept)", body = [PushMinuteView]),
        (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody),
        (status = 404, description = "No such integration", body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub(crate) async fn history(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<HistoryQuery>,
) -> Result<Json<Vec<PushMinuteView>>, ApiError> {
    Ok(Json(
        push_setup::history(&state.ops, id, query.limit.unwrap_or(60)).await?,
    ))
}

/// `{"source": "logs_api" | "otlp" | "logpush"}`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetSourceRequest {
    /// `logs_api`, `otlp` or `logpush`.
    source: String,
}

#[utoipa::path(put, path = "/api/v1/integrations/{id}/gateways/{gateway}/source", operation_id = "set_gateway_source", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id"), ("gateway" = String, Path, description = "Gateway name")),
    request_body = SetSourceRequest,
    responses((status = 200, description = "The gateway with its new counted source and handover instant", body = GatewayPushView),
        (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody),
        (status = 403, description = "Role not allowed", body = crate::error::ErrorBody), (status = 404, description = "No such integration", body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub(crate) async fn set_source(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, gateway)): ApiPath<(i64, String)>,
    ApiJson(body): ApiJson<SetSourceRequest>,
) -> Result<Json<GatewayPushView>, ApiError> {
    user.require(Role::Admin)?;
    Ok(Json(
        push_setup::set_source(
            &state.ops,
            langguard_ops::Actor::User(&user.0),
            id,
            &gateway,
            &body.source,
        )
        .await?,
    ))
}
