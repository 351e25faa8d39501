//! Signing in and out: `POST /auth/login`, `POST /auth/logout`, `GET /auth/me`.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::{request_token, CurrentUser};
use crate::client::ClientAddr;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::sessions::{sign_in, sign_out};
use crate::AppState;
use langguard_ops::views::UserView;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    email: String,
    password: String,
}

/// A new session: its token (send it as `Authorization: Bearer <token>`) and its user.
#[derive(Serialize, utoipa::ToSchema)]
struct LoginView {
    token: String,
    user: UserView,
}

#[utoipa::path(post, path = "/api/v1/auth/login", operation_id = "login", tag = "auth", request_body = LoginRequest, responses((status = 200, description = "Signed in: `{token, user}` and a session cookie", body = LoginView), (status = 401, description = "Wrong email or password", body = crate::error::ErrorBody), (status = 429, description = "Too many failed sign-ins", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let session = sign_in(&state, &body.email, body.password, client, &headers).await?;
    let body = Json(LoginView {
        token: session.token,
        user: UserView::from(&session.user),
    });
    let cookies = AppendHeaders([
        (SET_COOKIE, session.cookie),
        (SET_COOKIE, session.device_cookie),
    ]);
    Ok((cookies, body).into_response())
}

#[utoipa::path(post, path = "/api/v1/auth/logout", operation_id = "logout", tag = "auth", responses((status = 204, description = "Signed out"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let mut parts = axum::http::Request::new(()).into_parts().0;
    parts.headers = headers;
    let token = request_token(&parts).ok_or(ApiError::Unauthorized)?;
    let expired = sign_out(&state, &token).await?;
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, expired)]).into_response())
}

#[utoipa::path(get, path = "/api/v1/auth/me", operation_id = "get_me", tag = "auth", responses((status = 200, description = "The signed-in user", body = UserView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn me(CurrentUser(user): CurrentUser) -> Json<UserView> {
    Json(UserView::from(&user))
}
