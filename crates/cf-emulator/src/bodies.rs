//! Stored request/response bodies of synthetic logs: small chat JSON in each provider's
//! shape, SSE streams for streamed responses, provider error bodies for failed requests.
//!
//! Bodies are not stored: they are rendered on demand from each log's `payload_seed`, which
//! keeps 100k-log gateways cheap while every call returns the same bytes.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::log_record::{BodyHead, LogRecord};
use crate::synthetic::{body_style, hex_id, BodyStyle};

const PROMPTS: [&str; 8] = [
    "Summarise this support ticket in two sentences.",
    "Write a SQL query that returns the ten most active customers last month.",
    "Translate 'Where is the train station?' into German and French.",
    "What is the difference between a mutex and a semaphore?",
    "Draft a polite reply declining the meeting invitation.",
    "Classify the sentiment of: \"The update broke my dashboard again.\"",
    "Generate three product names for a reusable coffee cup.",
    "Explain retrieval-augmented generation to a new engineer.",
];
const ANSWERS: [&str; 6] = [
    "Sure! Here is a concise answer.",
    "The customer reports a login failure after the latest release and asks for a fix.",
    "SELECT customer_id, count(*) AS orders FROM orders WHERE created_at >= now() - interval '1 month' GROUP BY 1 ORDER BY 2 DESC LIMIT 10;",
    "A mutex allows one owner at a time; a semaphore allows up to N concurrent holders.",
    "Negative.",
    "1. CupCycle 2. BrewBack 3. LoopMug",
];
/// A prompt long enough that its request head is truncated in the detail view.
const LONG_PROMPT_LINE: &str =
    "Quarterly report section: revenue grew, churn fell, support volume stayed flat. ";
/// Characters of a body reported as `*_head` in the detail view.
const HEAD_LIMIT: usize = 2048;

/// A stored request or response body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredBody {
    pub content_type: &'static str,
    pub text: String,
}

impl StoredBody {
    pub(crate) fn head(&self) -> BodyHead {
        let mut end = self.text.len().min(HEAD_LIMIT);
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        BodyHead {
            head: self.text[..end].to_owned(),
            complete: end == self.text.len(),
            size: self.text.len(),
        }
    }
}

/// Renders the request and response bodies of a log (deterministic from its payload seed).
pub(crate) fn render_bodies(log: &LogRecord) -> (StoredBody, StoredBody) {
    let mut rng = SmallRng::seed_from_u64(log.payload_seed);
    let style = body_style(log.model, log.path);
    let prompt = if rng.gen_bool(0.05) {
        LONG_PROMPT_LINE.repeat(40)
    } else {
        PROMPTS[rng.gen_range(0..PROMPTS.len())].to_owned()
    };
    let answer = ANSWERS[rng.gen_range(0..ANSWERS.len())];
    let streamed = log.response_content_type == "text/event-stream";
    let request = StoredBody {
        content_type: "application/json",
        text: request_json(style, log.model, &prompt, streamed),
    };
    let response = if !log.success {
        StoredBody {
            content_type: "application/json",
            text: error_json(style, log.status_code),
        }
    } else if streamed {
        StoredBody {
            content_type: "text/event-stream",
            text: openai_stream(&mut rng, log, answer),
        }
    } else {
        StoredBody {
            content_type: "application/json",
            text: response_json(&mut rng, style, log, answer),
        }
    };
    (request, response)
}

fn request_json(style: BodyStyle, model: &str, prompt: &str, streamed: bool) -> String {
    let body = match style {
        BodyStyle::OpenAi => json!({
            "model": model,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": prompt}
            ],
            "stream": streamed
        }),
        BodyStyle::Anthropic => json!({
            "model": model,
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": prompt}]
        }),
        BodyStyle::WorkersAi => json!({"messages": [{"role": "user", "content": prompt}]}),
        BodyStyle::Gemini => json!({"contents": [{"role": "user", "parts": [{"text": prompt}]}]}),
    };
    body.to_string()
}

fn response_json(rng: &mut SmallRng, style: BodyStyle, log: &LogRecord, answer: &str) -> String {
    let tokens_in = log.tokens_in.unwrap_or(0);
    let tokens_out = log.tokens_out.unwrap_or(0);
    let total = tokens_in.saturating_add(tokens_out);
    let body = match style {
        BodyStyle::OpenAi => json!({
            "id": format!("chatcmpl-{}", hex_id(rng, 12)),
            "object": "chat.completion",
            "created": log.created_at / 1000,
            "model": log.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": total}
        }),
        BodyStyle::Anthropic => json!({
            "id": format!("msg_{}", hex_id(rng, 12)),
            "type": "message",
            "role": "assistant",
            "model": log.model,
            "content": [{"type": "text", "text": answer}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out}
        }),
        BodyStyle::WorkersAi => json!({
            "result": {
                "response": answer,
                "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": total}
            },
            "success": true,
            "errors": [],
            "messages": []
        }),
        BodyStyle::Gemini => json!({
            "candidates": [{
                "content": {"role": "model", "parts": [{"text": answer}]},
                "finishReason": "STOP"
            }],
            "usageMetadata": {
                "promptTokenCount": tokens_in,
                "candidatesTokenCount": tokens_out,
                "totalTokenCount": total
            }
        }),
    };
    body.to_string()
}

fn openai_stream(rng: &mut SmallRng, log: &LogRecord, answer: &str) -> String {
    let id = format!("chatcmpl-{}", hex_id(rng, 12));
    let mut events: Vec<String> = answer
        .split_inclusive(' ')
        .map(|word| {
            json!({
                "id": id,
                "object": "chat.completion.chunk",
                "model": log.model,
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": null}]
            })
            .to_string()
        })
        .collect();
    events.push(
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "model": log.model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": log.tokens_in.unwrap_or(0),
                "completion_tokens": log.tokens_out.unwrap_or(0),
                "total_tokens": log.total_tokens().unwrap_or(0)
            }
        })
        .to_string(),
    );
    events.push("[DONE]".to_owned());
    events
        .iter()
        .map(|event| format!("data: {event}\n\n"))
        .collect()
}

fn error_json(style: BodyStyle, status: u16) -> String {
    let (kind, message) = match status {
        429 => ("rate_limit_error", "Rate limit reached for requests"),
        400 => (
            "invalid_request_error",
            "Invalid request: messages must not be empty",
        ),
        401 => ("authentication_error", "Incorrect API key provided"),
        _ => (
            "server_error",
            "The server had an error while processing your request",
        ),
    };
    let body = match style {
        BodyStyle::Anthropic => {
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        BodyStyle::WorkersAi => json!({
            "success": false,
            "errors": [{"code": 3040, "message": message}],
            "messages": [],
            "result": null
        }),
        BodyStyle::Gemini => {
            json!({"error": {"code": status, "message": message, "status": kind.to_uppercase()}})
        }
        BodyStyle::OpenAi => json!({"error": {"message": message, "type": kind, "code": status}}),
    };
    body.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{seeded_history, SeedSpec};
    use time::macros::datetime;

    fn history(count: usize, seed: u64) -> Vec<LogRecord> {
        seeded_history(
            &SeedSpec {
                count,
                from: datetime!(2026-08-01 00:00 UTC),
                to: datetime!(2026-08-02 00:00 UTC),
                seed,
            },
            0,
        )
    }

    #[test]
    fn bodies_are_chat_json_or_event_streams() {
        for log in history(500, 6) {
            let (request, response) = render_bodies(&log);
            let request_json: serde_json::Value =
                serde_json::from_str(&request.text).expect("request JSON");
            assert!(request_json.is_object());
            if response.content_type == "text/event-stream" {
                assert!(response.text.starts_with("data: "));
                assert!(response.text.ends_with("data: [DONE]\n\n"));
            } else {
                let parsed: serde_json::Value =
                    serde_json::from_str(&response.text).expect("response JSON");
                assert!(parsed.is_object());
            }
            assert_eq!(render_bodies(&log), (request.clone(), response));
            let head = request.head();
            assert_eq!(head.complete, request.text.len() <= HEAD_LIMIT);
        }
    }
}
