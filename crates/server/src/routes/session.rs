//! Signing in and out: `POST /auth/login`, `POST /auth/logout`, `GET /auth/me`.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{
    new_session_token, request_token, token_hash, verify_password, CurrentUser, SESSION_COOKIE,
};
use crate::client::ClientAddr;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::views::UserView;
use crate::{now_ms, AppState};
use langguard_store::User;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    email: String,
    password: String,
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Login, responses((status = 200, description = "Signed in: `{token, user}` and a session cookie"), (status = 401, description = "Wrong email or password", body = crate::error::ErrorBody), (status = 429, description = "Too many failed sign-ins", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let session = sign_in(&state, &body.email, body.password, client, &headers).await?;
    let user = &session.user;
    let body = Json(
        json!({"token": session.token, "user": {"id": user.id, "email": user.email, "role": user.role}}),
    );
    let cookies = AppendHeaders([
        (SET_COOKIE, session.cookie),
        (SET_COOKIE, session.device_cookie),
    ]);
    Ok((cookies, body).into_response())
}

/// A new session: its user, its token and the `Set-Cookie` value that carries it.
pub(crate) struct SignedIn {
    pub user: User,
    pub token: String,
    pub cookie: String,
    /// Marks this browser as one its owner signs in with (see `auth::device_cookie`).
    pub device_cookie: String,
}

/// Checks an email and password (throttled per account and address, audited) and opens a
/// session. Shared by the API's login and the web UI's sign-in form.
pub(crate) async fn sign_in(
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
    let user = state.store.find_user_by_email(&email).await?;
    let mut device = user
        .as_ref()
        .and_then(|u| crate::auth::device_of(&state.sealer, headers, u));
    if let Some(key) = &device {
        let counted = state
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
    state.store.clear_login_attempts(&forgiven).await?;
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
        crate::auth::device_cookie(&state.sealer, &user, state.config.secure_cookies);
    Ok(SignedIn {
        user,
        token,
        cookie,
        device_cookie,
    })
}

/// Ends the session `token` and returns the `Set-Cookie` value that clears the cookie.
pub(crate) async fn sign_out(state: &AppState, token: &str) -> Result<String, ApiError> {
    state.store.delete_session(&token_hash(token)).await?;
    Ok(format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204, description = "Signed out"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let mut parts = axum::http::Request::new(()).into_parts().0;
    parts.headers = headers;
    let token = request_token(&parts).ok_or(ApiError::Unauthorized)?;
    let expired = sign_out(&state, &token).await?;
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, expired)]).into_response())
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, description = "The signed-in user", body = UserView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn me(CurrentUser(user): CurrentUser) -> Json<UserView> {
    Json(UserView::from(&user))
}
