//! Alerting: rules (with a backtest over the last week), the alerts they raise, and silences.
//! Everyone signed in reads; Members and Admins write.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use langguard_ops::alerts::backtest::BacktestView;
use langguard_ops::alerts::rules::{self, RuleInput};
use langguard_ops::alerts::{self, AlertPage, AlertRuleView, SilenceInput, SilenceView};
use langguard_ops::lists::{AlertRuleList, SilenceList};
use langguard_ops::Actor;
use langguard_store::{AlertScope, Role};
use serde::{Deserialize, Deserializer};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{now_ms, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list))
        .route("/alerts/rules", get(list_rules).post(create_rule))
        .route("/alerts/rules/backtest", post(backtest))
        .route(
            "/alerts/rules/{id}",
            get(read_rule).patch(update_rule).delete(remove_rule),
        )
        .route("/alerts/silences", get(list_silences).post(create_silence))
        .route("/alerts/silences/{id}", delete(end_silence))
}

/// `null` and absent told apart: `Some(None)` clears a field.
pub(crate) fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeBody {
    integration_id: Option<i64>,
    gateway: Option<String>,
    provider: Option<String>,
    model: Option<String>,
}

impl From<ScopeBody> for AlertScope {
    fn from(s: ScopeBody) -> Self {
        AlertScope {
            integration_id: s.integration_id,
            gateway: s.gateway,
            provider: s.provider,
            model: s.model,
        }
    }
}

/// A rule; on PATCH, fields left out keep their value and `null` clears `renotify_minutes`
/// and `group_by`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleBody {
    name: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
    /// `requests`, `errors`, `error_rate` (%), `rate_limited`, `latency_p50`/`p95`/`p99` (ms),
    /// `cost_usd`, `tokens`, `cache_hit_rate` (%), `violations`, `coverage` (%),
    /// `import_lag_minutes` or `no_traffic`.
    metric: Option<String>,
    /// For `violations`: the least severity counted (default `low`).
    severity: Option<String>,
    /// `above` (default; `below` for `coverage`).
    condition: Option<String>,
    threshold: Option<f64>,
    /// 5 to 1,440; default 15.
    window_minutes: Option<i64>,
    /// How long the condition must hold before it fires, 0 to 1,440; default 0.
    for_minutes: Option<i64>,
    /// Windows with fewer requests are not judged; default 0.
    min_requests: Option<i64>,
    /// While firing, notify again this often (5 to 10,080); null: once.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    renotify_minutes: Option<Option<i64>>,
    scope: Option<ScopeBody>,
    /// One alert per `integration`, `gateway`, `provider` or `model`; null: one for the scope.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    group_by: Option<Option<String>>,
    /// Notification channel (webhook) ids its alerts go to, at most 20; empty or left out on
    /// create: every enabled channel subscribed to `alert.firing` / `alert.resolved`.
    channel_ids: Option<Vec<i64>>,
}

impl From<RuleBody> for RuleInput {
    fn from(b: RuleBody) -> Self {
        RuleInput {
            name: b.name,
            description: b.description,
            enabled: b.enabled,
            metric: b.metric,
            severity: b.severity,
            condition: b.condition,
            threshold: b.threshold,
            window_minutes: b.window_minutes,
            for_minutes: b.for_minutes,
            min_requests: b.min_requests,
            renotify_minutes: b.renotify_minutes,
            scope: b.scope.map(AlertScope::from),
            group_by: b.group_by,
            channel_ids: b.channel_ids,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/alerts/rules", operation_id = "list_alert_rules", tag = "alerts", responses((status = 200, description = "`{items: [rule]}`, each with how many of its alerts fire now", body = AlertRuleList), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list_rules(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<AlertRuleList>, ApiError> {
    Ok(Json(AlertRuleList::from(
        alerts::list_rules(&state.ops).await?,
    )))
}

#[utoipa::path(post, path = "/api/v1/alerts/rules", operation_id = "create_alert_rule", tag = "alerts", request_body = RuleBody, responses((status = 201, description = "Created; evaluated from the next minute on", body = AlertRuleView), (status = 400, description = "Bad input: `error.message` says what to fix", body = crate::error::ErrorBody), (status = 409, description = "Name taken", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create_rule(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<RuleBody>,
) -> Result<(StatusCode, Json<AlertRuleView>), ApiError> {
    user.require(Role::Member)?;
    let rule = rules::add(&state.ops, Actor::User(&user.0), body.into()).await?;
    Ok((StatusCode::CREATED, Json(AlertRuleView::new(&rule, 0))))
}

#[utoipa::path(get, path = "/api/v1/alerts/rules/{id}", operation_id = "get_alert_rule", tag = "alerts", params(("id" = i64, Path, description = "Rule id")), responses((status = 200, description = "The rule", body = AlertRuleView), (status = 404, description = "No such rule", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read_rule(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AlertRuleView>, ApiError> {
    Ok(Json(alerts::rule(&state.ops, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/alerts/rules/{id}", operation_id = "update_alert_rule", tag = "alerts", params(("id" = i64, Path, description = "Rule id")), request_body = RuleBody, responses((status = 200, description = "Updated; open alerts are judged by the new rule at the next evaluation", body = AlertRuleView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 404, description = "No such rule", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn update_rule(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<RuleBody>,
) -> Result<Json<AlertRuleView>, ApiError> {
    user.require(Role::Member)?;
    rules::change(&state.ops, Actor::User(&user.0), id, body.into()).await?;
    Ok(Json(alerts::rule(&state.ops, id).await?))
}

#[utoipa::path(delete, path = "/api/v1/alerts/rules/{id}", operation_id = "delete_alert_rule", tag = "alerts", params(("id" = i64, Path, description = "Rule id")), responses((status = 204, description = "Deleted with its alerts and silences"), (status = 404, description = "No such rule", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove_rule(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Member)?;
    rules::remove(&state.ops, Actor::User(&user.0), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/alerts/rules/backtest", operation_id = "backtest_alert_rule", tag = "alerts", request_body = RuleBody, responses((status = 200, description = "Would the rule have fired in the last 7 days: each time it would have, replayed over the rollups (nothing is saved or sent)", body = BacktestView), (status = 400, description = "Bad input, or a metric that can't be replayed (`not_backtestable`)", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn backtest(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<RuleBody>,
) -> Result<Json<BacktestView>, ApiError> {
    user.require(Role::Member)?;
    let mut input = RuleInput::from(body);
    // A backtest needs no name; one is made up when it has none.
    input.name.get_or_insert_with(|| "backtest".into());
    Ok(Json(alerts::backtest(&state.ops, input, now_ms()).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertsQuery {
    /// `open` (pending and firing), `pending`, `firing`, `resolved` or `all` (default).
    state: Option<String>,
    rule_id: Option<i64>,
    /// 1 to 500; default 50.
    limit: Option<u32>,
    /// `next_cursor` of the page before.
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/alerts", operation_id = "list_alerts", tag = "alerts", params(AlertsQuery), responses((status = 200, description = "`{items: [alert], next_cursor}`, newest first: current alerts and past ones", body = AlertPage), (status = 400, description = "Bad input", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<AlertsQuery>,
) -> Result<Json<AlertPage>, ApiError> {
    let query = alerts::query(q.rule_id, q.state.as_deref(), q.limit, q.cursor.as_deref())?;
    Ok(Json(alerts::list(&state.ops, &query, now_ms()).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SilencesQuery {
    /// Only those not ended yet (default); `false`: the newest 200.
    active: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/alerts/silences", operation_id = "list_alert_silences", tag = "alerts", params(SilencesQuery), responses((status = 200, description = "`{items: [silence]}`, newest first", body = SilenceList)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list_silences(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<SilencesQuery>,
) -> Result<Json<SilenceList>, ApiError> {
    let items = alerts::silences(&state.ops, q.active.unwrap_or(true), now_ms()).await?;
    Ok(Json(SilenceList::from(items)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SilenceBody {
    /// The rule to silence; left out: every rule.
    rule_id: Option<i64>,
    /// One group of the rule (a model, a gateway…); left out: all of them.
    group: Option<String>,
    /// RFC 3339 end, within 30 days; or give `minutes`.
    until: Option<String>,
    minutes: Option<i64>,
    /// Why (shown to whoever is on call next).
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/alerts/silences", operation_id = "create_alert_silence", tag = "alerts", request_body = SilenceBody, responses((status = 201, description = "Silenced from now until `ends_at`: alerts still change state, nobody is notified", body = SilenceView), (status = 400, description = "Bad input", body = crate::error::ErrorBody), (status = 404, description = "No such rule", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create_silence(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<SilenceBody>,
) -> Result<(StatusCode, Json<SilenceView>), ApiError> {
    user.require(Role::Member)?;
    let input = SilenceInput {
        rule_id: body.rule_id,
        group: body.group,
        until: body.until,
        minutes: body.minutes,
        reason: Some(body.reason),
    };
    let view = alerts::silence(&state.ops, Actor::User(&user.0), input, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(delete, path = "/api/v1/alerts/silences/{id}", operation_id = "end_alert_silence", tag = "alerts", params(("id" = i64, Path, description = "Silence id")), responses((status = 200, description = "Ended now (kept in the list as history)", body = SilenceView), (status = 404, description = "No such silence", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn end_silence(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<SilenceView>, ApiError> {
    user.require(Role::Member)?;
    Ok(Json(
        alerts::end_silence(&state.ops, Actor::User(&user.0), id, now_ms()).await?,
    ))
}
