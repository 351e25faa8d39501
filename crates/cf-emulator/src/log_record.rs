//! One stored gateway log and its two JSON renderings (list row, API-NOTES §1.4, and detail,
//! §2), plus the millisecond timestamp helpers every other module uses.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch: the precision of Cloudflare's `created_at`.
pub(crate) type UnixMillis = i64;

/// `visible_at` of logs that are listed from the moment they are stored.
pub(crate) const ALWAYS_VISIBLE: UnixMillis = UnixMillis::MIN;

pub(crate) fn unix_millis(at: OffsetDateTime) -> UnixMillis {
    // `i64` milliseconds cover ±292 million years, far beyond `OffsetDateTime`'s range.
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(UnixMillis::MAX)
}

pub(crate) fn now_millis() -> UnixMillis {
    unix_millis(OffsetDateTime::now_utc())
}

/// Formats as `YYYY-MM-DDTHH:MM:SS.mmmZ`, the exact shape Cloudflare sends.
pub(crate) fn format_millis(millis: UnixMillis) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// Custom metadata as sent in `cf-aig-metadata`: kept both as the JSON string the REST API
/// returns and as flattened pairs for `metadata.key` / `metadata.value` filters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Metadata {
    pub json: String,
    /// (key, value rendered as text) in insertion order.
    pub pairs: Vec<(String, String)>,
}

/// Fields seen on live rows but absent from every SDK schema (API-NOTES §1.4); present on a
/// share of synthetic logs so tolerant parsers get exercised.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogExtras {
    pub event_id: String,
    pub latency_ms: u32,
    pub region: &'static str,
    pub colo: &'static str,
    pub feedback: Option<i8>,
    /// Set with `PATCH …/logs/{id}`, like feedback.
    pub score: Option<f64>,
    pub user_agent: &'static str,
    /// A DLP profile matched the request.
    pub dlp: Option<DlpMatch>,
    /// Made with the customer's own provider key: Cloudflare reports its cost as 0.
    pub byok: bool,
}

impl LogExtras {
    /// The extras a log gets when `PATCH` gives feedback to one that had none.
    pub(crate) fn blank(id: &str, latency_ms: u32) -> Self {
        Self {
            event_id: format!("evt-{id}"),
            latency_ms,
            region: "WNAM",
            colo: "SJC",
            feedback: None,
            score: None,
            user_agent: "",
            dlp: None,
            byok: false,
        }
    }
}

/// What a DLP scan did to a request: `FLAG` or `BLOCK`, and the profile that matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DlpMatch {
    pub action: &'static str,
    pub profile_id: &'static str,
}

/// One gateway log as the emulator stores it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogRecord {
    pub id: String,
    pub created_at: UnixMillis,
    /// List and get calls ignore the log before this instant (eventual consistency).
    pub visible_at: UnixMillis,
    pub provider: &'static str,
    pub model: &'static str,
    pub path: &'static str,
    pub model_type: Option<&'static str>,
    pub request_type: Option<&'static str>,
    pub duration_ms: u32,
    pub success: bool,
    pub cached: bool,
    pub status_code: u16,
    pub tokens_in: Option<u32>,
    pub tokens_out: Option<u32>,
    /// `None` = not computable; the field is then absent from the JSON.
    pub cost: Option<f64>,
    pub custom_cost: bool,
    pub metadata: Option<Metadata>,
    pub request_content_type: &'static str,
    pub response_content_type: &'static str,
    pub step: u32,
    /// Filterable (`authentication`, `wholesale`, `compatibilityMode` keys); only rendered
    /// inside the live-only extra fields, so "absent" reads as `false`.
    pub authentication: bool,
    pub wholesale: bool,
    pub compatibility_mode: bool,
    pub extras: Option<Box<LogExtras>>,
    /// Seed from which the request/response bodies are rendered on demand (keeps 100k logs
    /// cheap in memory).
    pub payload_seed: u64,
    /// `false` = logged with `cf-aig-collect-log-payload: false`: body routes answer 404.
    pub payload_stored: bool,
}

impl LogRecord {
    /// Sort key of a gateway's log vector: `(created_at, id)`.
    pub(crate) fn sort_key(&self) -> (UnixMillis, &str) {
        (self.created_at, &self.id)
    }

    pub(crate) fn is_visible_at(&self, now: UnixMillis) -> bool {
        self.visible_at <= now
    }

    pub(crate) fn total_tokens(&self) -> Option<u32> {
        Some(self.tokens_in?.saturating_add(self.tokens_out?))
    }

    pub(crate) fn event_id(&self) -> Option<&str> {
        self.extras
            .as_deref()
            .map(|extras| extras.event_id.as_str())
    }

    pub(crate) fn user_agent(&self) -> Option<&'static str> {
        self.extras.as_deref().map(|extras| extras.user_agent)
    }

    pub(crate) fn feedback(&self) -> Option<i8> {
        self.extras.as_deref().and_then(|extras| extras.feedback)
    }

    /// Applies a `PATCH …/logs/{id}` body: `feedback` and `score` (numbers or null) and
    /// `metadata` (an object, or null to clear it). Fields not given are left as they were.
    pub(crate) fn apply_patch(&mut self, patch: &LogPatch) {
        if let Some(feedback) = patch.feedback {
            self.extras_mut().feedback = feedback;
        }
        if let Some(score) = patch.score {
            self.extras_mut().score = score;
        }
        if let Some(metadata) = &patch.metadata {
            self.metadata = metadata.clone();
        }
    }

    fn extras_mut(&mut self) -> &mut LogExtras {
        let (id, latency) = (self.id.clone(), self.duration_ms / 2);
        self.extras
            .get_or_insert_with(|| Box::new(LogExtras::blank(&id, latency)))
    }

    /// The list-row rendering.
    pub(crate) fn list_item(&self) -> ListItem<'_> {
        ListItem {
            id: &self.id,
            created_at: Millis(self.created_at),
            provider: self.provider,
            model: self.model,
            path: self.path,
            duration: self.duration_ms,
            success: self.success,
            cached: self.cached,
            status_code: self.status_code,
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            cost: self.cost,
            custom_cost: self.custom_cost,
            metadata: self
                .metadata
                .as_ref()
                .map(|metadata| metadata.json.as_str()),
            request_content_type: self.request_content_type,
            response_content_type: self.response_content_type,
            step: self.step,
            model_type: self.model_type,
            request_type: self.request_type,
            extras: self.extras.as_deref().map(|extras| ExtrasJson {
                event_id: &extras.event_id,
                timings: Timings {
                    total: self.duration_ms,
                    latency: extras.latency_ms,
                },
                location: Location {
                    region: extras.region,
                    colo: extras.colo,
                },
                feedback: extras.feedback,
                score: extras.score,
                user_agent: extras.user_agent,
                authentication: self.authentication,
                wholesale: self.wholesale,
                byok: extras.byok,
                dlp_action: extras.dlp.map(|dlp| dlp.action),
                dlp_profiles: extras.dlp.map(|dlp| {
                    [DlpProfileJson {
                        profile: DlpProfileRef {
                            profile_id: dlp.profile_id,
                            entry_ids: [dlp.profile_id],
                        },
                        policy_ids: [],
                        check: "REQUEST",
                    }]
                }),
                usage_metadata: self.tokens_in.zip(self.tokens_out).map(
                    |(input_tokens, output_tokens)| UsageMetadata {
                        input_tokens,
                        output_tokens,
                        total_tokens: input_tokens.saturating_add(output_tokens),
                        output_reasoning_tokens: 0,
                        input_cached_tokens: 0,
                    },
                ),
                request: "",
                response: "",
            }),
        }
    }
}

/// A checked `PATCH …/logs/{id}` body; `Some(None)` clears a field.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LogPatch {
    pub feedback: Option<Option<i8>>,
    pub score: Option<Option<f64>>,
    pub metadata: Option<Option<Metadata>>,
}

impl LogPatch {
    /// Reads the body the way the API's schema does: `feedback` -1, 0 or 1, `score` a number,
    /// `metadata` up to 5 string, number or boolean values; anything else is the name of the
    /// field that is wrong.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, &'static str> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| "body")?;
        let object = value.as_object().ok_or("body")?;
        let mut patch = Self::default();
        for (key, value) in object {
            match key.as_str() {
                "feedback" => {
                    patch.feedback = Some(match value {
                        serde_json::Value::Null => None,
                        v => Some(
                            v.as_i64()
                                .filter(|f| (-1..=1).contains(f))
                                .ok_or("feedback")? as i8,
                        ),
                    })
                }
                "score" => {
                    patch.score = Some(match value {
                        serde_json::Value::Null => None,
                        v => Some(v.as_f64().ok_or("score")?),
                    })
                }
                "metadata" => {
                    patch.metadata = Some(match value {
                        serde_json::Value::Null => None,
                        serde_json::Value::Object(map) if map.len() <= 5 => {
                            let mut pairs = Vec::with_capacity(map.len());
                            for (k, v) in map {
                                let text = match v {
                                    serde_json::Value::String(s) => s.clone(),
                                    serde_json::Value::Number(n) => n.to_string(),
                                    serde_json::Value::Bool(b) => b.to_string(),
                                    _ => return Err("metadata"),
                                };
                                pairs.push((k.clone(), text));
                            }
                            Some(Metadata {
                                json: value.to_string(),
                                pairs,
                            })
                        }
                        _ => return Err("metadata"),
                    })
                }
                _ => return Err("body"),
            }
        }
        Ok(patch)
    }
}

/// Serialises a millisecond timestamp in Cloudflare's format without allocating a field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Millis(pub UnixMillis);

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_millis(self.0))
    }
}

/// A log as a list row. `cost`, `metadata`, `model_type` and `request_type` are omitted when
/// unknown (never rendered as `0` / `null`), exactly like the live API.
#[derive(Debug, Serialize)]
pub(crate) struct ListItem<'a> {
    id: &'a str,
    created_at: Millis,
    provider: &'a str,
    model: &'a str,
    path: &'a str,
    duration: u32,
    success: bool,
    cached: bool,
    status_code: u16,
    tokens_in: Option<u32>,
    tokens_out: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<f64>,
    custom_cost: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a str>,
    request_content_type: &'a str,
    response_content_type: &'a str,
    step: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_type: Option<&'a str>,
    #[serde(flatten)]
    extras: Option<ExtrasJson<'a>>,
}

#[derive(Debug, Serialize)]
struct ExtrasJson<'a> {
    event_id: &'a str,
    timings: Timings,
    location: Location,
    feedback: Option<i8>,
    score: Option<f64>,
    user_agent: &'a str,
    authentication: bool,
    wholesale: bool,
    byok: bool,
    dlp_action: Option<&'a str>,
    /// `null`, or the matched profiles (API-NOTES §1.4's shape).
    dlp_profiles: Option<[DlpProfileJson; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<UsageMetadata>,
    /// Live rows carry the long-dropped `request`/`response` fields as empty strings.
    request: &'a str,
    response: &'a str,
}

#[derive(Debug, Serialize)]
struct DlpProfileJson {
    profile: DlpProfileRef,
    policy_ids: [&'static str; 0],
    check: &'static str,
}

#[derive(Debug, Serialize)]
struct DlpProfileRef {
    profile_id: &'static str,
    entry_ids: [&'static str; 1],
}

#[derive(Debug, Serialize)]
struct Timings {
    total: u32,
    latency: u32,
}

#[derive(Debug, Serialize)]
struct Location {
    region: &'static str,
    colo: &'static str,
}

#[derive(Debug, Serialize)]
struct UsageMetadata {
    input_tokens: u32,
    output_tokens: u32,
    total_tokens: u32,
    output_reasoning_tokens: u32,
    input_cached_tokens: u32,
}

/// The head of a stored body, as the detail route reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BodyHead {
    pub head: String,
    pub complete: bool,
    pub size: usize,
}

/// A log as returned by `GET …/logs/{id}`: the list row plus the `*_head` fields.
#[derive(Debug, Serialize)]
pub(crate) struct DetailItem<'a> {
    #[serde(flatten)]
    pub row: ListItem<'a>,
    pub request_head: String,
    pub request_head_complete: bool,
    pub request_size: usize,
    pub response_head: String,
    pub response_head_complete: bool,
    pub response_size: usize,
}

impl<'a> DetailItem<'a> {
    pub(crate) fn new(record: &'a LogRecord, request: BodyHead, response: BodyHead) -> Self {
        Self {
            row: record.list_item(),
            request_head: request.head,
            request_head_complete: request.complete,
            request_size: request.size,
            response_head: response.head,
            response_head_complete: response.complete,
            response_size: response.size,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A plain successful OpenAI log for tests that need full control over one record.
    pub(crate) fn sample_record(id: &str, created_at: UnixMillis) -> LogRecord {
        LogRecord {
            id: id.to_owned(),
            created_at,
            visible_at: ALWAYS_VISIBLE,
            provider: "openai",
            model: "gpt-4o-mini",
            path: "chat/completions",
            model_type: Some("chat"),
            request_type: None,
            duration_ms: 1184,
            success: true,
            cached: false,
            status_code: 200,
            tokens_in: Some(412),
            tokens_out: Some(88),
            cost: Some(0.0001146),
            custom_cost: false,
            metadata: Some(Metadata {
                json: r#"{"team":"search","user":"u_4821"}"#.to_owned(),
                pairs: vec![
                    ("team".to_owned(), "search".to_owned()),
                    ("user".to_owned(), "u_4821".to_owned()),
                ],
            }),
            request_content_type: "application/json",
            response_content_type: "application/json",
            step: 0,
            authentication: false,
            wholesale: false,
            compatibility_mode: false,
            extras: None,
            payload_seed: 7,
            payload_stored: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::sample_record;
    use super::*;
    use serde_json::{json, Value};
    use time::macros::datetime;

    #[test]
    fn formats_milliseconds_like_cloudflare() {
        let millis = unix_millis(datetime!(2026-08-12 09:14:03.512 UTC));
        assert_eq!(format_millis(millis), "2026-08-12T09:14:03.512Z");
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn list_item_matches_the_fixture_row() {
        let millis = unix_millis(datetime!(2026-08-12 09:14:03.512 UTC));
        let mut record = sample_record("01KZTM03BRZGWSPE1FRFKS26YR", millis);
        record.model_type = None;
        let rendered = serde_json::to_value(record.list_item()).expect("serialise");
        assert_eq!(
            rendered,
            json!({
                "id": "01KZTM03BRZGWSPE1FRFKS26YR",
                "created_at": "2026-08-12T09:14:03.512Z",
                "provider": "openai",
                "model": "gpt-4o-mini",
                "path": "chat/completions",
                "duration": 1184,
                "success": true,
                "cached": false,
                "status_code": 200,
                "tokens_in": 412,
                "tokens_out": 88,
                "cost": 0.0001146,
                "custom_cost": false,
                "metadata": "{\"team\":\"search\",\"user\":\"u_4821\"}",
                "request_content_type": "application/json",
                "response_content_type": "application/json",
                "step": 0
            })
        );
    }

    #[test]
    fn unknown_cost_is_absent_and_error_tokens_are_null() {
        let mut record = sample_record("x", 0);
        record.cost = None;
        record.tokens_in = None;
        record.tokens_out = None;
        record.metadata = None;
        let rendered = serde_json::to_value(record.list_item()).expect("serialise");
        let object = rendered.as_object().expect("object");
        assert!(!object.contains_key("cost"));
        assert!(!object.contains_key("metadata"));
        assert_eq!(object["tokens_in"], Value::Null);
        assert_eq!(object["tokens_out"], Value::Null);
    }

    #[test]
    fn extras_render_as_flat_fields_and_detail_adds_heads() {
        let mut record = sample_record("x", 0);
        record.extras = Some(Box::new(LogExtras {
            event_id: "evt".to_owned(),
            latency_ms: 400,
            region: "WEUR",
            colo: "AMS",
            feedback: Some(1),
            score: Some(0.5),
            user_agent: "curl/8.5.0",
            dlp: Some(DlpMatch {
                action: "BLOCK",
                profile_id: "pii-ssn",
            }),
            byok: true,
        }));
        let head = BodyHead {
            head: "{}".to_owned(),
            complete: true,
            size: 2,
        };
        let rendered =
            serde_json::to_value(DetailItem::new(&record, head.clone(), head)).expect("serialise");
        assert_eq!(rendered["event_id"], "evt");
        assert_eq!(rendered["score"], 0.5);
        assert_eq!(rendered["byok"], true);
        assert_eq!(rendered["dlp_action"], "BLOCK");
        assert_eq!(
            rendered["dlp_profiles"][0]["profile"]["profile_id"],
            "pii-ssn"
        );
        assert_eq!(rendered["dlp_profiles"][0]["check"], "REQUEST");
        assert_eq!(rendered["timings"], json!({"total": 1184, "latency": 400}));
        assert_eq!(
            rendered["location"],
            json!({"region": "WEUR", "colo": "AMS"})
        );
        assert_eq!(rendered["request"], "");
        assert_eq!(rendered["response"], "");
        assert_eq!(rendered["request_head"], "{}");
        assert_eq!(rendered["response_head_complete"], true);
        assert_eq!(rendered["response_size"], 2);
    }
}
