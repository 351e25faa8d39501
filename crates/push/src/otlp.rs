//! OTLP/HTTP trace export requests (`POST /v1/traces`), protobuf or JSON, and the answer the
//! OTLP specification asks for.

use langguard_pricing::Pricer;
use langguard_store::BodySettings;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::genai::{self, Gateway};
use crate::Record;

/// How a request body is encoded (its `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// From a `Content-Type` header; `None` for one OTLP/HTTP does not use.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Self::Protobuf),
            "application/json" => Some(Self::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the body is not an OTLP ExportTraceServiceRequest in {encoding}: {reason}")]
pub struct DecodeError {
    encoding: &'static str,
    reason: String,
}

/// The request in a body.
pub fn decode_request(
    body: &[u8],
    encoding: Encoding,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body).map_err(|e| DecodeError {
            encoding: "protobuf",
            reason: e.to_string(),
        }),
        Encoding::Json => serde_json::from_slice(body).map_err(|e| DecodeError {
            encoding: "JSON",
            reason: e.to_string(),
        }),
    }
}

/// What a request held.
#[derive(Debug, Default)]
pub struct Decoded {
    pub records: Vec<Record>,
    /// Spans without GenAI attributes: counted, not stored (an app's own spans).
    pub not_genai: u64,
    /// Why GenAI spans cannot be stored (e.g. no ids or start time): the first
    /// [`crate::logpush::MAX_REASONS`].
    pub rejected: Vec<String>,
    /// All such spans.
    pub rejected_total: u64,
}

/// The GenAI spans of a request as interactions. `gateway`: the one the request names
/// (`X-LangGuard-Gateway` or `?gateway=`); otherwise each span's `langguard.gateway`
/// attribute (span, then resource), else `otlp`.
pub fn records(
    request: ExportTraceServiceRequest,
    gateway: Option<&str>,
    bodies: &BodySettings,
    pricer: &Pricer,
) -> Decoded {
    let mut out = Decoded::default();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let context = Gateway {
                    named: gateway,
                    resource: &resource,
                };
                match genai::record(span, &context, bodies, pricer) {
                    Ok(Some(record)) => out.records.push(record),
                    Ok(None) => out.not_genai += 1,
                    Err(why) => {
                        out.rejected_total += 1;
                        if out.rejected.len() < crate::logpush::MAX_REASONS {
                            out.rejected.push(why);
                        }
                    }
                }
            }
        }
    }
    out
}

/// The success answer: empty when everything was taken, `partial_success` with the count and
/// the first reason otherwise.
pub fn response(rejected: i64, reason: Option<String>) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: (rejected > 0 || reason.is_some()).then(|| ExportTracePartialSuccess {
            rejected_spans: rejected,
            error_message: reason.unwrap_or_default(),
        }),
    }
}

/// `google.rpc.Status`: the body of an OTLP/HTTP failure, in the request's encoding.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct Status {
    /// A gRPC status code (3 invalid argument, 7 permission denied, 8 resource exhausted,
    /// 13 internal, 14 unavailable, 16 unauthenticated).
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

impl Status {
    /// The failure body for an HTTP status and message.
    pub fn for_http(status: u16, message: String) -> Self {
        let code = match status {
            400 | 415 => 3,
            401 => 16,
            403 => 7,
            413 | 429 => 8,
            503 => 14,
            _ => 13,
        };
        Self { code, message }
    }

    pub fn encode_as(&self, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Protobuf => self.encode_to_vec(),
            Encoding::Json => serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }
}

/// A response (or `google.rpc.Status`-like error) body in `encoding`.
pub fn encode_response(response: &ExportTraceServiceResponse, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_map_to_encodings() {
        assert_eq!(
            Encoding::from_content_type("application/x-protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            Encoding::from_content_type("application/json; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(Encoding::from_content_type("text/plain"), None);
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        assert!(decode_request(b"\xff\xff\xff", Encoding::Protobuf).is_err());
        assert!(decode_request(b"{\"resourceSpans\": 5}", Encoding::Json).is_err());
        assert_eq!(
            decode_request(b"{}", Encoding::Json)
                .expect("empty")
                .resource_spans
                .len(),
            0
        );
    }
}
