//! The Cloudflare v4 JSON envelope (`{success, errors, messages, result, result_info}`) and the
//! error bodies the emulator sends, with the exact codes and messages of API-NOTES §4–5.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One entry of `errors` (or of an entry's `error_chain`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct ErrorItem {
    pub code: u32,
    pub message: String,
    /// Input-validation errors name the offending input, e.g. `["query","per_page"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_chain: Option<Vec<ErrorItem>>,
}

impl ErrorItem {
    pub(crate) fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            path: None,
            error_chain: None,
        }
    }
}

/// One entry of `messages` (only the verify routes send any).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Message {
    pub code: u32,
    pub message: &'static str,
    #[serde(rename = "type")]
    pub kind: Option<&'static str>,
}

/// `result_info` of a paged list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ResultInfo {
    pub page: u32,
    pub per_page: u32,
    /// Rows in this page.
    pub count: usize,
    /// All rows matching the query.
    pub total_count: usize,
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    success: bool,
    errors: &'a [ErrorItem],
    messages: &'a [Message],
    result: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_info: Option<ResultInfo>,
}

/// Serialises a success envelope. Serialising our own plain structs cannot fail, so a failure
/// would be a programming error; it still degrades to a 500 envelope instead of panicking.
pub(crate) fn success_body<T: Serialize>(
    result: T,
    messages: &[Message],
    result_info: Option<ResultInfo>,
) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&Envelope {
        success: true,
        errors: &[],
        messages,
        result,
        result_info,
    })
    .map_err(|err| {
        tracing::error!(%err, "failed to serialise a response");
        ApiError::server_error(StatusCode::INTERNAL_SERVER_ERROR)
    })
}

/// A complete `200 application/json` response around an already serialised body.
pub(crate) fn json_response(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A failure the emulator answers with a v4 failure envelope.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<ErrorItem>,
    /// Sent as `Retry-After` (seconds) when set.
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    fn single(status: StatusCode, item: ErrorItem) -> Self {
        Self {
            status,
            errors: vec![item],
            retry_after_secs: None,
        }
    }

    /// 400 / 7001 with the offending input's path, e.g. `["query", "per_page"]`.
    pub(crate) fn validation(path: &[&str]) -> Self {
        let mut item = ErrorItem::new(7001, "Input Validation Error");
        item.path = Some(path.iter().map(|part| (*part).to_owned()).collect());
        Self::single(StatusCode::BAD_REQUEST, item)
    }

    /// 400 with Cloudflare's code and message (e.g. a Logpush destination that failed
    /// validation).
    pub(crate) fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self::single(StatusCode::BAD_REQUEST, ErrorItem::new(code, message))
    }

    /// 404 / 7002: unknown gateway, unknown log, or a log whose payload is not stored.
    pub(crate) fn not_found() -> Self {
        Self::single(StatusCode::NOT_FOUND, ErrorItem::new(7002, "Not Found"))
    }

    /// 404 / 7000 for any path (or method) the API does not serve.
    pub(crate) fn no_route() -> Self {
        Self::single(
            StatusCode::NOT_FOUND,
            ErrorItem::new(7000, "No route for that URI"),
        )
    }

    /// 400 / 6003 with a 6111 chain: missing or malformed `Authorization` header.
    pub(crate) fn invalid_auth_header() -> Self {
        let mut item = ErrorItem::new(6003, "Invalid request headers");
        item.error_chain = Some(vec![ErrorItem::new(
            6111,
            "Invalid format for Authorization header",
        )]);
        Self::single(StatusCode::BAD_REQUEST, item)
    }

    /// 403 / 9109: unknown, revoked or non-active token on a resource route.
    pub(crate) fn invalid_access_token() -> Self {
        Self::single(
            StatusCode::FORBIDDEN,
            ErrorItem::new(9109, "Invalid access token"),
        )
    }

    /// 401 / 1000: unknown token, or a token verified on the wrong verify route.
    pub(crate) fn invalid_api_token() -> Self {
        Self::single(
            StatusCode::UNAUTHORIZED,
            ErrorItem::new(1000, "Invalid API Token"),
        )
    }

    /// 403 / 10000: a valid token that lacks the permission or the account.
    pub(crate) fn authentication_error() -> Self {
        Self::single(
            StatusCode::FORBIDDEN,
            ErrorItem::new(10000, "Authentication error"),
        )
    }

    /// 429 / 10100 with Cloudflare's exact wording, numbers taken from the configuration.
    pub(crate) fn rate_limited(quota: u32, window_secs: u64, retry_after_secs: u64) -> Self {
        let message = format!(
            "More than {quota} requests per {window_secs} seconds reached. Please wait and consider throttling your request speed"
        );
        let mut error = Self::single(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorItem::new(10100, message),
        );
        error.retry_after_secs = Some(retry_after_secs);
        error
    }

    /// An injected (or internal) 5xx. The codes are the emulator's own: Cloudflare documents
    /// none for these, and clients must only rely on the HTTP status.
    pub(crate) fn server_error(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::BAD_GATEWAY => (10002, "Bad gateway"),
            StatusCode::SERVICE_UNAVAILABLE => (10003, "Service temporarily unavailable"),
            _ => (10001, "Internal server error"),
        };
        Self::single(status, ErrorItem::new(code, message))
    }

    /// The first error code; handy in logs and tests.
    pub(crate) fn code(&self) -> u32 {
        self.errors.first().map_or(0, |item| item.code)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Envelope {
            success: false,
            errors: &self.errors,
            messages: &[],
            result: (),
            result_info: None,
        })
        // Serialising `ErrorItem`s cannot fail; an empty body would still carry the status.
        .unwrap_or_default();
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn body_of(error: ApiError) -> Value {
        let body = serde_json::to_vec(&Envelope {
            success: false,
            errors: &error.errors,
            messages: &[],
            result: (),
            result_info: None,
        })
        .expect("serialise");
        serde_json::from_slice(&body).expect("json")
    }

    #[test]
    fn failure_envelope_matches_the_invalid_token_fixture() {
        assert_eq!(
            body_of(ApiError::invalid_api_token()),
            json!({"success":false,"errors":[{"code":1000,"message":"Invalid API Token"}],"messages":[],"result":null})
        );
    }

    #[test]
    fn validation_error_names_its_path() {
        assert_eq!(
            body_of(ApiError::validation(&["query", "per_page"]))["errors"][0],
            json!({"code":7001,"message":"Input Validation Error","path":["query","per_page"]})
        );
    }

    #[test]
    fn header_error_carries_its_chain() {
        assert_eq!(
            body_of(ApiError::invalid_auth_header())["errors"][0],
            json!({"code":6003,"message":"Invalid request headers",
                   "error_chain":[{"code":6111,"message":"Invalid format for Authorization header"}]})
        );
    }

    #[test]
    fn rate_limit_message_uses_the_configured_numbers() {
        let error = ApiError::rate_limited(5, 60, 12);
        assert_eq!(error.retry_after_secs, Some(12));
        assert_eq!(
            error.errors[0].message,
            "More than 5 requests per 60 seconds reached. Please wait and consider throttling your request speed"
        );
    }
}
