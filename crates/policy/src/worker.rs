//! The policy worker: evaluation as its own stage after import. It follows the interactions
//! table by id with its own cursor, so import never waits on policies, and each batch's
//! violations are stored in the same transaction that moves the cursor — a crash re-evaluates
//! at most one batch, and a finding already stored is never stored twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use langguard_store::lease::WorkerLease;
use langguard_store::{
    Bodies, Integration, Interaction, NewViolation, Policy, PolicyId, PolicyMode, Store,
    StoreResult,
};

use crate::compile::PolicyError;
use crate::input::{trace_document_with, SpendWindow, WINDOW_MINUTES};
use crate::sandbox::{EvalInput, Sandbox, SandboxPolicy, SandboxUnavailable};

/// Where request and response bodies come from when an integration wants them (Cloudflare's
/// log-body endpoints, through the integration's client and its shared rate budget).
#[async_trait::async_trait]
pub trait BodySource: Send + Sync {
    /// Bodies of these interactions of `integration`; one that can't be fetched is left out
    /// (and evaluated without bodies).
    async fn fetch(
        &self,
        integration: &Integration,
        interactions: &[Interaction],
    ) -> Vec<(i64, Bodies)>;
}

/// How often stored bodies past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

const MINUTE_MS: i64 = 60_000;

/// The `type` of the violation recorded when a policy can't be evaluated: an evaluation error
/// never counts as "no violation".
pub const EVALUATION_ERROR: &str = "policy_evaluation_error";

struct Entry {
    id: PolicyId,
    /// The version evaluated: a quarantine applies to it, not to a fix saved meanwhile.
    version: i64,
    name: String,
    severity: langguard_store::Severity,
    policy: SandboxPolicy,
    uses_windows: bool,
    uses_budgets: bool,
    uses_spend_anomaly: bool,
}

/// The policies to evaluate (every one not disabled), as the sandbox runs them.
pub struct PolicySet {
    entries: Vec<Entry>,
    /// What the set was built from; a change to any policy rebuilds it.
    built_from: Vec<(PolicyId, i64, i64)>,
}

impl PolicySet {
    pub fn build(policies: &[Policy]) -> Self {
        let entries = policies
            .iter()
            .filter(|p| p.mode != PolicyMode::Disabled)
            .map(|p| Entry {
                id: p.id,
                version: p.version,
                name: p.name.clone(),
                severity: p.severity,
                policy: SandboxPolicy::new(&p.name, &p.rego, &p.config),
                uses_windows: p.rego.contains("input.traces"),
                uses_budgets: p.rego.contains("input.budgets"),
                uses_spend_anomaly: p.rego.contains("input.spend_anomaly"),
            })
            .collect();
        Self {
            entries,
            built_from: Self::key(policies),
        }
    }

    fn key(policies: &[Policy]) -> Vec<(PolicyId, i64, i64)> {
        policies
            .iter()
            .map(|p| (p.id, p.version, p.updated_at_ms))
            .collect()
    }

    fn is_current(&self, policies: &[Policy]) -> bool {
        self.built_from == Self::key(policies)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether any policy reads rolling spend (`input.traces`).
    pub fn uses_windows(&self) -> bool {
        self.entries.iter().any(|e| e.uses_windows)
    }

    /// Whether any policy reads `input.budgets`.
    pub fn uses_budgets(&self) -> bool {
        self.entries.iter().any(|e| e.uses_budgets)
    }

    /// Whether any policy reads `input.spend_anomaly`.
    pub fn uses_spend_anomaly(&self) -> bool {
        self.entries.iter().any(|e| e.uses_spend_anomaly)
    }
}

/// What a batch's input documents add to each trace, read only when some policy uses it:
/// rolling spend (`input.traces`), budgets (`input.budgets`) and the user session
/// (`input.spend_anomaly`), by interaction id.
#[derive(Debug, Default)]
pub struct BatchContext {
    pub windows: HashMap<i64, Vec<SpendWindow>>,
    pub budgets: Option<HashMap<i64, Vec<crate::BudgetInput>>>,
    pub spend_anomaly: HashMap<i64, crate::SpendAnomalyInput>,
}

impl BatchContext {
    pub async fn load(
        store: &dyn Store,
        set: &PolicySet,
        interactions: &[Interaction],
    ) -> StoreResult<Self> {
        Ok(Self {
            windows: if set.uses_windows() {
                spend_windows(store, interactions).await?
            } else {
                HashMap::new()
            },
            budgets: if set.uses_budgets() {
                Some(crate::budgets::load(store, interactions).await?)
            } else {
                None
            },
            spend_anomaly: if set.uses_spend_anomaly() {
                crate::spend_anomaly::load(store, interactions).await?
            } else {
                HashMap::new()
            },
        })
    }
}

fn evaluation_error(
    (policy_id, name, severity): (PolicyId, &str, langguard_store::Severity),
    interaction_id: i64,
    error: &PolicyError,
) -> NewViolation {
    let message = format!("Policy \"{name}\" could not be evaluated: {error}");
    NewViolation {
        policy_id,
        interaction_id,
        severity,
        kind: EVALUATION_ERROR.to_string(),
        evidence: serde_json::json!({
            "type": EVALUATION_ERROR,
            "message": message,
            "error": error.to_string(),
        })
        .to_string(),
        message,
    }
}

/// Limit failures in a row (time or memory) after which a policy is quarantined: disabled,
/// with the reason shown, so one bad policy can't keep costing a second per interaction.
pub const QUARANTINE_AFTER: u32 = 3;

/// A policy to quarantine.
#[derive(Debug, Clone)]
pub struct Quarantine {
    pub id: PolicyId,
    pub version: i64,
    pub name: String,
    pub error: PolicyError,
}

/// Each policy version's limit failures in a row.
pub type Streaks = HashMap<(PolicyId, i64), u32>;

/// What evaluating a batch found.
#[derive(Debug, Default)]
pub struct BatchEvaluation {
    pub violations: Vec<NewViolation>,
    pub evaluations: u64,
    /// Policies that crossed their limits [`QUARANTINE_AFTER`] times in a row, with the
    /// version that did and the last error; they were not evaluated on the rest of the batch.
    pub quarantine: Vec<Quarantine>,
}

/// Evaluates every policy of `set` on every interaction, in the sandbox. `context` holds each
/// interaction's rolling spend and budgets when the set uses them; `streaks` carries each policy's limit
/// failures in a row from one batch to the next (updated only when the batch completes, so a
/// batch evaluated again counts nothing twice).
pub async fn evaluate_batch(
    sandbox: &Sandbox,
    set: &PolicySet,
    interactions: &[Interaction],
    context: &BatchContext,
    bodies: &HashMap<i64, Bodies>,
    streaks_carried: &mut Streaks,
) -> Result<BatchEvaluation, SandboxUnavailable> {
    let mut streaks: Streaks = set
        .entries
        .iter()
        .map(|e| {
            let key = (e.id, e.version);
            (key, streaks_carried.get(&key).copied().unwrap_or(0))
        })
        .collect();
    let mut out = BatchEvaluation::default();
    let mut active: Vec<&Entry> = set.entries.iter().collect();
    let mut policies: Vec<SandboxPolicy> = active.iter().map(|e| e.policy.clone()).collect();
    let mut session = sandbox.session().await?;
    for interaction in interactions {
        if active.is_empty() {
            break;
        }
        let b = bodies.get(&interaction.id);
        let trace = trace_document_with(
            interaction,
            b.and_then(|b| b.request.as_deref()),
            b.and_then(|b| b.response.as_deref()),
        );
        let results = session
            .evaluate(
                &policies,
                EvalInput::Trace {
                    trace,
                    windows: context.windows.get(&interaction.id).cloned(),
                    budgets: context
                        .budgets
                        .as_ref()
                        .map(|b| b.get(&interaction.id).cloned().unwrap_or_default()),
                    spend_anomaly: context.spend_anomaly.get(&interaction.id).cloned(),
                },
            )
            .await?;
        let mut quarantined = Vec::new();
        for (entry, result) in active.iter().zip(results) {
            out.evaluations += 1;
            let streak = streaks.entry((entry.id, entry.version)).or_default();
            match result {
                Ok(findings) => {
                    *streak = 0;
                    out.violations
                        .extend(findings.into_iter().map(|f| NewViolation {
                            policy_id: entry.id,
                            interaction_id: interaction.id,
                            severity: entry.severity,
                            kind: f.kind,
                            message: f.message,
                            evidence: f.result.to_string(),
                        }));
                }
                Err(e) => {
                    *streak = if e.is_limit() { *streak + 1 } else { 0 };
                    let who = (entry.id, entry.name.as_str(), entry.severity);
                    out.violations
                        .push(evaluation_error(who, interaction.id, &e));
                    if *streak >= QUARANTINE_AFTER {
                        quarantined.push(entry.id);
                        *streak = 0;
                        out.quarantine.push(Quarantine {
                            id: entry.id,
                            version: entry.version,
                            name: entry.name.clone(),
                            error: e,
                        });
                    }
                }
            }
        }
        if !quarantined.is_empty() {
            active.retain(|e| !quarantined.contains(&e.id));
            policies = active.iter().map(|e| e.policy.clone()).collect();
        }
    }
    session.finish();
    // Only policies in the set are carried: a changed policy starts its count again.
    *streaks_carried = streaks;
    Ok(out)
}

/// Rolling spend ending at each interaction's minute (its integration's traffic, from the
/// minute rollups; the interaction's own minute counts whole).
pub async fn spend_windows(
    store: &dyn Store,
    interactions: &[Interaction],
) -> StoreResult<HashMap<i64, Vec<SpendWindow>>> {
    let longest = WINDOW_MINUTES.iter().copied().max().unwrap_or(0) * MINUTE_MS;
    let mut by_integration: HashMap<i64, Vec<&Interaction>> = HashMap::new();
    for i in interactions {
        by_integration.entry(i.integration_id).or_default().push(i);
    }
    let mut out = HashMap::new();
    for (integration, rows) in by_integration {
        let minute = |i: &Interaction| i.log.created_at_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        let first = rows.iter().map(|i| minute(i)).min().unwrap_or(0);
        let last = rows.iter().map(|i| minute(i)).max().unwrap_or(0);
        let spend = store
            .minute_spend(integration, first - longest + MINUTE_MS, last + MINUTE_MS)
            .await?;
        // Prefix sums over the minutes, so each window is two lookups.
        let mut prefix: Vec<(i64, f64, i64, i64)> = Vec::with_capacity(spend.len() + 1);
        let mut total = (0.0, 0i64, 0i64);
        for m in &spend {
            total = (
                total.0 + m.cost_usd,
                total.1 + m.requests,
                total.2 + m.tokens,
            );
            prefix.push((m.minute_ms, total.0, total.1, total.2));
        }
        // Sums of minutes `<= at`.
        let upto = |at: i64| -> (f64, i64, i64) {
            let n = prefix.partition_point(|p| p.0 <= at);
            n.checked_sub(1)
                .map(|k| (prefix[k].1, prefix[k].2, prefix[k].3))
                .unwrap_or((0.0, 0, 0))
        };
        for i in rows {
            let end = minute(i);
            let windows = WINDOW_MINUTES
                .iter()
                .map(|&minutes| {
                    let (c1, r1, t1) = upto(end);
                    let (c0, r0, t0) = upto(end - minutes * MINUTE_MS);
                    SpendWindow {
                        minutes,
                        cost_usd: c1 - c0,
                        requests: r1 - r0,
                        tokens: t1 - t0,
                    }
                })
                .collect();
            out.insert(i.id, windows);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Interactions per batch (one transaction of violations plus the cursor).
    pub batch: u32,
    /// Wait between looks when there is nothing new.
    pub idle_wait: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch: 2_000,
            idle_wait: Duration::from_secs(1),
        }
    }
}

/// What one pass of the worker did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pass {
    pub interactions: usize,
    pub evaluations: u64,
    /// Ids of the violations stored for the first time.
    pub new_violations: Vec<i64>,
}

pub struct PolicyWorker {
    store: Arc<dyn Store>,
    config: WorkerConfig,
    set: Option<PolicySet>,
    bodies: Option<Arc<dyn BodySource>>,
    pruned_at: Option<std::time::Instant>,
    /// Of several instances on one database, the one holding this evaluates.
    lease: Option<WorkerLease>,
    sandbox: Sandbox,
    /// Each policy version's limit failures in a row (see [`QUARANTINE_AFTER`]).
    streaks: Streaks,
}

/// Stored bodies of the batch's interactions, fetching (and storing) the ones their
/// integration wants and `source` can get.
pub async fn batch_bodies(
    store: &dyn Store,
    source: Option<&dyn BodySource>,
    interactions: &[Interaction],
) -> StoreResult<HashMap<i64, Bodies>> {
    let integrations: HashMap<i64, Integration> = store
        .list_integrations()
        .await?
        .into_iter()
        .map(|i| (i.id, i))
        .collect();
    let wanted: Vec<&Interaction> = interactions
        .iter()
        .filter(|i| {
            integrations
                .get(&i.integration_id)
                .is_some_and(|integration| integration.bodies.wants(&i.log.log_id))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let mut bodies = store.bodies(wanted.iter().map(|i| i.id).collect()).await?;
    let Some(source) = source else {
        return Ok(bodies);
    };
    let mut missing: HashMap<i64, Vec<Interaction>> = HashMap::new();
    for i in wanted.into_iter().filter(|i| !bodies.contains_key(&i.id)) {
        missing.entry(i.integration_id).or_default().push(i.clone());
    }
    for (integration_id, rows) in missing {
        let Some(integration) = integrations.get(&integration_id) else {
            continue;
        };
        let fetched = source.fetch(integration, &rows).await;
        store
            .store_bodies(
                fetched
                    .iter()
                    .map(|(id, b)| (*id, integration_id, b.clone()))
                    .collect(),
            )
            .await?;
        bodies.extend(fetched);
    }
    Ok(bodies)
}

impl PolicyWorker {
    /// A worker evaluating in `sandbox` (its own: a worker waiting behind editors' Test runs
    /// would fall behind).
    pub fn new(store: Arc<dyn Store>, config: WorkerConfig, sandbox: Sandbox) -> Self {
        Self {
            store,
            config,
            set: None,
            bodies: None,
            pruned_at: None,
            lease: None,
            sandbox,
            streaks: HashMap::new(),
        }
    }

    /// Fetches bodies for the integrations that want them from `source`.
    pub fn with_bodies(mut self, source: Arc<dyn BodySource>) -> Self {
        self.bodies = Some(source);
        self
    }

    /// Evaluates only while holding `lease` (several instances on one database share the
    /// work: one evaluates, the others stand by to take over).
    pub fn with_lease(mut self, lease: WorkerLease) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Deletes stored bodies past their retention, at most every ten minutes.
    async fn prune(&mut self) {
        if self.pruned_at.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
            return;
        }
        self.pruned_at = Some(std::time::Instant::now());
        let now = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
            .unwrap_or(i64::MAX);
        match self.store.prune_bodies(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(bodies = n, "deleted bodies past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not delete old bodies"),
        }
    }

    /// Evaluates the next batch after the cursor. With no policy enabled the cursor still moves:
    /// a policy switched on later applies to new interactions (history is re-evaluated on
    /// demand, through a backtest).
    pub async fn run_once(&mut self) -> StoreResult<Pass> {
        let progress = self.store.policy_progress().await?;
        metrics::gauge!("langguard_policy_lag_interactions").set(progress.lag() as f64);
        if progress.lag() == 0 {
            return Ok(Pass::default());
        }
        let interactions = self
            .store
            .interactions_after(progress.cursor, self.config.batch)
            .await?;
        let Some(last) = interactions.last().map(|i| i.id) else {
            return Ok(Pass::default());
        };
        let policies = self.store.list_policies().await?;
        let set = match self.set.take() {
            Some(set) if set.is_current(&policies) => set,
            _ => PolicySet::build(&policies),
        };
        let context = BatchContext::load(self.store.as_ref(), &set, &interactions).await?;
        let bodies = if set.is_empty() {
            HashMap::new()
        } else {
            batch_bodies(self.store.as_ref(), self.bodies.as_deref(), &interactions).await?
        };
        let count = interactions.len();
        let evaluated = evaluate_batch(
            &self.sandbox,
            &set,
            &interactions,
            &context,
            &bodies,
            &mut self.streaks,
        )
        .await
        // The batch is evaluated again once the sandbox works: nothing is recorded without it.
        .map_err(|e| langguard_store::StoreError::Database(e.to_string().into()))?;
        self.set = Some(set);
        let found = evaluated.violations;
        let evaluations = evaluated.evaluations;
        let errors = found.iter().filter(|v| v.kind == EVALUATION_ERROR).count();
        if let Some(first) = found.iter().find(|v| v.kind == EVALUATION_ERROR) {
            tracing::warn!(
                errors,
                example = %first.message,
                "policies could not be evaluated on some interactions; recorded as policy_evaluation_error violations"
            );
        }
        // Counted before the cursor moves, so whoever sees the worker caught up sees its count
        // (a batch whose recording fails is evaluated, and counted, again: it was done twice).
        metrics::counter!("langguard_policy_evaluations_total").increment(evaluations);
        metrics::counter!("langguard_policy_evaluation_errors_total").increment(errors as u64);
        let new_violations = self.store.record_evaluations(found, Some(last)).await?;
        for q in evaluated.quarantine {
            self.quarantine(&q).await?;
        }
        metrics::counter!("langguard_violations_recorded_total")
            .increment(new_violations.len() as u64);
        Ok(Pass {
            interactions: count,
            evaluations,
            new_violations,
        })
    }

    /// Disables a policy that keeps crossing its limits, says why on the policy, in the audit
    /// log and to webhooks subscribed to `policy.quarantined`.
    async fn quarantine(&mut self, q: &Quarantine) -> StoreResult<()> {
        let (id, name, error) = (q.id, q.name.as_str(), &q.error);
        let reason = format!(
            "quarantined after {QUARANTINE_AFTER} evaluations in a row crossed its limits: {error}"
        );
        let event = langguard_store::OutgoingEvent::new(
            langguard_store::WebhookEvent::PolicyQuarantined,
            serde_json::json!({"policyId": id, "policyName": name, "reason": reason}),
            None,
        );
        if self
            .store
            .quarantine_policy(id, q.version, &reason, event)
            .await?
            .is_none()
        {
            return Ok(()); // disabled, changed or deleted meanwhile
        }
        tracing::error!(policy = name, %reason, "policy quarantined (mode set to disabled)");
        metrics::counter!("langguard_policies_quarantined_total").increment(1);
        let entry = langguard_store::NewAuditEntry {
            user_id: None,
            user_email: None,
            action: "policy.quarantined".into(),
            resource: Some(format!("policy:{id}")),
            details: serde_json::json!({"name": name, "reason": reason}),
            address: None,
        };
        if let Err(e) = self.store.record_audit(entry).await {
            tracing::error!(error = %e, "could not write the audit log");
        }
        Ok(())
    }

    /// Evaluates until nothing is left (what a CLI run or a test needs).
    pub async fn catch_up(&mut self) -> StoreResult<Pass> {
        let mut total = Pass::default();
        loop {
            let pass = self.run_once().await?;
            if pass.interactions == 0 {
                return Ok(total);
            }
            total.interactions += pass.interactions;
            total.evaluations += pass.evaluations;
            total.new_violations.extend(pass.new_violations);
        }
    }

    /// Runs until `stop` turns true. Webhook events for new violations are queued with them, in
    /// the same transaction. A failing pass is logged and retried after the idle wait.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                if let Some(lease) = &mut self.lease {
                    lease.release(self.store.as_ref()).await;
                }
                return;
            }
            if let Some(lease) = &mut self.lease {
                if !lease.hold(self.store.as_ref()).await {
                    tokio::select! {
                        _ = tokio::time::sleep(lease.retry_after()) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            }
            self.prune().await;
            let wait = match self.run_once().await {
                Ok(pass) if pass.interactions > 0 => Duration::ZERO,
                Ok(_) => self.config.idle_wait,
                Err(e) => {
                    tracing::warn!(error = %e, "policy evaluation pass failed; retrying");
                    self.config.idle_wait
                }
            };
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}
