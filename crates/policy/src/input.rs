//! PRODUCT-SPEC §4's `input` document for one gateway log: the log becomes a `trace` with one
//! `generation` observation.

use langguard_clock::format_ms;
use langguard_store::Interaction;
use regorus::Value;
use serde_json::{json, Map};

/// The rolling windows `input.traces.windows` offers, in minutes.
pub const WINDOW_MINUTES: [i64; 2] = [60, 1440];

/// Spend over one rolling window ending at the interaction (its integration's traffic).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpendWindow {
    pub minutes: i64,
    pub cost_usd: f64,
    pub requests: i64,
    pub tokens: i64,
}

/// `input.trace` for an interaction. `bodies` are the stored request and response bodies, when
/// there are any (JSON text, or plain text).
pub fn trace_document(i: &Interaction, bodies: Option<(&str, &str)>) -> Value {
    match bodies {
        Some((request, response)) => trace_document_with(i, Some(request), Some(response)),
        None => trace_document_with(i, None, None),
    }
}

/// `input.trace` with each body present or not (`null` in the document).
pub fn trace_document_with(
    i: &Interaction,
    request: Option<&str>,
    response: Option<&str>,
) -> Value {
    let log = &i.log;
    let mut metadata: Map<String, serde_json::Value> = log
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .filter(|m: &Map<String, serde_json::Value>| {
            m.values().map(depth).max().unwrap_or(0) < MAX_BODY_DEPTH
        })
        .unwrap_or_default();
    let status = if log.success { "success" } else { "error" };
    for (key, value) in [
        ("provider", json!(log.provider)),
        ("gateway", json!(i.gateway)),
        ("integration_id", json!(i.integration_id)),
        ("status_code", json!(log.status_code)),
        ("cached", json!(log.cached)),
        ("latency_ms", json!(log.duration_ms)),
    ] {
        metadata.insert(key.to_string(), value);
    }
    // Cloudflare's extra log fields (`dlp_action`, `feedback`, `user_agent`, …) and the model
    // asked for, where the log carried them; like the fields above they win over custom
    // metadata of the same name.
    if let Ok(serde_json::Value::Object(details)) = serde_json::to_value(&log.details) {
        metadata.extend(details);
    }
    if let Some(requested) = &log.requested_model {
        metadata.insert("requested_model".into(), json!(requested));
    }
    let body = |text: Option<&str>| -> serde_json::Value {
        match text {
            None => serde_json::Value::Null,
            // A body nested deeper than a policy could need stays text: the input document
            // must stay shallow enough to travel to the policy sandbox and back.
            Some(t) => read_body(t),
        }
    };
    let (input, output) = (body(request), body(response));
    let tokens_in = log.tokens_in.unwrap_or(0);
    let tokens_out = log.tokens_out.unwrap_or(0);
    let trace = json!({
        "id": log.log_id,
        "name": log.path.as_deref().unwrap_or(&log.model),
        "timestamp": format_ms(log.created_at_ms),
        "input": input,
        "output": output,
        "metadata": metadata,
        "tags": [],
        "observations": [{
            "id": log.log_id,
            "type": "generation",
            "model": log.model,
            "input": input,
            "output": output,
            "metadata": {
                "status": status,
                "status_code": log.status_code,
                "latency_ms": log.duration_ms,
                "cached": log.cached,
                "provider": log.provider,
            },
            "usage": {"input": tokens_in, "output": tokens_out, "total": tokens_in + tokens_out},
            "costDetails": {"total": log.cost_usd.unwrap_or(0.0)},
        }],
    });
    Value::from(trace)
}

/// The deepest nesting of a body read as JSON; deeper ones are kept as text.
pub const MAX_BODY_DEPTH: usize = 64;

/// A body as the policy sees it: JSON when it is JSON no deeper than [`MAX_BODY_DEPTH`],
/// its text otherwise.
fn read_body(text: &str) -> serde_json::Value {
    serde_json::from_str(text)
        .ok()
        .filter(|v| depth(v) <= MAX_BODY_DEPTH)
        .unwrap_or_else(|| json!(text))
}

/// How deeply `value` nests (a scalar is 0).
fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A policy's config as a Rego value (an object; anything else is refused when saved).
pub fn config_value(config: &str) -> Value {
    Value::from_json_str(config).unwrap_or_else(|_| Value::new_object())
}

/// The whole `input`: the trace, the policy's config and, when given, rolling spend.
pub fn input_document(trace: &Value, config: &Value, windows: Option<&[SpendWindow]>) -> Value {
    input_document_with(trace, config, windows, None, None)
}

/// [`input_document`] with `input.budgets` when given (the budgets the interaction counts
/// against) and `input.spend_anomaly` (its user session, when it names a user).
pub fn input_document_with(
    trace: &Value,
    config: &Value,
    windows: Option<&[SpendWindow]>,
    budgets: Option<&[crate::BudgetInput]>,
    spend_anomaly: Option<&crate::SpendAnomalyInput>,
) -> Value {
    let mut doc = std::collections::BTreeMap::new();
    doc.insert(Value::from("trace"), trace.clone());
    doc.insert(Value::from("config"), config.clone());
    if let Some(windows) = windows {
        let mut by_minutes = std::collections::BTreeMap::new();
        for w in windows {
            by_minutes.insert(
                Value::from(w.minutes.to_string()),
                Value::from(json!({
                    "cost_usd": w.cost_usd,
                    "requests": w.requests,
                    "tokens": w.tokens,
                })),
            );
        }
        let total = windows.iter().map(|w| w.cost_usd).fold(0.0, f64::max);
        let mut traces = std::collections::BTreeMap::new();
        traces.insert(Value::from("total_cost_usd"), Value::from(total));
        traces.insert(Value::from("windows"), Value::from(by_minutes));
        doc.insert(Value::from("traces"), Value::from(traces));
    }
    if let Some(budgets) = budgets {
        let list = serde_json::to_value(budgets).unwrap_or_else(|_| json!([]));
        doc.insert(Value::from("budgets"), Value::from(list));
    }
    if let Some(session) = spend_anomaly.and_then(|s| serde_json::to_value(s).ok()) {
        doc.insert(Value::from("spend_anomaly"), Value::from(session));
    }
    Value::from(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_nested_deeper_than_a_policy_needs_stay_text() {
        let mut deep = String::from("1");
        for _ in 0..(MAX_BODY_DEPTH + 10) {
            deep = format!("[{deep}]");
        }
        let shallow = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
        let parsed: serde_json::Value = serde_json::from_str(&deep).expect("valid JSON");
        assert!(depth(&parsed) > MAX_BODY_DEPTH);
        assert_eq!(read_body(&deep), json!(deep));
        assert_eq!(read_body(shallow)["messages"][0]["content"], "hi");
    }
}
