//! Violations: the list with filters and search, one violation, and status changes (one or in
//! bulk) through New → Acknowledged → Resolved with notes. Members and Admins change status.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use langguard_store::{PolicyId, Role, Severity, ViolationQuery, ViolationStatus};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{time_param, ApiJson, ApiPath, ApiQuery};
use crate::AppState;
use langguard_ops::lists::{ViolationList, ViolationPage};
use langguard_ops::views::{decode_violation_cursor, encode_violation_cursor, ViolationView};
use langguard_ops::{violations, Actor};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/violations", get(list))
        .route("/violations/bulk", post(bulk))
        .route("/violations/{id}", get(read).patch(update))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// A policy id or name.
    policy: Option<String>,
    /// `critical`, `high`, `medium` or `low`.
    #[param(value_type = Option<String>)]
    severity: Option<Severity>,
    /// `new`, `acknowledged` or `resolved`.
    #[param(value_type = Option<String>)]
    status: Option<ViolationStatus>,
    /// Only the violations of one trace (interaction id).
    trace_id: Option<i64>,
    /// RFC 3339, the interaction's time; inclusive.
    from: Option<String>,
    /// RFC 3339; exclusive.
    to: Option<String>,
    /// Text in the message, type or policy name.
    q: Option<String>,
    /// 1 to 1,000; default 50.
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/violations", operation_id = "list_violations", tag = "policies", params(ListQuery), responses((status = 200, description = "`{items: [violation], total, next_cursor}`, newest first", body = ViolationPage), (status = 400, description = "Bad input", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ViolationPage>, ApiError> {
    let policy_id: Option<PolicyId> = match q.policy.as_deref() {
        None => None,
        Some(p) => match p.parse::<PolicyId>() {
            Ok(id) => Some(id),
            Err(_) => Some(
                state
                    .ops
                    .store
                    .list_policies()
                    .await?
                    .into_iter()
                    .find(|policy| policy.name == p || policy.builtin_id.as_deref() == Some(p))
                    .map(|policy| policy.id)
                    .ok_or_else(|| ApiError::NotFound(format!("no policy named {p:?}")))?,
            ),
        },
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be between 1 and 1000",
        ));
    }
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            decode_violation_cursor(c).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_cursor",
                    "cursor must be a next_cursor from a previous page",
                )
            })
        })
        .transpose()?;
    let page = state
        .ops
        .store
        .violations(&ViolationQuery {
            policy_id,
            severity: q.severity,
            status: q.status,
            interaction_id: q.trace_id,
            from_ms: time_param("from", q.from.as_deref())?,
            to_ms: time_param("to", q.to.as_deref())?,
            text: q.q.filter(|t| !t.trim().is_empty()),
            limit,
            before,
        })
        .await?;
    Ok(Json(ViolationPage {
        items: page.items.iter().map(ViolationView::from).collect(),
        total: page.total,
        next_cursor: page.next_cursor.map(encode_violation_cursor),
    }))
}

#[utoipa::path(get, path = "/api/v1/violations/{id}", operation_id = "get_violation", tag = "policies", params(("id" = i64, Path, description = "Violation id")), responses((status = 200, description = "The violation with its evidence", body = ViolationView), (status = 404, description = "No such violation", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ViolationView>, ApiError> {
    Ok(Json(ViolationView::from(
        &state.ops.store.get_violation(id).await?,
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateViolationRequest {
    /// `new`, `acknowledged` or `resolved`.
    #[schema(value_type = String)]
    status: ViolationStatus,
    notes: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/violations/{id}", operation_id = "update_violation", tag = "policies", params(("id" = i64, Path, description = "Violation id")), request_body = UpdateViolationRequest, responses((status = 200, description = "Updated", body = ViolationView), (status = 403, description = "Viewers can't change status", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateViolationRequest>,
) -> Result<Json<ViolationView>, ApiError> {
    user.require(Role::Member)?;
    let violation = violations::set_one(
        &state.ops,
        Actor::User(&user.0),
        id,
        body.status,
        body.notes,
    )
    .await?;
    Ok(Json(ViolationView::from(&violation)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateViolationsRequest {
    ids: Vec<i64>,
    #[schema(value_type = String)]
    status: ViolationStatus,
    notes: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/violations/bulk", operation_id = "update_violations", tag = "policies", request_body = UpdateViolationsRequest, responses((status = 200, description = "`{items: [violation]}`: all changed, or none when an id is unknown (404)", body = ViolationList), (status = 403, description = "Viewers can't change status", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn bulk(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<UpdateViolationsRequest>,
) -> Result<Json<ViolationList>, ApiError> {
    user.require(Role::Member)?;
    let updated = violations::set_status(
        &state.ops,
        Actor::User(&user.0),
        body.ids,
        body.status,
        body.notes,
    )
    .await?;
    let items: Vec<ViolationView> = updated.iter().map(ViolationView::from).collect();
    Ok(Json(ViolationList::from(items)))
}
