//! The `filters` query parameter of the logs list (API-NOTES §1.2, §8.5).
//!
//! The API takes ONE `filters` parameter holding a URL-encoded JSON array of
//! `{key, operator, value[]}`. The dotted form the official SDKs produce
//! (`filters.key=…&filters.operator=…`) is not parsed at all, which mirrors the live API
//! silently returning unfiltered results (cloudflare-typescript#2723).
//!
//! Semantics: filters are ANDed; `value` is any-of for `eq`/`contains`/`lt`/`gt` and none-of
//! for `neq`. `contains` is a case-insensitive substring match on text keys; `lt`/`gt` work on
//! numeric keys and on `created_at`, whose values are RFC 3339 instants compared exactly
//! (stored logs have millisecond precision). A `null` value matches an absent field.
//! Anything the schema would reject — unknown key or operator, an operator that makes no
//! sense for the key, a value of the wrong type, an empty `value` — is a 400 / 7001.

use serde::Deserialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::log_record::{LogRecord, UnixMillis};

/// The 24 filter keys of the current SDK schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FilterKey {
    Id,
    CreatedAt,
    RequestContentType,
    ResponseContentType,
    RequestType,
    Success,
    Cached,
    Provider,
    Model,
    ModelType,
    Cost,
    Tokens,
    TokensIn,
    TokensOut,
    Duration,
    Feedback,
    EventId,
    MetadataKey,
    MetadataValue,
    Authentication,
    Wholesale,
    CompatibilityMode,
    DlpAction,
    UserAgent,
}

/// What kind of values a key compares, which decides the allowed operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    Text,
    Bool,
    Number,
    Time,
}

impl FilterKey {
    const ALL: [(&'static str, FilterKey); 24] = [
        ("id", Self::Id),
        ("created_at", Self::CreatedAt),
        ("request_content_type", Self::RequestContentType),
        ("response_content_type", Self::ResponseContentType),
        ("request_type", Self::RequestType),
        ("success", Self::Success),
        ("cached", Self::Cached),
        ("provider", Self::Provider),
        ("model", Self::Model),
        ("model_type", Self::ModelType),
        ("cost", Self::Cost),
        ("tokens", Self::Tokens),
        ("tokens_in", Self::TokensIn),
        ("tokens_out", Self::TokensOut),
        ("duration", Self::Duration),
        ("feedback", Self::Feedback),
        ("event_id", Self::EventId),
        ("metadata.key", Self::MetadataKey),
        ("metadata.value", Self::MetadataValue),
        ("authentication", Self::Authentication),
        ("wholesale", Self::Wholesale),
        ("compatibilityMode", Self::CompatibilityMode),
        ("dlp_action", Self::DlpAction),
        ("user_agent", Self::UserAgent),
    ];

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == raw)
            .map(|(_, key)| *key)
    }

    fn kind(self) -> KeyKind {
        match self {
            Self::CreatedAt => KeyKind::Time,
            Self::Success
            | Self::Cached
            | Self::Authentication
            | Self::Wholesale
            | Self::CompatibilityMode => KeyKind::Bool,
            Self::Cost
            | Self::Tokens
            | Self::TokensIn
            | Self::TokensOut
            | Self::Duration
            | Self::Feedback => KeyKind::Number,
            _ => KeyKind::Text,
        }
    }
}

/// Comparison operators. `AtLeast`/`AtMost` are internal only: they express the inclusive
/// deprecated `start_date`/`end_date` parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operator {
    Eq,
    Neq,
    Contains,
    Lt,
    Gt,
    AtLeast,
    AtMost,
}

impl Operator {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "eq" => Some(Self::Eq),
            "neq" => Some(Self::Neq),
            "contains" => Some(Self::Contains),
            "lt" => Some(Self::Lt),
            "gt" => Some(Self::Gt),
            _ => None,
        }
    }

    fn allowed_for(self, kind: KeyKind) -> bool {
        match self {
            Self::Eq | Self::Neq => true,
            Self::Contains => kind == KeyKind::Text,
            Self::Lt | Self::Gt | Self::AtLeast | Self::AtMost => {
                matches!(kind, KeyKind::Number | KeyKind::Time)
            }
        }
    }
}

/// One already type-checked filter value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FilterValue {
    Null,
    Text(String),
    Bool(bool),
    Number(f64),
    /// Nanoseconds since the Unix epoch (values may be finer than the stored milliseconds).
    Time(i128),
}

/// One parsed filter condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Filter {
    pub key: FilterKey,
    pub op: Operator,
    pub values: Vec<FilterValue>,
}

/// Why the `filters` parameter was rejected (reported as 400 / 7001, path `query.filters`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FilterError(pub String);

#[derive(Deserialize)]
struct RawFilter {
    key: String,
    operator: String,
    value: Vec<Value>,
}

/// Parses the decoded value of the `filters` query parameter.
pub(crate) fn parse_filters(raw: &str) -> Result<Vec<Filter>, FilterError> {
    let raw_filters: Vec<RawFilter> = serde_json::from_str(raw)
        .map_err(|err| FilterError(format!("filters is not a JSON array of filters: {err}")))?;
    raw_filters.into_iter().map(Filter::from_raw).collect()
}

impl Filter {
    fn from_raw(raw: RawFilter) -> Result<Self, FilterError> {
        let key = FilterKey::parse(&raw.key)
            .ok_or_else(|| FilterError(format!("unknown filter key {:?}", raw.key)))?;
        let op = Operator::parse(&raw.operator)
            .ok_or_else(|| FilterError(format!("unknown operator {:?}", raw.operator)))?;
        if !op.allowed_for(key.kind()) {
            return Err(FilterError(format!(
                "operator {:?} cannot be used with key {:?}",
                raw.operator, raw.key
            )));
        }
        if raw.value.is_empty() {
            return Err(FilterError(format!("filter on {:?} has no value", raw.key)));
        }
        let values = raw
            .value
            .iter()
            .map(|value| convert_value(key.kind(), op, value))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| FilterError(format!("invalid value for filter key {:?}", raw.key)))?;
        Ok(Self { key, op, values })
    }

    /// A filter built from a deprecated flat parameter (`provider=…`, `start_date=…`).
    pub(crate) fn new(key: FilterKey, op: Operator, value: FilterValue) -> Self {
        Self {
            key,
            op,
            values: vec![value],
        }
    }

    /// The inclusive `created_at` millisecond range this filter confines results to, if it
    /// is a range condition on `created_at` (used to binary-search the sorted log vector).
    pub(crate) fn created_at_bounds(&self) -> Option<(UnixMillis, UnixMillis)> {
        if self.key != FilterKey::CreatedAt {
            return None;
        }
        let instants = self.values.iter().filter_map(|value| match value {
            FilterValue::Time(nanos) => Some(*nanos),
            _ => None,
        });
        // Any-of semantics: the loosest value bounds the range.
        match self.op {
            Operator::Gt => instants
                .min()
                .map(|nanos| (floor_millis(nanos).saturating_add(1), UnixMillis::MAX)),
            Operator::AtLeast => instants
                .min()
                .map(|nanos| (ceil_millis(nanos), UnixMillis::MAX)),
            Operator::Lt => instants
                .max()
                .map(|nanos| (UnixMillis::MIN, ceil_millis(nanos).saturating_sub(1))),
            Operator::AtMost => instants
                .max()
                .map(|nanos| (UnixMillis::MIN, floor_millis(nanos))),
            Operator::Eq | Operator::Neq | Operator::Contains => None,
        }
    }

    pub(crate) fn matches(&self, log: &LogRecord) -> bool {
        match self.key {
            FilterKey::MetadataKey | FilterKey::MetadataValue => self.matches_metadata(log),
            key => match key.kind() {
                KeyKind::Text => self.matches_text(text_field(log, key)),
                KeyKind::Bool => self.matches_bool(bool_field(log, key)),
                KeyKind::Number => self.matches_number(number_field(log, key)),
                KeyKind::Time => self.matches_time(i128::from(log.created_at) * 1_000_000),
            },
        }
    }

    fn matches_text(&self, field: Option<&str>) -> bool {
        let equals = |value: &FilterValue| match value {
            FilterValue::Null => field.is_none(),
            FilterValue::Text(text) => field == Some(text.as_str()),
            _ => false,
        };
        match self.op {
            Operator::Eq => self.values.iter().any(equals),
            Operator::Neq => !self.values.iter().any(equals),
            Operator::Contains => self.values.iter().any(|value| match (value, field) {
                (FilterValue::Text(needle), Some(haystack)) => {
                    contains_ignore_case(haystack, needle)
                }
                _ => false,
            }),
            _ => false,
        }
    }

    fn matches_metadata(&self, log: &LogRecord) -> bool {
        let Some(metadata) = &log.metadata else {
            // No metadata: only "absent" conditions hold.
            return match self.op {
                Operator::Neq => !self.values.contains(&FilterValue::Null),
                _ => self.values.contains(&FilterValue::Null),
            };
        };
        let keys = self.key == FilterKey::MetadataKey;
        let mut candidates =
            metadata
                .pairs
                .iter()
                .map(|(key, value)| if keys { key.as_str() } else { value.as_str() });
        match self.op {
            Operator::Eq => candidates.any(|candidate| self.has_text(candidate)),
            Operator::Neq => !candidates.any(|candidate| self.has_text(candidate)),
            Operator::Contains => candidates.any(|candidate| {
                self.values.iter().any(|value| match value {
                    FilterValue::Text(needle) => contains_ignore_case(candidate, needle),
                    _ => false,
                })
            }),
            _ => false,
        }
    }

    fn has_text(&self, candidate: &str) -> bool {
        self.values
            .iter()
            .any(|value| matches!(value, FilterValue::Text(text) if text == candidate))
    }

    fn matches_bool(&self, field: bool) -> bool {
        let equals = |value: &FilterValue| matches!(value, FilterValue::Bool(b) if *b == field);
        match self.op {
            Operator::Eq => self.values.iter().any(equals),
            Operator::Neq => !self.values.iter().any(equals),
            _ => false,
        }
    }

    fn matches_number(&self, field: Option<f64>) -> bool {
        let test = |value: &FilterValue| match (value, field) {
            (FilterValue::Null, None) => self.op == Operator::Eq,
            (FilterValue::Number(wanted), Some(actual)) => match self.op {
                Operator::Eq => actual == *wanted,
                Operator::Lt => actual < *wanted,
                Operator::Gt => actual > *wanted,
                Operator::AtLeast => actual >= *wanted,
                Operator::AtMost => actual <= *wanted,
                Operator::Neq | Operator::Contains => false,
            },
            _ => false,
        };
        if self.op == Operator::Neq {
            let equals = |value: &FilterValue| match (value, field) {
                (FilterValue::Null, None) => true,
                (FilterValue::Number(wanted), Some(actual)) => actual == *wanted,
                _ => false,
            };
            return !self.values.iter().any(equals);
        }
        self.values.iter().any(test)
    }

    fn matches_time(&self, field_nanos: i128) -> bool {
        let compare = |value: &FilterValue| match value {
            FilterValue::Time(wanted) => Some(field_nanos.cmp(wanted)),
            _ => None,
        };
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self.op {
            Operator::Eq => self.values.iter().any(|v| compare(v) == Some(Equal)),
            Operator::Neq => !self.values.iter().any(|v| compare(v) == Some(Equal)),
            Operator::Lt => self.values.iter().any(|v| compare(v) == Some(Less)),
            Operator::Gt => self.values.iter().any(|v| compare(v) == Some(Greater)),
            Operator::AtLeast => self
                .values
                .iter()
                .any(|v| matches!(compare(v), Some(Greater | Equal))),
            Operator::AtMost => self
                .values
                .iter()
                .any(|v| matches!(compare(v), Some(Less | Equal))),
            Operator::Contains => false,
        }
    }
}

/// Parses an RFC 3339 instant into Unix nanoseconds.
pub(crate) fn parse_instant(raw: &str) -> Option<i128> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp_nanos)
}

fn convert_value(kind: KeyKind, op: Operator, value: &Value) -> Option<FilterValue> {
    if value.is_null() {
        // "Field is absent" only makes sense for equality.
        return matches!(op, Operator::Eq | Operator::Neq).then_some(FilterValue::Null);
    }
    match kind {
        KeyKind::Text => match value {
            Value::String(text) => Some(FilterValue::Text(text.clone())),
            // The schema allows numbers and booleans for any key; compare their text.
            Value::Number(number) if op != Operator::Contains => {
                Some(FilterValue::Text(number.to_string()))
            }
            Value::Bool(flag) if op != Operator::Contains => {
                Some(FilterValue::Text(flag.to_string()))
            }
            _ => None,
        },
        KeyKind::Bool => match value {
            Value::Bool(flag) => Some(FilterValue::Bool(*flag)),
            Value::String(text) => parse_bool(text).map(FilterValue::Bool),
            _ => None,
        },
        KeyKind::Number => match value {
            Value::Number(number) => number.as_f64().map(FilterValue::Number),
            Value::String(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|number| number.is_finite())
                .map(FilterValue::Number),
            _ => None,
        },
        KeyKind::Time => match value {
            Value::String(text) => parse_instant(text).map(FilterValue::Time),
            _ => None,
        },
    }
}

/// `true`/`false` as the API writes booleans in query strings.
pub(crate) fn parse_bool(raw: &str) -> Option<bool> {
    match raw {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn text_field(log: &LogRecord, key: FilterKey) -> Option<&str> {
    match key {
        FilterKey::Id => Some(&log.id),
        FilterKey::RequestContentType => Some(log.request_content_type),
        FilterKey::ResponseContentType => Some(log.response_content_type),
        FilterKey::RequestType => log.request_type,
        FilterKey::Provider => Some(log.provider),
        FilterKey::Model => Some(log.model),
        FilterKey::ModelType => log.model_type,
        FilterKey::EventId => log.event_id(),
        FilterKey::UserAgent => log.user_agent(),
        // Synthetic logs never carry a DLP verdict.
        _ => None,
    }
}

fn bool_field(log: &LogRecord, key: FilterKey) -> bool {
    match key {
        FilterKey::Success => log.success,
        FilterKey::Cached => log.cached,
        FilterKey::Authentication => log.authentication,
        FilterKey::Wholesale => log.wholesale,
        FilterKey::CompatibilityMode => log.compatibility_mode,
        _ => false,
    }
}

fn number_field(log: &LogRecord, key: FilterKey) -> Option<f64> {
    match key {
        FilterKey::Cost => log.cost,
        FilterKey::Tokens => log.total_tokens().map(f64::from),
        FilterKey::TokensIn => log.tokens_in.map(f64::from),
        FilterKey::TokensOut => log.tokens_out.map(f64::from),
        FilterKey::Duration => Some(f64::from(log.duration_ms)),
        FilterKey::Feedback => log.feedback().map(f64::from),
        _ => None,
    }
}

fn floor_millis(nanos: i128) -> UnixMillis {
    clamp_millis(nanos.div_euclid(1_000_000))
}

fn ceil_millis(nanos: i128) -> UnixMillis {
    clamp_millis(-(-nanos).div_euclid(1_000_000))
}

fn clamp_millis(millis: i128) -> UnixMillis {
    UnixMillis::try_from(millis).unwrap_or(if millis < 0 {
        UnixMillis::MIN
    } else {
        UnixMillis::MAX
    })
}

/// ASCII case-insensitive substring test without allocating.
pub(crate) fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_record::test_support::sample_record;
    use crate::log_record::unix_millis;
    use time::macros::datetime;

    fn one(json: &str) -> Filter {
        let mut filters = parse_filters(json).expect("valid filters");
        assert_eq!(filters.len(), 1);
        filters.remove(0)
    }

    fn record_at(millis: UnixMillis) -> LogRecord {
        sample_record("01KZTM03BRZGWSPE1FRFKS26YR", millis)
    }

    #[test]
    fn accepts_all_24_documented_keys() {
        for (name, key) in FilterKey::ALL {
            let value = match key.kind() {
                KeyKind::Text => r#""x""#,
                KeyKind::Bool => "true",
                KeyKind::Number => "1",
                KeyKind::Time => r#""2026-01-01T00:00:00Z""#,
            };
            let json = format!(r#"[{{"key":"{name}","operator":"eq","value":[{value}]}}]"#);
            assert_eq!(one(&json).key, key, "{name}");
        }
    }

    #[test]
    fn rejects_unknown_keys_operators_and_bad_values() {
        for bad in [
            r#"[{"key":"prompts.prompt_id","operator":"eq","value":["x"]}]"#,
            r#"[{"key":"provider","operator":"like","value":["x"]}]"#,
            r#"[{"key":"provider","operator":"lt","value":["x"]}]"#,
            r#"[{"key":"success","operator":"contains","value":["t"]}]"#,
            r#"[{"key":"cost","operator":"gt","value":["cheap"]}]"#,
            r#"[{"key":"created_at","operator":"gt","value":["yesterday"]}]"#,
            r#"[{"key":"provider","operator":"eq","value":[]}]"#,
            r#"[{"key":"provider","operator":"eq"}]"#,
            r#"{"key":"provider","operator":"eq","value":["openai"]}"#,
            "not json",
        ] {
            assert!(parse_filters(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(parse_filters("[]"), Ok(Vec::new()));
    }

    #[test]
    fn eq_is_any_of_and_neq_is_none_of() {
        let log = record_at(0);
        assert!(
            one(r#"[{"key":"provider","operator":"eq","value":["anthropic","openai"]}]"#)
                .matches(&log)
        );
        assert!(
            !one(r#"[{"key":"provider","operator":"neq","value":["anthropic","openai"]}]"#)
                .matches(&log)
        );
        assert!(
            one(r#"[{"key":"provider","operator":"neq","value":["anthropic"]}]"#).matches(&log)
        );
        assert!(
            one(r#"[{"key":"model","operator":"contains","value":["4O-MINI"]}]"#).matches(&log)
        );
        assert!(one(r#"[{"key":"success","operator":"eq","value":["true"]}]"#).matches(&log));
        assert!(!one(r#"[{"key":"cached","operator":"eq","value":[true]}]"#).matches(&log));
    }

    #[test]
    fn numbers_compare_and_null_means_absent() {
        let mut log = record_at(0);
        assert!(one(r#"[{"key":"tokens","operator":"eq","value":[500]}]"#).matches(&log));
        assert!(one(r#"[{"key":"duration","operator":"gt","value":["1000"]}]"#).matches(&log));
        assert!(!one(r#"[{"key":"duration","operator":"lt","value":[1000]}]"#).matches(&log));
        assert!(one(r#"[{"key":"cost","operator":"neq","value":[null]}]"#).matches(&log));
        log.cost = None;
        assert!(one(r#"[{"key":"cost","operator":"eq","value":[null]}]"#).matches(&log));
        assert!(!one(r#"[{"key":"cost","operator":"lt","value":[1]}]"#).matches(&log));
    }

    #[test]
    fn metadata_filters_look_inside_the_json() {
        let mut log = record_at(0);
        assert!(one(r#"[{"key":"metadata.key","operator":"eq","value":["team"]}]"#).matches(&log));
        assert!(
            one(r#"[{"key":"metadata.value","operator":"eq","value":["search"]}]"#).matches(&log)
        );
        assert!(
            !one(r#"[{"key":"metadata.value","operator":"eq","value":["team"]}]"#).matches(&log)
        );
        assert!(
            one(r#"[{"key":"metadata.value","operator":"contains","value":["u_48"]}]"#)
                .matches(&log)
        );
        assert!(
            !one(r#"[{"key":"metadata.key","operator":"neq","value":["user"]}]"#).matches(&log)
        );
        log.metadata = None;
        assert!(!one(r#"[{"key":"metadata.key","operator":"eq","value":["team"]}]"#).matches(&log));
        assert!(one(r#"[{"key":"metadata.key","operator":"neq","value":["team"]}]"#).matches(&log));
    }

    #[test]
    fn created_at_compares_instants_at_millisecond_precision() {
        let millis = unix_millis(datetime!(2026-08-12 09:14:03.512 UTC));
        let log = record_at(millis);
        let gt = |value: &str| {
            one(&format!(
                r#"[{{"key":"created_at","operator":"gt","value":["{value}"]}}]"#
            ))
        };
        assert!(!gt("2026-08-12T09:14:03.512Z").matches(&log));
        assert!(gt("2026-08-12T09:14:03.511Z").matches(&log));
        assert!(gt("2026-08-12T09:14:03.5119Z").matches(&log));
        assert!(!gt("2026-08-12T11:14:03.512+02:00").matches(&log));
        let lt =
            one(r#"[{"key":"created_at","operator":"lt","value":["2026-08-12T09:14:03.5121Z"]}]"#);
        assert!(lt.matches(&log));
        assert!(one(
            r#"[{"key":"created_at","operator":"eq","value":["2026-08-12T09:14:03.512Z"]}]"#
        )
        .matches(&log));
    }

    #[test]
    fn created_at_bounds_agree_with_matching() {
        let base = unix_millis(datetime!(2026-08-12 09:14:03.512 UTC));
        let filters = [
            one(r#"[{"key":"created_at","operator":"gt","value":["2026-08-12T09:14:03.512Z"]}]"#),
            one(r#"[{"key":"created_at","operator":"gt","value":["2026-08-12T09:14:03.5115Z"]}]"#),
            one(r#"[{"key":"created_at","operator":"lt","value":["2026-08-12T09:14:03.512Z"]}]"#),
            one(r#"[{"key":"created_at","operator":"lt","value":["2026-08-12T09:14:03.5125Z"]}]"#),
            Filter::new(
                FilterKey::CreatedAt,
                Operator::AtLeast,
                FilterValue::Time(i128::from(base) * 1_000_000),
            ),
            Filter::new(
                FilterKey::CreatedAt,
                Operator::AtMost,
                FilterValue::Time(i128::from(base) * 1_000_000 + 1),
            ),
        ];
        for filter in &filters {
            let (low, high) = filter.created_at_bounds().expect("range filter");
            for millis in base - 3..=base + 3 {
                let in_bounds = (low..=high).contains(&millis);
                assert_eq!(
                    in_bounds,
                    filter.matches(&record_at(millis)),
                    "{filter:?} at {millis}"
                );
            }
        }
    }

    #[test]
    fn case_insensitive_contains() {
        assert!(contains_ignore_case("Claude-Sonnet", "sonnet"));
        assert!(!contains_ignore_case("gpt", "gpt-4o"));
        assert!(contains_ignore_case("anything", ""));
    }
}
