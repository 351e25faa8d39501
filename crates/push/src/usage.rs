//! Token counts where a pushed log has them: Logpush's `Metrics`, else the usage block of the
//! provider's response. Never invented: a shape not recognised leaves the count unknown.

use serde_json::Value;

/// `(tokens_in, tokens_out)` from Logpush's `Metrics` object (`{"cost":…, "durationMs":…}`
/// documented; token keys in the spellings seen across Cloudflare's APIs).
pub(crate) fn from_metrics(metrics: &Value) -> (Option<i64>, Option<i64>) {
    let pick = |keys: &[&str]| keys.iter().find_map(|k| count(metrics.get(*k)));
    (
        pick(&["tokensIn", "tokens_in", "inputTokens", "promptTokens"]),
        pick(&[
            "tokensOut",
            "tokens_out",
            "outputTokens",
            "completionTokens",
        ]),
    )
}

/// `(tokens_in, tokens_out)` from a response body: OpenAI chat (`usage.prompt_tokens`,
/// `completion_tokens`) and Responses (`usage.input_tokens`, `output_tokens`), Anthropic
/// (`usage.input_tokens` plus cache reads and writes, `output_tokens`), Gemini
/// (`usageMetadata.promptTokenCount`, `candidatesTokenCount`) and Workers AI (the same under
/// `result`).
pub(crate) fn from_response(body: &Value) -> (Option<i64>, Option<i64>) {
    let body = match body.get("result") {
        Some(result) if result.is_object() => result,
        _ => body,
    };
    if let Some(usage) = body.get("usage").filter(|u| u.is_object()) {
        let input = count(usage.get("prompt_tokens")).or_else(|| {
            // Anthropic's input_tokens leaves out what was read from or written to its cache.
            count(usage.get("input_tokens")).map(|i| {
                i + count(usage.get("cache_read_input_tokens")).unwrap_or(0)
                    + count(usage.get("cache_creation_input_tokens")).unwrap_or(0)
            })
        });
        let output =
            count(usage.get("completion_tokens")).or_else(|| count(usage.get("output_tokens")));
        if input.is_some() || output.is_some() {
            return (input, output);
        }
    }
    if let Some(usage) = body.get("usageMetadata").filter(|u| u.is_object()) {
        return (
            count(usage.get("promptTokenCount")),
            count(usage.get("candidatesTokenCount")),
        );
    }
    (None, None)
}

/// Largest count believed (a billion tokens in one call is no real request, and sums of
/// unchecked counts could overflow the rollups).
pub(crate) const MAX_COUNT: i64 = 1_000_000_000;

/// Longest duration kept, in ms (a week); a longer one is cut to it.
pub(crate) const MAX_DURATION_MS: i64 = 7 * 86_400_000;

/// A non-negative whole count up to [`MAX_COUNT`], from a number or a numeric string.
pub(crate) fn count(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n| (0..=MAX_COUNT).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_provider_shape_gives_its_counts() {
        let openai =
            json!({"usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}});
        assert_eq!(from_response(&openai), (Some(12), Some(3)));
        let responses = json!({"usage": {"input_tokens": 7, "output_tokens": 2}});
        assert_eq!(from_response(&responses), (Some(7), Some(2)));
        let anthropic = json!({"usage": {"input_tokens": 10, "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 5, "output_tokens": 4}});
        assert_eq!(from_response(&anthropic), (Some(115), Some(4)));
        let gemini = json!({"usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 9}});
        assert_eq!(from_response(&gemini), (Some(8), Some(9)));
        let workers_ai = json!({"result": {"response": "hi", "usage": {"prompt_tokens": 5,
            "completion_tokens": 6}}, "success": true});
        assert_eq!(from_response(&workers_ai), (Some(5), Some(6)));
    }

    #[test]
    fn unknown_shapes_and_bad_numbers_stay_unknown() {
        assert_eq!(from_response(&json!({"choices": []})), (None, None));
        assert_eq!(
            from_response(&json!({"usage": {"prompt_tokens": -1}})),
            (None, None)
        );
        assert_eq!(from_response(&json!("text")), (None, None));
        assert_eq!(
            from_metrics(
                &json!({"cost": 0.1, "durationMs": 5, "tokensIn": "40", "tokensOut": 2.5})
            ),
            (Some(40), None)
        );
    }
}
