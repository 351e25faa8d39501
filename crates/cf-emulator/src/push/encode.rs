//! How a gateway request leaves Cloudflare when pushed: an OpenTelemetry span (OTLP/HTTP,
//! protobuf or JSON) with the GenAI attributes of API-NOTES §6, or an `ai_gateway_events` line
//! whose `Metadata`, `RequestBody` and `ResponseBody` are encrypted for the gateway's public key
//! (AES-256-GCM data key wrapped with RSA-OAEP-SHA256, as Cloudflare's docs describe).
//!
//! The encryption here is written from the documented scheme, independently of LangGuard's
//! decryptor, so a misreading on either side shows up as a test failure.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message as _;
use rand::RngCore;
use rsa::pkcs8::DecodePublicKey;
use rsa::PublicKey;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::bodies::render_bodies;
use crate::log_record::{format_millis, LogRecord};

/// The attributes of one request's span, in order.
enum Attr {
    Text(String),
    Int(i64),
    Double(f64),
    Bool(bool),
}

fn attributes(record: &LogRecord) -> Vec<(String, Attr)> {
    let mut attrs = vec![
        (
            "gen_ai.request.model".to_owned(),
            Attr::Text(record.model.to_owned()),
        ),
        (
            "gen_ai.model.provider".to_owned(),
            Attr::Text(record.provider.to_owned()),
        ),
        (
            "http.response.status_code".to_owned(),
            Attr::Int(i64::from(record.status_code)),
        ),
    ];
    if let Some(tokens) = record.tokens_in {
        attrs.push(("gen_ai.usage.input_tokens".into(), Attr::Int(tokens.into())));
    }
    if let Some(tokens) = record.tokens_out {
        attrs.push((
            "gen_ai.usage.output_tokens".into(),
            Attr::Int(tokens.into()),
        ));
    }
    if let Some(cost) = record.cost {
        attrs.push(("gen_ai.usage.cost".into(), Attr::Double(cost)));
    }
    if record.payload_stored {
        let (request, response) = render_bodies(record);
        attrs.push(("gen_ai.prompt_json".into(), Attr::Text(request.text)));
        attrs.push(("gen_ai.completion_json".into(), Attr::Text(response.text)));
    }
    // Every cf-aig-metadata key becomes an attribute; Cloudflare drops keys starting `gen_ai.`.
    for (key, value) in metadata_object(record) {
        if key.starts_with("gen_ai.") {
            continue;
        }
        let attr = match value {
            Value::Bool(b) => Attr::Bool(b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Attr::Int(i),
                None => Attr::Double(n.as_f64().unwrap_or_default()),
            },
            Value::String(s) => Attr::Text(s),
            other => Attr::Text(other.to_string()),
        };
        attrs.push((key, attr));
    }
    attrs
}

fn metadata_object(record: &LogRecord) -> Map<String, Value> {
    record
        .metadata
        .as_ref()
        .and_then(|m| serde_json::from_str::<Map<String, Value>>(&m.json).ok())
        .unwrap_or_default()
}

/// Trace and span ids derived from the log id, so re-sending a request's span keeps them.
fn span_ids(record: &LogRecord) -> ([u8; 16], [u8; 8]) {
    let digest = Sha256::digest(record.id.as_bytes());
    let mut trace = [0u8; 16];
    let mut span = [0u8; 8];
    trace.copy_from_slice(&digest[..16]);
    span.copy_from_slice(&digest[16..24]);
    (trace, span)
}

fn times_nanos(record: &LogRecord) -> (u64, u64) {
    let start = u64::try_from(record.created_at)
        .unwrap_or_default()
        .saturating_mul(1_000_000);
    (
        start,
        start.saturating_add(u64::from(record.duration_ms) * 1_000_000),
    )
}

const SCOPE: &str = "cloudflare.ai-gateway";

/// An OTLP/HTTP protobuf export request carrying one span per record.
pub(crate) fn otlp_protobuf(records: &[&LogRecord]) -> Vec<u8> {
    let spans = records
        .iter()
        .map(|record| {
            let (trace_id, span_id) = span_ids(record);
            let (start, end) = times_nanos(record);
            Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                name: format!("{} {}", record.provider, record.model),
                kind: span::SpanKind::Client as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes: attributes(record)
                    .into_iter()
                    .map(|(key, value)| KeyValue {
                        key,
                        key_strindex: 0,
                        value: Some(AnyValue {
                            value: Some(match value {
                                Attr::Text(s) => any_value::Value::StringValue(s),
                                Attr::Int(i) => any_value::Value::IntValue(i),
                                Attr::Double(d) => any_value::Value::DoubleValue(d),
                                Attr::Bool(b) => any_value::Value::BoolValue(b),
                            }),
                        }),
                    })
                    .collect(),
                status: (!record.success).then(|| Status {
                    code: status::StatusCode::Error as i32,
                    message: String::new(),
                }),
                ..Span::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource::default()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: SCOPE.into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

/// The same request in OTLP/JSON (hex ids, camelCase, 64-bit integers as strings), written by
/// hand from the OTLP specification.
pub(crate) fn otlp_json(records: &[&LogRecord]) -> Vec<u8> {
    let spans: Vec<Value> = records
        .iter()
        .map(|record| {
            let (trace_id, span_id) = span_ids(record);
            let (start, end) = times_nanos(record);
            let attributes: Vec<Value> = attributes(record)
                .into_iter()
                .map(|(key, value)| {
                    let value = match value {
                        Attr::Text(s) => json!({"stringValue": s}),
                        Attr::Int(i) => json!({"intValue": i.to_string()}),
                        Attr::Double(d) => json!({"doubleValue": d}),
                        Attr::Bool(b) => json!({"boolValue": b}),
                    };
                    json!({"key": key, "value": value})
                })
                .collect();
            let mut span = json!({
                "traceId": hex(&trace_id),
                "spanId": hex(&span_id),
                "name": format!("{} {}", record.provider, record.model),
                "kind": 3,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": end.to_string(),
                "attributes": attributes,
            });
            if !record.success {
                span["status"] = json!({"code": 2});
            }
            span
        })
        .collect();
    json!({"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": SCOPE}, "spans": spans}]}]})
        .to_string()
        .into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Encrypts Logpush fields for one gateway's public key.
pub(crate) struct Sealer {
    key: PublicKey,
}

impl Sealer {
    /// `None` when the PEM is not an RSA public key (Cloudflare would not push then either).
    pub(crate) fn new(public_pem: &str) -> Option<Self> {
        PublicKey::from_public_key_pem(public_pem.trim())
            .ok()
            .map(|key| Self { key })
    }

    /// One request's sealer: a fresh AES-256 data key, wrapped once with RSA-OAEP-SHA256 and
    /// shared by the request's fields.
    fn for_request(&self) -> Option<RequestSealer> {
        let mut data_key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut data_key);
        let wrapped = self.key.oaep_encrypt::<rsa::sha2::Sha256>(&data_key).ok()?;
        Some(RequestSealer {
            wrapped: BASE64.encode(wrapped),
            cipher: Aes256Gcm::new(&data_key.into()),
        })
    }
}

struct RequestSealer {
    wrapped: String,
    cipher: Aes256Gcm,
}

impl RequestSealer {
    /// `{type, key, iv, data}` with a fresh IV; `data` is the GCM ciphertext with its tag
    /// appended (as WebCrypto produces it).
    fn seal(&self, plaintext: &[u8]) -> Value {
        let mut iv = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut iv);
        let Ok(data) = self.cipher.encrypt(Nonce::from_slice(&iv), plaintext) else {
            return Value::Null;
        };
        json!({
            "type": "encrypted",
            "key": self.wrapped,
            "iv": BASE64.encode(iv),
            "data": BASE64.encode(data),
        })
    }
}

/// One `ai_gateway_events` NDJSON line (no newline) in the job's `timestamp_format`.
pub(crate) fn logpush_line(
    record: &LogRecord,
    gateway: &str,
    sealer: &Sealer,
    timestamp_format: &str,
) -> String {
    let timestamp = match timestamp_format {
        "unix" => json!(record.created_at.div_euclid(1000)),
        "rfc3339" => {
            // Whole seconds, as Logpush's RFC 3339 output has.
            let millis = format_millis(record.created_at);
            json!(format!("{}Z", &millis[..19]))
        }
        _ => json!(i128::from(record.created_at) * 1_000_000),
    };
    let mut metrics = Map::new();
    if let Some(cost) = record.cost {
        metrics.insert("cost".into(), json!(cost));
    }
    metrics.insert("durationMs".into(), json!(record.duration_ms));
    let (request, response) = render_bodies(record);
    // Token counts are not a documented column: some records carry them in `Metrics`, the rest
    // only in the encrypted response's `usage` (where that body is JSON and was kept).
    let tokens_only_in_body = record.payload_stored
        && response.content_type == "application/json"
        && record.payload_seed % 2 == 1;
    if !tokens_only_in_body {
        if let Some(tokens) = record.tokens_in {
            metrics.insert("tokensIn".into(), json!(tokens));
        }
        if let Some(tokens) = record.tokens_out {
            metrics.insert("tokensOut".into(), json!(tokens));
        }
    }
    let mut line = json!({
        "Cached": record.cached,
        "Endpoint": record.path,
        "Gateway": gateway,
        "Metrics": metrics,
        "Model": record.model,
        "Provider": record.provider,
        "RateLimited": record.status_code == 429,
        "RequestedModel": record.model,
        "RoutingDecisionID": "",
        "RoutingReason": "",
        "StatusCode": record.status_code,
        "Timestamp": timestamp,
    });
    if let Some(sealer) = sealer.for_request() {
        if let Some(metadata) = &record.metadata {
            line["Metadata"] = sealer.seal(metadata.json.as_bytes());
        }
        if record.payload_stored {
            line["RequestBody"] = sealer.seal(request.text.as_bytes());
            line["ResponseBody"] = sealer.seal(response.text.as_bytes());
        }
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_record::test_support::sample_record;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    #[test]
    fn protobuf_and_json_spans_carry_the_same_ids_and_attributes() {
        let record = sample_record("log-1", 1_764_460_800_123);
        let proto = ExportTraceServiceRequest::decode(otlp_protobuf(&[&record]).as_slice())
            .expect("protobuf");
        let span = &proto.resource_spans[0].scope_spans[0].spans[0];
        let json: Value = serde_json::from_slice(&otlp_json(&[&record])).expect("json");
        let json_span = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(json_span["traceId"], hex(&span.trace_id));
        assert_eq!(json_span["spanId"], hex(&span.span_id));
        assert_eq!(
            json_span["startTimeUnixNano"],
            span.start_time_unix_nano.to_string()
        );
        assert_eq!(span.start_time_unix_nano, 1_764_460_800_123_000_000);
        assert_eq!(
            json_span["attributes"].as_array().map(Vec::len),
            Some(span.attributes.len())
        );
        assert!(span
            .attributes
            .iter()
            .any(|kv| kv.key == "gen_ai.request.model"));
    }
}
