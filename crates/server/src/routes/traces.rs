//! Trace Explorer's API: `GET /traces` (filters, search, sort, keyset pagination),
//! `GET /traces/export` (the same filters, streamed as CSV or JSON Lines) and `GET /traces/{id}`.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use langguard_ops::lists::TracePage;
use langguard_ops::traces::{self, TraceDetailView};
use langguard_store::{
    metadata_filter, parse_search, DetailField, Range, Scope, SortOrder, TraceFilter, TraceQuery,
    TraceSort, TraceStatus,
};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{time_param, ApiPath, ApiQuery};
use crate::AppState;
use langguard_ops::export::{self, ExportFormat};
use langguard_ops::views::{decode_cursor, encode_cursor, TraceItem};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/traces", get(list))
        .route("/traces/export", get(export))
        .route("/traces/{id}", get(read))
}

/// The filters shared by the listing and the export. Ranges are inclusive.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct TraceFilterParams {
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
    min_duration_ms: Option<i64>,
    max_duration_ms: Option<i64>,
    /// Tokens in plus tokens out.
    min_tokens: Option<i64>,
    max_tokens: Option<i64>,
    /// USD; unpriced interactions never match a cost range.
    min_cost: Option<f64>,
    max_cost: Option<f64>,
    /// Custom metadata `key=value`; repeat the parameter for several (all must hold).
    #[serde(default)]
    metadata: Vec<String>,
    /// The model the caller asked for (e.g. `cloudflare/auto`), exactly.
    requested_model: Option<String>,
    /// Cloudflare's `cf-aig-event-id`, exactly.
    event_id: Option<String>,
    request_type: Option<String>,
    model_type: Option<String>,
    /// Attempt index of a universal-endpoint fallback.
    step: Option<i64>,
    /// `1` (thumbs up) or `-1` (thumbs down).
    feedback: Option<i64>,
    /// `FLAG` or `BLOCK`: requests a DLP profile matched.
    dlp_action: Option<String>,
    user_agent: Option<String>,
    /// Calls made with the customer's own provider key.
    byok: Option<bool>,
    /// Only traces with (true) or without (false) a policy violation.
    has_violations: Option<bool>,
    /// Search: `"exact phrase"`, `a OR b`, `NOT term`, `field:value` (model, requested_model,
    /// provider, gateway, path, log_id, status, cached, status_code, a log field — event_id,
    /// request_type, model_type, step, feedback, score, dlp_action, dlp_profiles, guardrails,
    /// user_agent, byok — or a metadata key); bare terms are ANDed.
    q: Option<String>,
    /// `time` (default), `duration`, `cost` or `tokens`.
    #[param(value_type = Option<String>)]
    sort: Option<TraceSort>,
    /// `desc` (default) or `asc`.
    #[param(value_type = Option<String>)]
    order: Option<SortOrder>,
    /// Listing only: 1 to 1,000; default 50.
    limit: Option<u32>,
    /// Listing only: `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Export only: `csv` or `jsonl`.
    format: Option<String>,
}

impl TraceFilterParams {
    fn filter(&self) -> Result<TraceFilter, ApiError> {
        let filter = TraceFilter {
            scope: Scope {
                from_ms: time_param("from", self.from.as_deref())?,
                to_ms: time_param("to", self.to.as_deref())?,
                integration_id: self.integration_id,
                gateway: self.gateway.clone(),
                provider: self.provider.clone(),
                model: self.model.clone(),
            },
            status: self.status,
            cached: self.cached,
            duration_ms: Range {
                min: self.min_duration_ms,
                max: self.max_duration_ms,
            },
            tokens: Range {
                min: self.min_tokens,
                max: self.max_tokens,
            },
            cost_usd: Range {
                min: self.min_cost,
                max: self.max_cost,
            },
            metadata: self
                .metadata
                .iter()
                .map(|pair| metadata_filter(pair))
                .collect::<Result<_, _>>()?,
            details: self.details(),
            requested_model: self.requested_model.clone(),
            has_violations: self.has_violations,
            search: self.q.as_deref().map(parse_search).transpose()?.flatten(),
        };
        Ok(traces::checked(filter)?)
    }

    /// The log-field filters given, each as the text it is compared with.
    fn details(&self) -> Vec<(DetailField, String)> {
        let number = |n: Option<i64>| n.map(|n| n.to_string());
        [
            (DetailField::EventId, self.event_id.clone()),
            (DetailField::RequestType, self.request_type.clone()),
            (DetailField::ModelType, self.model_type.clone()),
            (DetailField::Step, number(self.step)),
            (DetailField::Feedback, number(self.feedback)),
            (DetailField::DlpAction, self.dlp_action.clone()),
            (DetailField::UserAgent, self.user_agent.clone()),
            (DetailField::Byok, self.byok.map(|b| b.to_string())),
        ]
        .into_iter()
        .filter_map(|(field, value)| Some((field, value?)))
        .collect()
    }

    fn refuse(&self, names: &[(&str, bool)], call: &str) -> Result<(), ApiError> {
        match names.iter().find(|(_, given)| *given) {
            Some((name, _)) => Err(ApiError::bad_request(
                "invalid_query",
                format!("{name} is not a parameter of {call}"),
            )),
            None => Ok(()),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/traces", operation_id = "list_traces", tag = "traces", params(TraceFilterParams), responses((status = 200, description = "`{items: [trace], next_cursor}`, in the sort's order (newest first by default)", body = TracePage), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<TraceFilterParams>,
) -> Result<Json<TracePage>, ApiError> {
    q.refuse(&[("format", q.format.is_some())], "/api/v1/traces")?;
    let filter = q.filter()?;
    let sort = q.sort.unwrap_or_default();
    let order = q.order.unwrap_or_default();
    let after = match q.cursor.as_deref() {
        Some(c) => {
            let cursor = decode_cursor(c).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_cursor",
                    "cursor must be a next_cursor from a previous page",
                )
            })?;
            if cursor.sort != sort || cursor.order != order {
                return Err(ApiError::bad_request(
                    "invalid_cursor",
                    "the cursor is from a listing with another sort or order; keep sort and \
                     order the same while paging, or start again without a cursor",
                ));
            }
            Some(cursor)
        }
        None => None,
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be between 1 and 1000",
        ));
    }
    let page = state
        .ops
        .store
        .traces(&TraceQuery {
            filter,
            sort,
            order,
            limit,
            after,
        })
        .await?;
    Ok(Json(TracePage {
        items: page.items.iter().map(TraceItem::from).collect(),
        next_cursor: page.next_cursor.as_ref().map(encode_cursor),
    }))
}

/// Streams every interaction the filters match, in the sort's order: CSV with a header row, or
/// one JSON object per line. Rows are read, formatted and sent a batch at a time, so memory stays
/// flat whatever the size; a failure part-way ends the response without its final chunk, so a
/// client can't mistake a cut export for a complete one.
#[utoipa::path(get, path = "/api/v1/traces/export", operation_id = "export_traces", tag = "traces", params(TraceFilterParams), responses((status = 200, description = "`text/csv` (header row, then a row per trace) or `application/x-ndjson` (a trace per line)", content((String = "text/csv"), (String = "application/x-ndjson"))), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn export(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<TraceFilterParams>,
) -> Result<Response, ApiError> {
    q.refuse(
        &[("limit", q.limit.is_some()), ("cursor", q.cursor.is_some())],
        "/api/v1/traces/export",
    )?;
    let format = match q.format.as_deref() {
        Some("csv") | None => ExportFormat::Csv,
        Some("jsonl") => ExportFormat::Jsonl,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_format",
                "format must be csv or jsonl",
            ))
        }
    };
    let filter = q.filter()?;
    let rows = state.ops.store.export_traces(
        filter,
        q.sort.unwrap_or_default(),
        q.order.unwrap_or_default(),
    );
    let rx = export::format(rows, format);
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let (content_type, file) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "traces.csv"),
        ExportFormat::Jsonl => ("application/x-ndjson", "traces.jsonl"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/traces/{id}", operation_id = "get_trace", tag = "traces", params(("id" = i64, Path, description = "Interaction id")), responses((status = 200, description = "The interaction and its violations", body = TraceDetailView), (status = 404, description = "No such interaction", body = crate::error::ErrorBody), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<TraceDetailView>, ApiError> {
    let detail = traces::detail(&state.ops, id).await?;
    Ok(Json(TraceDetailView::from(&detail)))
}
