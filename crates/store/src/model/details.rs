//! The fields of a gateway log beyond the core columns: what people govern with (DLP actions,
//! guardrail results, feedback, the calling client) but which most logs leave out. They are kept
//! together as one JSON object per interaction (`details`): sparse, varied in shape, and
//! growing as Cloudflare adds fields, so one column serves them better than a dozen mostly
//! empty ones. Filters and `field:value` searches reach into it by key.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest text kept in a detail field, in bytes (a user agent can be arbitrarily long).
pub const MAX_DETAIL_TEXT: usize = 1_024;
/// Largest `dlp_profiles` or `guardrails` value kept, as JSON text; a bigger one is replaced by
/// a note saying so (a policy then sees that it was there).
pub const MAX_DETAIL_JSON: usize = 16 * 1_024;

/// Cloudflare's extra log fields, as kept. Every field is optional: absent means the log did
/// not carry it, never "false" or 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogDetails {
    /// The `cf-aig-event-id` request header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    /// Attempt index of a universal-endpoint fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
    /// Thumbs up (1) or down (-1), set on Cloudflare after the call; refreshed when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<i64>,
    /// A score set on Cloudflare after the call; refreshed when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// `FLAG` or `BLOCK` when a DLP profile matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlp_action: Option<String>,
    /// The matched DLP profiles, as Cloudflare lists them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub dlp_profiles: Option<Value>,
    /// Guardrail evaluation results, as Cloudflare lists them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub guardrails: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Input tokens served from the provider's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_cached: Option<i64>,
    /// Output tokens spent on reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_reasoning: Option<i64>,
    /// The call used the customer's own provider key (Bring Your Own Key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byok: Option<bool>,
    /// LangGuard's estimate from its price table, kept beside a cost Cloudflare reported as 0
    /// for BYOK traffic (`cost_source: byok`): the provider bills that spend directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_estimate_usd: Option<f64>,
}

impl LogDetails {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The stored form: a JSON object, or nothing when no field is present.
    pub fn to_column(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        serde_json::to_string(self).ok()
    }

    /// Reads the stored form back. A column that does not parse (written by hand, or by a
    /// future version with a field of another type) reads as empty rather than failing the
    /// whole listing.
    pub fn from_column(text: Option<&str>) -> Self {
        text.and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }
}

/// Text as kept: at most [`MAX_DETAIL_TEXT`] bytes (cut at a character boundary), no NULs,
/// and nothing for an empty string.
pub fn detail_text(text: Option<String>) -> Option<String> {
    let text = text?.replace('\0', "");
    if text.trim().is_empty() {
        return None;
    }
    if text.len() <= MAX_DETAIL_TEXT {
        return Some(text);
    }
    let mut end = MAX_DETAIL_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_string())
}

/// Deepest nesting kept in a structured field: a policy's input must stay shallow enough for
/// its sandbox (the same bound bodies have there).
pub const MAX_DETAIL_DEPTH: usize = 64;

/// A structured field as kept: without NULs (PostgreSQL's `jsonb` refuses `\u0000`); `null`
/// and empty arrays or objects are nothing; one whose JSON is larger than [`MAX_DETAIL_JSON`]
/// or nested deeper than [`MAX_DETAIL_DEPTH`] becomes `{"truncated": true, "bytes": n}`.
pub fn detail_json(value: Option<Value>) -> Option<Value> {
    let value = crate::clean::json_without_nul(value?);
    let empty = match &value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    };
    if empty {
        return None;
    }
    let bytes = serde_json::to_string(&value).map_or(usize::MAX, |t| t.len());
    if bytes > MAX_DETAIL_JSON || deeper_than(&value, MAX_DETAIL_DEPTH) {
        return Some(serde_json::json!({"truncated": true, "bytes": bytes}));
    }
    Some(value)
}

/// Whether `value` nests more than `limit` levels (without recursing past the limit).
fn deeper_than(value: &Value, limit: usize) -> bool {
    match value {
        Value::Array(items) => limit == 0 || items.iter().any(|v| deeper_than(v, limit - 1)),
        Value::Object(map) => limit == 0 || map.values().any(|v| deeper_than(v, limit - 1)),
        _ => false,
    }
}

impl LogDetails {
    /// What a re-read of a stored log stores: Cloudflare's fields as it lists them now, and
    /// the stored `cost_estimate_usd` — it belongs with the stored cost and its source, which
    /// a re-read doesn't change (today's prices would give another figure).
    pub fn refreshed(stored: &LogDetails, listed: LogDetails) -> LogDetails {
        LogDetails {
            cost_estimate_usd: stored.cost_estimate_usd,
            ..listed
        }
    }
}

/// A detail field a trace filter or a `field:value` search can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetailField {
    EventId,
    RequestType,
    ModelType,
    Step,
    Feedback,
    Score,
    DlpAction,
    DlpProfiles,
    Guardrails,
    UserAgent,
    Byok,
}

impl DetailField {
    pub const ALL: [DetailField; 11] = [
        DetailField::EventId,
        DetailField::RequestType,
        DetailField::ModelType,
        DetailField::Step,
        DetailField::Feedback,
        DetailField::Score,
        DetailField::DlpAction,
        DetailField::DlpProfiles,
        DetailField::Guardrails,
        DetailField::UserAgent,
        DetailField::Byok,
    ];

    /// The key in the `details` object, in the API and in the search syntax.
    pub fn key(self) -> &'static str {
        match self {
            DetailField::EventId => "event_id",
            DetailField::RequestType => "request_type",
            DetailField::ModelType => "model_type",
            DetailField::Step => "step",
            DetailField::Feedback => "feedback",
            DetailField::Score => "score",
            DetailField::DlpAction => "dlp_action",
            DetailField::DlpProfiles => "dlp_profiles",
            DetailField::Guardrails => "guardrails",
            DetailField::UserAgent => "user_agent",
            DetailField::Byok => "byok",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.key() == name)
    }

    /// Numbers and booleans match a search exactly (`feedback:1` is not `-1`, `step:1` not
    /// 10); text and structured fields by substring.
    pub fn matches_exactly(self) -> bool {
        matches!(
            self,
            DetailField::Step | DetailField::Feedback | DetailField::Score | DetailField::Byok
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn details_round_trip_and_an_empty_set_stores_nothing() {
        assert_eq!(LogDetails::default().to_column(), None);
        let d = LogDetails {
            dlp_action: Some("BLOCK".into()),
            feedback: Some(-1),
            dlp_profiles: Some(json!([{"profile": {"profile_id": "p1"}}])),
            ..LogDetails::default()
        };
        let column = d.to_column().expect("stored");
        assert!(!column.contains("event_id"), "{column}");
        assert_eq!(LogDetails::from_column(Some(&column)), d);
        assert_eq!(
            LogDetails::from_column(Some("{\"feedback\":\"x\"}")),
            LogDetails::default()
        );
    }

    #[test]
    fn long_text_and_big_json_are_cut_down() {
        let long = "é".repeat(MAX_DETAIL_TEXT);
        let kept = detail_text(Some(long)).expect("kept");
        assert!(kept.len() <= MAX_DETAIL_TEXT && kept.chars().all(|c| c == 'é'));
        assert_eq!(detail_text(Some("  ".into())), None);
        assert_eq!(detail_json(Some(json!([]))), None);
        let big = json!(["x".repeat(MAX_DETAIL_JSON)]);
        assert_eq!(
            detail_json(Some(big)).expect("kept")["truncated"],
            json!(true)
        );
        let mut deep = json!(1);
        for _ in 0..=MAX_DETAIL_DEPTH {
            deep = json!([deep]);
        }
        assert_eq!(
            detail_json(Some(deep)).expect("kept")["truncated"],
            json!(true)
        );
        assert_eq!(
            detail_json(Some(json!({"a\0": "b\0c"}))),
            Some(json!({"a": "bc"}))
        );
        for field in DetailField::ALL {
            assert_eq!(DetailField::parse(field.key()), Some(field));
        }
    }
}
