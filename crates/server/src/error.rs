//! The API's one error type: a status and `{"error": {"code", "message"}}`. Internal causes are
//! logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use langguard_ops::OpsError;
use langguard_store::StoreError;
use langguard_sync::SyncError;

/// The body of every error response (documentation of the shape).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// snake_case, stable: `unauthorized`, `forbidden`, `not_found`, `invalid_body`, …
    pub code: String,
    /// For a person.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("sign in first: send `Authorization: Bearer <token>` or the session cookie")]
    Unauthorized,
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("your role does not allow this")]
    Forbidden,
    /// Forbidden for a reason worth saying (e.g. a key that may not push here).
    #[error("{0}")]
    ForbiddenBecause(String),
    #[error(
        "a request signed in by the session cookie must come from LangGuard's own pages: send \
         its X-CSRF-Token, or sign requests with `Authorization: Bearer <token>`"
    )]
    CrossSite,
    /// Well-formed input the server can't accept, e.g. Rego that doesn't compile; `line` and
    /// `column` point into the submitted text when known.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        line: Option<u32>,
        column: Option<u32>,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    #[error("this route does not take that method; the OpenAPI document at /api/v1/openapi.json lists them")]
    MethodNotAllowed,
    #[error("the request body is larger than this server accepts")]
    PayloadTooLarge,
    #[error("send the body as JSON with `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("the server is not ready: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Seconds a client is asked to wait after a 503.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The `Retry-After` this error answers with, if any.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            // Whatever isn't ready now may be soon: a pusher retries instead of dropping.
            ApiError::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            ApiError::Forbidden | ApiError::ForbiddenBecause(_) => {
                (StatusCode::FORBIDDEN, "forbidden")
            }
            ApiError::CrossSite => (StatusCode::FORBIDDEN, "cross_site_request"),
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
            }
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        metrics::counter!("langguard_api_errors_total", "code" => code).increment(1);
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                "something went wrong on the server; the details are in its log".to_owned()
            }
            other => other.to_string(),
        };
        let mut error = serde_json::json!({"code": code, "message": message});
        if let ApiError::Unprocessable { line, column, .. } = &self {
            error["line"] = (*line).into();
            error["column"] = (*column).into();
        }
        let body = Json(serde_json::json!({ "error": error }));
        let mut response = (status, body).into_response();
        if let Some(v) = self
            .retry_after_secs()
            .and_then(|s| s.to_string().parse().ok())
        {
            response.headers_mut().insert("retry-after", v);
        }
        response
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::Invalid { code, message } => ApiError::BadRequest { code, message },
            OpsError::Unprocessable {
                code,
                message,
                line,
                column,
            } => ApiError::Unprocessable {
                code,
                message,
                line,
                column,
            },
            OpsError::NotFound(message) => ApiError::NotFound(message),
            OpsError::Conflict(message) => ApiError::Conflict(message),
            OpsError::Forbidden(message) => ApiError::ForbiddenBecause(message),
            OpsError::Busy {
                message,
                retry_after_secs,
            } => ApiError::TooManyRequests {
                message,
                retry_after_secs,
            },
            OpsError::Unavailable(message) => ApiError::Unavailable(message),
            OpsError::TooLarge(_) => ApiError::PayloadTooLarge,
            OpsError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        OpsError::from(e).into()
    }
}

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> Self {
        OpsError::from(e).into()
    }
}

impl From<langguard_store::FilterError> for ApiError {
    fn from(e: langguard_store::FilterError) -> Self {
        ApiError::BadRequest {
            code: e.code,
            message: e.message,
        }
    }
}
