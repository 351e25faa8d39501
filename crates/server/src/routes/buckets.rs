//! An integration's Logpush buckets: `GET`/`POST /api/v1/integrations/{id}/buckets`,
//! `DELETE …/buckets/{bucket_id}` and `POST …/buckets/{bucket_id}/import` (Admin). Everything
//! else is `langguard_ops::buckets`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use langguard_ops::buckets::{self, BucketImportReport, BucketInput, BucketView};
use langguard_ops::Actor;
use langguard_store::Role;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/integrations/{id}/buckets", get(list).post(add))
        .route("/integrations/{id}/buckets/{bucket_id}", delete(remove))
        .route(
            "/integrations/{id}/buckets/{bucket_id}/import",
            post(import),
        )
}

#[utoipa::path(get, path = "/api/v1/integrations/{id}/buckets", operation_id = "list_buckets", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "The buckets Logpush files are imported from, with what was imported", body = [BucketView]),
        (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody),
        (status = 404, description = "No such integration", body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<BucketView>>, ApiError> {
    user.require(Role::Admin)?;
    Ok(Json(buckets::list(&state.ops, id).await?))
}

#[utoipa::path(post, path = "/api/v1/integrations/{id}/buckets", operation_id = "add_bucket", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    request_body = BucketInput,
    responses((status = 201, description = "Added after listing it once; the secret is never returned", body = BucketView),
        (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody),
        (status = 403, description = "Role not allowed", body = crate::error::ErrorBody), (status = 404, description = "No such integration", body = crate::error::ErrorBody),
        (status = 422, description = "The bucket could not be listed with these settings", body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub(crate) async fn add(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<BucketInput>,
) -> Result<(StatusCode, Json<BucketView>), ApiError> {
    user.require(Role::Admin)?;
    let bucket = buckets::add(&state.ops, Actor::User(&user.0), id, body).await?;
    Ok((StatusCode::CREATED, Json(bucket)))
}

#[utoipa::path(delete, path = "/api/v1/integrations/{id}/buckets/{bucket_id}", operation_id = "remove_bucket", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id"), ("bucket_id" = i64, Path, description = "Bucket id")),
    responses((status = 204, description = "No longer imported from (what was imported stays)"),
        (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody),
        (status = 404, description = "No such integration or bucket", body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, bucket_id)): ApiPath<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Admin)?;
    buckets::remove(&state.ops, Actor::User(&user.0), id, bucket_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/integrations/{id}/buckets/{bucket_id}/import", operation_id = "import_bucket", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id"), ("bucket_id" = i64, Path, description = "Bucket id")),
    responses((status = 200, description = "The bucket's new files imported now", body = BucketImportReport),
        (status = 401, description = "Not signed in", body = crate::error::ErrorBody), (status = 403, description = "Role not allowed", body = crate::error::ErrorBody),
        (status = 404, description = "No such integration or bucket", body = crate::error::ErrorBody),
        (status = 503, description = "The bucket could not be read; the next pass tries again", body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub(crate) async fn import(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, bucket_id)): ApiPath<(i64, i64)>,
) -> Result<Json<BucketImportReport>, ApiError> {
    user.require(Role::Admin)?;
    Ok(Json(buckets::import_now(&state.ops, id, bucket_id).await?))
}
