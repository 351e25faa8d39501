//! What every page's forms share: the CSRF-only form of a button, reading a typed field, and
//! the answer to a body that isn't the form the page sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// A button's form: only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

/// A form field as typed, `None` when left empty.
pub fn given(field: &Option<String>) -> Option<String> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A body that doesn't parse as the page's form: a stale page or a hand-made request.
pub fn not_understood() -> Response {
    (
        StatusCode::BAD_REQUEST,
        "the form was not understood; reload the page",
    )
        .into_response()
}

/// A button's post checked: its form read, the CSRF token and the role the action takes.
/// `Some` is the answer to send instead of acting.
pub fn button(
    user: &super::session::WebUser,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    at_least: langguard_store::Role,
) -> Option<Response> {
    match serde_html_form::from_bytes::<CsrfForm>(body) {
        Ok(form) => super::refuse(user, headers, form.csrf.as_deref(), at_least),
        Err(_) => Some(not_understood()),
    }
}
