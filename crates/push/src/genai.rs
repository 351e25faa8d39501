//! A span as an interaction, when it is a GenAI call: Cloudflare AI Gateway's export
//! (`gen_ai.request.model`, `gen_ai.model.provider`, `gen_ai.usage.*`, `gen_ai.usage.cost`,
//! `gen_ai.prompt_json`, `gen_ai.completion_json`, and each `cf-aig-metadata` key as an
//! attribute) and the OpenTelemetry GenAI semantic conventions apps instrumented with
//! OpenLLMetry or OpenLIT send (`gen_ai.provider.name` / `gen_ai.system`,
//! `gen_ai.response.model`, `gen_ai.usage.prompt_tokens`, `gen_ai.input.messages`, …).

use langguard_pricing::{CostInput, Pricer};
use langguard_store::clean::{json_without_nul, non_empty};
use langguard_store::{
    Bodies, BodySettings, IngestSource, LogDetails, NewInteraction, PushedInteraction,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
use serde_json::{Map, Value};

use crate::{body_text, Record};

/// The attribute that names a span's gateway when the request does not.
pub const GATEWAY_ATTRIBUTE: &str = "langguard.gateway";
/// The gateway of spans nothing names.
pub const DEFAULT_GATEWAY: &str = "otlp";

/// Where a span's gateway can come from.
pub(crate) struct Gateway<'a> {
    pub named: Option<&'a str>,
    pub resource: &'a [KeyValue],
}

/// `Ok(None)` for a span that is not a GenAI call; `Err(why)` for one that cannot be stored.
pub(crate) fn record(
    span: Span,
    gateway: &Gateway<'_>,
    bodies: &BodySettings,
    pricer: &Pricer,
) -> Result<Option<Record>, String> {
    if !span
        .attributes
        .iter()
        .any(|kv| kv.key.starts_with("gen_ai."))
    {
        return Ok(None);
    }
    let name = span.name.clone();
    if span.trace_id.len() != 16 || span.span_id.len() != 8 || span.trace_id.iter().all(|b| *b == 0)
    {
        return Err(format!("span {name:?} has no valid trace_id and span_id"));
    }
    if span.start_time_unix_nano == 0 {
        return Err(format!("span {name:?} has no start time"));
    }
    let log_id = IngestSource::Otlp.log_id(&format!(
        "{}:{}",
        hex::encode(&span.trace_id),
        hex::encode(&span.span_id)
    ));
    let attrs = Attributes(&span.attributes);
    let gateway = gateway
        .named
        .map(str::to_owned)
        .or_else(|| non_empty(attrs.text(GATEWAY_ATTRIBUTE)))
        .or_else(|| non_empty(Attributes(gateway.resource).text(GATEWAY_ATTRIBUTE)))
        .unwrap_or_else(|| DEFAULT_GATEWAY.to_owned());

    let requested = non_empty(attrs.text("gen_ai.request.model"));
    let served = non_empty(attrs.text("gen_ai.response.model"));
    let model = served
        .clone()
        .or_else(|| requested.clone())
        .unwrap_or_else(|| "unknown".into());
    let requested_model = requested.filter(|r| served.as_ref().is_some_and(|s| s != r));
    let provider = [
        "gen_ai.model.provider",
        "gen_ai.provider.name",
        "gen_ai.system",
    ]
    .iter()
    .find_map(|k| non_empty(attrs.text(k)))
    .map(|p| provider_slug(&p))
    .unwrap_or_else(|| "unknown".into());
    let tokens_in = attrs
        .count("gen_ai.usage.input_tokens")
        .or_else(|| attrs.count("gen_ai.usage.prompt_tokens"));
    let tokens_out = attrs
        .count("gen_ai.usage.output_tokens")
        .or_else(|| attrs.count("gen_ai.usage.completion_tokens"));
    let status_code = ["http.response.status_code", "http.status_code"]
        .iter()
        .find_map(|k| attrs.count(k));
    let errored = span
        .status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32);
    let success = !errored && status_code.is_none_or(|s| s < 400);
    let created_at_ms = (span.start_time_unix_nano / 1_000_000) as i64;
    let duration_ms = (span
        .end_time_unix_nano
        .saturating_sub(span.start_time_unix_nano)
        / 1_000_000)
        .min(crate::usage::MAX_DURATION_MS as u64) as i64;
    let priced = pricer.priced(&CostInput {
        provider: &provider,
        model: &model,
        created_at_ms,
        success,
        cached: false,
        tokens_in,
        tokens_out,
        gateway_cost: attrs.number("gen_ai.usage.cost"),
        custom_cost: false,
        byok: None,
    });

    let prompt = [
        "gen_ai.prompt_json",
        "gen_ai.input.messages",
        "gen_ai.prompt",
    ]
    .iter()
    .find_map(|k| attrs.text(k));
    let completion = [
        "gen_ai.completion_json",
        "gen_ai.output.messages",
        "gen_ai.completion",
    ]
    .iter()
    .find_map(|k| attrs.text(k));
    let bodies =
        (bodies.wants(&log_id) && (prompt.is_some() || completion.is_some())).then(|| Bodies {
            request: prompt.map(body_text),
            response: completion.map(body_text),
        });

    // Custom metadata: the attributes that are not GenAI ones (Cloudflare's cf-aig-metadata
    // keys arrive this way) — not the one naming the gateway, not the namespaces that carry
    // prompts, completions or HTTP headers (those are bodies, kept only as the integration's
    // bodies setting says), and within limits.
    let metadata: Map<String, Value> = span
        .attributes
        .iter()
        .filter(|kv| {
            !kv.key.starts_with("gen_ai.")
                && kv.key != GATEWAY_ATTRIBUTE
                && !PAYLOAD_PREFIXES.iter().any(|p| kv.key.starts_with(p))
                && kv.key.len() <= MAX_METADATA_KEY
        })
        .filter_map(|kv| Some((kv.key.clone(), capped(json(kv.value.as_ref()?)?))))
        .take(MAX_METADATA_ENTRIES)
        .collect();
    let path = ["url.path", "http.route", "gen_ai.operation.name"]
        .iter()
        .find_map(|k| non_empty(attrs.text(k)));

    Ok(Some(Record {
        gateway,
        pushed: PushedInteraction {
            interaction: NewInteraction {
                log_id,
                created_at_ms,
                provider,
                model,
                path,
                status_code,
                success,
                cached: false,
                duration_ms,
                tokens_in,
                tokens_out,
                cost_usd: priced.cost_usd,
                cost_source: priced.source,
                metadata: (!metadata.is_empty())
                    .then(|| json_without_nul(Value::Object(metadata)).to_string()),
                requested_model,
                details: LogDetails {
                    cost_estimate_usd: priced.byok_estimate_usd,
                    ..LogDetails::default()
                },
            },
            bodies,
        },
    }))
}

/// Attribute namespaces that carry payloads or headers rather than metadata (OpenLLMetry's
/// entity input/output and prompt lists, HTTP headers).
const PAYLOAD_PREFIXES: [&str; 5] = [
    "traceloop.entity.",
    "llm.prompts",
    "llm.completions",
    "http.request.header.",
    "http.response.header.",
];
/// Metadata entries kept per span (Cloudflare allows 5 `cf-aig-metadata` keys).
const MAX_METADATA_ENTRIES: usize = 64;
const MAX_METADATA_KEY: usize = 256;
/// Longest metadata value kept, in bytes; longer text is cut.
const MAX_METADATA_VALUE: usize = 1024;

/// A metadata value within [`MAX_METADATA_VALUE`]: long text cut, large structures noted.
fn capped(value: Value) -> Value {
    match value {
        Value::String(mut s) if s.len() > MAX_METADATA_VALUE => {
            let mut end = MAX_METADATA_VALUE;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            Value::String(s)
        }
        v @ (Value::Array(_) | Value::Object(_)) if v.to_string().len() > MAX_METADATA_VALUE => {
            Value::String("(too large to keep)".into())
        }
        v => v,
    }
}

/// OpenTelemetry's provider names (`gen_ai.provider.name` / `gen_ai.system`) as Cloudflare's
/// provider slugs, so prices and filters line up whichever way a log came in.
fn provider_slug(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "aws.bedrock" | "bedrock" => "aws-bedrock",
        "azure.ai.openai" | "az.ai.openai" | "azure_openai" => "azure-openai",
        "azure.ai.inference" | "az.ai.inference" => "azure-openai",
        "gcp.vertex_ai" | "vertex_ai" | "vertexai" => "google-vertex-ai",
        "gcp.gemini" | "gemini" | "gcp.gen_ai" | "google" => "google-ai-studio",
        "mistral_ai" | "mistralai" => "mistral",
        "x_ai" | "xai" => "grok",
        "perplexity" => "perplexity-ai",
        "ibm.watsonx.ai" => "watsonx",
        other => return other.to_owned(),
    }
    .to_owned()
}

/// A span's attributes by key.
struct Attributes<'a>(&'a [KeyValue]);

impl Attributes<'_> {
    fn get(&self, key: &str) -> Option<&any_value::Value> {
        self.0
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    fn text(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            any_value::Value::IntValue(i) => Some(i.to_string()),
            any_value::Value::DoubleValue(d) => Some(d.to_string()),
            any_value::Value::BoolValue(b) => Some(b.to_string()),
            other => json(&AnyValue {
                value: Some(other.clone()),
            })
            .map(|v| v.to_string()),
        }
    }

    fn count(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            any_value::Value::IntValue(i) => Some(*i),
            any_value::Value::DoubleValue(d) if d.fract() == 0.0 => Some(*d as i64),
            any_value::Value::StringValue(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|n| *n >= 0)
    }

    fn number(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            any_value::Value::DoubleValue(d) => Some(*d),
            any_value::Value::IntValue(i) => Some(*i as f64),
            any_value::Value::StringValue(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|n: &f64| n.is_finite())
    }
}

/// An attribute value as JSON.
fn json(value: &AnyValue) -> Option<Value> {
    Some(match value.value.as_ref()? {
        any_value::Value::StringValue(s) => Value::String(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => Value::from(*i),
        any_value::Value::DoubleValue(d) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        any_value::Value::ArrayValue(a) => Value::Array(a.values.iter().filter_map(json).collect()),
        any_value::Value::KvlistValue(kv) => Value::Object(
            kv.values
                .iter()
                .filter_map(|kv| Some((kv.key.clone(), json(kv.value.as_ref()?)?)))
                .collect(),
        ),
        any_value::Value::BytesValue(b) => Value::String(hex::encode(b)),
        // An index into a profiles string table: meaningless in a trace.
        any_value::Value::StringValueStrindex(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use langguard_store::{BodyMode, CostSource};
    use opentelemetry_proto::tonic::trace::v1::Status;

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }
    fn s(v: &str) -> any_value::Value {
        any_value::Value::StringValue(v.into())
    }

    fn span(attributes: Vec<KeyValue>) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "chat".into(),
            start_time_unix_nano: 1_764_500_000_123_000_000,
            end_time_unix_nano: 1_764_500_001_000_000_000,
            attributes,
            ..Span::default()
        }
    }

    fn all() -> BodySettings {
        BodySettings {
            mode: BodyMode::All,
            ..BodySettings::default()
        }
    }

    fn gateway() -> Gateway<'static> {
        Gateway {
            named: None,
            resource: &[],
        }
    }

    #[test]
    fn a_cloudflare_span_becomes_an_interaction() {
        let record = record(
            span(vec![
                kv("gen_ai.request.model", s("gpt-4o-mini")),
                kv("gen_ai.model.provider", s("openai")),
                kv("gen_ai.usage.input_tokens", any_value::Value::IntValue(12)),
                kv("gen_ai.usage.output_tokens", any_value::Value::IntValue(3)),
                kv("gen_ai.usage.cost", any_value::Value::DoubleValue(0.0001)),
                kv(
                    "gen_ai.prompt_json",
                    s(r#"[{"role":"user","content":"hi"}]"#),
                ),
                kv("gen_ai.completion_json", s(r#"{"content":"hello"}"#)),
                kv("team", s("search")),
                kv("user_id", any_value::Value::IntValue(42)),
            ]),
            &gateway(),
            &all(),
            Pricer::shared(),
        )
        .expect("storable")
        .expect("a GenAI span");
        assert_eq!(record.gateway, "otlp");
        let i = &record.pushed.interaction;
        assert_eq!(
            i.log_id,
            format!("otlp:{}:{}", "01".repeat(16), "02".repeat(8))
        );
        assert_eq!(
            (i.provider.as_str(), i.model.as_str()),
            ("openai", "gpt-4o-mini")
        );
        assert_eq!(i.requested_model, None);
        assert_eq!((i.tokens_in, i.tokens_out), (Some(12), Some(3)));
        assert_eq!(
            (i.cost_usd, i.cost_source),
            (Some(0.0001), Some(CostSource::Gateway))
        );
        assert_eq!((i.created_at_ms, i.duration_ms), (1_764_500_000_123, 877));
        assert!(i.success);
        assert_eq!(
            i.metadata.as_deref(),
            Some(r#"{"team":"search","user_id":42}"#)
        );
        let bodies = record.pushed.bodies.expect("bodies");
        assert!(bodies.request.is_some_and(|b| b.contains("hi")));
    }

    #[test]
    fn semantic_convention_spans_map_too() {
        let mut sp = span(vec![
            kv("gen_ai.system", s("aws.bedrock")),
            kv("gen_ai.request.model", s("claude-3-haiku")),
            kv(
                "gen_ai.response.model",
                s("anthropic.claude-3-haiku-20240307-v1:0"),
            ),
            kv("gen_ai.usage.prompt_tokens", s("40")),
            kv(GATEWAY_ATTRIBUTE, s("bedrock-app")),
        ]);
        sp.status = Some(Status {
            code: StatusCode::Error as i32,
            message: "throttled".into(),
        });
        let record = record(sp, &gateway(), &BodySettings::default(), Pricer::shared())
            .expect("storable")
            .expect("GenAI");
        assert_eq!(record.gateway, "bedrock-app");
        let i = &record.pushed.interaction;
        assert_eq!(i.provider, "aws-bedrock");
        assert_eq!(i.model, "anthropic.claude-3-haiku-20240307-v1:0");
        assert_eq!(i.requested_model.as_deref(), Some("claude-3-haiku"));
        assert_eq!(i.tokens_in, Some(40));
        assert!(!i.success);
        assert_eq!(i.metadata, None);
        assert!(record.pushed.bodies.is_none());
    }

    #[test]
    fn metadata_keeps_to_its_limits_and_leaves_payloads_out() {
        let mut attrs = vec![
            kv("gen_ai.system", s("openai")),
            kv("traceloop.entity.input", s("the whole prompt")),
            kv("http.request.header.authorization", s("Bearer secret")),
            kv("long", s(&"x".repeat(5_000))),
        ];
        for n in 0..100 {
            attrs.push(kv(&format!("k{n:03}"), s("v")));
        }
        let r = record(span(attrs), &gateway(), &all(), Pricer::shared())
            .expect("ok")
            .expect("GenAI");
        let metadata: Map<String, Value> =
            serde_json::from_str(r.pushed.interaction.metadata.as_deref().expect("metadata"))
                .expect("object");
        assert!(!metadata.contains_key("traceloop.entity.input"));
        assert!(!metadata.contains_key("http.request.header.authorization"));
        assert_eq!(
            metadata["long"].as_str().map(str::len),
            Some(MAX_METADATA_VALUE)
        );
        assert_eq!(metadata.len(), MAX_METADATA_ENTRIES);
    }

    #[test]
    fn other_spans_are_skipped_and_broken_ones_rejected() {
        let plain = span(vec![kv("http.method", s("GET"))]);
        assert!(record(plain, &gateway(), &all(), Pricer::shared())
            .expect("fine")
            .is_none());
        let mut no_ids = span(vec![kv("gen_ai.system", s("openai"))]);
        no_ids.trace_id = vec![];
        assert!(record(no_ids, &gateway(), &all(), Pricer::shared()).is_err());
        let mut no_time = span(vec![kv("gen_ai.system", s("openai"))]);
        no_time.start_time_unix_nano = 0;
        assert!(record(no_time, &gateway(), &all(), Pricer::shared()).is_err());
        // The request's own gateway wins over attributes.
        let named = Gateway {
            named: Some("from-header"),
            resource: &[],
        };
        let r = record(
            span(vec![
                kv("gen_ai.system", s("openai")),
                kv(GATEWAY_ATTRIBUTE, s("attr")),
            ]),
            &named,
            &all(),
            Pricer::shared(),
        )
        .expect("ok")
        .expect("GenAI");
        assert_eq!(r.gateway, "from-header");
    }
}
