//! Sessions: signing in (throttled per account and address, audited) and out, shared by the
//! API's login and the web UI's sign-in form. Cookies make this the server's business, not an
//! operation of `langguard_ops`.

use axum::http::HeaderMap;
use langguard_store::User;
use serde_json::json;

use crate::auth::{new_session_token, token_hash, verify_password, SESSION_COOKIE};
use crate::error::ApiError;
use crate::{now_ms, AppState};

/// A new session: its user, its token and the `Set-Cookie` value that carries it.
pub struct SignedIn {
    pub user: User,
    pub token: String,
    pub cookie: String,
    /// Marks this browser as one its owner signs in with (see `auth::device_cookie`).
    pub device_cookie: String,
}

/// Checks an email and password (throttled per account and address, audited) and opens a
/// session. Shared by the API's login and the web UI's sign-in form.
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password: String,
    client: std::net::IpAddr,
    headers: &HeaderMap,
) -> Result<SignedIn, ApiError> {
    let email: String = email.trim().chars().take(254).collect();
    let account = email.to_lowercase();
    let throttled_as = crate::client::throttle_key(client);
    let pair = format!("pair:{account}|{throttled_as}");
    let address = format!("address:{throttled_as}");
    let account_key = format!("account:{account}");
    // Counted up front, so parallel guesses can't all pass before the slow password check.
    // An address guessing one account, or many, is refused for a while; nobody elsewhere is.
    let window_ms = crate::auth::FAILURE_WINDOW.as_millis() as i64;
    let now = now_ms();
    for (key, max) in [
        (&pair, crate::auth::MAX_FAILURES),
        (&address, crate::auth::MAX_ADDRESS_FAILURES),
    ] {
        if let Err(wait_ms) = state
            .ops
            .store
            .count_login_attempt(std::slice::from_ref(key), max, window_ms, now)
            .await?
        {
            let retry_after_secs = u64::try_from(wait_ms / 1000).unwrap_or(0).max(1);
            state
                .audit(
                    None,
                    "auth.login_throttled",
                    None,
                    json!({"email": email}),
                    Some(client.to_string()),
                )
                .await;
            return Err(ApiError::TooManyRequests {
                message: "too many failed sign-ins from your address; wait and try again".into(),
                retry_after_secs,
            });
        }
    }
    // An account guessed at from everywhere is never locked: its attempts are slowed down,
    // one at a time — except from a browser its owner signed in with before (a valid device
    // cookie that hasn't failed too often), which goes straight through.
    let user = state.ops.store.find_user_by_email(&email).await?;
    let mut device = user
        .as_ref()
        .and_then(|u| crate::auth::device_of(&state.ops.sealer, headers, u));
    if let Some(key) = &device {
        let counted = state
            .ops
            .store
            .count_login_attempt(
                std::slice::from_ref(key),
                crate::auth::MAX_DEVICE_FAILURES,
                window_ms,
                now,
            )
            .await?;
        if counted.is_err() {
            device = None;
        }
    }
    let _slowed = match state
        .ops
        .store
        .count_login_attempt(
            std::slice::from_ref(&account_key),
            crate::auth::ACCOUNT_SLOW_AFTER,
            window_ms,
            now,
        )
        .await?
    {
        Err(_) if device.is_none() => Some(crate::auth::account_backoff(&account).await?),
        _ => None,
    };
    // Unknown emails are checked against a dummy hash: the answer takes as long either way.
    let hash = match &user {
        Some(u) => u.password_hash.clone(),
        None => crate::auth::dummy_hash().await,
    };
    let valid = verify_password(password, hash).await && user.is_some();
    let Some(user) = user.filter(|_| valid) else {
        tracing::warn!(client.address = %client, "failed sign-in");
        state
            .audit(
                None,
                "auth.login_failed",
                None,
                json!({"email": email}),
                Some(client.to_string()),
            )
            .await;
        return Err(ApiError::InvalidCredentials);
    };
    let mut forgiven = vec![pair, account_key];
    forgiven.extend(device);
    state.ops.store.clear_login_attempts(&forgiven).await?;
    state
        .audit(
            Some(&user),
            "auth.login",
            None,
            json!({}),
            Some(client.to_string()),
        )
        .await;
    let (token, hash) = new_session_token();
    let ttl_ms = state.config.session_ttl.as_millis() as i64;
    state
        .ops
        .store
        .create_session(&hash, user.id, now_ms() + ttl_ms)
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        ttl_ms / 1000,
        if state.config.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    let device_cookie =
        crate::auth::device_cookie(&state.ops.sealer, &user, state.config.secure_cookies);
    Ok(SignedIn {
        user,
        token,
        cookie,
        device_cookie,
    })
}

/// Ends the session `token` and returns the `Set-Cookie` value that clears the cookie.
pub async fn sign_out(state: &AppState, token: &str) -> Result<String, ApiError> {
    state.ops.store.delete_session(&token_hash(token)).await?;
    Ok(format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
    ))
}
