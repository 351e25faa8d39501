//! Decoding Cloudflare's real response shapes: every fixture in `shared/cloudflare/fixtures/`,
//! plus a property test that arbitrary extra fields and nulls never break a log row.

use std::path::PathBuf;

use langguard_cloudflare::types::{ApiMessage, Envelope, Gateway, GatewayLog, TokenVerification};
use langguard_cloudflare::{classify_failure, CloudflareError, TokenStatus};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// The fixtures are vendored beside this test so it runs anywhere; `every_fixture_file_is_covered`
/// checks they still match the shared reference copies when those are present.
fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn shared_fixtures_dir() -> PathBuf {
    std::env::var_os("LANGGUARD_CF_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cloudflare/fixtures")
        })
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_fixture_file_is_covered() {
    let names = names_in(&fixtures_dir());
    assert_eq!(
        names,
        [
            "error-token-invalid-401.json",
            "list-gateways-200.json",
            "list-logs-page-200.json",
            "token-verify-200.json"
        ],
        "a new fixture appeared: add a decoding test for it"
    );
    let shared = shared_fixtures_dir();
    if shared.is_dir() {
        assert_eq!(
            names_in(&shared),
            names,
            "shared fixtures changed: copy them here"
        );
        for name in &names {
            let theirs = std::fs::read(shared.join(name)).expect("shared fixture");
            assert_eq!(theirs, fixture(name), "{name} differs from the shared copy");
        }
    } else {
        eprintln!(
            "note: {} not found; checked the vendored fixtures only",
            shared.display()
        );
    }
}

#[test]
fn list_logs_fixture_decodes_with_nulls_and_absences() {
    let envelope: Envelope<Vec<GatewayLog>> =
        serde_json::from_slice(&fixture("list-logs-page-200.json")).expect("decodes");
    assert_eq!(envelope.success, Some(true));
    let logs = envelope.result.expect("result");
    assert_eq!(logs.len(), 4);
    assert_eq!(logs[0].id, "01KZTM03BRZGWSPE1FRFKS26YR");
    assert_eq!(logs[0].tokens_in, Some(412));
    assert_eq!(logs[0].cost, Some(0.0001146));
    assert_eq!(
        logs[0].metadata,
        Some(Value::String(
            "{\"team\":\"search\",\"user\":\"u_4821\"}".into()
        ))
    );
    assert_eq!(logs[1].metadata, None);
    assert_eq!(logs[2].tokens_in, None, "null tokens stay absent, not zero");
    assert_eq!(logs[2].cost, None, "absent cost stays absent, not zero");
    assert_eq!(logs[2].status_code, Some(429));
    assert_eq!(logs[3].custom_cost, Some(true));
    let info = envelope.result_info.expect("result_info");
    assert_eq!(info.page, Some(1));
    assert!(info.total_count.is_some());
}

#[test]
fn list_gateways_fixture_decodes() {
    let envelope: Envelope<Vec<Gateway>> =
        serde_json::from_slice(&fixture("list-gateways-200.json")).expect("decodes");
    let ids: Vec<_> = envelope
        .result
        .expect("result")
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(ids, ["prod-chat", "default"]);
}

#[test]
fn token_verify_fixture_decodes() {
    let envelope: Envelope<TokenVerification> =
        serde_json::from_slice(&fixture("token-verify-200.json")).expect("decodes");
    let v = envelope.result.expect("result");
    assert_eq!(v.status, TokenStatus::Active);
    assert_eq!(v.id.len(), 32);
}

#[test]
fn invalid_token_fixture_is_an_auth_failure() {
    let envelope: Envelope<Value> =
        serde_json::from_slice(&fixture("error-token-invalid-401.json")).expect("decodes");
    assert_eq!(envelope.success, Some(false));
    let err = classify_failure(401, &envelope.errors, None);
    assert!(
        matches!(
            err,
            CloudflareError::AuthFailed {
                code: Some(1000),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn both_id_formats_and_odd_numbers_decode() {
    let row = json!({
        "id": "3f7a9c1e5b2d4f6a8c0e1b3d5f7a9c1e5b2d4f6a8c0e1b3d5f7a9c1e5b2d4f6a",
        "created_at": "2026-08-05T14:44:36.727Z",
        "provider": "unknown", "model": "x", "path": "", "duration": 824.0,
        "success": true, "cached": false, "tokens_in": "12", "tokens_out": 3.0,
        "cost": "0.000027449999999999996", "metadata": {"team": "a"}
    });
    let log: GatewayLog = serde_json::from_value(row).expect("decodes");
    assert_eq!(log.id.len(), 64);
    assert_eq!(log.duration, Some(824));
    assert_eq!(log.tokens_in, Some(12));
    assert_eq!(log.tokens_out, Some(3));
    assert_eq!(log.cost, Some(0.000027449999999999996));
    let numeric: GatewayLog =
        serde_json::from_value(json!({"id": 12345, "created_at": "2026-08-05T14:44:36.727Z"}))
            .expect("decodes");
    assert_eq!(numeric.id, "12345");
    assert!(serde_json::from_value::<GatewayLog>(json!({"id": "", "created_at": "x"})).is_err());
}

#[test]
fn messages_decode_with_error_chain() {
    let m: ApiMessage = serde_json::from_value(json!({"code": 6003, "message": "Invalid request headers", "error_chain": [{"code": 6111, "message": "Invalid format for Authorization header"}]})).expect("decodes");
    assert_eq!(m.error_chain[0].code, Some(6111));
}

fn fixture_rows() -> Vec<Map<String, Value>> {
    let v: Value = serde_json::from_slice(&fixture("list-logs-page-200.json")).expect("json");
    v["result"]
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r.as_object().expect("object").clone())
        .collect()
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::hash_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const NULLABLE_OR_OPTIONAL: &[&str] = &[
    "tokens_in",
    "tokens_out",
    "cost",
    "custom_cost",
    "metadata",
    "status_code",
    "step",
    "request_content_type",
    "response_content_type",
    "path",
    "duration",
    "model",
    "provider",
];

proptest! {
    #[test]
    fn extra_fields_and_nulls_never_break_a_row(
        row in 0usize..4,
        extras in prop::collection::hash_map("[a-z_]{1,12}", arb_json(), 0..8),
        nulled in prop::collection::vec(0usize..NULLABLE_OR_OPTIONAL.len(), 0..6),
        removed in prop::collection::vec(0usize..NULLABLE_OR_OPTIONAL.len(), 0..6),
    ) {
        let mut obj = fixture_rows()[row].clone();
        for (k, v) in extras {
            // Extra fields never replace the ones a log is identified by.
            if k != "id" && k != "created_at" && !NULLABLE_OR_OPTIONAL.contains(&k.as_str()) && k != "success" && k != "cached" {
                obj.insert(k, v);
            }
        }
        for i in nulled {
            obj.insert(NULLABLE_OR_OPTIONAL[i].to_owned(), Value::Null);
        }
        for i in removed {
            obj.remove(NULLABLE_OR_OPTIONAL[i]);
        }
        let original: GatewayLog = serde_json::from_value(Value::Object(fixture_rows()[row].clone())).expect("fixture");
        let log: GatewayLog = serde_json::from_value(Value::Object(obj.clone())).expect("tolerant decode");
        prop_assert_eq!(&log.id, &original.id);
        prop_assert_eq!(&log.created_at, &original.created_at);
        for key in ["tokens_in", "cost"] {
            if obj.get(key).is_none_or(Value::is_null) {
                let absent = match key { "tokens_in" => log.tokens_in.is_none(), _ => log.cost.is_none() };
                prop_assert!(absent, "{} must be absent when null or missing", key);
            }
        }
    }
}
