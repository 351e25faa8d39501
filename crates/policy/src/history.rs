//! A policy over stored history: the candidate a backtest or re-evaluation runs (a saved
//! policy, or a new text, evaluated whatever its saved mode), and the pass over a time range a
//! batch at a time in the sandbox. Bodies come from the store only; history is never fetched
//! from Cloudflare again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use langguard_store::{
    Interaction, NewViolation, Policy, PolicyCategory, PolicyMode, Scope, Severity, SortOrder,
    Store, StoreError, TraceFilter, TraceSort,
};

use crate::{
    batch_bodies, evaluate_batch, BatchContext, PolicySet, Quarantine, Sandbox, Streaks,
    EVALUATION_ERROR, QUARANTINE_AFTER,
};

/// Most interactions one backtest or re-evaluation reads.
pub const MAX_HISTORY: u64 = 1_000_000;
/// Interactions evaluated per sandbox batch.
const BATCH: usize = 2_000;

/// Why a pass over history stopped.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the range holds more than {MAX_HISTORY} interactions; narrow it")]
    TooLarge,
    /// The policy crossed its limits on [`QUARANTINE_AFTER`] interactions in a row.
    #[error(
        "the policy crossed its limits on {QUARANTINE_AFTER} interactions in a row, so the run \
         was stopped: {0}"
    )]
    Limits(String),
    #[error("the policy sandbox is not available: {0}")]
    Unavailable(String),
}

/// One policy, with its config and the range it runs over.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub policy: Policy,
    pub scope: Scope,
}

impl Candidate {
    /// `rego` and `config` (JSON object text) as the policy `name`, or as the saved policy's
    /// when they are `None`; always evaluated, whatever the saved mode — that is the point of
    /// a backtest. The caller has compiled the text.
    pub fn new(
        saved: Option<&Policy>,
        name: String,
        rego: String,
        config: Option<String>,
        scope: Scope,
    ) -> Self {
        let policy = Policy {
            id: saved.map_or(0, |p| p.id),
            name,
            display_name: saved.map_or_else(String::new, |p| p.display_name.clone()),
            description: String::new(),
            category: saved.map_or(PolicyCategory::Audit, |p| p.category),
            severity: saved.map_or(Severity::Medium, |p| p.severity),
            mode: PolicyMode::Enforce,
            config: config
                .unwrap_or_else(|| saved.map_or_else(|| "{}".into(), |p| p.config.clone())),
            rego,
            builtin_id: None,
            version: 0,
            created_at_ms: 0,
            updated_at_ms: 0,
            quarantine_reason: None,
            quarantined_at_ms: None,
        };
        Self { policy, scope }
    }
}

/// How far a pass over history got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub evaluated: u64,
    /// False when the pass stopped at its time limit before the end of its range.
    pub complete: bool,
}

/// Evaluates `candidate` over its range in time order, calling `sink` with each batch's
/// interactions and violations. Stops at `time_limit` (what was evaluated by then counts) and
/// refuses a policy that keeps crossing its limits.
pub async fn over_history(
    store: &dyn Store,
    sandbox: &Sandbox,
    candidate: &Candidate,
    time_limit: Duration,
    mut sink: impl FnMut(&[Interaction], Vec<NewViolation>),
) -> Result<Progress, HistoryError> {
    let started = Instant::now();
    let mut rows = store.export_traces(
        TraceFilter {
            scope: candidate.scope.clone(),
            ..TraceFilter::default()
        },
        TraceSort::Time,
        SortOrder::Asc,
    );
    let set = PolicySet::build(std::slice::from_ref(&candidate.policy));
    let mut streaks = Streaks::new();
    let mut evaluated = 0u64;
    let mut pending: Vec<Interaction> = Vec::with_capacity(BATCH);
    let mut done = false;
    while !done {
        if started.elapsed() >= time_limit {
            return Ok(Progress {
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
            return Err(HistoryError::TooLarge);
        }
        let batch = std::mem::take(&mut pending);
        if batch.is_empty() {
            continue;
        }
        let context = BatchContext::load(store, &set, &batch).await?;
        let bodies = batch_bodies(store, None, &batch).await?;
        let found = evaluate_batch(sandbox, &set, &batch, &context, &bodies, &mut streaks)
            .await
            .map_err(|e| HistoryError::Unavailable(e.to_string()))?;
        if let Some(Quarantine { error, .. }) = found.quarantine.into_iter().next() {
            return Err(HistoryError::Limits(error.to_string()));
        }
        evaluated += batch.len() as u64;
        sink(&batch, found.violations);
    }
    Ok(Progress {
        evaluated,
        complete: true,
    })
}

/// A flagged interaction and the policy's results on it.
#[derive(Debug, Clone)]
pub struct BacktestSample {
    pub interaction: Interaction,
    /// The policy's findings as it returned them (`{type, message, …}`).
    pub results: Vec<serde_json::Value>,
}

/// What a backtest found; nothing is stored.
#[derive(Debug, Clone)]
pub struct BacktestReport {
    pub policy: String,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub progress: Progress,
    /// Interactions with at least one violation.
    pub flagged: u64,
    pub violations: u64,
    /// Evaluations that failed (counted among `violations` as `evaluation_error`).
    pub errors: u64,
    pub by_type: BTreeMap<String, u64>,
    pub samples: Vec<BacktestSample>,
}

/// Runs `candidate` over its range and reports what it would have flagged, with up to
/// `want_samples` flagged interactions in time order.
pub async fn backtest(
    store: &dyn Store,
    sandbox: &Sandbox,
    candidate: &Candidate,
    time_limit: Duration,
    want_samples: usize,
) -> Result<BacktestReport, HistoryError> {
    let mut report = BacktestReport {
        policy: candidate.policy.name.clone(),
        from_ms: candidate.scope.from_ms,
        to_ms: candidate.scope.to_ms,
        progress: Progress {
            evaluated: 0,
            complete: true,
        },
        flagged: 0,
        violations: 0,
        errors: 0,
        by_type: BTreeMap::new(),
        samples: Vec::new(),
    };
    report.progress = over_history(store, sandbox, candidate, time_limit, |batch, found| {
        let mut per_interaction: BTreeMap<i64, Vec<serde_json::Value>> = BTreeMap::new();
        for v in found {
            report.violations += 1;
            report.errors += u64::from(v.kind == EVALUATION_ERROR);
            *report.by_type.entry(v.kind.clone()).or_default() += 1;
            per_interaction
                .entry(v.interaction_id)
                .or_default()
                .push(serde_json::from_str(&v.evidence).unwrap_or(serde_json::Value::Null));
        }
        report.flagged += per_interaction.len() as u64;
        for interaction in batch {
            if report.samples.len() >= want_samples {
                break;
            }
            if let Some(results) = per_interaction.remove(&interaction.id) {
                report.samples.push(BacktestSample {
                    interaction: interaction.clone(),
                    results,
                });
            }
        }
    })
    .await?;
    Ok(report)
}
