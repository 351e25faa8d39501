//! The Trace Explorer page: the table with sortable columns, the filter bar (time presets,
//! status, provider, model, gateway, cache, duration range), the search box with the product's
//! syntax, keyset pages of 25/50/100, a detail drawer, and export of the current filter.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use langguard_store::{
    metadata_filter, parse_search, Interaction, Range as Bounds, Role, Scope, SortOrder,
    TraceFilter, TraceQuery, TraceSort, TraceStatus,
};
use serde::Deserialize;

use super::form::{button, not_understood};
use super::format::{clock, count, duration, usd};
use super::monitoring::{Range, RangeQuery, PRESETS};
use super::session::WebUser;
use super::{page_failure, problem, refuse, render, Frame};
use crate::AppState;
use langguard_ops::saved_views::{self, SavedViewInput};
use langguard_ops::traces;
use langguard_ops::views::{decode_cursor, encode_cursor};
use langguard_ops::OpsError;

#[derive(Deserialize, Default, Clone)]
pub struct TracesQuery {
    range: Option<String>,
    q: Option<String>,
    status: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    gateway: Option<String>,
    cached: Option<String>,
    min_duration_ms: Option<String>,
    max_duration_ms: Option<String>,
    min_tokens: Option<String>,
    max_tokens: Option<String>,
    min_cost: Option<String>,
    max_cost: Option<String>,
    from: Option<String>,
    to: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
    integration_id: Option<i64>,
    /// `key=value` metadata filters (repeat the parameter for several).
    #[serde(default)]
    metadata: Vec<String>,
}

/// A form value, or `None` when left empty.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

struct Row {
    id: i64,
    time: String,
    status: &'static str,
    status_label: &'static str,
    model: String,
    provider: String,
    gateway: String,
    duration: String,
    tokens: String,
    cost: String,
    cache: &'static str,
}

fn row(i: &Interaction) -> Row {
    let log = &i.log;
    Row {
        id: i.id,
        time: clock(log.created_at_ms),
        status: if log.success { "success" } else { "error" },
        status_label: if log.success { "Success" } else { "Error" },
        model: log.model.clone(),
        provider: log.provider.clone(),
        gateway: i.gateway.clone(),
        duration: duration(Some(log.duration_ms as f64)),
        tokens: count(log.tokens_in.unwrap_or(0) + log.tokens_out.unwrap_or(0)),
        cost: log.cost_usd.map(usd).unwrap_or_else(|| "unpriced".into()),
        cache: if log.cached { "Hit" } else { "Miss" },
    }
}

#[derive(Template)]
#[template(path = "traces.html")]
struct TracesPage {
    frame: Frame,
    presets: &'static [(&'static str, &'static str)],
    query: TracesQuery,
    range: &'static str,
    q: String,
    status: String,
    provider: String,
    model: String,
    gateway: String,
    cached: String,
    min_duration_ms: String,
    max_duration_ms: String,
    min_tokens: String,
    max_tokens: String,
    min_cost: String,
    max_cost: String,
    from_input: String,
    to_input: String,
    limit: u32,
    sort: TraceSort,
    order: SortOrder,
    error: Option<String>,
    rows: Vec<Row>,
    link_first: String,
    link_next: Option<String>,
    export_query: String,
    /// The views the user sees: `(id, name, url, shared, mine)`.
    views: Vec<SavedViewRow>,
    /// Members and Admins may share a view.
    can_share: bool,
    /// This page's filters as a saved view keeps them.
    current_query: String,
}

struct SavedViewRow {
    id: i64,
    name: String,
    url: String,
    shared: bool,
    mine: bool,
    owner: String,
}

impl TracesPage {
    /// This page's query string with some parameters replaced (`None` drops one).
    fn with(&self, changes: &[(&str, Option<&str>)]) -> String {
        let q = &self.query;
        let current: [(&str, Option<String>); 18] = [
            ("range", q.range.clone()),
            ("q", q.q.clone()),
            ("status", q.status.clone()),
            ("provider", q.provider.clone()),
            ("model", q.model.clone()),
            ("gateway", q.gateway.clone()),
            ("cached", q.cached.clone()),
            ("min_duration_ms", q.min_duration_ms.clone()),
            ("max_duration_ms", q.max_duration_ms.clone()),
            ("min_tokens", q.min_tokens.clone()),
            ("max_tokens", q.max_tokens.clone()),
            ("min_cost", q.min_cost.clone()),
            ("max_cost", q.max_cost.clone()),
            ("from", q.from.clone()),
            ("to", q.to.clone()),
            ("sort", q.sort.clone()),
            ("order", q.order.clone()),
            ("limit", q.limit.map(|l| l.to_string())),
        ];
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in current {
            let value = match changes.iter().find(|(k, _)| *k == key) {
                Some((_, changed)) => changed.map(str::to_string),
                None => value,
            };
            if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
                out.append_pair(key, &v);
            }
        }
        // Filters the form has no box for (from links into the Explorer) stay with the page.
        if let Some(id) = q.integration_id {
            out.append_pair("integration_id", &id.to_string());
        }
        for pair in q.metadata.iter().filter(|p| !p.trim().is_empty()) {
            out.append_pair("metadata", pair);
        }
        for (key, value) in changes {
            if let (true, Some(v)) = (key == &"cursor", value) {
                out.append_pair("cursor", v);
            }
        }
        out.finish()
    }

    fn link_range(&self, key: &str) -> String {
        format!(
            "/traces?{}",
            self.with(&[("range", Some(key)), ("from", None), ("to", None)])
        )
    }

    /// Header clicks cycle ascending → descending → back to newest first.
    fn link_sort(&self, key: &str) -> String {
        let current = self.sort.as_str() == key && self.query.sort.is_some();
        let (sort, order) = match (current, self.order) {
            (false, _) => (Some(key), Some("asc")),
            (true, SortOrder::Asc) => (Some(key), Some("desc")),
            (true, SortOrder::Desc) => (None, None),
        };
        format!("/traces?{}", self.with(&[("sort", sort), ("order", order)]))
    }

    fn arrow(&self, key: &str) -> &'static str {
        if self.sort.as_str() != key {
            return "";
        }
        match self.order {
            SortOrder::Asc => " ↑",
            SortOrder::Desc => " ↓",
        }
    }
}

/// The filter the form describes, or why it can't be used.
fn filter(q: &TracesQuery, range: &Range) -> Result<TraceFilter, String> {
    let number = |name: &str, v: &Option<String>| -> Result<Option<i64>, String> {
        given(v)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("{name} must be a whole number"))
            })
            .transpose()
    };
    let dollars = |name: &str, v: &Option<String>| -> Result<Option<f64>, String> {
        given(v)
            .map(|v| {
                v.trim_start_matches('$')
                    .parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite())
                    .ok_or_else(|| format!("{name} must be an amount in dollars, e.g. 0.01"))
            })
            .transpose()
    };
    let status = match given(&q.status) {
        Some("success") => Some(TraceStatus::Success),
        Some("error") => Some(TraceStatus::Error),
        _ => None,
    };
    let cached = match given(&q.cached) {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let search = match given(&q.q) {
        Some(text) => parse_search(text).map_err(capitalised)?,
        None => None,
    };
    let metadata = q
        .metadata
        .iter()
        .map(|pair| metadata_filter(pair.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(capitalised)?;
    let filter = TraceFilter {
        scope: Scope {
            from_ms: Some(range.from_ms),
            to_ms: Some(range.to_ms),
            integration_id: q.integration_id,
            gateway: given(&q.gateway).map(str::to_string),
            provider: given(&q.provider).map(str::to_string),
            model: given(&q.model).map(str::to_string),
        },
        status,
        cached,
        duration_ms: Bounds {
            min: number("Min duration", &q.min_duration_ms)?,
            max: number("Max duration", &q.max_duration_ms)?,
        },
        tokens: Bounds {
            min: number("Min tokens", &q.min_tokens)?,
            max: number("Max tokens", &q.max_tokens)?,
        },
        cost_usd: Bounds {
            min: dollars("Min cost", &q.min_cost)?,
            max: dollars("Max cost", &q.max_cost)?,
        },
        metadata,
        search,
        ..TraceFilter::default()
    };
    filter.validate().map_err(capitalised)?;
    Ok(filter)
}

/// A shared check's message as the page shows it: a sentence.
fn capitalised(e: langguard_store::FilterError) -> String {
    super::format::sentence(e.message)
}

pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> Response {
    // Read like the API's query: `metadata` may repeat.
    let q: TracesQuery = match serde_html_form::from_str(raw.as_deref().unwrap_or_default()) {
        Ok(q) => q,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "the address's filters could not be read; open the Trace Explorer afresh",
            )
                .into_response()
        }
    };
    let range = Range::from_query(
        &RangeQuery {
            range: q.range.clone(),
            from: q.from.clone(),
            to: q.to.clone(),
        },
        crate::now_ms(),
    );
    let sort = match given(&q.sort) {
        Some("duration") => TraceSort::Duration,
        Some("cost") => TraceSort::Cost,
        Some("tokens") => TraceSort::Tokens,
        _ => TraceSort::Time,
    };
    let order = match given(&q.order) {
        Some("asc") => SortOrder::Asc,
        _ => SortOrder::Desc,
    };
    // The page sizes the UI offers; anything else is the default.
    let limit = q.limit.filter(|n| [25, 50, 100].contains(n)).unwrap_or(50);
    let after = given(&q.cursor)
        .and_then(decode_cursor)
        .filter(|c| c.sort == sort && c.order == order);
    let checked = match &range.error {
        Some(e) => Err(e.clone()),
        None => filter(&q, &range),
    };
    let (rows, next, error) = match checked {
        Err(message) => (Vec::new(), None, Some(message)),
        Ok(filter) => match state
            .ops
            .store
            .traces(&TraceQuery {
                filter,
                sort,
                order,
                limit,
                after,
            })
            .await
        {
            Ok(page) => (
                page.items.iter().map(row).collect(),
                page.next_cursor.as_ref().map(encode_cursor),
                None,
            ),
            Err(e) => return page_failure("Trace Explorer", e),
        },
    };
    let views = match saved_views::list(&state.ops, &user.user).await {
        Ok(list) => list
            .into_iter()
            .map(|v| SavedViewRow {
                id: v.id,
                name: v.name,
                url: v.url,
                shared: v.shared,
                mine: v.mine,
                owner: v.owner,
            })
            .collect(),
        Err(e) => return page_failure("Trace Explorer", e),
    };
    let text = |v: &Option<String>| given(v).unwrap_or("").to_string();
    let mut page = TracesPage {
        frame: Frame::new(&user, "Trace Explorer", "traces"),
        presets: &PRESETS,
        range: range.key,
        q: text(&q.q),
        status: text(&q.status),
        provider: text(&q.provider),
        model: text(&q.model),
        gateway: text(&q.gateway),
        cached: text(&q.cached),
        min_duration_ms: text(&q.min_duration_ms),
        max_duration_ms: text(&q.max_duration_ms),
        min_tokens: text(&q.min_tokens),
        max_tokens: text(&q.max_tokens),
        min_cost: text(&q.min_cost),
        max_cost: text(&q.max_cost),
        // A preset's bounds move with the clock: the boxes show bounds only for a custom range.
        from_input: if range.key == "custom" {
            super::monitoring::local_value(range.from_ms)
        } else {
            String::new()
        },
        to_input: if range.key == "custom" {
            super::monitoring::local_value(range.to_ms)
        } else {
            String::new()
        },
        limit,
        sort,
        order,
        error,
        rows,
        link_first: String::new(),
        link_next: None,
        export_query: String::new(),
        views,
        can_share: user.user.role != Role::Viewer,
        current_query: String::new(),
        query: q,
    };
    page.current_query = page.with(&[]);
    page.link_first = format!("/traces?{}", page.current_query);
    page.link_next = next.map(|c| format!("/traces?{}", page.with(&[("cursor", Some(&c))])));
    // The export takes the API's parameters: the same filter as explicit bounds.
    let mut export = url::form_urlencoded::Serializer::new(String::new());
    export.append_pair("from", &langguard_clock::format_ms(range.from_ms));
    export.append_pair("to", &langguard_clock::format_ms(range.to_ms));
    for (key, value) in [
        ("q", &page.q),
        ("status", &page.status),
        ("provider", &page.provider),
        ("model", &page.model),
        ("gateway", &page.gateway),
        ("cached", &page.cached),
        ("min_duration_ms", &page.min_duration_ms),
        ("max_duration_ms", &page.max_duration_ms),
        ("min_tokens", &page.min_tokens),
        ("max_tokens", &page.max_tokens),
        ("min_cost", &page.min_cost),
        ("max_cost", &page.max_cost),
    ] {
        if !value.is_empty() {
            export.append_pair(key, value);
        }
    }
    export.append_pair("sort", sort.as_str());
    export.append_pair(
        "order",
        match order {
            SortOrder::Asc => "asc",
            SortOrder::Desc => "desc",
        },
    );
    page.export_query = export.finish();
    render(&page)
}

struct Detail {
    id: i64,
    log_id: String,
    time: String,
    duration: String,
    status_label: &'static str,
    status_code: Option<i64>,
    model: String,
    provider: String,
    gateway: String,
    tokens_in: String,
    tokens_out: String,
    cost: String,
    cache: &'static str,
}

#[derive(Template)]
#[template(path = "trace_detail.html")]
struct TraceDetail {
    t: Detail,
    input: Option<String>,
    output: Option<String>,
    metadata: String,
    /// Cloudflare's extra log fields as pretty JSON, when the log carried any.
    log_fields: Option<String>,
    /// Severity, policy, message.
    violations: Vec<(&'static str, String, String)>,
}

async fn detail(state: &AppState, id: i64) -> Result<TraceDetail, Response> {
    let found = match traces::detail(&state.ops, id).await {
        Ok(found) => found,
        Err(OpsError::NotFound(_)) => {
            return Err((StatusCode::NOT_FOUND, "no such trace").into_response())
        }
        Err(e) => return Err(page_failure("trace detail", e)),
    };
    let (interaction, violations, bodies) = (found.interaction, found.violations, found.bodies);
    let log = &interaction.log;
    let metadata = log
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| "{}".into());
    Ok(TraceDetail {
        t: Detail {
            id,
            log_id: log.log_id.clone(),
            time: langguard_clock::format_ms(log.created_at_ms),
            duration: duration(Some(log.duration_ms as f64)),
            status_label: if log.success { "Success" } else { "Error" },
            status_code: log.status_code,
            model: log.model.clone(),
            provider: log.provider.clone(),
            gateway: interaction.gateway.clone(),
            tokens_in: log.tokens_in.map(count).unwrap_or_else(|| "–".into()),
            tokens_out: log.tokens_out.map(count).unwrap_or_else(|| "–".into()),
            cost: cost_text(log),
            cache: if log.cached { "Hit" } else { "Miss" },
        },
        log_fields: (!log.details.is_empty())
            .then(|| serde_json::to_string_pretty(&log.details).ok())
            .flatten(),
        input: bodies.request,
        output: bodies.response,
        metadata,
        violations: violations
            .iter()
            .map(|v| {
                (
                    v.severity.as_str(),
                    v.policy_name.clone(),
                    v.message.clone(),
                )
            })
            .collect(),
    })
}

/// The cost as the drawer shows it; Cloudflare's 0 for a BYOK call says what the provider will
/// bill at list price.
fn cost_text(log: &langguard_store::NewInteraction) -> String {
    match (log.cost_usd, log.cost_source) {
        (Some(cost), Some(langguard_store::CostSource::Byok)) => {
            match log.details.cost_estimate_usd {
                Some(estimate) => format!(
                    "{} (BYOK: billed by the provider, about {} at list price)",
                    usd(cost),
                    usd(estimate)
                ),
                None => format!("{} (BYOK: billed by the provider)", usd(cost)),
            }
        }
        (Some(cost), _) => usd(cost),
        (None, _) => "unpriced".into(),
    }
}

/// The drawer's content (htmx swaps it in beside the table).
pub async fn drawer(
    State(state): State<AppState>,
    _user: WebUser,
    Path(id): Path<i64>,
) -> Response {
    match detail(&state, id).await {
        Ok(d) => render(&d),
        Err(response) => response,
    }
}

#[derive(Template)]
#[template(
    source = "{% extends \"base.html\" %}{% block content %}<p><a href=\"/traces\">← Trace Explorer</a></p>{{ detail|safe }}{% endblock %}",
    ext = "html"
)]
struct TracePage {
    frame: Frame,
    detail: String,
}

/// One trace on a page of its own (the drawer without JavaScript, or a link to share).
pub async fn full(State(state): State<AppState>, user: WebUser, Path(id): Path<i64>) -> Response {
    let detail = match detail(&state, id).await {
        Ok(d) => d,
        Err(response) => return response,
    };
    match detail.render() {
        Ok(html) => render(&TracePage {
            frame: Frame::new(&user, "Trace", "traces"),
            detail: html,
        }),
        Err(e) => page_failure("trace", anyhow::anyhow!("rendering the trace: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_links_cycle_and_keep_the_filters() {
        let page = TracesPage {
            frame: super::super::tests::test_frame("viewer"),
            presets: &PRESETS,
            query: TracesQuery {
                q: Some("model:gpt".into()),
                sort: Some("cost".into()),
                order: Some("asc".into()),
                ..TracesQuery::default()
            },
            range: "24h",
            q: "model:gpt".into(),
            status: String::new(),
            provider: String::new(),
            model: String::new(),
            gateway: String::new(),
            cached: String::new(),
            min_duration_ms: String::new(),
            max_duration_ms: String::new(),
            min_tokens: String::new(),
            max_tokens: String::new(),
            min_cost: String::new(),
            max_cost: String::new(),
            from_input: String::new(),
            to_input: String::new(),
            limit: 50,
            sort: TraceSort::Cost,
            order: SortOrder::Asc,
            error: None,
            rows: Vec::new(),
            link_first: String::new(),
            link_next: None,
            export_query: String::new(),
            views: Vec::new(),
            can_share: false,
            current_query: String::new(),
        };
        assert_eq!(
            page.link_sort("cost"),
            "/traces?q=model%3Agpt&sort=cost&order=desc"
        );
        assert_eq!(
            page.link_sort("duration"),
            "/traces?q=model%3Agpt&sort=duration&order=asc"
        );
        assert_eq!(page.arrow("cost"), " ↑");
        assert_eq!(page.arrow("time"), "");
        let html = page.render().expect("renders");
        assert!(html.contains("No traces match"));
        for label in [
            "Search",
            "Status",
            "Provider",
            "Model",
            "Gateway",
            "Page size",
        ] {
            assert!(html.contains(&format!(">{label}</label>")), "{label}");
        }
    }
}

#[derive(Deserialize)]
pub struct SaveViewForm {
    csrf: Option<String>,
    name: Option<String>,
    /// The page's query string when the form was shown.
    query: Option<String>,
    shared: Option<String>,
}

/// Save view: the filters on the page under a name, the user's own or shared.
pub async fn save_view(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = serde_html_form::from_bytes::<SaveViewForm>(&body) else {
        return not_understood();
    };
    if let Some(refused) = refuse(&user, &headers, form.csrf.as_deref(), Role::Viewer) {
        return refused;
    }
    let input = SavedViewInput {
        name: form.name,
        query: form.query,
        shared: Some(form.shared.is_some()),
    };
    match saved_views::add(&state.ops, &user.user, input).await {
        Ok(view) => Redirect::to(&saved_views::url_of(&view.query)).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, problem(e)).into_response(),
    }
}

/// A view's own address: opens the Trace Explorer with its filters.
pub async fn open_view(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> Response {
    match saved_views::get(&state.ops, &user.user, id).await {
        Ok(view) => Redirect::to(&saved_views::url_of(&view.query)).into_response(),
        Err(e) => page_failure("Trace Explorer", e),
    }
}

pub async fn delete_view(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    if let Some(refused) = button(&user, &headers, &body, Role::Viewer) {
        return refused;
    }
    match saved_views::remove(&state.ops, &user.user, id).await {
        Ok(()) => Redirect::to("/traces").into_response(),
        Err(e) => page_failure("Trace Explorer", e),
    }
}
