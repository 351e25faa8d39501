//! `GET/POST /users`, `PATCH/DELETE /users/{id}`: Admins only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use langguard_store::Role;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::AppState;
use langguard_ops::lists::UserList;
use langguard_ops::views::UserView;
use langguard_ops::{users, Actor};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", patch(update).delete(remove))
}

#[utoipa::path(get, path = "/api/v1/users", operation_id = "list_users", tag = "users", responses((status = 200, description = "`{items: [user]}` (admins)", body = UserList), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<UserList>, ApiError> {
    user.require(Role::Admin)?;
    let users = state.ops.store.list_users().await?;
    let items: Vec<UserView> = users.iter().map(UserView::from).collect();
    Ok(Json(UserList::from(items)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUserRequest {
    email: String,
    password: String,
    #[schema(value_type = String, example = "member")]
    role: Role,
}

#[utoipa::path(post, path = "/api/v1/users", operation_id = "create_user", tag = "users", request_body = CreateUserRequest, responses((status = 201, description = "Created", body = UserView), (status = 409, description = "Email taken", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    user.require(Role::Admin)?;
    let created = users::add(
        &state.ops,
        Actor::User(&user.0),
        &body.email,
        body.password,
        body.role,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&created))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUserRequest {
    #[schema(value_type = Option<String>, example = "viewer")]
    role: Option<Role>,
    password: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", operation_id = "update_user", tag = "users", params(("id" = i64, Path, description = "User id")), request_body = UpdateUserRequest, responses((status = 200, description = "Changed", body = UserView), (status = 404, description = "No such user", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> Result<Json<UserView>, ApiError> {
    user.require(Role::Admin)?;
    let updated = users::change(
        &state.ops,
        Actor::User(&user.0),
        id,
        body.role,
        body.password,
    )
    .await?;
    Ok(Json(UserView::from(&updated)))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", operation_id = "delete_user", tag = "users", params(("id" = i64, Path, description = "User id")), responses((status = 204, description = "Deleted"), (status = 409, description = "The last admin", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Admin)?;
    users::remove(&state.ops, Actor::User(&user.0), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
