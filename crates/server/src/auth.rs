//! Who is calling: passwords (Argon2id), session tokens (random, stored as SHA-256), the
//! `CurrentUser` extractor (bearer token or session cookie), roles, and login throttling.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use langguard_store::{ApiKeyScope, Role, User};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;
pub use langguard_ops::credentials::{dummy_hash, token_hash, verify_password, API_KEY_PREFIX};

pub const SESSION_COOKIE: &str = "langguard_session";
const SESSION_PREFIX: &str = "lgs_";

/// A new session token and the hash that is stored for it.
pub fn new_session_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!("{SESSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = token_hash(&token);
    (token, hash)
}

/// The CSRF token of a session (what the UI's forms and htmx requests carry).
pub fn csrf_token(session_token: &str) -> String {
    crate::web::session::csrf_token(session_token)
}

/// The bearer token or session cookie of a request, if any.
pub fn request_token(parts: &Parts) -> Option<String> {
    bearer_token(parts).or_else(|| cookie_token(parts))
}

/// The `Authorization: Bearer` token of a request: what a browser never adds on its own.
fn bearer_token(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The session cookie of a request: what a browser sends with any request to this site.
fn cookie_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The signed-in user of a request (by session or API key); 401 without valid credentials.
/// With an API key, the role is the lower of the user's and the key's scope.
pub struct CurrentUser(pub User);

fn rank(r: Role) -> u8 {
    match r {
        Role::Viewer => 0,
        Role::Member => 1,
        Role::Admin => 2,
    }
}

impl CurrentUser {
    /// Admins may do everything, Members everything but administration, Viewers only read.
    pub fn require(&self, at_least: Role) -> Result<(), ApiError> {
        if rank(self.0.role) >= rank(at_least) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = request_token(parts).ok_or(ApiError::Unauthorized)?;
        let now = crate::now_ms();
        if token.starts_with(API_KEY_PREFIX) {
            let (key, mut user) = state
                .ops
                .store
                .api_key_user(&token_hash(&token), now)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            let scope_role = match key.scope {
                // Ingest keys push traces and nothing else.
                ApiKeyScope::Ingest => return Err(ApiError::Forbidden),
                ApiKeyScope::Read => Role::Viewer,
                ApiKeyScope::Write => Role::Member,
                ApiKeyScope::Admin => Role::Admin,
            };
            if rank(scope_role) < rank(user.role) {
                user.role = scope_role;
            }
            return Ok(CurrentUser(user));
        }
        let user = state
            .ops
            .store
            .session_user(&token_hash(&token), now)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        // Signed in by the cookie (whatever other Authorization a browser may have added on
        // its own, e.g. Basic behind an auth proxy): a write must come from our own pages.
        let by_cookie = bearer_token(parts).is_none();
        if by_cookie && !parts.method.is_safe() && !same_site(parts, state, &token) {
            return Err(ApiError::CrossSite);
        }
        Ok(CurrentUser(user))
    }
}

/// The integration a push is for, proved by an ingest key (`Authorization: Bearer <key>`, or
/// the bare key, as a Logpush `header_Authorization=` may send it). A request that names an
/// integration (`X-LangGuard-Integration` or `?integration_id=`) must name the key's own.
/// 401 without a valid key; 403 for a key that may not push (read, write, admin scopes) or
/// may not push here.
pub struct IngestCaller(pub langguard_store::Integration);

impl FromRequestParts<AppState> for IngestCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)
            .or_else(|| {
                let raw = parts.headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
                raw.starts_with(API_KEY_PREFIX).then(|| raw.to_owned())
            })
            .ok_or(ApiError::Unauthorized)?;
        if !token.starts_with(API_KEY_PREFIX) {
            return Err(ApiError::ForbiddenBecause(
                "pushing needs an ingest key (an API key of scope `ingest`), not a session".into(),
            ));
        }
        let (key, owner) = state
            .ops
            .store
            .api_key_user(&token_hash(&token), crate::now_ms())
            .await?
            .ok_or(ApiError::Unauthorized)?;
        // Only admins make ingest keys; one whose maker is no longer an admin stops working.
        if owner.role != Role::Admin {
            return Err(ApiError::ForbiddenBecause(
                "this ingest key's owner is no longer an admin; an admin must create a new one"
                    .into(),
            ));
        }
        let integration_id = match (key.scope, key.integration_id) {
            (ApiKeyScope::Ingest, Some(id)) => id,
            (ApiKeyScope::Ingest, None) => {
                return Err(ApiError::ForbiddenBecause(
                    "this ingest key is not bound to an integration; create one with an \
                     integration_id"
                        .into(),
                ))
            }
            _ => {
                return Err(ApiError::ForbiddenBecause(
                    "this key cannot push data: create an API key of scope `ingest` for the \
                     integration"
                        .into(),
                ))
            }
        };
        let named = parts
            .headers
            .get("x-langguard-integration")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                    .find(|(k, _)| k == "integration_id")
                    .map(|(_, v)| v.into_owned())
            });
        if named.is_some_and(|n| n.trim() != integration_id.to_string()) {
            return Err(ApiError::ForbiddenBecause(
                "this ingest key pushes for another integration".into(),
            ));
        }
        let integration = state.ops.store.get_integration(integration_id).await?;
        if !integration.enabled {
            return Err(ApiError::ForbiddenBecause(format!(
                "the integration {:?} is disabled; enable it to take pushes again",
                integration.name
            )));
        }
        Ok(IngestCaller(integration))
    }
}

/// Whether a request signed in by the session cookie comes from LangGuard's own pages: it
/// carries the session's CSRF token (the UI's htmx requests do), or the browser says it is
/// same-origin (`Sec-Fetch-Site`, `Origin`). A browser sends the cookie along with requests
/// other sites make it send; only this tells them apart. Bearer tokens need none of it.
fn same_site(parts: &Parts, state: &AppState, session_token: &str) -> bool {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-csrf-token").is_some_and(|t| {
        crate::web::session::same_token(t, &crate::web::session::csrf_token(session_token))
    }) {
        return true;
    }
    if let Some(site) = header("sec-fetch-site") {
        return site == "same-origin";
    }
    let Some(origin) = header("origin").and_then(|o| url::Url::parse(o).ok()) else {
        return false;
    };
    let authority = |url: &url::Url| {
        (
            url.host_str().map(str::to_ascii_lowercase),
            url.port_or_known_default(),
        )
    };
    match &state.config.public_url {
        Some(public) => {
            authority(&origin) == authority(public) && origin.scheme() == public.scheme()
        }
        // Without a public URL, the Host the browser addressed is this server's name.
        None => header("host").is_some_and(|host| {
            url::Url::parse(&format!("{}://{host}", origin.scheme()))
                .is_ok_and(|own| authority(&own) == authority(&origin))
        }),
    }
}

/// Failed sign-ins allowed for one account from one address within [`FAILURE_WINDOW`]; counted
/// in the database (`Store::count_login_attempt`), so every instance enforces the same budget.
pub const MAX_FAILURES: i64 = 5;
/// Failed sign-ins allowed from one address, whatever the accounts.
pub const MAX_ADDRESS_FAILURES: i64 = 50;
/// Failed sign-ins on one account from anywhere after which its attempts are slowed down.
pub const ACCOUNT_SLOW_AFTER: i64 = 20;
/// How long each attempt on an account under attack waits, one at a time.
pub const ACCOUNT_BACKOFF: Duration = Duration::from_secs(2);
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Attempts that may wait their turn on one account; more are refused (429) until the queue
/// shortens, so a flood can't park thousands of attempts ahead of anyone.
pub const ACCOUNT_QUEUE: usize = 16;

/// Waits [`ACCOUNT_BACKOFF`] holding the account's turn: attempts on an account that many
/// addresses guess at go one at a time, slowly. The turn is held until the returned guard
/// drops (after the password check). Its owner, from a browser that signed in before, never
/// waits here (see [`is_device_of`]).
pub async fn account_backoff(account: &str) -> Result<tokio::sync::OwnedMutexGuard<()>, ApiError> {
    type Turns =
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>;
    static TURNS: std::sync::OnceLock<Turns> = std::sync::OnceLock::new();
    let turn = {
        let mut turns = TURNS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget accounts nobody is waiting on.
        turns.retain(|_, t| std::sync::Arc::strong_count(t) > 1);
        let turn = turns.entry(account.to_owned()).or_default().clone();
        // Held by the map, this one, and one per attempt already waiting or running.
        if std::sync::Arc::strong_count(&turn) > ACCOUNT_QUEUE + 2 {
            return Err(ApiError::TooManyRequests {
                message: "this account is being signed in to from many places at once; wait a \
                          moment and try again (from a browser you signed in with before, you \
                          won't wait)"
                    .into(),
                retry_after_secs: ACCOUNT_BACKOFF.as_secs().max(1),
            });
        }
        turn
    };
    let guard = turn.lock_owned().await;
    tokio::time::sleep(ACCOUNT_BACKOFF).await;
    Ok(guard)
}

/// The cookie that marks a browser its owner signed in with (OWASP's device cookie): the user,
/// a fingerprint of their password hash and when it was issued, sealed under the server's key
/// so nobody else can make one. Changing the password, or deleting the user, ends every one;
/// so do a year, and [`MAX_DEVICE_FAILURES`] wrong passwords sent with it.
pub const DEVICE_COOKIE: &str = "langguard_device";
const DEVICE_PREFIX: &str = "device-cookie";
const DEVICE_LIFETIME_MS: i64 = 365 * 24 * 3600 * 1000;
/// Failed sign-ins with one device cookie, within [`FAILURE_WINDOW`], after which it no longer
/// skips the slowed-down queue (someone else has a copy).
pub const MAX_DEVICE_FAILURES: i64 = 5;

fn password_fingerprint(user: &User) -> String {
    crate::hex(&Sha256::digest(user.password_hash.as_bytes())[..8])
}

pub fn device_cookie(sealer: &langguard_secrets::Sealer, user: &User, secure: bool) -> String {
    let content = format!(
        "{DEVICE_PREFIX}\n{}\n{}\n{}",
        user.id,
        password_fingerprint(user),
        crate::now_ms()
    );
    let sealed =
        URL_SAFE_NO_PAD.encode(sealer.seal(&content, langguard_secrets::Binding::DeviceCookie));
    format!(
        "{DEVICE_COOKIE}={sealed}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        DEVICE_LIFETIME_MS / 1000,
        if secure { "; Secure" } else { "" }
    )
}

/// The throttling key of the request's device cookie when it is a valid one of `user`'s.
pub fn device_of(
    sealer: &langguard_secrets::Sealer,
    headers: &axum::http::HeaderMap,
    user: &User,
) -> Option<String> {
    let now = crate::now_ms();
    let fingerprint = password_fingerprint(user);
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == DEVICE_COOKIE)
        .find_map(|(_, value)| {
            let sealed = URL_SAFE_NO_PAD.decode(value).ok()?;
            let text = sealer
                .open(&sealed, langguard_secrets::Binding::DeviceCookie)
                .ok()?;
            let mut parts = text.split('\n');
            let valid = parts.next() == Some(DEVICE_PREFIX)
                && parts.next() == Some(user.id.to_string().as_str())
                && parts.next() == Some(fingerprint.as_str())
                && parts
                    .next()
                    .and_then(|t| t.parse::<i64>().ok())
                    .is_some_and(|issued| now.saturating_sub(issued) < DEVICE_LIFETIME_MS);
            valid.then(|| {
                format!(
                    "device:{}",
                    crate::hex(&Sha256::digest(value.as_bytes())[..12])
                )
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_session_token();
        let (b, _) = new_session_token();
        assert_ne!(a, b);
        assert!(a.starts_with("lgs_"));
        assert_eq!(ha, token_hash(&a));
        assert_eq!(ha.len(), 32);
    }

    fn user(id: i64, hash: &str) -> User {
        User {
            id,
            email: format!("u{id}@example.com"),
            role: Role::Admin,
            password_hash: hash.to_owned(),
            created_at_ms: 0,
            last_active_at_ms: None,
        }
    }

    fn with_cookie(set_cookie: &str) -> axum::http::HeaderMap {
        let mut headers = axum::http::HeaderMap::new();
        let pair = set_cookie.split(';').next().expect("name=value");
        headers.insert(COOKIE, pair.parse().expect("header"));
        headers
    }

    #[test]
    fn a_device_cookie_is_its_users_until_the_password_changes() {
        let sealer = langguard_secrets::Sealer::from_key(&[3; 32]);
        let owner = user(1, "$argon2id$first");
        let headers = with_cookie(&device_cookie(&sealer, &owner, false));
        assert!(device_of(&sealer, &headers, &owner).is_some());
        // Not another user's, not after a new password, not under another key.
        assert!(device_of(&sealer, &headers, &user(2, "$argon2id$first")).is_none());
        assert!(device_of(&sealer, &headers, &user(1, "$argon2id$second")).is_none());
        let other_key = langguard_secrets::Sealer::from_key(&[4; 32]);
        assert!(device_of(&other_key, &headers, &owner).is_none());
        // A made-up value, or another sealed value of ours, is no device cookie.
        assert!(device_of(&sealer, &with_cookie("langguard_device=AAAA"), &owner).is_none());
        let token = URL_SAFE_NO_PAD.encode(sealer.seal(
            "device-cookie\n1\nx\n0",
            langguard_secrets::Binding::IntegrationToken(1),
        ));
        let forged = with_cookie(&format!("langguard_device={token}"));
        assert!(device_of(&sealer, &forged, &owner).is_none());
    }
}
