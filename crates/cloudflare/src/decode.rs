//! Cloudflare's answers read: the v4 envelope, a page of logs decoded row by row when the
//! whole fails, and an HTTP status with Cloudflare's error codes turned into what happened
//! (API-NOTES §4–5).

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::error::CloudflareError;
use crate::limiter::parse_ratelimit_header;
use crate::query::{LogPage, RejectedRow};
use crate::types::{ApiMessage, Envelope, GatewayLog};

/// When Cloudflare says "rate limited" without saying for how long: its documented block.
const DEFAULT_RATE_LIMIT_BLOCK: Duration = Duration::from_secs(300);

/// Decodes a logs page. The whole page is decoded in one go; only if that fails is it decoded
/// row by row, so one malformed row costs that row, not the page (and not the sync).
pub fn decode_log_page(body: &[u8]) -> Result<LogPage, CloudflareError> {
    if let Ok(envelope) = serde_json::from_slice::<Envelope<Vec<GatewayLog>>>(body) {
        return Ok(LogPage {
            logs: envelope.result.unwrap_or_default(),
            rejected: Vec::new(),
            info: envelope.result_info,
        });
    }
    let envelope: Envelope<Vec<Box<serde_json::value::RawValue>>> = decode_envelope(body)?;
    let mut page = LogPage {
        logs: Vec::new(),
        rejected: Vec::new(),
        info: envelope.result_info,
    };
    for row in envelope.result.unwrap_or_default() {
        match serde_json::from_str::<GatewayLog>(row.get()) {
            Ok(log) => page.logs.push(log),
            Err(e) => page.rejected.push(RejectedRow {
                id: row_id(row.get()),
                reason: e.to_string(),
            }),
        }
    }
    Ok(page)
}

/// The `id` of a row that is otherwise unreadable, for the message about it.
fn row_id(row: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<serde_json::Value>,
    }
    let id = serde_json::from_str::<Id>(row).ok()?.id?;
    Some(
        id.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| id.to_string()),
    )
}

/// The answer of the coverage query. GraphQL reports failure inside a 200 too (`data: null`,
/// `errors[]`): those are classified by their message, as the errors page lists them.
pub(crate) fn decode_hourly_requests(
    body: &[u8],
) -> Result<Vec<crate::types::HourlyRequests>, CloudflareError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        data: Option<serde_json::Value>,
        #[serde(default)]
        errors: Option<Vec<ApiMessage>>,
    }
    #[derive(serde::Deserialize)]
    struct Group {
        count: serde_json::Value,
        dimensions: Dimensions,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Dimensions {
        gateway: String,
        datetime_hour: String,
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| CloudflareError::Decode(format!("GraphQL answer: {e}")))?;
    if let Some(errors) = answer.errors.filter(|errors| !errors.is_empty()) {
        let message = errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let lower = message.to_ascii_lowercase();
        return Err(
            if lower.contains("not authorized") || lower.contains("does not have access") {
                CloudflareError::PermissionDenied {
                    code: None,
                    message,
                }
            } else if lower.contains("unauthorized") {
                CloudflareError::AuthFailed {
                    code: None,
                    message,
                }
            } else if lower.contains("rate limiter") || lower.contains("quota exceeded") {
                CloudflareError::RateLimited {
                    retry_after: DEFAULT_RATE_LIMIT_BLOCK,
                }
            } else {
                CloudflareError::Validation {
                    code: None,
                    message,
                }
            },
        );
    }
    let groups = answer
        .data
        .as_ref()
        .and_then(|d| d.pointer("/viewer/accounts/0/aiGatewayRequestsAdaptiveGroups"))
        .cloned()
        .unwrap_or(serde_json::Value::Array(Vec::new()));
    let groups: Vec<Group> = serde_json::from_value(groups)
        .map_err(|e| CloudflareError::Decode(format!("aiGatewayRequestsAdaptiveGroups: {e}")))?;
    groups
        .into_iter()
        .map(|group| {
            let at = time::OffsetDateTime::parse(
                &group.dimensions.datetime_hour,
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|e| {
                CloudflareError::Decode(format!(
                    "datetimeHour {:?}: {e}",
                    group.dimensions.datetime_hour
                ))
            })?;
            // Counts are integers, but sample-corrected ones may come as floats.
            let count = group
                .count
                .as_u64()
                .or_else(|| {
                    group
                        .count
                        .as_f64()
                        .filter(|c| *c >= 0.0)
                        .map(|c| c.round() as u64)
                })
                .ok_or_else(|| CloudflareError::Decode(format!("count {}", group.count)))?;
            Ok(crate::types::HourlyRequests {
                gateway: group.dimensions.gateway,
                hour_ms: (at.unix_timestamp_nanos() / 1_000_000) as i64,
                count,
            })
        })
        .collect()
}

pub(crate) fn network_error(e: reqwest::Error) -> CloudflareError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response was cut off"
    } else {
        "request failed"
    };
    // reqwest's message names the URL, which holds no secret (the token is a header).
    CloudflareError::Network(format!("{what}: {e}"))
}

pub(crate) fn decode_envelope<T: DeserializeOwned>(
    body: &[u8],
) -> Result<Envelope<T>, CloudflareError> {
    serde_json::from_slice(body).map_err(|e| CloudflareError::Decode(e.to_string()))
}

/// `Some(errors)` when a body is a v4 envelope that says `success: false`.
pub(crate) fn envelope_failure(body: &[u8]) -> Option<Vec<ApiMessage>> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        success: Option<bool>,
        #[serde(default)]
        errors: Vec<ApiMessage>,
    }
    // Bodies that are not envelopes (raw request/response payloads) are not failures.
    let head: Head = serde_json::from_slice(body).ok()?;
    (head.success == Some(false)).then_some(head.errors)
}

pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or_else(|| {
            headers
                .get("ratelimit")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_ratelimit_header)
                .map(|(_, reset)| reset as f64)
        })?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// Maps an HTTP status and Cloudflare's error codes to what happened (API-NOTES §4–5).
pub fn classify_failure(
    status: u16,
    errors: &[ApiMessage],
    retry_after: Option<Duration>,
) -> CloudflareError {
    let first = errors.first();
    let code = first.and_then(|e| e.code);
    let message = describe(errors, status);
    let all_codes: Vec<i64> = errors
        .iter()
        .flat_map(|e| std::iter::once(e.code).chain(e.error_chain.iter().map(|c| c.code)))
        .flatten()
        .collect();
    let has = |c: i64| all_codes.contains(&c);
    let rate_limited = || CloudflareError::RateLimited {
        retry_after: retry_after.unwrap_or(DEFAULT_RATE_LIMIT_BLOCK),
    };
    // 9109 means "invalid token" or "not allowed", depending on its message.
    let invalid_token_9109 = errors.iter().any(|e| {
        e.code == Some(9109)
            && e.message
                .to_ascii_lowercase()
                .contains("invalid access token")
    });
    let auth = || CloudflareError::AuthFailed {
        code,
        message: message.clone(),
    };
    let denied = || CloudflareError::PermissionDenied {
        code,
        message: message.clone(),
    };
    let not_found = || CloudflareError::NotFound {
        code,
        message: message.clone(),
    };
    let invalid = || CloudflareError::Validation {
        code,
        message: message.clone(),
    };
    if status == 429 || has(10100) {
        return rate_limited();
    }
    match status {
        401 => auth(),
        400 if has(6003) || has(6111) || has(1001) || has(1000) => auth(),
        400 if has(7003) || has(7000) => not_found(),
        400 | 405 | 413 | 422 => invalid(),
        // A conflict is usually transient on Cloudflare's side; its own SDKs retry it.
        409 => CloudflareError::Upstream {
            status,
            code,
            message,
        },
        403 if invalid_token_9109 || has(1000) => auth(),
        403 => denied(),
        404 => not_found(),
        s if s >= 500 => CloudflareError::Upstream {
            status,
            code,
            message,
        },
        200..=299 => {
            if has(1000) || has(1001) || has(6003) || has(6111) || invalid_token_9109 {
                auth()
            } else if has(10000) || has(9109) {
                denied()
            } else if has(7002) || has(7000) || has(7003) {
                not_found()
            } else if has(7001) {
                invalid()
            } else {
                CloudflareError::Upstream {
                    status,
                    code,
                    message,
                }
            }
        }
        _ => CloudflareError::Upstream {
            status,
            code,
            message,
        },
    }
}

fn describe(errors: &[ApiMessage], status: u16) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for e in errors {
        if !e.message.is_empty() {
            parts.push(&e.message);
        }
        for c in &e.error_chain {
            if !c.message.is_empty() {
                parts.push(&c.message);
            }
        }
    }
    if parts.is_empty() {
        format!("HTTP {status} without an error message")
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(code: i64, message: &str) -> ApiMessage {
        ApiMessage {
            code: Some(code),
            message: message.into(),
            error_chain: vec![],
        }
    }

    fn kind(status: u16, errors: &[ApiMessage]) -> &'static str {
        classify_failure(status, errors, None).kind()
    }

    #[test]
    fn every_code_in_the_notes_maps_to_its_error() {
        // API-NOTES §4–5, row by row.
        assert_eq!(
            kind(400, &[msg(7001, "Input Validation Error")]),
            "invalid_request"
        );
        assert_eq!(kind(404, &[msg(7002, "Not Found")]), "account_not_found");
        assert_eq!(kind(400, &[msg(7003, "Could not route to /client/v4/accounts/x, perhaps your object identifier is invalid?"), msg(7000, "No route for that URI")]), "account_not_found");
        assert_eq!(
            kind(404, &[msg(7000, "No route for that URI")]),
            "account_not_found"
        );
        let malformed = ApiMessage {
            code: Some(6003),
            message: "Invalid request headers".into(),
            error_chain: vec![msg(6111, "Invalid format for Authorization header")],
        };
        assert_eq!(kind(400, &[malformed]), "auth_failed");
        assert_eq!(
            kind(400, &[msg(1001, "Missing \"Authorization\" header")]),
            "auth_failed"
        );
        assert_eq!(
            kind(403, &[msg(9109, "Invalid access token")]),
            "auth_failed"
        );
        assert_eq!(
            kind(401, &[msg(9109, "Invalid access token")]),
            "auth_failed"
        );
        assert_eq!(kind(401, &[msg(1000, "Invalid API Token")]), "auth_failed");
        assert_eq!(
            kind(403, &[msg(10000, "Authentication error")]),
            "permission_denied"
        );
        assert_eq!(
            kind(
                403,
                &[msg(9109, "Unauthorized to access requested resource")]
            ),
            "permission_denied"
        );
        assert_eq!(
            kind(
                403,
                &[msg(
                    9109,
                    "Cannot use the access token from location: 1.2.3.4"
                )]
            ),
            "permission_denied"
        );
        assert_eq!(
            kind(200, &[msg(10000, "Authentication error")]),
            "permission_denied"
        );
        assert_eq!(kind(200, &[msg(1000, "Invalid API Token")]), "auth_failed");
        assert_eq!(kind(200, &[msg(7002, "Not Found")]), "account_not_found");
        assert_eq!(kind(429, &[msg(10100, "More than 1200 requests per 300 seconds reached. Please wait and consider throttling your request speed")]), "rate_limited");
        assert_eq!(
            kind(200, &[msg(10100, "More than 1200 requests")]),
            "rate_limited"
        );
        assert_eq!(kind(500, &[]), "upstream_error");
        assert_eq!(kind(502, &[msg(10013, "bad gateway")]), "upstream_error");
        assert_eq!(kind(422, &[]), "invalid_request");
    }

    #[test]
    fn rate_limits_carry_the_wait_cloudflare_asked_for() {
        let e = classify_failure(429, &[], Some(Duration::from_secs(17)));
        assert_eq!(
            e,
            CloudflareError::RateLimited {
                retry_after: Duration::from_secs(17)
            }
        );
        assert!(e.is_retryable());
        assert!(!classify_failure(401, &[], None).is_retryable());
        assert!(!classify_failure(403, &[], None).is_retryable());
    }

    #[test]
    fn messages_include_the_error_chain() {
        let e = ApiMessage {
            code: Some(6003),
            message: "Invalid request headers".into(),
            error_chain: vec![msg(6111, "Invalid format for Authorization header")],
        };
        let text = classify_failure(400, &[e], None).to_string();
        assert!(
            text.contains("Invalid format for Authorization header"),
            "{text}"
        );
        assert!(text.contains("code 6003"), "{text}");
    }

    #[test]
    fn one_bad_row_costs_that_row_not_the_page() {
        let body = br#"{"success":true,"result":[
            {"id":"a","created_at":"2026-08-12T09:14:03.512Z","success":true},
            {"id":"b","created_at":17,"success":true},
            {"id":"c","created_at":"2026-08-12T09:14:04.000Z","success":"yes"}
        ],"result_info":{"page":1,"per_page":50,"count":3,"total_count":3}}"#;
        let page = decode_log_page(body).expect("page");
        assert_eq!(page.logs.len(), 1);
        assert_eq!(page.logs[0].id, "a");
        let ids: Vec<_> = page.rejected.iter().map(|r| r.id.as_deref()).collect();
        assert_eq!(ids, [Some("b"), Some("c")]);
        assert_eq!(page.info.and_then(|i| i.total_count), Some(3));
        assert!(decode_log_page(b"not json").is_err());
    }
}
