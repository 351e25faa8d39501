//! Whatever Cloudflare (or something pretending to be it) sends as a logs page, decoding and
//! normalising it never panics: a page is decoded or refused, each row imported or rejected
//! with a reason.

use langguard_cloudflare::decode_log_page;
use langguard_pricing::Pricer;
use langguard_sync::normalize;
use proptest::prelude::*;
use serde_json::{json, Value};

const PAGE: &[u8] = include_bytes!("../../cloudflare/tests/fixtures/list-logs-page-200.json");

fn page() -> Value {
    serde_json::from_slice(PAGE).expect("the fixture is JSON")
}

/// Any JSON value: scalars at the edges (huge, negative, fractional numbers, odd strings) and
/// nesting.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(u64::MAX)),
        ".{0,40}".prop_map(Value::from),
        Just(json!("2026-13-45T99:99:99Z")),
        Just(json!("9999-12-31T23:59:59.999999999Z")),
        Just(json!("")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every field of every row of the fixture page, and the page's own fields.
fn paths() -> Vec<Vec<String>> {
    let page = page();
    let mut out = vec![
        vec!["result".to_owned()],
        vec!["result_info".to_owned()],
        vec!["success".to_owned()],
    ];
    if let Some(rows) = page["result"].as_array() {
        for (i, row) in rows.iter().enumerate() {
            out.push(vec!["result".into(), i.to_string()]);
            if let Some(fields) = row.as_object() {
                for key in fields.keys() {
                    out.push(vec!["result".into(), i.to_string(), key.clone()]);
                }
            }
        }
    }
    out
}

fn set(value: &mut Value, path: &[String], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for p in parents {
        at = match at {
            Value::Object(m) => match m.get_mut(p) {
                Some(v) => v,
                None => return,
            },
            Value::Array(a) => match p.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    match at {
        Value::Object(m) => {
            m.insert(last.clone(), new);
        }
        Value::Array(a) => {
            if let Some(slot) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                *slot = new;
            }
        }
        _ => {}
    }
}

fn decode_and_normalise(body: &[u8]) {
    let pricer = Pricer::new();
    if let Ok(page) = decode_log_page(body) {
        for log in page.logs {
            // Imported or rejected with a reason; never a panic.
            if let Err(rejected) = normalize(log, &pricer) {
                assert!(!rejected.reason.is_empty());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2_000)) {
        decode_and_normalise(&bytes);
    }

    #[test]
    fn a_page_with_any_fields_replaced_never_panics(
        changes in prop::collection::vec((any::<prop::sample::Index>(), arb_json()), 1..8),
    ) {
        let paths = paths();
        let mut page = page();
        for (index, value) in changes {
            set(&mut page, &paths[index.index(paths.len())], value);
        }
        decode_and_normalise(page.to_string().as_bytes());
    }

    #[test]
    fn a_page_cut_anywhere_never_panics(cut in any::<prop::sample::Index>()) {
        decode_and_normalise(&PAGE[..cut.index(PAGE.len() + 1).min(PAGE.len())]);
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let deep = format!("{}0{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = format!(r#"{{"success":true,"result":[{{"id":"a","metadata":{deep}}}]}}"#);
    decode_and_normalise(body.as_bytes());
}
