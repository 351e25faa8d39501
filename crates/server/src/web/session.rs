//! The web UI's side of authentication: pages need a session cookie (a request without one
//! goes to the sign-in page), and every state-changing request carries a CSRF token derived
//! from the session, which a cross-site form cannot know.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use langguard_store::{Role, User};
use sha2::{Digest, Sha256};

use crate::auth::{request_token, token_hash};
use crate::AppState;

/// The signed-in user of a page, with the session's CSRF token.
pub struct WebUser {
    pub user: User,
    pub csrf: String,
}

impl WebUser {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

/// The CSRF token of a session: a hash of its token under a purpose label, so it reveals
/// nothing about the session token and needs no storage.
pub fn csrf_token(session_token: &str) -> String {
    let digest = Sha256::digest(format!("langguard-csrf:{session_token}").as_bytes());
    crate::hex(&digest[..16])
}

/// Why a page can't be shown: not signed in (to the sign-in page) or a bad CSRF token.
pub enum WebRejection {
    /// To the sign-in page, coming back to this path afterwards.
    SignIn(String),
    Internal,
}

impl IntoResponse for WebRejection {
    fn into_response(self) -> Response {
        match self {
            WebRejection::SignIn(back) => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &back)
                    .finish();
                Redirect::to(&format!("/login?{query}")).into_response()
            }
            WebRejection::Internal => (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "something went wrong on the server; the details are in its log",
            )
                .into_response(),
        }
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = WebRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Only the cookie: pages are for browsers, the API takes bearer tokens.
        let has_cookie = parts.headers.contains_key(axum::http::header::COOKIE);
        let back = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let token = request_token(parts)
            .filter(|_| has_cookie)
            .ok_or_else(|| WebRejection::SignIn(back.clone()))?;
        let user = state
            .ops
            .store
            .session_user(&token_hash(&token), crate::now_ms())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "session lookup failed");
                WebRejection::Internal
            })?
            .ok_or(WebRejection::SignIn(back))?;
        Ok(WebUser {
            user,
            csrf: csrf_token(&token),
        })
    }
}

/// Where to go after signing in: a path on this site only (never `//host` or a full URL).
pub fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if is_ui_path(p) => p,
        _ => "/",
    }
}

/// The first path segments of the UI's pages: `next` may name nothing else.
const UI_PAGES: &[&str] = &[
    "",
    "monitoring",
    "traces",
    "policies",
    "violations",
    "integrations",
    "settings",
];

/// A path of one of the UI's pages, read the way a browser reads a `Location`: browsers drop
/// tabs and newlines and treat `\` as `/`, so `/\t/evil.example` is `//evil.example`, another
/// site. Checked as given and once more percent-decoded, so no encoding smuggles those in.
fn is_ui_path(p: &str) -> bool {
    let allowed = |p: &str| {
        let clean = p.starts_with('/')
            && !p
                .chars()
                .any(|c| c.is_control() || c == '\\' || c.is_whitespace());
        let mut segments = p.trim_start_matches('/').split(['/', '?', '#']);
        clean && !p.starts_with("//") && UI_PAGES.contains(&segments.next().unwrap_or("/"))
    };
    allowed(p) && allowed(&percent_encoding::percent_decode_str(p).decode_utf8_lossy())
}

/// Compares tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn sign_in_only_returns_to_this_site() {
        assert_eq!(super::local_path(Some("/traces?q=x")), "/traces?q=x");
        assert_eq!(super::local_path(Some("//evil.example")), "/");
        assert_eq!(super::local_path(Some("https://evil.example")), "/");
        assert_eq!(super::local_path(Some("/\\evil.example")), "/");
        assert_eq!(super::local_path(None), "/");
        // The review's form: a tab the browser drops, leaving `//evil.example/phish`.
        for bad in [
            "/\t/evil.example/phish",
            "/%09/evil.example/phish",
            "/%2F/evil.example",
            "/%5Cevil.example",
            "/\n/evil.example",
            "/%0d%0a/evil.example",
            "/ /evil.example",
            "/\\/evil.example",
            "javascript:alert(1)",
            "/api/v1/users",
            "/static/../../x",
            "",
        ] {
            assert_eq!(super::local_path(Some(bad)), "/", "{bad:?}");
        }
        for good in [
            "/",
            "/monitoring?range=7d",
            "/traces/42",
            "/settings/api-keys",
            "/policies/3#editor",
        ] {
            assert_eq!(super::local_path(Some(good)), good);
        }
    }

    #[test]
    fn csrf_tokens_are_per_session_and_compared_whole() {
        let a = super::csrf_token("session-a");
        assert_eq!(a.len(), 32);
        assert_ne!(a, super::csrf_token("session-b"));
        assert!(super::same_token(&a, &a.clone()));
        assert!(!super::same_token(&a, &a[..31]));
    }
}
