//! `GET/POST /users`, `PATCH/DELETE /users/{id}`: Admins only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use langguard_store::{NewUser, Role, User, UserPatch};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{check_password_rules, hash_password, CurrentUser};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::views::UserView;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", patch(update).delete(remove))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, description = "`{items: [user]}` (admins)"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let users = state.store.list_users().await?;
    let items: Vec<UserView> = users.iter().map(UserView::from).collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    email: String,
    password: String,
    #[schema(value_type = String, example = "member")]
    role: Role,
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser, responses((status = 201, description = "Created", body = UserView), (status = 409, description = "Email taken", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    user.require(Role::Admin)?;
    let created = add(&state, &user.0, body.email, body.password, body.role).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&created))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUser {
    #[schema(value_type = Option<String>, example = "viewer")]
    role: Option<Role>,
    password: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path, description = "User id")), request_body = UpdateUser, responses((status = 200, description = "Changed", body = UserView), (status = 404, description = "No such user", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<Json<UserView>, ApiError> {
    user.require(Role::Admin)?;
    let target = state.store.get_user(id).await?;
    if target.role == Role::Admin && body.role.is_some_and(|r| r != Role::Admin) {
        ensure_another_admin(&state, id).await?;
    }
    let changes = json!({"role": body.role, "password_changed": body.password.is_some()});
    let password_hash = match body.password {
        Some(p) => {
            check_password_rules(&p)?;
            Some(hash_password(p).await?)
        }
        None => None,
    };
    let updated = state
        .store
        .update_user(
            id,
            UserPatch {
                role: body.role,
                password_hash,
            },
        )
        .await?;
    state
        .audit(
            Some(&user.0),
            "user.updated",
            Some(format!("user:{id}")),
            changes,
            None,
        )
        .await;
    Ok(Json(UserView::from(&updated)))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path, description = "User id")), responses((status = 204, description = "Deleted"), (status = 409, description = "The last admin", body = crate::error::ErrorBody), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Admin)?;
    if state.store.get_user(id).await?.role == Role::Admin {
        ensure_another_admin(&state, id).await?;
    }
    let removed = state.store.get_user(id).await?;
    state.store.delete_user(id).await?;
    state
        .audit(
            Some(&user.0),
            "user.deleted",
            Some(format!("user:{id}")),
            json!({"email": removed.email}),
            None,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Nobody may remove or demote the last admin: the workspace would be unmanageable.
async fn ensure_another_admin(state: &AppState, leaving: i64) -> Result<(), ApiError> {
    let others = state
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.role == Role::Admin && u.id != leaving)
        .count();
    if others == 0 {
        return Err(ApiError::Conflict(
            "this is the last admin; make someone else admin first".into(),
        ));
    }
    Ok(())
}

/// Checks the password rules, hashes, saves and audits a new user (API and web UI alike).
pub(crate) async fn add(
    state: &AppState,
    actor: &User,
    email: String,
    password: String,
    role: Role,
) -> Result<User, ApiError> {
    check_password_rules(&password)?;
    let created = state
        .store
        .create_user(NewUser {
            email,
            password_hash: hash_password(password).await?,
            role,
        })
        .await?;
    state
        .audit(
            Some(actor),
            "user.created",
            Some(format!("user:{}", created.id)),
            json!({"email": created.email, "role": created.role}),
            None,
        )
        .await;
    Ok(created)
}
