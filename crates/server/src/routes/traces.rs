//! Trace Explorer's API: `GET /traces` (filters, newest first, keyset pagination) and
//! `GET /traces/{id}`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use langguard_store::{Scope, TraceQuery, TraceStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{time_param, ApiPath, ApiQuery};
use crate::views::{decode_cursor, encode_cursor, TraceItem};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/traces", get(list))
        .route("/traces/{id}", get(read))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct TracesQuery {
    /// RFC 3339; inclusive.
    from: Option<String>,
    /// RFC 3339; exclusive.
    to: Option<String>,
    integration_id: Option<i64>,
    gateway: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    /// `success` or `error`.
    #[param(value_type = Option<String>)]
    status: Option<TraceStatus>,
    cached: Option<bool>,
    /// 1 to 1,000; default 50.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/traces", tag = "traces", params(TracesQuery), responses((status = 200, description = "`{items: [trace], next_cursor}`, newest first"), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<TracesQuery>,
) -> Result<Json<Value>, ApiError> {
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            decode_cursor(c).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_cursor",
                    "cursor must be a next_cursor from a previous page",
                )
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be between 1 and 1000",
        ));
    }
    let page = state
        .store
        .traces(&TraceQuery {
            scope: Scope {
                from_ms: time_param("from", q.from.as_deref())?,
                to_ms: time_param("to", q.to.as_deref())?,
                integration_id: q.integration_id,
                gateway: q.gateway,
                provider: q.provider,
                model: q.model,
            },
            status: q.status,
            cached: q.cached,
            limit,
            before,
        })
        .await?;
    let items: Vec<TraceItem> = page.items.iter().map(TraceItem::from).collect();
    Ok(Json(
        json!({"items": items, "next_cursor": page.next_cursor.map(encode_cursor)}),
    ))
}

#[utoipa::path(get, path = "/api/v1/traces/{id}", tag = "traces", params(("id" = i64, Path, description = "Interaction id")), responses((status = 200, description = "The interaction and its violations"), (status = 404, description = "No such interaction", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let interaction = state.store.get_interaction(id).await?;
    let mut doc =
        serde_json::to_value(TraceItem::from(&interaction)).map_err(anyhow::Error::from)?;
    if let Some(obj) = doc.as_object_mut() {
        // Policies (issue 5) fill this in.
        obj.insert("violations".into(), json!([]));
    }
    Ok(Json(doc))
}
