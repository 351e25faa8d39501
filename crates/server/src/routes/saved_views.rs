//! Saved Trace Explorer views: everyone signed in keeps their own; Members and Admins share.
//! Who may change which view is the operation's rule (`langguard_ops::saved_views`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use langguard_ops::lists::SavedViewList;
use langguard_ops::saved_views::{self, SavedViewInput, SavedViewView};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/saved-views", get(list).post(create))
        .route("/saved-views/{id}", get(read).patch(update).delete(remove))
}

/// A view; on PATCH, fields left out keep their value.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SavedViewBody {
    /// At most 100 characters, unique among the caller's views.
    name: Option<String>,
    /// The Trace Explorer's query string (`status=error&model=gpt-4o`) or its whole address;
    /// kept without the page cursor.
    query: Option<String>,
    /// Everyone sees it (Members and Admins); default false.
    shared: Option<bool>,
}

impl From<SavedViewBody> for SavedViewInput {
    fn from(b: SavedViewBody) -> Self {
        SavedViewInput {
            name: b.name,
            query: b.query,
            shared: b.shared,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/saved-views", operation_id = "list_saved_views", tag = "traces", responses((status = 200, description = "`{items: [view]}`: the caller's views and those shared, by name", body = SavedViewList), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<SavedViewList>, ApiError> {
    Ok(Json(SavedViewList::from(
        saved_views::list(&state.ops, &user.0).await?,
    )))
}

#[utoipa::path(post, path = "/api/v1/saved-views", operation_id = "create_saved_view", tag = "traces", request_body = SavedViewBody, responses((status = 201, description = "Saved; `url` opens it", body = SavedViewView), (status = 400, description = "Bad input (`invalid_view`)", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't share", body = crate::error::ErrorBody), (status = 409, description = "The caller has a view of that name", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<SavedViewBody>,
) -> Result<(StatusCode, Json<SavedViewView>), ApiError> {
    let view = saved_views::add(&state.ops, &user.0, body.into()).await?;
    Ok((
        StatusCode::CREATED,
        Json(SavedViewView::new(&view, &user.0)),
    ))
}

#[utoipa::path(get, path = "/api/v1/saved-views/{id}", operation_id = "get_saved_view", tag = "traces", params(("id" = i64, Path, description = "View id")), responses((status = 200, description = "The view", body = SavedViewView), (status = 404, description = "No such view (or someone else's own)", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<SavedViewView>, ApiError> {
    let view = saved_views::get(&state.ops, &user.0, id).await?;
    Ok(Json(SavedViewView::new(&view, &user.0)))
}

#[utoipa::path(patch, path = "/api/v1/saved-views/{id}", operation_id = "update_saved_view", tag = "traces", params(("id" = i64, Path, description = "View id")), request_body = SavedViewBody, responses((status = 200, description = "Updated", body = SavedViewView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 403, description = "Someone else's shared view (Admins may), or a Viewer sharing", body = crate::error::ErrorBody), (status = 404, description = "No such view", body = crate::error::ErrorBody), (status = 409, description = "Name taken", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<SavedViewBody>,
) -> Result<Json<SavedViewView>, ApiError> {
    let view = saved_views::change(&state.ops, &user.0, id, body.into()).await?;
    Ok(Json(SavedViewView::new(&view, &user.0)))
}

#[utoipa::path(delete, path = "/api/v1/saved-views/{id}", operation_id = "delete_saved_view", tag = "traces", params(("id" = i64, Path, description = "View id")), responses((status = 204, description = "Deleted"), (status = 403, description = "Someone else's shared view (Admins may)", body = crate::error::ErrorBody), (status = 404, description = "No such view", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    saved_views::remove(&state.ops, &user.0, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
