//! A built-in policy's config as form fields, one per key, typed by the values it holds — so
//! an admin tunes a threshold without editing JSON — and back.

use serde_json::Value;

pub(super) struct ConfigField {
    pub(super) key: String,
    /// `number`, `text`, `list` or `bool`.
    pub(super) kind: &'static str,
    pub(super) value: String,
    pub(super) checked: bool,
}

/// A built-in's config keys as form fields, typed by their current values.
pub(super) fn config_fields(config: &str) -> Vec<ConfigField> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(config) else {
        return Vec::new();
    };
    map.into_iter()
        .map(|(key, v)| {
            let (kind, value, checked) = match &v {
                Value::Bool(b) => ("bool", String::new(), *b),
                Value::Number(n) => ("number", n.to_string(), false),
                Value::Null => ("number", String::new(), false),
                Value::String(s) => ("text", s.clone(), false),
                Value::Array(items) => (
                    "list",
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                        .join(", "),
                    false,
                ),
                Value::Object(_) => ("text", v.to_string(), false),
            };
            ConfigField {
                key,
                kind,
                value,
                checked,
            }
        })
        .collect()
}

/// The config from the form's `cfg.<key>` fields, each read as the type its current value has
/// (an empty number is `null`: off).
pub(super) fn config_from_fields(
    current: &str,
    pairs: &[(String, String)],
) -> Result<String, String> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(current) else {
        return Ok(current.to_string());
    };
    let given = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.strip_prefix("cfg.") == Some(key))
            .map(|(_, v)| v.trim())
    };
    let mut out = serde_json::Map::new();
    for (key, old) in map {
        let value = match (&old, given(&key)) {
            (Value::Bool(_), v) => Value::Bool(v.is_some()),
            (Value::Number(_) | Value::Null, None | Some("")) => Value::Null,
            (Value::Number(_) | Value::Null, Some(text)) => text
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| text.parse::<f64>().map(Value::from))
                .map_err(|_| format!("{key} must be a number"))?,
            (Value::Array(_), text) => Value::Array(
                text.unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            ),
            (Value::String(_), text) => Value::String(text.unwrap_or("").to_string()),
            (Value::Object(_), text) => serde_json::from_str(text.unwrap_or("{}"))
                .map_err(|_| format!("{key} must be a JSON object"))?,
        };
        out.insert(key, value);
    }
    Ok(Value::Object(out).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_builtins_config_round_trips_through_its_form_fields() {
        let config = r#"{"max_latency_ms":5000,"max_context_tokens":null,"approved":["a","b"],"strict":true,"label":"x"}"#;
        let fields = config_fields(config);
        let kinds: Vec<(&str, &str)> = fields.iter().map(|f| (f.key.as_str(), f.kind)).collect();
        assert!(kinds.contains(&("max_latency_ms", "number")));
        assert!(kinds.contains(&("approved", "list")));
        assert!(kinds.contains(&("strict", "bool")));
        let pairs: Vec<(String, String)> = [
            ("cfg.max_latency_ms", "3000"),
            ("cfg.max_context_tokens", ""),
            ("cfg.approved", "gpt-4o*, claude-*"),
            ("cfg.label", "y"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let out: Value = serde_json::from_str(&config_from_fields(config, &pairs).expect("valid"))
            .expect("JSON");
        assert_eq!(
            out,
            json!({"max_latency_ms": 3000, "max_context_tokens": null,
                   "approved": ["gpt-4o*", "claude-*"], "strict": false, "label": "y"})
        );
        let bad = vec![("cfg.max_latency_ms".to_string(), "fast".to_string())];
        assert!(config_from_fields(config, &bad).is_err());
    }
}
