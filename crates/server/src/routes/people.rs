//! People and teams: everyone signed in reads the 30-day figures per user and team; Admins name
//! the metadata keys that identify them.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use langguard_ops::anomalies::{self, AnomalyList, AnomalyListInput};
use langguard_ops::people::{
    self, IdentityKeysInput, IdentityKeysView, PeopleList, PeopleListInput, PersonDetail,
};
use langguard_ops::Actor;
use langguard_store::Role;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{now_ms, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/people", get(list))
        .route("/people/keys", get(read_keys).put(set_keys))
        .route("/people/anomalies", get(anomalies))
        .route("/people/{kind}/{identity}", get(read))
}

/// The metadata keys that identify people. Left out or null: none for that kind.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeysBody {
    /// e.g. `user_id`: letters, digits, `_`, `-`, `.`; at most 64.
    user_key: Option<String>,
    /// e.g. `team`.
    team_key: Option<String>,
    /// e.g. `session_id`: what names a user's session for the spend anomaly detection (needs
    /// `user_key`); left out, each hour of a user's traffic is a session.
    session_key: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnomalyParams {
    /// Only this user's sessions.
    user: Option<String>,
    /// Sessions with traffic in the last 1–30 days (default 30).
    days: Option<u32>,
    /// 1–500, default 50.
    limit: Option<u32>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    /// `user` (default) or `team`.
    kind: Option<String>,
    /// `spend` (default), `requests`, `tokens` or `last_seen`; most first.
    sort: Option<String>,
    /// Only identities containing this (case-insensitive).
    q: Option<String>,
    /// 1–200, default 50.
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DetailParams {
    /// Days of history in `daily`, 1–366, default 30.
    days: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/people", operation_id = "list_people", tag = "people", params(ListParams), responses((status = 200, description = "Users (or teams) with traffic in the last 30 days, most spent first; `key` is null and the list empty until an admin names the key", body = PeopleList), (status = 400, description = "Bad parameter (`invalid_kind`, `invalid_sort`, `invalid_limit`)", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<PeopleList>, ApiError> {
    let input = PeopleListInput {
        kind: p.kind,
        sort: p.sort,
        q: p.q,
        limit: p.limit,
        offset: p.offset,
    };
    Ok(Json(people::list(&state.ops, now_ms(), input).await?))
}

#[utoipa::path(get, path = "/api/v1/people/keys", operation_id = "get_people_keys", tag = "people", responses((status = 200, description = "The metadata keys naming users and teams, and which are still counting stored logs", body = IdentityKeysView), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read_keys(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<IdentityKeysView>, ApiError> {
    Ok(Json(people::keys(&state.ops).await?))
}

#[utoipa::path(put, path = "/api/v1/people/keys", operation_id = "set_people_keys", tag = "people", request_body = KeysBody, responses((status = 200, description = "Named. A changed key starts its figures over: new logs count at once, stored ones in the background (`backfilling`)", body = IdentityKeysView), (status = 400, description = "Bad key (`invalid_identity_key`)", body = crate::error::ErrorBody), (status = 403, description = "Admins only", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn set_keys(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<KeysBody>,
) -> Result<Json<IdentityKeysView>, ApiError> {
    user.require(Role::Admin)?;
    let input = IdentityKeysInput {
        user_key: body.user_key,
        team_key: body.team_key,
        session_key: body.session_key,
    };
    Ok(Json(
        people::set_keys(&state.ops, Actor::User(&user.0), input).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/people/{kind}/{identity}", operation_id = "get_person", tag = "people", params(("kind" = String, Path, description = "`user` or `team`"), ("identity" = String, Path, description = "The metadata value, URL-encoded"), DetailParams), responses((status = 200, description = "The identity's 30-day figures, spend per day, and models", body = PersonDetail), (status = 400, description = "Bad parameter (`invalid_kind`, `invalid_days`)", body = crate::error::ErrorBody), (status = 404, description = "Never seen, or no key names this kind", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath((kind, identity)): ApiPath<(String, String)>,
    ApiQuery(p): ApiQuery<DetailParams>,
) -> Result<Json<PersonDetail>, ApiError> {
    let kind = people::parse_kind(Some(&kind))?;
    Ok(Json(
        people::detail(&state.ops, now_ms(), kind, &identity, p.days).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/people/anomalies", operation_id = "list_spend_anomalies", tag = "people", params(AnomalyParams), responses((status = 200, description = "User sessions flagged as spend anomalies — at least twice the user's own p95 session (10 earlier sessions or more, 30 days) and above the organisation's p99 — newest flag first; empty until an admin names a user key", body = AnomalyList), (status = 400, description = "Bad parameter (`invalid_days`, `invalid_limit`)", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn anomalies(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(p): ApiQuery<AnomalyParams>,
) -> Result<Json<AnomalyList>, ApiError> {
    let input = AnomalyListInput {
        user: p.user,
        days: p.days,
        limit: p.limit,
    };
    Ok(Json(anomalies::list(&state.ops, now_ms(), input).await?))
}
