//! The built-in policies LangGuard ships (`policies/*.rego`), with PRODUCT-SPEC §4's ids,
//! categories, severities, default modes and config — the ones that make sense on gateway logs.

use langguard_store::{NewPolicy, PolicyCategory, PolicyMode, Severity};

pub struct Builtin {
    /// The product's hyphenated id (`pii-detection`); the policy name is its underscored form.
    pub id: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    pub category: PolicyCategory,
    pub severity: Severity,
    pub mode: PolicyMode,
    /// Default `input.config`, as JSON.
    pub config: &'static str,
    pub rego: &'static str,
}

impl Builtin {
    pub fn name(&self) -> String {
        self.id.replace('-', "_")
    }
}

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        id: "credential-surface-discovery",
        display_name: "Credential Surface Discovery",
        description: "Provider API keys, cloud credentials and tokens in prompts, responses or metadata.",
        category: PolicyCategory::SecurityAccess,
        severity: Severity::Critical,
        mode: PolicyMode::Enforce,
        config: r#"{"approved_credentials": ["oauth2_token", "short_lived_jwt", "delegated_credential", "managed_identity"], "max_token_lifetime_hours": 24}"#,
        rego: include_str!("../policies/credential_surface_discovery.rego"),
    },
    Builtin {
        id: "pii-detection",
        display_name: "PII Detection",
        description: "Email addresses, phone numbers, payment cards (Luhn-checked), IBANs, national ids and IP addresses in prompts, responses or metadata.",
        category: PolicyCategory::SecurityAccess,
        severity: Severity::Critical,
        mode: PolicyMode::Enforce,
        config: r#"{"min_confidence": 0.3}"#,
        rego: include_str!("../policies/pii_detection.rego"),
    },
    Builtin {
        id: "approved-model-version",
        display_name: "Approved Models",
        description: "Calls to models outside the approved list (config approved_models; `gpt-4o*` matches by prefix).",
        category: PolicyCategory::ModelsCompliance,
        severity: Severity::High,
        mode: PolicyMode::Disabled,
        config: r#"{"approved_models": []}"#,
        rego: include_str!("../policies/approved_model_version.rego"),
    },
    Builtin {
        id: "latency-health-threshold",
        display_name: "Latency & Health Threshold",
        description: "Calls slower than max_latency_ms, calls that failed, and inputs over max_context_tokens.",
        category: PolicyCategory::ModelsCompliance,
        severity: Severity::Medium,
        mode: PolicyMode::Disabled,
        config: r#"{"max_latency_ms": 5000, "max_error_rate": 0.1, "max_context_tokens": null}"#,
        rego: include_str!("../policies/latency_health_threshold.rego"),
    },
    Builtin {
        id: "budget-overrun",
        display_name: "Budget Overrun",
        description: "Per-call cost and token caps, calls whose budget (Budgets: per team, model or gateway) is spent, a rolling 24-hour budget, and calls far above the expected cost.",
        category: PolicyCategory::BudgetOperations,
        severity: Severity::High,
        mode: PolicyMode::Disabled,
        config: r#"{"budget_usd": null, "budget_threshold_percent": 80, "max_cost_per_trace": 1.0, "max_tokens_per_trace": null, "avg_cost_per_trace": null}"#,
        rego: include_str!("../policies/budget_overrun.rego"),
    },
    Builtin {
        id: "spend-anomaly",
        display_name: "Spend Anomaly",
        description: "Calls in a user session that spent at least twice the user's own p95 session and more than the organisation's p99 (People: needs a user key; a session key, or each hour is a session).",
        category: PolicyCategory::BudgetOperations,
        severity: Severity::Medium,
        mode: PolicyMode::Enforce,
        config: r#"{"min_session_usd": 0}"#,
        rego: include_str!("../policies/spend_anomaly.rego"),
    },
    Builtin {
        id: "mandatory-trace-logging",
        display_name: "Mandatory Trace Logging",
        description: "Every call names its agent and its user (Cloudflare custom metadata).",
        category: PolicyCategory::Audit,
        severity: Severity::Low,
        mode: PolicyMode::Enforce,
        config: "{}",
        rego: include_str!("../policies/mandatory_trace_logging.rego"),
    },
    Builtin {
        id: "metadata-tagging",
        display_name: "Metadata Tagging",
        description: "Required custom metadata (required_metadata), tags and user attribution on every call.",
        category: PolicyCategory::Audit,
        severity: Severity::Low,
        mode: PolicyMode::Enforce,
        config: r#"{"required_metadata": ["ai_app_id", "department"], "required_tags": [], "require_user_attribution": true}"#,
        rego: include_str!("../policies/metadata_tagging.rego"),
    },
];

/// The built-ins as new policies, for the store to install on first start.
pub fn builtin_policies() -> Vec<NewPolicy> {
    BUILTINS
        .iter()
        .map(|b| NewPolicy {
            name: b.name(),
            display_name: b.display_name.to_string(),
            description: b.description.to_string(),
            category: b.category,
            severity: b.severity,
            mode: b.mode,
            config: b.config.to_string(),
            rego: b.rego.to_string(),
            builtin_id: Some(b.id.to_string()),
        })
        .collect()
}
