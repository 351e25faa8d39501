//! Turns a Cloudflare log row into the interaction LangGuard stores: defaults for what
//! Cloudflare left out, metadata decoded from its JSON string, and a cost with its source.

use langguard_clock::parse_ms;
use langguard_cloudflare::GatewayLog;
use langguard_pricing::{CostInput, Pricer};
use langguard_store::clean::{metadata_text, non_empty, without_nul};
use langguard_store::{detail_json, detail_text, LogDetails, NewInteraction};

/// Why a row could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log {log_id}: {reason}")]
pub struct Rejected {
    pub log_id: String,
    pub reason: String,
}

pub fn normalize(log: GatewayLog, pricer: &Pricer) -> Result<NewInteraction, Rejected> {
    let created_at_ms = parse_ms(&log.created_at).ok_or_else(|| Rejected {
        log_id: log.id.clone(),
        reason: format!("created_at {:?} is not an RFC 3339 time", log.created_at),
    })?;
    let (tokens_cached, tokens_reasoning) = (log.cached_tokens(), log.reasoning_tokens());
    let provider = non_empty(log.provider).unwrap_or_else(|| "unknown".to_owned());
    let model = non_empty(log.model).unwrap_or_else(|| "unknown".to_owned());
    // `success` is always sent today; older rows may only carry the status code.
    let success = log
        .success
        .unwrap_or_else(|| log.status_code.is_none_or(|s| s < 400));
    let cached = log.cached.unwrap_or(false);
    let tokens_in = log.tokens_in.filter(|t| *t >= 0);
    let tokens_out = log.tokens_out.filter(|t| *t >= 0);
    let priced = pricer.priced(&CostInput {
        provider: &provider,
        model: &model,
        created_at_ms,
        success,
        cached,
        tokens_in,
        tokens_out,
        gateway_cost: log.cost,
        custom_cost: log.custom_cost.unwrap_or(false),
        byok: log.byok,
    });
    let details = LogDetails {
        tokens_cached,
        tokens_reasoning,
        event_id: detail_text(log.event_id),
        request_type: detail_text(log.request_type),
        model_type: detail_text(log.model_type),
        step: log.step,
        feedback: log.feedback,
        score: log.score,
        dlp_action: detail_text(log.dlp_action),
        dlp_profiles: detail_json(log.dlp_profiles),
        guardrails: detail_json(log.guardrails),
        user_agent: detail_text(log.user_agent),
        byok: log.byok,
        cost_estimate_usd: priced.byok_estimate_usd,
    };
    Ok(NewInteraction {
        log_id: without_nul(log.id),
        created_at_ms,
        provider,
        model,
        path: non_empty(log.path),
        status_code: log.status_code,
        success,
        cached,
        duration_ms: log.duration.unwrap_or(0).max(0),
        tokens_in,
        tokens_out,
        cost_usd: priced.cost_usd,
        cost_source: priced.source,
        metadata: log.metadata.and_then(metadata_text),
        requested_model: None,
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use langguard_store::CostSource;
    use serde_json::json;

    fn log(extra: serde_json::Value) -> GatewayLog {
        let mut base = json!({
            "id": "01KZTM03BRZGWSPE1FRFKS26YR", "created_at": "2026-08-12T09:14:03.512Z",
            "provider": "openai", "model": "gpt-4o-mini", "path": "chat/completions",
            "duration": 1184, "success": true, "cached": false, "status_code": 200,
            "tokens_in": 412, "tokens_out": 88
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).expect("log")
    }

    #[test]
    fn metadata_string_becomes_an_object() {
        let n = normalize(
            log(json!({"metadata": "{\"team\":\"search\"}"})),
            Pricer::shared(),
        )
        .expect("ok");
        assert_eq!(n.metadata.as_deref(), Some(r#"{"team":"search"}"#));
        let raw = normalize(log(json!({"metadata": "not json"})), Pricer::shared()).expect("ok");
        assert_eq!(raw.metadata.as_deref(), Some(r#"{"_raw":"not json"}"#));
        let obj = normalize(log(json!({"metadata": {"a": 1}})), Pricer::shared()).expect("ok");
        assert_eq!(obj.metadata.as_deref(), Some(r#"{"a":1}"#));
        let none = normalize(log(json!({"metadata": ""})), Pricer::shared()).expect("ok");
        assert_eq!(none.metadata, None);
    }

    #[test]
    fn cost_keeps_its_source() {
        let p = Pricer::shared();
        let gw = normalize(log(json!({"cost": 0.0001146})), p).expect("ok");
        assert_eq!(
            (gw.cost_usd, gw.cost_source),
            (Some(0.0001146), Some(CostSource::Gateway))
        );
        let custom = normalize(log(json!({"cost": 0.5, "custom_cost": true})), p).expect("ok");
        assert_eq!(custom.cost_source, Some(CostSource::Custom));
        let est = normalize(log(json!({})), p).expect("ok");
        assert_eq!(est.cost_source, Some(CostSource::Estimated));
        assert!(est.cost_usd.is_some_and(|c| c > 0.0));
        let unknown = normalize(log(json!({"model": "ft:acme-internal-v7"})), p).expect("ok");
        assert_eq!((unknown.cost_usd, unknown.cost_source), (None, None));
    }

    #[test]
    fn the_fields_people_govern_with_are_kept() {
        let n = normalize(
            log(json!({
                "event_id": "evt-7", "request_type": "universal", "model_type": "chat",
                "step": 1, "feedback": -1, "score": 0.25, "dlp_action": "BLOCK",
                "dlp_profiles": [{"profile": {"profile_id": "pii", "entry_ids": ["ssn"]},
                                  "policy_ids": ["p1"], "check": "REQUEST"}],
                "guardrails": {"prompt": {"S1": "FLAG"}},
                "user_agent": "openai-python/1.51.0",
                "usage_metadata": {"input_cached_tokens": 128, "output_reasoning_tokens": 40},
                "byok": true, "cost": 0
            })),
            Pricer::shared(),
        )
        .expect("ok");
        let d = &n.details;
        assert_eq!(d.event_id.as_deref(), Some("evt-7"));
        assert_eq!(d.request_type.as_deref(), Some("universal"));
        assert_eq!(d.model_type.as_deref(), Some("chat"));
        assert_eq!(
            (d.step, d.feedback, d.score),
            (Some(1), Some(-1), Some(0.25))
        );
        assert_eq!(d.dlp_action.as_deref(), Some("BLOCK"));
        assert_eq!(
            d.dlp_profiles.as_ref().expect("kept")[0]["check"],
            "REQUEST"
        );
        assert_eq!(d.guardrails.as_ref().expect("kept")["prompt"]["S1"], "FLAG");
        assert_eq!(d.user_agent.as_deref(), Some("openai-python/1.51.0"));
        assert_eq!((d.tokens_cached, d.tokens_reasoning), (Some(128), Some(40)));
        assert_eq!(d.byok, Some(true));
        // Cloudflare's 0 for BYOK traffic stays, flagged, with the table's figure beside it.
        assert_eq!(
            (n.cost_usd, n.cost_source),
            (Some(0.0), Some(CostSource::Byok))
        );
        assert!(d.cost_estimate_usd.is_some_and(|c| c > 0.0));

        // Odd types in undocumented fields cost the field, never the row.
        let odd = normalize(
            log(json!({"event_id": 42, "feedback": "x", "dlp_action": null,
                       "dlp_profiles": [], "usage_metadata": "n/a", "byok": "yes"})),
            Pricer::shared(),
        )
        .expect("ok");
        assert_eq!(odd.details.event_id.as_deref(), Some("42"));
        assert_eq!(odd.details.feedback, None);
        assert_eq!(odd.details.dlp_profiles, None);
        assert_eq!(odd.details.tokens_cached, None);
        assert_eq!(odd.details.byok, None);
        let plain = normalize(log(json!({})), Pricer::shared()).expect("ok");
        assert!(plain.details.cost_estimate_usd.is_none());
    }

    #[test]
    fn gaps_get_sensible_defaults_and_bad_times_are_rejected() {
        let p = Pricer::shared();
        let n = normalize(
            log(json!({"provider": null, "model": "", "success": null, "status_code": 503, "duration": null, "tokens_in": -3})),
            p,
        )
        .expect("ok");
        assert_eq!(
            (n.provider.as_str(), n.model.as_str()),
            ("unknown", "unknown")
        );
        assert!(!n.success);
        assert_eq!(n.duration_ms, 0);
        assert_eq!(n.tokens_in, None);
        let bad = normalize(log(json!({"created_at": "yesterday"})), p);
        assert!(bad.is_err());
    }

    #[test]
    fn nul_characters_never_reach_the_store() {
        let mut l =
            log(json!({"metadata": "{\"team\":\"a\\u0000b\",\"k\\u0000\":[\"x\\u0000\"]}"}));
        l.id = "log\0-1".into();
        l.model = Some("gpt\0-4o".into());
        let n = normalize(l, Pricer::shared()).expect("normalises");
        assert_eq!(n.log_id, "log-1");
        assert_eq!(n.model, "gpt-4o");
        assert_eq!(n.metadata.as_deref(), Some(r#"{"k":["x"],"team":"ab"}"#));
    }
}
