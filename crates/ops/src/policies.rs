//! Policies: save (compiled first, so Rego that doesn't compile is never stored), test on one
//! sample input, backtest over history (nothing stored), re-evaluate history (findings
//! stored), and the policy worker's progress. All Rego runs in the policy sandbox.

use std::collections::BTreeMap;

use langguard_policy::history::{self, Candidate, HistoryError};
use langguard_policy::{
    declared_name, CompileFailure, Compiled, EvalInput, Finding, PolicyError, SandboxPolicy,
};
use langguard_store::{
    NewPolicy, Policy, PolicyCategory, PolicyId, PolicyMode, PolicyPatch, Scope, Severity, User,
};
use serde::Serialize;
use serde_json::{json, Value};
use tracing::instrument;

use crate::views::TraceItem;
use crate::{Actor, OpsError, OpsResult, Services};

/// Installs the built-in policies that were never installed (first start, or a LangGuard that
/// ships a new one); an admin's deletion of one is respected.
pub async fn install_builtins(store: &dyn langguard_store::Store) -> OpsResult<()> {
    let created = store
        .install_builtins(langguard_policy::builtin_policies())
        .await?;
    for policy in created {
        tracing::info!(policy = %policy.name, mode = policy.mode.as_str(), "installed built-in policy");
    }
    Ok(())
}

/// Compiles `rego` as the policy `name` in the sandbox, with the checks a save runs.
pub async fn compile(ops: &Services, name: &str, rego: &str) -> OpsResult<Compiled> {
    ops.sandbox
        .compile(&SandboxPolicy::new(name, rego, "{}"))
        .await
        .map_err(|e| match e {
            CompileFailure::Policy(e) => e.into(),
            CompileFailure::Unavailable(e) => OpsError::Unavailable(e.to_string()),
        })
}

fn package_name(rego: &str) -> OpsResult<String> {
    declared_name(rego).ok_or_else(|| {
        OpsError::unprocessable(
            "invalid_rego",
            "the Rego must declare `package langguard.<name>`",
        )
    })
}

/// A config as stored: the text of a JSON object.
fn config_text(config: Option<Value>) -> OpsResult<Option<String>> {
    match config {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(Value::Object(map).to_string())),
        Some(_) => Err(PolicyError::InvalidConfig.into()),
    }
}

fn text_field(name: &str, value: &str, max: usize) -> OpsResult<String> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(OpsError::invalid(
            "invalid_body",
            format!("{name} is longer than {max} characters"),
        ));
    }
    Ok(value.to_string())
}

/// The editor's Test: `rego` on one sample `input` document. `config` replaces
/// `input.config` when given.
#[instrument(skip_all)]
pub async fn test(
    ops: &Services,
    rego: &str,
    mut input: serde_json::Map<String, Value>,
    config: Option<Value>,
) -> OpsResult<Vec<Finding>> {
    let name = package_name(rego)?;
    if let Some(config) = config {
        input.insert("config".into(), config);
    }
    input.entry("config").or_insert_with(|| json!({}));
    let policy = SandboxPolicy::new(&name, rego, "{}");
    let outcome = ops
        .sandbox
        .evaluate(
            std::slice::from_ref(&policy),
            vec![EvalInput::Document(Value::Object(input))],
        )
        .await
        .map_err(|e| OpsError::Unavailable(e.to_string()))?;
    outcome
        .into_iter()
        .flatten()
        .next()
        .unwrap_or_else(|| {
            Err(PolicyError::Evaluation(
                "the sandbox returned nothing".into(),
            ))
        })
        .map_err(OpsError::from)
}

/// What Test found: the policy's results as it returned them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyTestView {
    /// Each `{type, message, …}` the policy's `violation` rule produced.
    #[schema(value_type = Vec<Object>)]
    pub violations: Vec<Value>,
}

/// A new policy.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    /// lowercase_underscores; the Rego must declare `package langguard.<name>`.
    pub name: String,
    /// Defaults to the name.
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub category: PolicyCategory,
    pub severity: Severity,
    /// Defaults to `permissive`.
    pub mode: Option<PolicyMode>,
    /// `input.config` (an object).
    pub config: Option<Value>,
    pub rego: String,
}

/// Checks, compiles, saves and audits a new policy.
#[instrument(skip_all, fields(name = %input.name))]
pub async fn add(ops: &Services, actor: Actor<'_>, input: PolicyInput) -> OpsResult<Policy> {
    let name = input.name.trim().to_string();
    let new = NewPolicy {
        display_name: text_field(
            "display_name",
            input
                .display_name
                .as_deref()
                .filter(|d| !d.trim().is_empty())
                .unwrap_or(&name),
            200,
        )?,
        description: text_field(
            "description",
            input.description.as_deref().unwrap_or(""),
            2_000,
        )?,
        category: input.category,
        severity: input.severity,
        mode: input.mode.unwrap_or(PolicyMode::Permissive),
        config: config_text(input.config)?.unwrap_or_else(|| "{}".into()),
        rego: input.rego,
        builtin_id: None,
        name,
    };
    compile(ops, &new.name, &new.rego).await?;
    let policy = ops.store.create_policy(new).await?;
    ops.audit(
        actor,
        "policy.created",
        Some(format!("policy:{}", policy.id)),
        json!({"name": policy.name, "mode": policy.mode.as_str()}),
        None,
    )
    .await;
    Ok(policy)
}

/// A change to a policy; `None` leaves a field as it is. A new Rego text or config is a new
/// version.
#[derive(Debug, Clone, Default)]
pub struct PolicyChange {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub category: Option<PolicyCategory>,
    pub severity: Option<Severity>,
    pub mode: Option<PolicyMode>,
    /// The legacy toggle: `false` disables, `true` enforces a disabled policy.
    pub enabled: Option<bool>,
    pub config: Option<Value>,
    pub rego: Option<String>,
}

/// Checks a change, compiles a new Rego text (under the policy's name), saves and audits it.
#[instrument(skip_all, fields(policy_id = id))]
pub async fn change(
    ops: &Services,
    actor: Actor<'_>,
    id: PolicyId,
    change: PolicyChange,
) -> OpsResult<Policy> {
    let current = ops.store.get_policy(id).await?;
    let mode = match (change.mode, change.enabled) {
        (Some(mode), _) => Some(mode),
        (None, Some(false)) => Some(PolicyMode::Disabled),
        (None, Some(true)) if current.mode == PolicyMode::Disabled => Some(PolicyMode::Enforce),
        _ => None,
    };
    let patch = PolicyPatch {
        display_name: change
            .display_name
            .as_deref()
            .map(|v| text_field("display_name", v, 200))
            .transpose()?,
        description: change
            .description
            .as_deref()
            .map(|v| text_field("description", v, 2_000))
            .transpose()?,
        category: change.category,
        severity: change.severity,
        mode,
        config: config_text(change.config)?,
        rego: change.rego,
    };
    if let Some(rego) = &patch.rego {
        compile(ops, &current.name, rego).await?;
    }
    let policy = ops.store.update_policy(id, patch).await?;
    ops.audit(
        actor,
        "policy.updated",
        Some(format!("policy:{id}")),
        json!({"name": policy.name, "mode": policy.mode.as_str(), "version": policy.version}),
        None,
    )
    .await;
    Ok(policy)
}

/// Deletes a policy with its versions and violations.
#[instrument(skip_all, fields(policy_id = id))]
pub async fn remove(ops: &Services, actor: Actor<'_>, id: PolicyId) -> OpsResult<Policy> {
    let policy = ops.store.get_policy(id).await?;
    ops.store.delete_policy(id).await?;
    ops.audit(
        actor,
        "policy.deleted",
        Some(format!("policy:{id}")),
        json!({"name": policy.name}),
        None,
    )
    .await;
    Ok(policy)
}

/// One saved version of a policy.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyVersionView {
    pub version: i64,
    pub rego: String,
    #[schema(value_type = Object)]
    pub config: Value,
    pub created_at: String,
}

/// A policy's versions, newest first.
pub async fn versions(ops: &Services, id: PolicyId) -> OpsResult<Vec<PolicyVersionView>> {
    Ok(ops
        .store
        .policy_versions(id)
        .await?
        .into_iter()
        .map(|v| PolicyVersionView {
            version: v.version,
            rego: v.rego,
            config: serde_json::from_str::<Value>(&v.config).unwrap_or_else(|_| json!({})),
            created_at: langguard_clock::format_ms(v.created_at_ms),
        })
        .collect())
}

/// What a backtest or re-evaluation runs over.
#[derive(Debug, Clone, Default)]
pub struct HistoryRequest {
    /// A saved policy (its current text and config unless `rego`/`config` are given)…
    pub policy_id: Option<PolicyId>,
    /// …or a new text (its package names it).
    pub rego: Option<String>,
    pub config: Option<Value>,
    /// Default: 24 hours before `to_ms`.
    pub from_ms: Option<i64>,
    /// Default: now.
    pub to_ms: Option<i64>,
    pub integration_id: Option<i64>,
    /// Flagged interactions returned as samples (default 10, at most 100).
    pub samples: Option<usize>,
}

/// The candidate a request describes, compiled.
async fn candidate(ops: &Services, request: &HistoryRequest) -> OpsResult<Candidate> {
    let saved = match request.policy_id {
        Some(id) => Some(ops.store.get_policy(id).await?),
        None => None,
    };
    let rego = match (&request.rego, &saved) {
        (Some(rego), _) => rego.clone(),
        (None, Some(p)) => p.rego.clone(),
        (None, None) => {
            return Err(OpsError::invalid(
                "invalid_body",
                "give policy_id (a saved policy) or rego (a new text)",
            ))
        }
    };
    let name = match &saved {
        Some(p) => p.name.clone(),
        None => package_name(&rego)?,
    };
    compile(ops, &name, &rego).await?;
    let config = config_text(request.config.clone())?;
    let to = request.to_ms.unwrap_or_else(langguard_clock::now_ms);
    let from = request.from_ms.unwrap_or(to - 24 * 3_600_000);
    if from >= to {
        return Err(OpsError::invalid("invalid_time", "from must be before to"));
    }
    let scope = Scope {
        from_ms: Some(from),
        to_ms: Some(to),
        integration_id: request.integration_id,
        ..Scope::default()
    };
    Ok(Candidate::new(saved.as_ref(), name, rego, config, scope))
}

fn history_error(e: HistoryError) -> OpsError {
    match e {
        HistoryError::Store(e) => e.into(),
        HistoryError::TooLarge => OpsError::invalid("range_too_large", e.to_string()),
        HistoryError::Limits(_) => OpsError::unprocessable("policy_limit_exceeded", e.to_string()),
        HistoryError::Unavailable(message) => OpsError::Unavailable(message),
    }
}

/// A flagged interaction and the policy's results on it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BacktestSampleView {
    pub trace: TraceItem,
    /// The policy's results as it returned them (`{type, message, …}`).
    #[schema(value_type = Vec<Object>)]
    pub violations: Vec<Value>,
}

/// What a backtest found; nothing is stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BacktestView {
    pub policy: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub evaluated: u64,
    /// False when the run reached its time limit before the end of its range.
    pub complete: bool,
    /// Interactions with at least one violation.
    pub flagged: u64,
    pub violations: u64,
    /// Evaluations that failed.
    pub errors: u64,
    pub by_type: BTreeMap<String, u64>,
    pub samples: Vec<BacktestSampleView>,
}

/// Runs a policy over history and reports what it would have flagged. One run per user and a
/// few in all at once; dropping the future (a client that goes away) stops the run and frees
/// its place.
#[instrument(skip_all, fields(user_id = user.id, policy_id = ?request.policy_id))]
pub async fn backtest(
    ops: &Services,
    user: &User,
    request: &HistoryRequest,
) -> OpsResult<BacktestView> {
    let _running = ops.backtests.start(user.id)?;
    let candidate = candidate(ops, request).await?;
    let report = history::backtest(
        ops.store.as_ref(),
        &ops.sandbox,
        &candidate,
        ops.config.backtest_time_limit,
        request.samples.unwrap_or(10).min(100),
    )
    .await
    .map_err(history_error)?;
    Ok(BacktestView {
        policy: report.policy,
        from: report.from_ms.map(langguard_clock::format_ms),
        to: report.to_ms.map(langguard_clock::format_ms),
        evaluated: report.progress.evaluated,
        complete: report.progress.complete,
        flagged: report.flagged,
        violations: report.violations,
        errors: report.errors,
        by_type: report.by_type,
        samples: report
            .samples
            .into_iter()
            .map(|s| BacktestSampleView {
                trace: TraceItem::from(&s.interaction),
                violations: s.results,
            })
            .collect(),
    })
}

/// What a re-evaluation stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReevaluationView {
    pub evaluated: u64,
    /// False when the run reached its time limit before the end of its range.
    pub complete: bool,
    /// Findings stored; ones already stored are kept as they are.
    pub new_violations: usize,
}

/// Runs a saved policy over past interactions and stores what it finds, under the policy's
/// own id and severity.
#[instrument(skip_all, fields(user_id = user.id, policy_id = id))]
pub async fn reevaluate(
    ops: &Services,
    user: &User,
    id: PolicyId,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    integration_id: Option<i64>,
) -> OpsResult<ReevaluationView> {
    let _running = ops.backtests.start(user.id)?;
    let request = HistoryRequest {
        policy_id: Some(id),
        from_ms,
        to_ms,
        integration_id,
        ..HistoryRequest::default()
    };
    let mut candidate = candidate(ops, &request).await?;
    let saved = ops.store.get_policy(id).await?;
    candidate.policy.severity = saved.severity;
    let mut found_all = Vec::new();
    let progress = history::over_history(
        ops.store.as_ref(),
        &ops.sandbox,
        &candidate,
        ops.config.backtest_time_limit,
        |_, found| found_all.extend(found),
    )
    .await
    .map_err(history_error)?;
    let new_violations = ops.store.record_evaluations(found_all, None).await?;
    ops.audit(
        Actor::User(user),
        "policy.reevaluated",
        Some(format!("policy:{id}")),
        json!({"evaluated": progress.evaluated, "new_violations": new_violations.len()}),
        None,
    )
    .await;
    Ok(ReevaluationView {
        evaluated: progress.evaluated,
        complete: progress.complete,
        new_violations: new_violations.len(),
    })
}

/// How far the policy worker has come.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyStatusView {
    pub cursor: i64,
    pub latest_interaction_id: i64,
    /// Interactions not yet evaluated.
    pub lag: i64,
    pub evaluated_at: Option<String>,
    pub policies_enabled: usize,
}

pub async fn status(ops: &Services) -> OpsResult<PolicyStatusView> {
    let progress = ops.store.policy_progress().await?;
    let enabled = ops
        .store
        .list_policies()
        .await?
        .iter()
        .filter(|p| p.mode != PolicyMode::Disabled)
        .count();
    Ok(PolicyStatusView {
        cursor: progress.cursor,
        latest_interaction_id: progress.latest_interaction_id,
        lag: progress.lag(),
        evaluated_at: progress.evaluated_at_ms.map(langguard_clock::format_ms),
        policies_enabled: enabled,
    })
}
