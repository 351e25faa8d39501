//! Governance policies: Rego evaluated with regorus against PRODUCT-SPEC §4's `input` document,
//! the built-in policies LangGuard ships, and the worker that evaluates every stored
//! interaction after import.
//!
//! The contract, the same as the hosted product's so existing policies run unchanged:
//! `package langguard.<name>`, rules `violation contains result if {…}` (or the legacy
//! `violation[result] {…}`), results `{type, message, …evidence}`, queried as
//! `data.langguard.<name>.violation`; thresholds come from `input.config`.

pub mod budgets;
mod builtins;
mod compile;
pub mod history;
mod input;
pub mod sandbox;
pub mod spend_anomaly;
mod telemetry;
mod worker;

/// Rego values (inputs and configs) as the engine takes them.
pub use regorus::Value as RegoValue;

pub use budgets::BudgetInput;
pub use builtins::{builtin_policies, Builtin, BUILTINS};
pub use compile::{
    declared_name, validate_name, CompiledPolicy, Finding, LimitKind, PolicyError, EVALUATION_LIMIT,
};
pub use input::{
    config_value, input_document, input_document_with, trace_document, trace_document_with,
    SpendWindow, WINDOW_MINUTES,
};
pub use sandbox::{
    serve_if_child, CompileFailure, Compiled, EvalInput, Sandbox, SandboxConfig, SandboxPolicy,
    SandboxUnavailable, DEFAULT_MEMORY_LIMIT_MIB,
};
pub use spend_anomaly::SpendAnomalyInput;
pub use telemetry::describe_metrics;
pub use worker::{
    batch_bodies, evaluate_batch, spend_windows, BatchContext, BatchEvaluation, BodySource, Pass,
    PolicySet, PolicyWorker, Quarantine, Streaks, WorkerConfig, EVALUATION_ERROR, QUARANTINE_AFTER,
};
