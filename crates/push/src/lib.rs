//! What gateways push, decoded into interactions: OpenTelemetry GenAI spans (OTLP/HTTP,
//! protobuf or JSON) and Workers Logpush `ai_gateway_events` (gzip NDJSON whose `Metadata`,
//! `RequestBody` and `ResponseBody` are RSA-OAEP + AES-GCM encrypted). No I/O and no storage
//! here: the services layer authenticates the pusher, stores what this returns and answers.

pub mod body;
pub mod crypto;
mod genai;
pub mod logpush;
pub mod otlp;
mod usage;

use langguard_store::PushedInteraction;

/// One pushed log and the gateway it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub gateway: String,
    pub pushed: PushedInteraction,
}

/// Longest body kept, in bytes (as for pulled bodies); a longer one is cut at a character
/// boundary.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// `text` cut to [`MAX_BODY_BYTES`] at a character boundary.
pub(crate) fn body_text(mut text: String) -> String {
    if text.len() > MAX_BODY_BYTES {
        let mut end = MAX_BODY_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    langguard_store::clean::without_nul(text)
}
