//! Policies: CRUD with compile-on-save and version history, `test` on a sample input,
//! `backtest` over stored history (nothing stored), re-evaluation of history, and the policy
//! worker's progress. Members and Admins write; Viewers read.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use langguard_policy::{
    batch_bodies, declared_name, evaluate_batch, spend_windows, CompileFailure, Compiled,
    EvalInput, Finding, PolicyError, PolicySet, SandboxPolicy,
};
use langguard_store::{
    Interaction, NewPolicy, Policy, PolicyCategory, PolicyId, PolicyMode, PolicyPatch, Role, Scope,
    Severity, SortOrder, TraceFilter, TraceSort, User,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{time_param, ApiJson, ApiPath};
use crate::views::{PolicyView, TraceItem};
use crate::{now_ms, AppState};

/// Most interactions one backtest or re-evaluation reads.
const MAX_HISTORY: u64 = 1_000_000;
/// Interactions evaluated per blocking batch.
const BATCH: usize = 2_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/policies", get(list).post(create))
        .route("/policies/test", post(test))
        .route("/policies/backtest", post(backtest))
        .route("/policies/status", get(status))
        .route("/policies/{id}", get(read).patch(update).delete(remove))
        .route("/policies/{id}/versions", get(versions))
        .route("/policies/{id}/reevaluate", post(reevaluate))
}

fn policy_error(e: PolicyError) -> ApiError {
    match e {
        PolicyError::Compile {
            message,
            line,
            column,
        } => ApiError::Unprocessable {
            code: "invalid_rego",
            message: format!("the Rego does not compile: {message}"),
            line,
            column,
        },
        PolicyError::InvalidName => ApiError::bad_request("invalid_name", e.to_string()),
        PolicyError::InvalidConfig => ApiError::bad_request("invalid_config", e.to_string()),
        PolicyError::PackageMismatch { .. } | PolicyError::NoViolationRule => {
            ApiError::Unprocessable {
                code: "invalid_rego",
                message: e.to_string(),
                line: None,
                column: None,
            }
        }
        PolicyError::Evaluation(message) => ApiError::Unprocessable {
            code: "evaluation_error",
            message: format!("the policy could not be evaluated: {message}"),
            line: None,
            column: None,
        },
        PolicyError::Limit { message, .. } => ApiError::Unprocessable {
            code: "policy_limit_exceeded",
            message: format!("the policy could not be evaluated: {message}"),
            line: None,
            column: None,
        },
    }
}

/// Compiles `rego` as the policy `name` in the policy sandbox, with the checks a save runs.
pub(crate) async fn compile(
    state: &AppState,
    name: &str,
    rego: &str,
) -> Result<Compiled, ApiError> {
    state
        .sandbox
        .compile(&SandboxPolicy::new(name, rego, "{}"))
        .await
        .map_err(|e| match e {
            CompileFailure::Policy(e) => policy_error(e),
            CompileFailure::Unavailable(e) => ApiError::Unavailable(e.to_string()),
        })
}

/// The editor's Test: `rego` on one sample `input` document, in the policy sandbox (API and
/// web UI alike). `config` replaces `input.config` when given.
pub(crate) async fn run_test(
    state: &AppState,
    rego: &str,
    mut input: serde_json::Map<String, Value>,
    config: Option<Value>,
) -> Result<Vec<Finding>, ApiError> {
    let name = declared_name(rego).ok_or_else(|| ApiError::Unprocessable {
        code: "invalid_rego",
        message: "the Rego must declare `package langguard.<name>`".into(),
        line: None,
        column: None,
    })?;
    if let Some(config) = config {
        input.insert("config".into(), config);
    }
    input.entry("config").or_insert_with(|| json!({}));
    let policy = SandboxPolicy::new(&name, rego, "{}");
    let outcome = state
        .sandbox
        .evaluate(
            std::slice::from_ref(&policy),
            vec![EvalInput::Document(Value::Object(input))],
        )
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    outcome
        .into_iter()
        .flatten()
        .next()
        .unwrap_or_else(|| {
            Err(PolicyError::Evaluation(
                "the sandbox returned nothing".into(),
            ))
        })
        .map_err(policy_error)
}

fn config_text(config: Option<Value>) -> Result<Option<String>, ApiError> {
    match config {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(Value::Object(map).to_string())),
        Some(_) => Err(policy_error(PolicyError::InvalidConfig)),
    }
}

fn text_field(name: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("{name} is longer than {max} characters"),
        ));
    }
    Ok(value.to_string())
}

#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", responses((status = 200, description = "`{items: [policy]}`"), (status = 401, description = "Not signed in", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn list(State(state): State<AppState>, _user: CurrentUser) -> Result<Json<Value>, ApiError> {
    let items: Vec<PolicyView> = state
        .store
        .list_policies()
        .await?
        .iter()
        .map(PolicyView::from)
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    /// lowercase_underscores; the Rego must declare `package langguard.<name>`.
    name: String,
    display_name: Option<String>,
    description: Option<String>,
    /// `Security & Access`, `Models & Compliance`, `Budget & Operations` or `Audit`.
    #[schema(value_type = String)]
    category: PolicyCategory,
    /// `critical`, `high`, `medium` or `low`.
    #[schema(value_type = String)]
    severity: Severity,
    /// `enforce`, `permissive` (default) or `disabled`.
    #[schema(value_type = Option<String>)]
    mode: Option<PolicyMode>,
    /// `input.config` for the policy (an object).
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
    rego: String,
}

#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", request_body = CreateBody, responses((status = 201, description = "Created (compiled first)"), (status = 422, description = "The Rego does not compile: `{error: {code: invalid_rego, message, line, column}}`", body = crate::error::ErrorBody), (status = 409, description = "Name taken", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<PolicyView>), ApiError> {
    user.require(Role::Member)?;
    let name = body.name.trim().to_string();
    let new = NewPolicy {
        display_name: text_field(
            "display_name",
            body.display_name.as_deref().unwrap_or(&name),
            200,
        )?,
        description: text_field(
            "description",
            body.description.as_deref().unwrap_or(""),
            2_000,
        )?,
        category: body.category,
        severity: body.severity,
        mode: body.mode.unwrap_or(PolicyMode::Permissive),
        config: config_text(body.config)?.unwrap_or_else(|| "{}".into()),
        rego: body.rego,
        builtin_id: None,
        name,
    };
    let policy = add_policy(&state, &user.0, new).await?;
    Ok((StatusCode::CREATED, Json(PolicyView::from(&policy))))
}

#[utoipa::path(get, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = i64, Path, description = "Policy id")), responses((status = 200, description = "The policy"), (status = 404, description = "No such policy", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn read(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<PolicyId>,
) -> Result<Json<PolicyView>, ApiError> {
    Ok(Json(PolicyView::from(&state.store.get_policy(id).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateBody {
    display_name: Option<String>,
    description: Option<String>,
    #[schema(value_type = Option<String>)]
    category: Option<PolicyCategory>,
    #[schema(value_type = Option<String>)]
    severity: Option<Severity>,
    #[schema(value_type = Option<String>)]
    mode: Option<PolicyMode>,
    /// The legacy toggle: `false` disables, `true` enforces a disabled policy.
    enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
    rego: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = i64, Path, description = "Policy id")), request_body = UpdateBody, responses((status = 200, description = "Updated; a new Rego text or config is a new version"), (status = 422, description = "The Rego does not compile", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<PolicyId>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<PolicyView>, ApiError> {
    user.require(Role::Member)?;
    let current = state.store.get_policy(id).await?;
    let mode = match (body.mode, body.enabled) {
        (Some(mode), _) => Some(mode),
        (None, Some(false)) => Some(PolicyMode::Disabled),
        (None, Some(true)) if current.mode == PolicyMode::Disabled => Some(PolicyMode::Enforce),
        _ => None,
    };
    let patch = PolicyPatch {
        display_name: body
            .display_name
            .as_deref()
            .map(|v| text_field("display_name", v, 200))
            .transpose()?,
        description: body
            .description
            .as_deref()
            .map(|v| text_field("description", v, 2_000))
            .transpose()?,
        category: body.category,
        severity: body.severity,
        mode,
        config: config_text(body.config)?,
        rego: body.rego,
    };
    let policy = change_policy(&state, &user.0, &current, patch).await?;
    Ok(Json(PolicyView::from(&policy)))
}

/// Compiles, saves and audits a new policy (API and web UI alike): a policy whose Rego doesn't
/// compile is never saved.
pub(crate) async fn add_policy(
    state: &AppState,
    actor: &User,
    new: NewPolicy,
) -> Result<Policy, ApiError> {
    compile(state, &new.name, &new.rego).await?;
    let policy = state.store.create_policy(new).await?;
    state
        .audit(
            Some(actor),
            "policy.created",
            Some(format!("policy:{}", policy.id)),
            json!({"name": policy.name, "mode": policy.mode.as_str()}),
            None,
        )
        .await;
    Ok(policy)
}

/// Compiles a new Rego text (under the policy's name), saves the change and audits it.
pub(crate) async fn change_policy(
    state: &AppState,
    actor: &User,
    current: &Policy,
    patch: PolicyPatch,
) -> Result<Policy, ApiError> {
    if let Some(rego) = &patch.rego {
        compile(state, &current.name, rego).await?;
    }
    let policy = state.store.update_policy(current.id, patch).await?;
    state
        .audit(
            Some(actor),
            "policy.updated",
            Some(format!("policy:{}", current.id)),
            json!({"name": policy.name, "mode": policy.mode.as_str(), "version": policy.version}),
            None,
        )
        .await;
    Ok(policy)
}

#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = i64, Path, description = "Policy id")), responses((status = 204, description = "Deleted, with its versions and violations"), (status = 404, description = "No such policy", body = crate::error::ErrorBody), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<PolicyId>,
) -> Result<StatusCode, ApiError> {
    user.require(Role::Member)?;
    let policy = state.store.get_policy(id).await?;
    state.store.delete_policy(id).await?;
    state
        .audit(
            Some(&user.0),
            "policy.deleted",
            Some(format!("policy:{id}")),
            json!({"name": policy.name}),
            None,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/policies/{id}/versions", tag = "policies", params(("id" = i64, Path, description = "Policy id")), responses((status = 200, description = "`{items: [{version, rego, config, created_at}]}`, newest first")), security(("bearer" = []), ("session_cookie" = [])))]
async fn versions(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<PolicyId>,
) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = state
        .store
        .policy_versions(id)
        .await?
        .into_iter()
        .map(|v| {
            json!({
                "version": v.version,
                "rego": v.rego,
                "config": serde_json::from_str::<Value>(&v.config).unwrap_or_else(|_| json!({})),
                "created_at": langguard_clock::format_ms(v.created_at_ms),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestBody {
    rego: String,
    /// The whole `input` document (`{trace: {…}, config: {…}}`).
    #[schema(value_type = Object)]
    input: Value,
    /// Replaces `input.config` when given.
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
}

#[utoipa::path(post, path = "/api/v1/policies/test", tag = "policies", request_body = TestBody, responses((status = 200, description = "`{violations: [result]}`"), (status = 422, description = "Doesn't compile (`invalid_rego`, with line and column) or can't be evaluated (`evaluation_error`)", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn test(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<TestBody>,
) -> Result<Json<Value>, ApiError> {
    // Running Rego is writing policy: Viewers and read-scope keys may not.
    user.require(Role::Member)?;
    let Value::Object(input) = body.input else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "input must be a JSON object (the policy's `input` document)",
        ));
    };
    let findings = run_test(&state, &body.rego, input, body.config).await?;
    let violations: Vec<Value> = findings.into_iter().map(|f| f.result).collect();
    Ok(Json(json!({ "violations": violations })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryBody {
    /// A saved policy (its current text and config unless `rego`/`config` are given)…
    pub policy_id: Option<PolicyId>,
    /// …or a new text (its package names it).
    pub rego: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// RFC 3339; default 24 hours before `to`.
    pub from: Option<String>,
    /// RFC 3339; default now.
    pub to: Option<String>,
    pub integration_id: Option<i64>,
    /// Flagged interactions returned as samples (default 10, at most 100).
    pub samples: Option<usize>,
}

/// What a backtest or re-evaluation runs: one policy, compiled, with its config.
struct Candidate {
    policy: Policy,
    scope: Scope,
}

async fn candidate(state: &AppState, body: &HistoryBody) -> Result<Candidate, ApiError> {
    let saved = match body.policy_id {
        Some(id) => Some(state.store.get_policy(id).await?),
        None => None,
    };
    let rego = match (&body.rego, &saved) {
        (Some(rego), _) => rego.clone(),
        (None, Some(p)) => p.rego.clone(),
        (None, None) => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "give policy_id (a saved policy) or rego (a new text)",
            ))
        }
    };
    let name = match &saved {
        Some(p) => p.name.clone(),
        None => declared_name(&rego).ok_or_else(|| ApiError::Unprocessable {
            code: "invalid_rego",
            message: "the Rego must declare `package langguard.<name>`".into(),
            line: None,
            column: None,
        })?,
    };
    compile(state, &name, &rego).await?;
    let config = match config_text(body.config.clone())? {
        Some(c) => c,
        None => saved
            .as_ref()
            .map_or_else(|| "{}".into(), |p| p.config.clone()),
    };
    let now = now_ms();
    let to = time_param("to", body.to.as_deref())?.unwrap_or(now);
    let from = time_param("from", body.from.as_deref())?.unwrap_or(to - 24 * 3_600_000);
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid_time",
            "from must be before to",
        ));
    }
    let policy = Policy {
        id: saved.as_ref().map_or(0, |p| p.id),
        name,
        display_name: saved
            .as_ref()
            .map_or_else(String::new, |p| p.display_name.clone()),
        description: String::new(),
        category: saved.as_ref().map_or(PolicyCategory::Audit, |p| p.category),
        severity: saved.as_ref().map_or(Severity::Medium, |p| p.severity),
        // Evaluated whatever its saved mode: that is the point of a backtest.
        mode: PolicyMode::Enforce,
        config,
        rego,
        builtin_id: None,
        version: 0,
        created_at_ms: 0,
        updated_at_ms: 0,
        quarantine_reason: None,
        quarantined_at_ms: None,
    };
    Ok(Candidate {
        policy,
        scope: Scope {
            from_ms: Some(from),
            to_ms: Some(to),
            integration_id: body.integration_id,
            ..Scope::default()
        },
    })
}

/// How far a run over history got.
struct History {
    evaluated: u64,
    /// False when the run stopped at its time limit before the end of its range.
    complete: bool,
}

/// Evaluates `candidate` over its range, a batch at a time in the policy sandbox, calling
/// `sink` with each batch's interactions and violations. Stops at the backtest time limit
/// (what was evaluated by then is kept) and refuses a policy that keeps crossing its limits.
async fn over_history(
    state: &AppState,
    candidate: &Candidate,
    mut sink: impl FnMut(&[Interaction], Vec<langguard_store::NewViolation>),
) -> Result<History, ApiError> {
    let started = std::time::Instant::now();
    let mut rows = state.store.export_traces(
        TraceFilter {
            scope: candidate.scope.clone(),
            ..TraceFilter::default()
        },
        TraceSort::Time,
        SortOrder::Asc,
    );
    let set = PolicySet::build(std::slice::from_ref(&candidate.policy));
    let mut streaks = langguard_policy::Streaks::new();
    let mut evaluated = 0u64;
    let mut pending: Vec<Interaction> = Vec::with_capacity(BATCH);
    let mut done = false;
    while !done {
        if started.elapsed() >= state.config.backtest_time_limit {
            return Ok(History {
                evaluated,
                complete: false,
            });
        }
        match rows.recv().await {
            Some(batch) => pending.extend(batch?),
            None => done = true,
        }
        if pending.len() < BATCH && !done {
            continue;
        }
        if evaluated + pending.len() as u64 > MAX_HISTORY {
            return Err(ApiError::bad_request(
                "range_too_large",
                format!("the range holds more than {MAX_HISTORY} interactions; narrow it"),
            ));
        }
        let batch = std::mem::take(&mut pending);
        if batch.is_empty() {
            continue;
        }
        let windows = if set.uses_windows() {
            spend_windows(state.store.as_ref(), &batch).await?
        } else {
            HashMap::new()
        };
        // Bodies already stored; history is never fetched from Cloudflare again.
        let bodies = batch_bodies(state.store.as_ref(), None, &batch).await?;
        let found = evaluate_batch(
            &state.sandbox,
            &set,
            &batch,
            &windows,
            &bodies,
            &mut streaks,
        )
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        if let Some(langguard_policy::Quarantine { error, .. }) =
            found.quarantine.into_iter().next()
        {
            return Err(ApiError::Unprocessable {
                code: "policy_limit_exceeded",
                message: format!(
                    "the policy crossed its limits on {} interactions in a row, so the run was \
                     stopped: {error}",
                    langguard_policy::QUARANTINE_AFTER
                ),
                line: None,
                column: None,
            });
        }
        evaluated += batch.len() as u64;
        sink(&batch, found.violations);
    }
    Ok(History {
        evaluated,
        complete: true,
    })
}

#[utoipa::path(post, path = "/api/v1/policies/backtest", tag = "policies", request_body = HistoryBody, responses((status = 200, description = "`{evaluated, flagged, violations, by_type, errors, complete, samples: [{trace, violations}]}`; nothing is stored. `complete` is false when the run reached its time limit first."), (status = 422, description = "The Rego does not compile", body = crate::error::ErrorBody), (status = 403, description = "Viewers and read-scope keys can't run policies", body = crate::error::ErrorBody), (status = 429, description = "A backtest of yours is already running, or as many as the server runs at once", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn backtest(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<HistoryBody>,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Member)?;
    Ok(Json(run_backtest(&state, &user.0, &body).await?))
}

/// A backtest's findings as the API returns them (the web UI shows the same document). One
/// per user and a few in all run at once; a client that goes away stops its run (the
/// request's future, with its sandbox process and its place, is dropped).
pub(crate) async fn run_backtest(
    state: &AppState,
    user: &User,
    body: &HistoryBody,
) -> Result<Value, ApiError> {
    let _running = state.backtests.start(user.id)?;
    let candidate = candidate(state, body).await?;
    let want_samples = body.samples.unwrap_or(10).min(100);
    let mut flagged = 0u64;
    let mut violations = 0u64;
    let mut errors = 0u64;
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut samples: Vec<Value> = Vec::new();
    let history = over_history(state, &candidate, |batch, found| {
        let mut per_interaction: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
        for v in found {
            violations += 1;
            errors += u64::from(v.kind == langguard_policy::EVALUATION_ERROR);
            *by_type.entry(v.kind.clone()).or_default() += 1;
            per_interaction
                .entry(v.interaction_id)
                .or_default()
                .push(serde_json::from_str(&v.evidence).unwrap_or(Value::Null));
        }
        flagged += per_interaction.len() as u64;
        for interaction in batch {
            if samples.len() >= want_samples {
                break;
            }
            if let Some(results) = per_interaction.remove(&interaction.id) {
                samples.push(json!({"trace": TraceItem::from(interaction), "violations": results}));
            }
        }
    })
    .await?;
    Ok(json!({
        "policy": candidate.policy.name,
        "from": candidate.scope.from_ms.map(langguard_clock::format_ms),
        "to": candidate.scope.to_ms.map(langguard_clock::format_ms),
        "evaluated": history.evaluated,
        "complete": history.complete,
        "flagged": flagged,
        "violations": violations,
        "errors": errors,
        "by_type": by_type,
        "samples": samples,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReevaluateBody {
    from: Option<String>,
    to: Option<String>,
    integration_id: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/policies/{id}/reevaluate", tag = "policies", params(("id" = i64, Path, description = "Policy id")), request_body = ReevaluateBody, responses((status = 200, description = "`{evaluated, new_violations}`: the saved policy over past interactions, storing what it finds (findings already stored are kept as they are)"), (status = 403, description = "Viewers can't write", body = crate::error::ErrorBody)), security(("bearer" = []), ("session_cookie" = [])))]
async fn reevaluate(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<PolicyId>,
    ApiJson(body): ApiJson<ReevaluateBody>,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Member)?;
    let _running = state.backtests.start(user.0.id)?;
    let mut candidate = candidate(
        &state,
        &HistoryBody {
            policy_id: Some(id),
            rego: None,
            config: None,
            from: body.from,
            to: body.to,
            integration_id: body.integration_id,
            samples: None,
        },
    )
    .await?;
    // Stored under the policy's own severity and id.
    let saved = state.store.get_policy(id).await?;
    candidate.policy.severity = saved.severity;
    let mut found_all = Vec::new();
    let history = over_history(&state, &candidate, |_, found| found_all.extend(found)).await?;
    let evaluated = history.evaluated;
    let new_violations = state.store.record_evaluations(found_all, None).await?;
    state
        .audit(
            Some(&user.0),
            "policy.reevaluated",
            Some(format!("policy:{id}")),
            json!({"evaluated": evaluated, "new_violations": new_violations.len()}),
            None,
        )
        .await;
    Ok(Json(json!({
        "evaluated": evaluated,
        "complete": history.complete,
        "new_violations": new_violations.len(),
    })))
}

#[utoipa::path(get, path = "/api/v1/policies/status", tag = "policies", responses((status = 200, description = "`{cursor, latest_interaction_id, lag, evaluated_at, policies_enabled}`: how far the policy worker has come")), security(("bearer" = []), ("session_cookie" = [])))]
async fn status(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let progress = state.store.policy_progress().await?;
    let enabled = state
        .store
        .list_policies()
        .await?
        .iter()
        .filter(|p| p.mode != PolicyMode::Disabled)
        .count();
    Ok(Json(json!({
        "cursor": progress.cursor,
        "latest_interaction_id": progress.latest_interaction_id,
        "lag": progress.lag(),
        "evaluated_at": progress.evaluated_at_ms.map(langguard_clock::format_ms),
        "policies_enabled": enabled,
    })))
}
