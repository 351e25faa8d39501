//! Governance records: policies (Rego text, versioned), the violations they find, and the
//! policy worker's progress.

use serde::{Deserialize, Serialize};

/// A string enum with its wire names, parsed back strictly.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

wire_enum!(
    /// Most severe first (the order `Ord` gives).
    Severity {
        Critical => "critical",
        High => "high",
        Medium => "medium",
        Low => "low",
    }
);

wire_enum!(
    /// Enforce: record and flag as blocking; Permissive: record only; Disabled: not evaluated.
    PolicyMode {
        Enforce => "enforce",
        Permissive => "permissive",
        Disabled => "disabled",
    }
);

wire_enum!(
    PolicyCategory {
        SecurityAccess => "Security & Access",
        ModelsCompliance => "Models & Compliance",
        BudgetOperations => "Budget & Operations",
        Audit => "Audit",
    }
);

wire_enum!(
    /// New → Acknowledged → Resolved.
    ViolationStatus {
        New => "new",
        Acknowledged => "acknowledged",
        Resolved => "resolved",
    }
);

pub type PolicyId = i64;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub id: PolicyId,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub category: PolicyCategory,
    pub severity: Severity,
    pub mode: PolicyMode,
    /// A JSON object's text: the policy's `input.config`.
    pub config: String,
    pub rego: String,
    /// Set on the built-ins LangGuard ships (their hyphenated id).
    pub builtin_id: Option<String>,
    /// Goes up by one each time the Rego text or config changes.
    pub version: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewPolicy {
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub category: PolicyCategory,
    pub severity: Severity,
    pub mode: PolicyMode,
    pub config: String,
    pub rego: String,
    pub builtin_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyPatch {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub category: Option<PolicyCategory>,
    pub severity: Option<Severity>,
    pub mode: Option<PolicyMode>,
    pub config: Option<String>,
    pub rego: Option<String>,
}

/// One saved text of a policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyVersion {
    pub version: i64,
    pub rego: String,
    pub config: String,
    pub created_at_ms: i64,
}

/// A violation as the policy worker finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewViolation {
    pub policy_id: PolicyId,
    pub interaction_id: i64,
    pub severity: Severity,
    /// The result's `type` (`pii_detected`, `policy_evaluation_error`, …).
    pub kind: String,
    pub message: String,
    /// The whole result object's JSON text (type, message and evidence keys).
    pub evidence: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    pub id: i64,
    pub policy_id: PolicyId,
    pub policy_name: String,
    pub interaction_id: i64,
    pub severity: Severity,
    pub kind: String,
    pub message: String,
    pub evidence: String,
    pub status: ViolationStatus,
    pub notes: Option<String>,
    /// When the interaction happened.
    pub occurred_at_ms: i64,
    /// When the policy found it.
    pub detected_at_ms: i64,
    pub updated_at_ms: i64,
    /// The interaction's model and gateway, for lists that show them.
    pub model: String,
    pub gateway: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ViolationQuery {
    pub policy_id: Option<PolicyId>,
    pub severity: Option<Severity>,
    pub status: Option<ViolationStatus>,
    pub interaction_id: Option<i64>,
    /// Interaction time, inclusive / exclusive.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Contained (ASCII case-insensitive) in the message, kind or policy name.
    pub text: Option<String>,
    pub limit: u32,
    /// Newest first; continue after this `(occurred_at_ms, id)`.
    pub before: Option<(i64, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ViolationPage {
    pub items: Vec<Violation>,
    /// Matches of the query without pagination.
    pub total: u64,
    pub next_cursor: Option<(i64, i64)>,
}

/// The policy worker's progress: every interaction with `id <= cursor` has been evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PolicyProgress {
    pub cursor: i64,
    pub latest_interaction_id: i64,
    pub evaluated_at_ms: Option<i64>,
}

impl PolicyProgress {
    /// Interactions stored but not yet evaluated.
    pub fn lag(&self) -> i64 {
        (self.latest_interaction_id - self.cursor).max(0)
    }
}

/// Spend in one minute of one integration, from the rollups (for rolling budget windows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinuteSpend {
    pub minute_ms: i64,
    pub requests: i64,
    pub tokens: i64,
    pub cost_usd: f64,
}
