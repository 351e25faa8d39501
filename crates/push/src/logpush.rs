//! Workers Logpush, dataset `ai_gateway_events`: NDJSON, one log per line.
//!
//! **Idempotency.** The dataset has no log id and delivery is at-least-once: a file can arrive
//! twice, whole. A log is stored under the SHA-256 of its line's bytes. A re-sent line is the
//! same bytes (Logpush re-sends the file it made, it does not re-serialise), so it keeps its
//! key. Two real requests never share one, because each line carries what no other request
//! has: its own random AES key and IVs in the encrypted `Metadata`/`RequestBody`/`ResponseBody`
//! (fresh for every log), and, in the default `unixnano` timestamp format, its nanosecond. The
//! one case the dataset itself cannot tell apart — no encrypted field at all, a whole-second
//! `timestamp_format` (`unix`, `rfc3339`), and every other column equal within one second on
//! one gateway — is stored once; keep `unixnano` to rule it out.

use langguard_pricing::{CostInput, Pricer};
use langguard_store::clean::{metadata_text, non_empty};
use langguard_store::{
    Bodies, BodySettings, IngestSource, LogDetails, NewInteraction, PushedInteraction,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::crypto::{is_encrypted, CryptoError, FieldDecryptor};
use crate::usage;
use crate::{body_text, Record};

/// Reasons kept per file (the rest are only counted): a file of millions of bad lines must not
/// become millions of strings.
pub const MAX_REASONS: usize = 100;

/// What a file held.
#[derive(Debug, Default)]
pub struct Decoded {
    pub records: Vec<Record>,
    /// The first [`MAX_REASONS`] lines that are not a log (`(line number, why)`, 1-based); each
    /// costs only itself.
    pub rejected: Vec<(usize, String)>,
    /// All such lines.
    pub rejected_total: u64,
    /// Encrypted fields left out because they did not open (the log is kept without them).
    pub undecryptable: u64,
    /// The first reason a field did not open, for the answer and the log.
    pub undecryptable_reason: Option<String>,
}

/// Whether a body is Logpush's destination check: a gzip file holding `{"content":"tests"}`,
/// sent when a job is created. It must get a 200 and stores nothing.
pub fn is_validation(body: &[u8]) -> bool {
    let text = body.trim_ascii();
    text.is_empty()
        || serde_json::from_slice::<Value>(text).is_ok_and(|v| {
            v.as_object()
                .is_some_and(|o| o.len() == 1 && o.contains_key("content"))
        })
}

/// Decodes a file's lines. `decryptor`: the integration's private key, when it has one.
pub fn decode(
    body: &[u8],
    decryptor: Option<&FieldDecryptor>,
    bodies: &BodySettings,
    pricer: &Pricer,
) -> Decoded {
    decode_from(body, 1, decryptor, bodies, pricer)
}

/// [`decode`] on `threads` threads (each RSA unwrap is milliseconds of one core): the file is
/// cut at line ends into that many parts, and the parts' results are joined in file order.
/// `None` if a part failed (a bug): the caller refuses the file rather than store part of it.
pub fn decode_parallel(
    body: &[u8],
    threads: usize,
    decryptor: Option<&FieldDecryptor>,
    bodies: &BodySettings,
    pricer: &Pricer,
) -> Option<Decoded> {
    let mut parts: Vec<(usize, &[u8])> = Vec::new();
    let (mut rest, mut first_line) = (body, 1);
    let part_len = body.len() / threads.max(1) + 1;
    while !rest.is_empty() {
        let cut = rest
            .iter()
            .skip(part_len.min(rest.len()))
            .position(|b| *b == b'\n')
            .map_or(rest.len(), |p| part_len + p + 1);
        let (part, tail) = rest.split_at(cut.min(rest.len()));
        parts.push((first_line, part));
        first_line += part.iter().filter(|b| **b == b'\n').count();
        rest = tail;
    }
    if parts.len() <= 1 {
        return Some(decode(body, decryptor, bodies, pricer));
    }
    let results: Vec<Option<Decoded>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .map(|(first, part)| {
                scope.spawn(move || decode_from(part, *first, decryptor, bodies, pricer))
            })
            .collect();
        handles.into_iter().map(|h| h.join().ok()).collect()
    });
    let mut out = Decoded::default();
    for part in results {
        let part = part?;
        out.records.extend(part.records);
        let room = MAX_REASONS.saturating_sub(out.rejected.len());
        out.rejected.extend(part.rejected.into_iter().take(room));
        out.rejected_total += part.rejected_total;
        out.undecryptable += part.undecryptable;
        if out.undecryptable_reason.is_none() {
            out.undecryptable_reason = part.undecryptable_reason;
        }
    }
    Some(out)
}

fn decode_from(
    body: &[u8],
    first_line: usize,
    decryptor: Option<&FieldDecryptor>,
    bodies: &BodySettings,
    pricer: &Pricer,
) -> Decoded {
    let mut out = Decoded::default();
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match decode_line(line, decryptor, bodies, pricer, &mut out) {
            Ok(record) => out.records.push(record),
            Err(reason) => {
                out.rejected_total += 1;
                if out.rejected.len() < MAX_REASONS {
                    out.rejected.push((first_line + index, reason));
                }
            }
        }
    }
    out
}

fn decode_line(
    line: &[u8],
    decryptor: Option<&FieldDecryptor>,
    bodies: &BodySettings,
    pricer: &Pricer,
    out: &mut Decoded,
) -> Result<Record, String> {
    let Value::Object(mut event) =
        serde_json::from_slice::<Value>(line).map_err(|e| format!("not JSON: {e}"))?
    else {
        return Err("not a JSON object".into());
    };
    let created_at_ms = event
        .get("Timestamp")
        .ok_or("no Timestamp")
        .and_then(|t| timestamp_ms(t).ok_or("Timestamp is not unixnano, unix or RFC 3339"))?;
    let gateway = non_empty(text(&event, "Gateway")).ok_or("no Gateway")?;
    let log_id = IngestSource::Logpush.log_id(&hex::encode(&Sha256::digest(line)[..16]));

    let mut opened = Opened {
        decryptor,
        out,
        failed: false,
    };
    let metadata = event.remove("Metadata").and_then(|m| opened.field(m));
    let request = event.remove("RequestBody").and_then(|m| opened.field(m));
    let response = event.remove("ResponseBody").and_then(|m| opened.field(m));

    let served = non_empty(text(&event, "Model"));
    let requested = non_empty(text(&event, "RequestedModel"));
    let model = served
        .clone()
        .or_else(|| requested.clone())
        .unwrap_or_else(|| "unknown".into());
    let requested_model = requested.filter(|r| served.as_ref().is_some_and(|s| s != r));
    let provider = non_empty(text(&event, "Provider")).unwrap_or_else(|| "unknown".into());
    let rate_limited = flag(event.get("RateLimited"));
    let status_code = usage::count(event.get("StatusCode")).or(rate_limited.then_some(429));
    let success = status_code.is_none_or(|s| s < 400);
    let cached = flag(event.get("Cached"));
    let metrics = event.get("Metrics").cloned().unwrap_or(Value::Null);
    let (mut tokens_in, mut tokens_out) = usage::from_metrics(&metrics);
    if tokens_in.is_none() && tokens_out.is_none() {
        if let Some(response) = &response {
            (tokens_in, tokens_out) = usage::from_response(response);
        }
    }
    let gateway_cost = metrics.get("cost").and_then(Value::as_f64);
    let priced = pricer.priced(&CostInput {
        provider: &provider,
        model: &model,
        created_at_ms,
        success,
        cached,
        tokens_in,
        tokens_out,
        gateway_cost,
        custom_cost: false,
        byok: None,
    });
    let duration_ms = usage::count(metrics.get("durationMs"))
        .unwrap_or(0)
        .min(usage::MAX_DURATION_MS);
    let wanted = bodies.wants(&log_id) && (request.is_some() || response.is_some());
    let bodies = wanted.then(|| Bodies {
        request: request.as_ref().map(json_text),
        response: response.as_ref().map(json_text),
    });
    Ok(Record {
        gateway,
        pushed: PushedInteraction {
            interaction: NewInteraction {
                log_id,
                created_at_ms,
                provider,
                model,
                path: non_empty(text(&event, "Endpoint")),
                status_code,
                success,
                cached,
                duration_ms,
                tokens_in,
                tokens_out,
                cost_usd: priced.cost_usd,
                cost_source: priced.source,
                metadata: metadata.and_then(metadata_text),
                requested_model,
                details: LogDetails {
                    cost_estimate_usd: priced.byok_estimate_usd,
                    ..LogDetails::default()
                },
            },
            bodies,
        },
    })
}

/// Encrypted fields opened as the file is read.
struct Opened<'a, 'b> {
    decryptor: Option<&'a FieldDecryptor>,
    out: &'b mut Decoded,
    /// A field of this line did not open: its other fields are not tried (each try can be an
    /// RSA operation, and a line whose key is wrong once is wrong throughout).
    failed: bool,
}

impl Opened<'_, '_> {
    /// A field's value: decrypted and parsed when encrypted (`None` when it does not open),
    /// as sent otherwise.
    fn field(&mut self, value: Value) -> Option<Value> {
        if !is_encrypted(&value) {
            return (!value.is_null()).then_some(value);
        }
        let opened = match self.decryptor {
            None => Err(
                "this integration has no Logpush key yet (open its Push setup to make one)"
                    .to_owned(),
            ),
            Some(_) if self.failed => Err("another field of the log did not open".to_owned()),
            Some(d) => d.open(&value).map_err(|e: CryptoError| e.to_string()),
        };
        self.failed |= opened.is_err();
        match opened {
            Ok(plain) => {
                Some(serde_json::from_slice(&plain).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&plain).into_owned())
                }))
            }
            Err(reason) => {
                self.out.undecryptable += 1;
                self.out.undecryptable_reason.get_or_insert(reason);
                None
            }
        }
    }
}

fn text(event: &Map<String, Value>, key: &str) -> Option<String> {
    match event.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A body as stored: a JSON string's text as it is, anything else as JSON.
fn json_text(value: &Value) -> String {
    body_text(match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// `true`, `"true"`, `1`: Logpush writes booleans, some pipelines strings.
fn flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.trim(), "true" | "TRUE" | "True" | "1"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// A `Timestamp` in any of the job's `timestamp_format`s, in Unix ms: `unixnano` (the
/// default), `unix` (seconds) or `rfc3339`. Numbers are told apart by size, numeric strings
/// count as numbers.
pub fn timestamp_ms(value: &Value) -> Option<i64> {
    let from_number = |n: f64| -> Option<i64> {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        // Seconds until the year 5138, then ms, µs and ns (the formats Cloudflare offers are
        // seconds and nanoseconds; the others cost nothing to accept).
        let ms = if n < 1e11 {
            n * 1e3
        } else if n < 1e14 {
            n
        } else if n < 1e17 {
            n / 1e3
        } else {
            n / 1e6
        };
        Some(ms.floor() as i64)
    };
    match value {
        Value::Number(n) => match n.as_i64() {
            // Integers stay integers: f64 rounds nanoseconds.
            Some(i) if i >= 100_000_000_000_000_000 => Some(i / 1_000_000),
            Some(i) if i >= 100_000_000_000_000 => Some(i / 1_000),
            Some(i) if i >= 100_000_000_000 => Some(i),
            Some(i) if i >= 0 => Some(i * 1_000),
            _ => n.as_f64().and_then(from_number),
        },
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                return timestamp_ms(&Value::from(i));
            }
            langguard_clock::parse_ms(s)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{generate_key_pair, FieldSealer};
    use langguard_store::{BodyMode, CostSource};
    use serde_json::json;

    fn all_bodies() -> BodySettings {
        BodySettings {
            mode: BodyMode::All,
            ..BodySettings::default()
        }
    }

    #[test]
    fn every_timestamp_format_reads_as_the_same_millisecond() {
        let ms = 1_764_500_000_123;
        assert_eq!(timestamp_ms(&json!(1_764_500_000_123_456_789i64)), Some(ms));
        assert_eq!(timestamp_ms(&json!("1764500000123456789")), Some(ms));
        assert_eq!(timestamp_ms(&json!(1_764_500_000)), Some(ms - 123));
        assert_eq!(timestamp_ms(&json!("2025-11-30T10:53:20.123Z")), Some(ms));
        assert_eq!(timestamp_ms(&json!("2025-11-30T10:53:20Z")), Some(ms - 123));
        assert_eq!(timestamp_ms(&json!(1_764_500_000.5)), Some(ms - 123 + 500));
        assert_eq!(timestamp_ms(&json!("yesterday")), None);
        assert_eq!(timestamp_ms(&json!(-5)), None);
        assert_eq!(timestamp_ms(&json!(null)), None);
    }

    #[test]
    fn an_encrypted_event_decodes_to_an_interaction_with_its_bodies() {
        let pair = generate_key_pair().expect("pair");
        let sealer = FieldSealer::new(&pair.public_pem).expect("sealer");
        let line = json!({
            "Cached": false, "Endpoint": "chat/completions", "Gateway": "prod",
            "Metadata": sealer.seal(br#"{"team":"search","user":"u1"}"#),
            "Metrics": {"cost": 0.0042, "durationMs": 1234},
            "Model": "gpt-4o-mini", "RequestedModel": "cloudflare/auto", "Provider": "openai",
            "RateLimited": false,
            "RequestBody": sealer.seal(br#"{"messages":[{"role":"user","content":"hi"}]}"#),
            "ResponseBody": sealer.seal(br#"{"usage":{"prompt_tokens":9,"completion_tokens":4}}"#),
            "RoutingDecisionID": "", "RoutingReason": "", "StatusCode": 200,
            "Timestamp": 1_764_500_000_123_456_789i64
        })
        .to_string();
        let key = FieldDecryptor::from_pem(&pair.private_pem).expect("key");
        let decoded = decode(line.as_bytes(), Some(&key), &all_bodies(), Pricer::shared());
        assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
        assert_eq!(decoded.undecryptable, 0);
        let record = &decoded.records[0];
        assert_eq!(record.gateway, "prod");
        let i = &record.pushed.interaction;
        assert!(i.log_id.starts_with("logpush:"));
        assert_eq!(
            (i.model.as_str(), i.requested_model.as_deref()),
            ("gpt-4o-mini", Some("cloudflare/auto"))
        );
        assert_eq!((i.tokens_in, i.tokens_out), (Some(9), Some(4)));
        assert_eq!(
            (i.cost_usd, i.cost_source),
            (Some(0.0042), Some(CostSource::Gateway))
        );
        assert_eq!(
            (i.duration_ms, i.status_code, i.success),
            (1234, Some(200), true)
        );
        assert_eq!(i.created_at_ms, 1_764_500_000_123);
        assert_eq!(
            i.metadata.as_deref(),
            Some(r#"{"team":"search","user":"u1"}"#)
        );
        let bodies = record.pushed.bodies.as_ref().expect("bodies");
        assert!(bodies
            .request
            .as_deref()
            .is_some_and(|r| r.contains("\"hi\"")));
        assert_eq!(
            key.counts(),
            (1, 2),
            "one RSA unwrap for the log's three fields"
        );
    }

    #[test]
    fn a_re_sent_line_keeps_its_key_and_a_corrupt_line_costs_only_itself() {
        let line = json!({"Gateway": "g", "Timestamp": 1_764_500_000_000_000_001i64,
            "Model": "m", "Provider": "p", "StatusCode": 503, "Metrics": {"tokensIn": 3}})
        .to_string();
        let other = json!({"Gateway": "g", "Timestamp": 1_764_500_000_000_000_002i64,
            "Model": "m", "Provider": "p", "StatusCode": 503, "Metrics": {"tokensIn": 3}})
        .to_string();
        let file = format!("{line}\n{{not json\n\n{other}\r\n[1]\n{line}\n{{\"Gateway\":\"g\"}}\n");
        let decoded = decode(file.as_bytes(), None, &all_bodies(), Pricer::shared());
        let ids: Vec<&str> = decoded
            .records
            .iter()
            .map(|r| r.pushed.interaction.log_id.as_str())
            .collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[0], ids[2], "the same line twice has one key");
        assert_ne!(ids[0], ids[1], "two requests a nanosecond apart have two");
        let lines: Vec<usize> = decoded.rejected.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, vec![2, 5, 7]);
        assert!(decoded.rejected[2].1.contains("Timestamp"));
        let failed = &decoded.records[0].pushed.interaction;
        assert!(!failed.success);
        assert_eq!((failed.tokens_in, failed.tokens_out), (Some(3), None));
    }

    #[test]
    fn fields_that_do_not_open_are_left_out_and_counted() {
        let pair = generate_key_pair().expect("pair");
        let sealer = FieldSealer::new(&pair.public_pem).expect("sealer");
        let line = json!({"Gateway": "g", "Timestamp": "2026-11-30T00:00:00Z", "Model": "m",
            "Provider": "workers-ai", "RateLimited": "true",
            "Metadata": sealer.seal(b"{}"), "ResponseBody": sealer.seal(b"{}")})
        .to_string();
        let decoded = decode(line.as_bytes(), None, &all_bodies(), Pricer::shared());
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.undecryptable, 2);
        assert!(decoded
            .undecryptable_reason
            .as_deref()
            .is_some_and(|r| r.contains("no Logpush key")));
        let i = &decoded.records[0].pushed.interaction;
        assert_eq!((i.status_code, i.metadata.as_deref()), (Some(429), None));
        assert!(decoded.records[0].pushed.bodies.is_none());
    }

    #[test]
    fn decoding_in_parallel_gives_the_same_records_and_line_numbers() {
        let mut lines = Vec::new();
        for n in 0..200i64 {
            lines.push(if n % 37 == 5 {
                "broken".to_owned()
            } else {
                json!({"Gateway": "g", "Timestamp": 1_764_500_000_000_000_000i64 + n,
                    "Model": "m", "Provider": "p", "StatusCode": 200})
                .to_string()
            });
        }
        let file = lines.join("\n");
        let one = decode(file.as_bytes(), None, &all_bodies(), Pricer::shared());
        for threads in [2, 3, 7, 500] {
            let many = decode_parallel(
                file.as_bytes(),
                threads,
                None,
                &all_bodies(),
                Pricer::shared(),
            )
            .expect("decoded");
            assert_eq!(many.records, one.records, "{threads} threads");
            assert_eq!(many.rejected, one.rejected, "{threads} threads");
        }
        let lines: Vec<usize> = one.rejected.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, vec![6, 43, 80, 117, 154, 191]);
    }

    #[test]
    fn the_validation_upload_is_recognised() {
        assert!(is_validation(br#"{"content":"tests"}"#));
        assert!(is_validation(b"  \n"));
        assert!(!is_validation(br#"{"Gateway":"g","Timestamp":1}"#));
    }
}
