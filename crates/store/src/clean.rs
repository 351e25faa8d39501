//! What a stored text must be, whatever the source wrote: no NUL characters (PostgreSQL's text
//! and JSON types refuse them — a whole batch would fail — and no gateway field means anything
//! by one), no blank names, and metadata as one JSON object's text.

use serde_json::Value;

/// `s` without NUL characters.
pub fn without_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    }
}

/// [`without_nul`] for every key and string inside a JSON value.
pub fn json_without_nul(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(without_nul(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(json_without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (without_nul(k), json_without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A name worth storing: without NULs, not blank.
pub fn non_empty(s: Option<String>) -> Option<String> {
    s.map(without_nul).filter(|s| !s.trim().is_empty())
}

/// Custom metadata as a JSON object's text. Cloudflare sends it as a JSON-encoded string (the
/// Workers binding and the pushes as an object): both become an object; anything else is kept
/// under `_raw` rather than dropped; nothing at all is `None`.
pub fn metadata_text(value: Value) -> Option<String> {
    let object = match value {
        Value::Null => return None,
        Value::String(s) if s.trim().is_empty() => return None,
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(map)) => Value::Object(map),
            Ok(Value::Null) => return None,
            _ => serde_json::json!({ "_raw": s }),
        },
        Value::Object(map) if map.is_empty() => return None,
        Value::Object(map) => Value::Object(map),
        other => serde_json::json!({ "_raw": other }),
    };
    Some(json_without_nul(object).to_string())
}
