//! Wire types of the Cloudflare v4 API as it really behaves (API-NOTES §1–5): the envelope,
//! gateways, logs, token verification. Decoding is tolerant by design — unknown fields are
//! ignored, nullable and absent fields are `Option`, numbers may arrive as floats or strings —
//! because Cloudflare adds fields without notice and an importer must not stop on them.

use serde::{de, Deserialize, Deserializer, Serialize};

/// A v4 message or error: `{code, message, error_chain?}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ApiMessage {
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub error_chain: Vec<ApiMessage>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ResultInfo {
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub page: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub per_page: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub count: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub total_count: Option<i64>,
}

/// The v4 envelope. Only `success` and `result` are required by the official schema.
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub errors: Vec<ApiMessage>,
    #[serde(default = "Option::default")]
    pub result: Option<T>,
    #[serde(default)]
    pub result_info: Option<ResultInfo>,
}

/// Only the gateway fields LangGuard uses; the rest of the (large, changing) object is ignored.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Gateway {
    pub id: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub collect_logs: Option<bool>,
    #[serde(default)]
    pub log_management: Option<i64>,
}

/// A Logpush job (only the fields LangGuard reads).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct LogpushJob {
    #[serde(deserialize_with = "lenient_i64")]
    pub id: i64,
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default)]
    pub destination_conf: String,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub last_complete: Option<String>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    Active,
    Disabled,
    Expired,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct TokenVerification {
    pub id: String,
    pub status: TokenStatus,
    #[serde(default)]
    pub not_before: Option<String>,
    #[serde(default)]
    pub expires_on: Option<String>,
}

/// Which kind of token verified: user-owned tokens verify on `/user/tokens/verify`,
/// account-owned tokens on `/accounts/{id}/tokens/verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    User,
    Account,
}

/// One AI Gateway log as listed (API-NOTES §1.4).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct GatewayLog {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    pub created_at: String,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub duration: Option<i64>,
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub cached: Option<bool>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub status_code: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub tokens_in: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub tokens_out: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub cost: Option<f64>,
    #[serde(default)]
    pub custom_cost: Option<bool>,
    /// A JSON-encoded string over REST, an object from the Workers binding; either is kept.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub model_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub request_type: Option<String>,
    #[serde(default)]
    pub request_content_type: Option<String>,
    #[serde(default)]
    pub response_content_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub step: Option<i64>,
    // Fields seen on live rows but in no SDK schema (API-NOTES §1.4): read leniently, since
    // nothing promises their types, and a surprise in one must not cost the whole row.
    /// The `cf-aig-event-id` request header.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub event_id: Option<String>,
    /// 1, -1 or null; set after the call (PATCH …/logs/{id}).
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub feedback: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub score: Option<f64>,
    /// `FLAG`, `BLOCK` or null.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub dlp_action: Option<String>,
    /// Null or `[{profile: {profile_id, entry_ids}, policy_ids, check}]`.
    #[serde(default)]
    pub dlp_profiles: Option<serde_json::Value>,
    #[serde(default)]
    pub guardrails: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub user_agent: Option<String>,
    /// `{input_tokens, output_tokens, total_tokens, output_reasoning_tokens,
    /// input_cached_tokens}`.
    #[serde(default)]
    pub usage_metadata: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient_opt_bool")]
    pub byok: Option<bool>,
}

impl GatewayLog {
    /// Input tokens served from the provider's prompt cache (`usage_metadata`).
    pub fn cached_tokens(&self) -> Option<i64> {
        self.usage_count("input_cached_tokens")
    }

    /// Output tokens spent on reasoning (`usage_metadata`).
    pub fn reasoning_tokens(&self) -> Option<i64> {
        self.usage_count("output_reasoning_tokens")
    }

    fn usage_count(&self, key: &str) -> Option<i64> {
        let value = self.usage_metadata.as_ref()?.get(key)?;
        value
            .as_i64()
            .or_else(|| {
                value
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.round() as i64)
            })
            .filter(|n| *n >= 0)
    }
}

/// `GET …/logs/{id}`: the list fields plus the heads of the stored request and response.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct LogDetail {
    #[serde(flatten)]
    pub log: GatewayLog,
    #[serde(default)]
    pub request_head: Option<String>,
    #[serde(default)]
    pub request_head_complete: Option<bool>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub request_size: Option<i64>,
    #[serde(default)]
    pub response_head: Option<String>,
    #[serde(default)]
    pub response_head_complete: Option<bool>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub response_size: Option<i64>,
}

/// A stored request or response body, as Cloudflare returns it (no envelope).
#[derive(Debug, Clone, PartialEq)]
pub struct LogBody {
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// Accepts an integer, a float (rounded), a numeric string or null; anything else is absent.
/// A visitor rather than a `serde_json::Value` detour: this runs for several fields of every log.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    lenient_opt_i64(d)?.ok_or_else(|| de::Error::custom("expected a number"))
}

fn lenient_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_any(LenientNumber).map(|n| {
        n.and_then(|n| match n {
            Number::Int(i) => Some(i),
            Number::Float(f) if f.is_finite() => Some(f.round() as i64),
            Number::Float(_) => None,
        })
    })
}

/// Accepts a number, a numeric string or null; non-finite values count as absent.
fn lenient_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    d.deserialize_any(LenientNumber).map(|n| {
        n.map(|n| match n {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        })
        .filter(|f| f.is_finite())
    })
}

enum Number {
    Int(i64),
    Float(f64),
}

struct LenientNumber;

impl<'de> de::Visitor<'de> for LenientNumber {
    type Value = Option<Number>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, a numeric string or null")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Number::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(match i64::try_from(v) {
            Ok(i) => Number::Int(i),
            Err(_) => Number::Float(v as f64),
        }))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Number::Float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let v = v.trim();
        Ok(v.parse::<i64>()
            .map(Number::Int)
            .or_else(|_| v.parse::<f64>().map(Number::Float))
            .ok())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(None)
    }
}

/// Text, or a number or boolean as its text; anything else (null, an array, an object) is
/// absent.
fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// A boolean, `"true"`/`"false"`, or 0/1; anything else is absent.
fn lenient_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => Some(b),
        serde_json::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    })
}

/// Log ids are opaque strings (ULIDs or 64-hex hashes); a numeric id is kept as its text.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !s.is_empty() => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(de::Error::custom(format!(
            "log id must be a non-empty string, got {other}"
        ))),
    }
}

/// Rows one GraphQL Analytics query may return (the API's `limit` maximum).
pub const GRAPHQL_MAX_ROWS: u64 = 10_000;

/// One gateway-hour of `aiGatewayRequestsAdaptiveGroups`: how many requests Cloudflare counted
/// (sample-corrected: an estimate for busy hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyRequests {
    pub gateway: String,
    /// Start of the hour, Unix ms.
    pub hour_ms: i64,
    pub count: u64,
}
