//! Extractors whose rejections speak the API's error format instead of axum's plain text, so
//! bad input of every kind gets a 4xx with `{"error": {…}}`.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "malformed_json",
            format!(
                "the body is not valid JSON: {}",
                without_values(&e.body_text())
            ),
        ),
        JsonRejection::JsonDataError(e) => {
            ApiError::bad_request("invalid_body", without_values(&e.body_text()))
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge
        }
        other => ApiError::bad_request("invalid_body", other.body_text()),
    }
}

/// serde's messages quote the offending value (`invalid type: string "…"`); that value may be
/// a secret sent in the wrong place, so quoted text is replaced before it goes back.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// A time query parameter: RFC 3339, or a 400 that says so.
pub fn time_param(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            langguard_clock::parse_ms(v).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_time",
                    format!("{name} must be an RFC 3339 time, e.g. 2026-11-01T00:00:00Z"),
                )
            })
        })
        .transpose()
}

pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|e: PathRejection| {
                ApiError::bad_request(
                    "invalid_path",
                    format!("bad id in the path: {}", e.body_text()),
                )
            })
    }
}

/// Query parameters. A parameter given more than once fills a `Vec` field
/// (`metadata=tier=pro&metadata=region=eu`).
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        serde_html_form::from_str(parts.uri.query().unwrap_or_default())
            .map(ApiQuery)
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "Failed to deserialize query string: {}",
                        without_values(&e.to_string())
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_values_are_dropped_from_messages() {
        assert_eq!(
            super::without_values(
                r#"invalid type: string "cf-secret", expected struct X at line 1 column 11"#
            ),
            r#"invalid type: string "…", expected struct X at line 1 column 11"#
        );
    }
}
