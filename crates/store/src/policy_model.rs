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
    /// Why the policy worker disabled it (it kept crossing its time or memory limits); cleared
    /// when someone changes its text or config or turns it back on.
    pub quarantine_reason: Option<String>,
    pub quarantined_at_ms: Option<i64>,
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

impl PolicyPatch {
    /// Whether this change ends a quarantine: a new text or config, or the policy turned back
    /// on — someone has looked at it.
    pub fn lifts_quarantine(&self, current: &Policy) -> bool {
        self.rego.as_ref().is_some_and(|r| *r != current.rego)
            || self.config.as_ref().is_some_and(|c| *c != current.config)
            || self.mode.is_some_and(|m| m != PolicyMode::Disabled)
    }
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

wire_enum!(
    /// Events a webhook can subscribe to.
    WebhookEvent {
        PolicyViolation => "policy.violation",
        SyncFailed => "sync.failed",
        IntegrationStatusChanged => "integration.status_changed",
        PolicyQuarantined => "policy.quarantined",
        CoverageDegraded => "coverage.degraded",
        AlertFiring => "alert.firing",
        AlertResolved => "alert.resolved",
        BudgetThreshold => "budget.threshold",
        Test => "test",
    }
);

wire_enum!(
    DeliveryStatus {
        Pending => "pending",
        Succeeded => "succeeded",
        Failed => "failed",
    }
);

pub type WebhookId = i64;

wire_enum!(
    /// How a channel (a webhook row) delivers: a signed JSON POST, a Slack or Microsoft Teams
    /// incoming webhook, a PagerDuty Events API v2 event, or an email over SMTP.
    ChannelKind {
        Webhook => "webhook",
        Slack => "slack",
        Teams => "teams",
        PagerDuty => "pagerduty",
        Email => "email",
    }
);

#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: WebhookId,
    /// Where it delivers, as shown: the receiver's URL for signed webhooks and PagerDuty,
    /// scheme and host only for Slack and Teams (their URL is the credential, sealed), the
    /// SMTP server for email.
    pub url: String,
    /// AES-GCM sealed: the HMAC secret (webhook), the incoming-webhook URL (Slack, Teams), the
    /// routing key (PagerDuty) or the SMTP password (email; empty when none).
    pub sealed_secret: Vec<u8>,
    pub kind: ChannelKind,
    /// What people call it ("#ops on Slack").
    pub name: String,
    /// The kind's settings that are not secret, as JSON (email: host, port, TLS, user, from,
    /// to).
    pub settings: String,
    pub events: Vec<WebhookEvent>,
    /// `policy.violation` events below this severity are not sent.
    pub min_severity: Severity,
    pub enabled: bool,
    /// Failed deliveries in a row; reaching the limit disables the webhook.
    pub consecutive_failures: i64,
    pub disabled_reason: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewWebhook {
    pub url: String,
    /// Seals the signing secret for the new row.
    pub secret: crate::SealFor,
    pub kind: ChannelKind,
    pub name: String,
    pub settings: String,
    pub events: Vec<WebhookEvent>,
    pub min_severity: Severity,
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub sealed_secret: Option<Vec<u8>>,
    pub name: Option<String>,
    pub settings: Option<String>,
    pub events: Option<Vec<WebhookEvent>>,
    pub min_severity: Option<Severity>,
    /// Re-enabling also clears the failure count.
    pub enabled: Option<bool>,
}

/// An event to deliver to every enabled webhook subscribed to it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    pub event: WebhookEvent,
    /// The whole request body's JSON text (`{event, timestamp, data}`).
    pub body: String,
    /// For `policy.violation`: the violation's severity (webhooks filter on it).
    pub severity: Option<Severity>,
    /// Only these channels (enabled ones), whatever they subscribe to — an alert rule that
    /// names its channels; `None`: every enabled channel subscribed to the event.
    pub channels: Option<Vec<WebhookId>>,
}

impl OutgoingEvent {
    /// An event with the body every delivery carries: `{event, timestamp, data}`.
    pub fn new(event: WebhookEvent, data: serde_json::Value, severity: Option<Severity>) -> Self {
        // RFC 3339 UTC with milliseconds, as every time in the API.
        let timestamp = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .unwrap_or_default();
        Self {
            event,
            body: serde_json::json!({
                "event": event.as_str(),
                "timestamp": timestamp,
                "data": data,
            })
            .to_string(),
            severity,
            channels: None,
        }
    }

    /// The same event, for these channels only (see [`OutgoingEvent::channels`]).
    pub fn to_channels(mut self, channels: Vec<WebhookId>) -> Self {
        self.channels = Some(channels);
        self
    }

    /// Whether `webhook` (enabled) gets this event.
    pub fn is_for(&self, webhook: &Webhook) -> bool {
        match &self.channels {
            Some(ids) => ids.contains(&webhook.id),
            // Severity orders most severe first: `<=` is "at least as severe".
            None => {
                webhook.events.contains(&self.event)
                    && self.severity.is_none_or(|s| s <= webhook.min_severity)
            }
        }
    }
}

/// How far event detection has come: events are derived from stored state (violations, sync
/// runs, integration statuses), so none is lost when the process stops.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventProgress {
    pub violation_id: i64,
    /// Finished sync runs up to this `(finished_at_ms, id)` have been looked at.
    pub sync_finished: (i64, i64),
    /// Each integration's status when last looked at.
    pub statuses: Vec<(IntegrationId, String)>,
}

impl EventProgress {
    /// The same progress, whatever order the statuses were read in.
    pub fn same_as(&self, other: &EventProgress) -> bool {
        let sorted = |p: &EventProgress| {
            let mut statuses = p.statuses.clone();
            statuses.sort();
            statuses
        };
        self.violation_id == other.violation_id
            && self.sync_finished == other.sync_finished
            && sorted(self) == sorted(other)
    }
}

use crate::IntegrationId;

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: WebhookId,
    pub event: WebhookEvent,
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub response_code: Option<i64>,
    pub error: Option<String>,
    pub created_at_ms: i64,
    pub next_attempt_at_ms: Option<i64>,
    pub delivered_at_ms: Option<i64>,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttempt {
    pub response_code: Option<i64>,
    pub error: Option<String>,
    pub succeeded: bool,
    /// When to try again; `None` when this was the last attempt (or it succeeded).
    pub retry_at_ms: Option<i64>,
}

/// An admin's price for a model, USD per 1,000 tokens (Settings → Cost Estimates).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelPrice {
    pub model: String,
    pub input_per_1k: f64,
    pub output_per_1k: f64,
    pub updated_at_ms: i64,
}
