//! Every built-in policy, on inputs that must and must not trigger it.

use langguard_policy::{
    config_value, input_document, input_document_with, trace_document, CompiledPolicy, SpendWindow,
    BUILTINS,
};
use langguard_store::{Interaction, NewInteraction};

fn interaction() -> Interaction {
    Interaction {
        id: 1,
        integration_id: 1,
        gateway: "prod".into(),
        log: NewInteraction {
            log_id: "01JLOG".into(),
            created_at_ms: 1_767_225_600_000,
            provider: "openai".into(),
            model: "gpt-4o".into(),
            path: Some("chat/completions".into()),
            status_code: Some(200),
            success: true,
            cached: false,
            duration_ms: 800,
            tokens_in: Some(120),
            tokens_out: Some(80),
            cost_usd: Some(0.002),
            cost_source: None,
            metadata: Some(
                r#"{"ai_app_id":"app_1","department":"sales","user_id":"u_1","agent_name":"Helper"}"#
                    .into(),
            ),
            requested_model: None,
            details: Default::default(),
        },
    }
}

/// The kinds of violation `builtin` reports for the interaction (after `change`), with the
/// built-in's default config merged with `config`.
fn kinds(
    builtin: &str,
    config: serde_json::Value,
    change: impl FnOnce(&mut Interaction),
    bodies: Option<(&str, &str)>,
    windows: Option<&[SpendWindow]>,
) -> Vec<String> {
    let b = BUILTINS
        .iter()
        .find(|b| b.id == builtin)
        .unwrap_or_else(|| panic!("no built-in {builtin}"));
    let mut policy = CompiledPolicy::compile(&b.name(), b.rego).expect("built-in compiles");
    let mut merged: serde_json::Value = serde_json::from_str(b.config).expect("config JSON");
    if let (Some(m), serde_json::Value::Object(extra)) = (merged.as_object_mut(), config) {
        m.extend(extra);
    }
    let mut i = interaction();
    change(&mut i);
    let trace = trace_document(&i, bodies);
    let input = input_document(&trace, &config_value(&merged.to_string()), windows);
    let mut found: Vec<String> = policy
        .evaluate(input)
        .expect("evaluates")
        .into_iter()
        .map(|f| {
            assert!(!f.message.is_empty());
            f.kind
        })
        .collect();
    found.sort();
    found
}

fn none() -> serde_json::Value {
    serde_json::json!({})
}

#[test]
fn every_builtin_compiles_with_its_underscored_name() {
    for b in BUILTINS {
        CompiledPolicy::compile(&b.name(), b.rego).unwrap_or_else(|e| panic!("{}: {e}", b.id));
        let config: serde_json::Value = serde_json::from_str(b.config).expect("config");
        assert!(config.is_object(), "{}", b.id);
    }
}

#[test]
fn credential_surface_discovery() {
    let id = "credential-surface-discovery";
    assert!(kinds(id, none(), |_| {}, Some(("hello", "hi there")), None).is_empty());
    let leaked = kinds(
        id,
        none(),
        |_| {},
        Some((
            r#"{"messages":[{"role":"user","content":"my key is sk-proj-abcdefghijklmnopqrstuvwx"}]}"#,
            "AKIAABCDEFGHIJKLMNOP and ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        )),
        None,
    );
    assert_eq!(leaked.len(), 3, "{leaked:?}");
    assert!(leaked.iter().all(|k| k == "credential_exposed"));
    // In metadata too.
    let in_metadata = kinds(
        id,
        none(),
        |i| {
            i.log.metadata =
                Some(r#"{"note":"AccountKey=abcdefghijklmnopqrstuvwxyz0123=="}"#.into())
        },
        None,
        None,
    );
    assert_eq!(in_metadata, ["credential_exposed"]);
}

#[test]
fn credential_evidence_is_redacted() {
    let b = BUILTINS
        .iter()
        .find(|b| b.id == "credential-surface-discovery")
        .expect("built-in");
    let mut policy = CompiledPolicy::compile(&b.name(), b.rego).expect("compiles");
    let secret = "sk-ant-abcdefghijklmnopqrstuvwxyz012345";
    let prompt = format!("use {secret}");
    let trace = trace_document(&interaction(), Some((&prompt, "ok")));
    let found = policy
        .evaluate(input_document(&trace, &config_value(b.config), None))
        .expect("evaluates");
    assert!(!found.is_empty());
    for f in found {
        assert!(!f.result.to_string().contains(secret), "{}", f.result);
    }
}

#[test]
fn pii_detection() {
    let id = "pii-detection";
    assert!(kinds(id, none(), |_| {}, Some(("What is 2 + 2?", "4")), None).is_empty());
    let found = kinds(
        id,
        none(),
        |_| {},
        Some((
            "Mail jane.doe@example.com or call +1 415-555-0134; card 4111 1111 1111 1111",
            "IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789",
        )),
        None,
    );
    assert_eq!(
        found, ["pii_detected"; 5],
        "email, phone, card, IBAN and SSN"
    );
    // A 16-digit number that fails the Luhn check is not a card.
    assert!(kinds(
        id,
        none(),
        |_| {},
        Some(("order 4111 1111 1111 1112", "ok")),
        None
    )
    .is_empty());
    // IP addresses have low confidence: found only when min_confidence allows.
    assert!(kinds(id, none(), |_| {}, Some(("server 10.1.2.3", "ok")), None).is_empty());
    assert_eq!(
        kinds(
            id,
            serde_json::json!({"min_confidence": 0.2}),
            |_| {},
            Some(("server 10.1.2.3", "ok")),
            None
        ),
        ["pii_detected"]
    );
}

#[test]
fn latency_health_threshold() {
    let id = "latency-health-threshold";
    assert!(kinds(id, none(), |_| {}, None, None).is_empty());
    assert_eq!(
        kinds(id, none(), |i| i.log.duration_ms = 9_000, None, None),
        ["high_latency"]
    );
    assert_eq!(
        kinds(
            id,
            none(),
            |i| {
                i.log.success = false;
                i.log.status_code = Some(500);
            },
            None,
            None
        ),
        ["error_status"]
    );
    assert_eq!(
        kinds(
            id,
            serde_json::json!({"max_context_tokens": 100}),
            |_| {},
            None,
            None
        ),
        ["context_too_large"]
    );
}

/// `input.budgets` as the worker builds it: a monthly budget per model, gpt-4o's spent and
/// another model's not, and a budget scoped to another provider that the call isn't in.
#[test]
fn budget_overrun_flags_calls_of_a_group_over_its_budget() {
    use langguard_store::{AlertScope, Budget, BudgetGroup, BudgetPeriod, GroupBy};
    let budget = |id, name: &str, scope: AlertScope| Budget {
        id,
        name: name.into(),
        amount_usd: 100.0,
        period: BudgetPeriod::Month,
        time_zone: "Europe/Berlin".into(),
        scope,
        group_by: Some(GroupBy::Model),
        thresholds: vec![50, 80, 100],
        enabled: true,
        created_by: None,
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    let budgets = [
        budget(1, "Per model", AlertScope::default()),
        budget(
            2,
            "Anthropic",
            AlertScope {
                provider: Some("anthropic".into()),
                ..AlertScope::default()
            },
        ),
    ];
    let group = |budget_id, group: &str, spent_usd| BudgetGroup {
        budget_id,
        group: group.into(),
        period_start_ms: 0,
        spent_usd,
        forecast_usd: spent_usd * 2.0,
        notified_percent: 100,
        evaluated_at_ms: 0,
    };
    let groups = [
        group(1, "gpt-4o", 130.0),
        group(1, "gpt-4o-mini", 20.0),
        group(2, "gpt-4o", 500.0),
    ];
    let b = BUILTINS
        .iter()
        .find(|b| b.id == "budget-overrun")
        .expect("built-in");
    let mut policy = CompiledPolicy::compile(&b.name(), b.rego).expect("compiles");
    let mut calls = [interaction(), interaction()];
    calls[1].id = 2;
    calls[1].log.model = "gpt-4o-mini".into();
    let inputs = langguard_policy::budgets::budgets_of(&budgets, &groups, &calls);
    let (over, under) = (&inputs[&1], &inputs[&2]);
    assert_eq!(
        over.len(),
        1,
        "only the budget whose scope holds the call: {over:?}"
    );
    assert!(over[0].over && over[0].group == "gpt-4o" && over[0].percent == 130.0);
    assert!(!under[0].over);
    let mut findings = |id: i64, budgets: &[langguard_policy::BudgetInput]| {
        let i = calls.iter().find(|c| c.id == id).expect("call");
        policy
            .evaluate(input_document_with(
                &trace_document(i, None),
                &config_value(b.config),
                None,
                Some(budgets),
                None,
            ))
            .expect("evaluates")
    };
    let found = findings(1, over);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, "budget_exceeded");
    assert_eq!(
        found[0].message,
        "Budget \"Per model\" for model gpt-4o is spent: $130.00 of $100.00 this month"
    );
    assert!(findings(2, under).is_empty());
}

#[test]
fn budget_overrun() {
    let id = "budget-overrun";
    let quiet = [SpendWindow {
        minutes: 1440,
        cost_usd: 10.0,
        requests: 100,
        tokens: 1_000,
    }];
    assert!(kinds(
        id,
        serde_json::json!({"budget_usd": 100}),
        |_| {},
        None,
        Some(&quiet)
    )
    .is_empty());
    assert_eq!(
        kinds(id, none(), |i| i.log.cost_usd = Some(2.5), None, None),
        ["trace_cost_exceeded"]
    );
    assert_eq!(
        kinds(
            id,
            serde_json::json!({"max_tokens_per_trace": 150}),
            |_| {},
            None,
            None
        ),
        ["trace_tokens_exceeded"]
    );
    let spent = [SpendWindow {
        minutes: 1440,
        cost_usd: 85.0,
        requests: 900,
        tokens: 90_000,
    }];
    assert_eq!(
        kinds(
            id,
            serde_json::json!({"budget_usd": 100}),
            |_| {},
            None,
            Some(&spent)
        ),
        ["budget_threshold_reached"]
    );
    assert_eq!(
        kinds(
            id,
            serde_json::json!({"avg_cost_per_trace": 0.0001}),
            |_| {},
            None,
            None
        ),
        ["cost_outlier"]
    );
}

#[test]
fn approved_model_version() {
    let id = "approved-model-version";
    // Unconfigured: nothing is flagged.
    assert!(kinds(id, none(), |_| {}, None, None).is_empty());
    let allow = serde_json::json!({"approved_models": ["gpt-4o*", "claude-3-5-sonnet"]});
    assert!(kinds(id, allow.clone(), |_| {}, None, None).is_empty());
    assert!(kinds(
        id,
        allow.clone(),
        |i| i.log.model = "gpt-4o-mini".into(),
        None,
        None
    )
    .is_empty());
    assert_eq!(
        kinds(id, allow, |i| i.log.model = "llama-3".into(), None, None),
        ["unapproved_model"]
    );
}

#[test]
fn mandatory_trace_logging() {
    let id = "mandatory-trace-logging";
    assert!(kinds(id, none(), |_| {}, None, None).is_empty());
    assert_eq!(
        kinds(id, none(), |i| i.log.metadata = None, None, None),
        ["missing_agent_name", "missing_user"]
    );
    assert_eq!(
        kinds(
            id,
            none(),
            |i| i.log.metadata = Some(r#"{"user":"u_9"}"#.into()),
            None,
            None
        ),
        ["missing_agent_name"]
    );
}

#[test]
fn metadata_tagging() {
    let id = "metadata-tagging";
    assert!(kinds(id, none(), |_| {}, None, None).is_empty());
    assert_eq!(
        kinds(
            id,
            none(),
            |i| i.log.metadata = Some(r#"{"team":"search"}"#.into()),
            None,
            None
        ),
        ["missing_metadata", "missing_user_attribution"]
    );
    assert!(kinds(
        id,
        serde_json::json!({"required_metadata": ["team"], "require_user_attribution": false}),
        |i| i.log.metadata = Some(r#"{"team":"search"}"#.into()),
        None,
        None
    )
    .is_empty());
    assert_eq!(
        kinds(
            id,
            none(),
            |i| {
                i.log.metadata = Some(
                r#"{"ai_app_id":"a","department":"d","user_id":"u","data_classification":"confidential"}"#
                    .into()
            )
            },
            None,
            None
        ),
        ["missing_classification_metadata"]
    );
}

#[test]
fn the_vm_and_the_interpreter_agree_on_every_builtin() {
    let texts = [
        "What is 2 + 2?",
        "Mail jane.doe@example.com, card 4111 1111 1111 1111, call +1 415-555-0134",
        "key sk-proj-abcdefghijklmnopqrstuvwx and AKIAABCDEFGHIJKLMNOP",
        r#"{"role": "admin", "note": "IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789, 10.0.0.1"}"#,
    ];
    let metadata = [
        None,
        Some(r#"{"team":"search","user":"u_1"}"#),
        Some(
            r#"{"ai_app_id":"a","department":"d","user_id":"u","agent_name":"x","data_classification":"restricted"}"#,
        ),
    ];
    let windows = [SpendWindow {
        minutes: 1440,
        cost_usd: 90.0,
        requests: 10,
        tokens: 100,
    }];
    for b in BUILTINS {
        let mut vm = CompiledPolicy::compile_for(&b.name(), b.rego, true).expect("compiles");
        let mut interpreter =
            CompiledPolicy::compile_for(&b.name(), b.rego, false).expect("compiles");
        assert!(vm.on_vm() && !interpreter.on_vm());
        let config = config_value(
            &serde_json::json!({"budget_usd": 100, "approved_models": ["gpt-4o*"],
                                "max_context_tokens": 100, "max_latency_ms": 500,
                                "avg_cost_per_trace": 0.0001, "min_confidence": 0.2})
            .to_string(),
        );
        for (n, text) in texts.iter().enumerate() {
            for md in metadata {
                let mut i = interaction();
                i.log.metadata = md.map(str::to_string);
                i.log.success = n % 2 == 0;
                i.log.model = ["gpt-4o", "llama-3"][n % 2].into();
                let trace = trace_document(&i, Some((text, texts[(n + 1) % texts.len()])));
                let input = input_document(&trace, &config, Some(&windows));
                let a = vm.evaluate(input.clone()).expect("vm");
                let b_found = interpreter.evaluate(input).expect("interpreter");
                assert_eq!(a, b_found, "{} on text {n}", b.id);
            }
        }
    }
}

#[test]
fn cloudflares_extra_log_fields_reach_policies_as_trace_metadata() {
    let rego = r#"
package langguard.dlp_and_feedback

import rego.v1

violation contains result if {
	input.trace.metadata.dlp_action == "BLOCK"
	some p in input.trace.metadata.dlp_profiles
	result := {"type": "dlp_block", "message": sprintf("DLP blocked (%v)", [p.profile.profile_id])}
}

violation contains result if {
	input.trace.metadata.feedback == -1
	input.trace.metadata.requested_model == "cloudflare/auto"
	result := {"type": "disliked_auto_route", "message": sprintf("thumbs down from %v", [input.trace.metadata.user_agent])}
}
"#;
    let mut policy = CompiledPolicy::compile("dlp_and_feedback", rego).expect("compiles");
    let mut run = |i: &Interaction| -> Vec<String> {
        let input = input_document(&trace_document(i, None), &config_value("{}"), None);
        let mut kinds: Vec<String> = policy
            .evaluate(input)
            .expect("evaluates")
            .into_iter()
            .map(|f| f.kind)
            .collect();
        kinds.sort();
        kinds
    };
    let mut i = interaction();
    assert!(run(&i).is_empty(), "a log without the fields flags nothing");
    i.log.details.dlp_action = Some("BLOCK".into());
    i.log.details.dlp_profiles = Some(serde_json::json!([
        {"profile": {"profile_id": "pii", "entry_ids": ["ssn"]}, "policy_ids": [], "check": "REQUEST"}
    ]));
    i.log.details.feedback = Some(-1);
    i.log.details.user_agent = Some("openai-python/1.51.0".into());
    i.log.requested_model = Some("cloudflare/auto".into());
    assert_eq!(run(&i), ["disliked_auto_route", "dlp_block"]);
}

#[test]
fn spend_anomaly_flags_the_calls_of_a_session_judged_anomalous() {
    let b = BUILTINS
        .iter()
        .find(|b| b.id == "spend-anomaly")
        .expect("built-in");
    let mut policy = CompiledPolicy::compile(&b.name(), b.rego).expect("compiles");
    let session = |anomalous: bool, session: Option<&str>| langguard_policy::SpendAnomalyInput {
        user: "ana".into(),
        session: session.map(str::to_owned),
        hour: session.is_none().then(|| "2026-12-01T14:00:00.000Z".into()),
        session_spend_usd: 3.0,
        session_requests: 4,
        anomalous,
        user_p95_usd: anomalous.then_some(1.0),
        baseline_sessions: anomalous.then_some(20),
        org_p99_usd: anomalous.then_some(2.5),
    };
    let mut findings = |input: Option<langguard_policy::SpendAnomalyInput>, config: &str| {
        policy
            .evaluate(input_document_with(
                &trace_document(&interaction(), None),
                &config_value(config),
                None,
                None,
                input.as_ref(),
            ))
            .expect("evaluates")
    };
    let found = findings(Some(session(true, Some("s-9"))), b.config);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, "spend_anomaly");
    assert_eq!(
        found[0].message,
        "ana's session s-9 spent $3.00: 3.0× their usual $1.00 (p95 of 20 sessions) and above \
         the organisation's p99 of $2.50"
    );
    let hourly = findings(Some(session(true, None)), b.config);
    assert!(
        hourly[0]
            .message
            .starts_with("ana's hour from 2026-12-01T14:00:00.000Z spent"),
        "{}",
        hourly[0].message
    );
    assert!(findings(Some(session(false, Some("s-9"))), b.config).is_empty());
    assert!(findings(None, b.config).is_empty());
    // Small change left alone when the config says so.
    assert!(findings(
        Some(session(true, Some("s-9"))),
        r#"{"min_session_usd": 5}"#
    )
    .is_empty());
}
