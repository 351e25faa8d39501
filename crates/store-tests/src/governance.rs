//! Policies, violations, model prices, spend and sync-run history through the trait.

use std::sync::Arc;

use langguard_store::*;

use crate::integration;
use crate::store::log;

fn policy(name: &str, builtin_id: Option<&str>) -> NewPolicy {
    NewPolicy {
        name: name.into(),
        display_name: name.to_uppercase(),
        description: String::new(),
        category: PolicyCategory::Audit,
        severity: Severity::High,
        mode: PolicyMode::Permissive,
        config: "{}".into(),
        rego: format!("package langguard.{name}"),
        builtin_id: builtin_id.map(str::to_string),
    }
}

pub async fn policies_keep_their_versions_and_builtins_install_once(store: Arc<dyn Store>) {
    let slow = store.create_policy(policy("slow", None)).await.unwrap();
    assert_eq!(slow.version, 1);
    assert!(matches!(
        store.create_policy(policy("slow", None)).await,
        Err(StoreError::Conflict { .. })
    ));
    // A new text is a new version; a new mode is not.
    let v2 = store
        .update_policy(
            slow.id,
            PolicyPatch {
                rego: Some("package langguard.slow\n# v2".into()),
                ..PolicyPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let enforced = store
        .update_policy(
            slow.id,
            PolicyPatch {
                mode: Some(PolicyMode::Enforce),
                ..PolicyPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((enforced.version, enforced.mode), (2, PolicyMode::Enforce));
    let versions = store.policy_versions(slow.id).await.unwrap();
    let numbers: Vec<i64> = versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, [2, 1], "newest first");
    assert!(versions[0].rego.ends_with("# v2"));
    assert_eq!(store.get_policy(slow.id).await.unwrap(), enforced);

    // Built-ins are installed once; one an admin deleted is not brought back.
    let created = store
        .install_builtins(vec![policy("pii", Some("pii-detection"))])
        .await
        .unwrap();
    assert_eq!(created.len(), 1);
    let again = store
        .install_builtins(vec![policy("pii", Some("pii-detection"))])
        .await
        .unwrap();
    assert!(again.is_empty());
    store.delete_policy(created[0].id).await.unwrap();
    let after_delete = store
        .install_builtins(vec![policy("pii", Some("pii-detection"))])
        .await
        .unwrap();
    assert!(after_delete.is_empty(), "a deleted built-in stays deleted");
    let names: Vec<String> = store
        .list_policies()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["slow"]);
    assert!(matches!(
        store.get_policy(created[0].id).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn violations_move_through_their_life(store: Arc<dyn Store>) {
    let i = integration(&*store, "prod").await;
    let t0 = 1_767_225_600_000;
    store
        .ingest_batch(
            i.id,
            "gw",
            (0..3)
                .map(|n| log(&format!("v{n}"), t0 + n * 1_000, 100, true, 200))
                .collect(),
            None,
        )
        .await
        .unwrap();
    let interactions = store.interactions_after(0, 10).await.unwrap();
    assert_eq!(interactions.len(), 3);
    assert_eq!(
        store.get_interaction(interactions[0].id).await.unwrap(),
        interactions[0]
    );
    let p = store.create_policy(policy("slow", None)).await.unwrap();
    let found = |interaction_id: i64, severity: Severity| NewViolation {
        policy_id: p.id,
        interaction_id,
        severity,
        kind: "slow".into(),
        message: "too slow".into(),
        evidence: r#"{"type":"slow","message":"too slow"}"#.into(),
    };
    let ids = store
        .record_evaluations(
            vec![
                found(interactions[0].id, Severity::High),
                found(interactions[1].id, Severity::Low),
            ],
            Some(interactions[2].id),
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let progress = store.policy_progress().await.unwrap();
    assert_eq!(progress.cursor, interactions[2].id);
    assert_eq!(progress.lag(), 0);
    // A finding already stored is skipped.
    let again = store
        .record_evaluations(vec![found(interactions[0].id, Severity::High)], None)
        .await
        .unwrap();
    assert!(again.is_empty());
    let after = store.violations_after(ids[0], 10).await.unwrap();
    assert_eq!(after.iter().map(|v| v.id).collect::<Vec<_>>(), [ids[1]]);
    let first = store.get_violation(ids[0]).await.unwrap();
    assert_eq!(
        (first.status, first.policy_name.as_str()),
        (ViolationStatus::New, "slow")
    );

    // Status changes are all or none.
    assert!(matches!(
        store
            .update_violations(vec![ids[0], 9_999], ViolationStatus::Resolved, None)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.get_violation(ids[0]).await.unwrap().status,
        ViolationStatus::New
    );
    let resolved = store
        .update_violations(
            vec![ids[0]],
            ViolationStatus::Resolved,
            Some("fixed".into()),
        )
        .await
        .unwrap();
    assert_eq!(resolved[0].notes.as_deref(), Some("fixed"));
    let counts = store
        .violation_counts(&Scope {
            from_ms: Some(t0),
            to_ms: Some(t0 + 60_000),
            ..Scope::default()
        })
        .await
        .unwrap();
    let mut counts: Vec<(Severity, ViolationStatus, u64)> = counts;
    counts.sort_by_key(|(s, st, _)| (s.as_str(), st.as_str()));
    assert_eq!(
        counts,
        [
            (Severity::High, ViolationStatus::Resolved, 1),
            (Severity::Low, ViolationStatus::New, 1)
        ]
    );
}

pub async fn prices_override_and_spend_is_summed_per_minute(store: Arc<dyn Store>) {
    assert!(store.list_model_prices().await.unwrap().is_empty());
    store.set_model_price("gpt-x", 0.01, 0.03).await.unwrap();
    let replaced = store.set_model_price("gpt-x", 0.02, 0.04).await.unwrap();
    assert_eq!(
        (replaced.input_per_1k, replaced.output_per_1k),
        (0.02, 0.04)
    );
    let prices = store.list_model_prices().await.unwrap();
    assert_eq!(prices.len(), 1);
    store.delete_model_price("gpt-x").await.unwrap();
    assert!(store.list_model_prices().await.unwrap().is_empty());
    assert!(matches!(
        store.delete_model_price("gpt-x").await,
        Err(StoreError::NotFound { .. })
    ));

    let i = integration(&*store, "prod").await;
    let minute = 1_767_225_600_000;
    let batch = vec![
        log("s1", minute + 1_000, 100, true, 200),
        log("s2", minute + 2_000, 100, true, 200),
        log("s3", minute + 61_000, 100, true, 200),
        log("s4", minute + 62_000, 100, false, 500),
    ];
    store.ingest_batch(i.id, "gw", batch, None).await.unwrap();
    let spend = store
        .minute_spend(i.id, minute, minute + 120_000)
        .await
        .unwrap();
    assert_eq!(spend.len(), 2);
    assert_eq!(
        (spend[0].minute_ms, spend[0].requests, spend[0].tokens),
        (minute, 2, 30)
    );
    assert!((spend[0].cost_usd - 0.002).abs() < 1e-12);
    assert_eq!((spend[1].requests, spend[1].tokens), (2, 15));
    assert!(store
        .minute_spend(i.id, minute + 120_000, minute + 180_000)
        .await
        .unwrap()
        .is_empty());
}

pub async fn sync_runs_are_listed_newest_first_with_their_counts(store: Arc<dyn Store>) {
    let a = integration(&*store, "a").await;
    let b = integration(&*store, "b").await;
    assert_eq!(
        store
            .find_integration_by_name("b")
            .await
            .unwrap()
            .map(|i| i.id),
        Some(b.id)
    );
    assert!(store.find_integration_by_name("c").await.unwrap().is_none());
    let mut runs = Vec::new();
    for (integration, holder) in [(a.id, "h1"), (b.id, "h2"), (a.id, "h3")] {
        let SyncClaim::Claimed(run) = store
            .claim_sync(integration, SyncTrigger::Manual, holder, 60_000)
            .await
            .unwrap()
        else {
            panic!("claimed");
        };
        let counts = SyncCounts {
            items_fetched: run.id * 10,
            ..SyncCounts::default()
        };
        // Progress saved mid-run is what a reader sees.
        store.update_sync_run_counts(run.id, &counts).await.unwrap();
        assert_eq!(store.get_sync_run(run.id).await.unwrap().counts, counts);
        store
            .finish_sync_run(
                run.id,
                &SyncRunOutcome {
                    status: SyncRunStatus::Succeeded,
                    counts,
                    error: None,
                    hint: None,
                },
            )
            .await
            .unwrap();
        store
            .release_lease(&sync_lease_name(integration), holder)
            .await
            .unwrap();
        runs.push(run.id);
    }
    let of_a: Vec<i64> = store
        .list_sync_runs(a.id, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(of_a, [runs[2], runs[0]]);
    let recent: Vec<i64> = store
        .recent_sync_runs(2)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(recent, [runs[2], runs[1]]);
    let finished = store.sync_runs_finished_after((0, 0), 10).await.unwrap();
    assert_eq!(finished.len(), 3);
    let last = finished.last().unwrap();
    let none_after = store
        .sync_runs_finished_after((last.finished_at_ms.unwrap(), last.id), 10)
        .await
        .unwrap();
    assert!(none_after.is_empty());
}

pub async fn a_quarantine_applies_once_to_the_version_evaluated(store: Arc<dyn Store>) {
    let hook = store
        .create_webhook(NewWebhook {
            url: "https://hooks.example.com/q".into(),
            secret: SealFor::new(|_| vec![1]),
            kind: langguard_store::ChannelKind::Webhook,
            name: String::new(),
            settings: "{}".into(),
            events: vec![WebhookEvent::PolicyQuarantined],
            min_severity: Severity::Low,
            enabled: true,
        })
        .await
        .expect("webhook");
    let policy = store
        .create_policy(NewPolicy {
            name: "bomb".into(),
            display_name: "Bomb".into(),
            description: String::new(),
            category: PolicyCategory::Audit,
            severity: Severity::Low,
            mode: PolicyMode::Enforce,
            config: "{}".into(),
            rego: "package langguard.bomb".into(),
            builtin_id: None,
        })
        .await
        .expect("policy");
    let event = || {
        OutgoingEvent::new(
            WebhookEvent::PolicyQuarantined,
            serde_json::json!({"policyId": policy.id}),
            None,
        )
    };
    // A fix saved after the evaluation: the old version's quarantine does not apply to it.
    let fixed = store
        .update_policy(
            policy.id,
            PolicyPatch {
                rego: Some("package langguard.bomb\n# fixed".into()),
                ..PolicyPatch::default()
            },
        )
        .await
        .expect("fix");
    assert_eq!(fixed.version, policy.version + 1);
    assert!(store
        .quarantine_policy(policy.id, policy.version, "stale", event())
        .await
        .expect("quarantine")
        .is_none());
    // The version evaluated is quarantined once, with its reason, and the event queued once.
    let quarantined = store
        .quarantine_policy(
            policy.id,
            fixed.version,
            "kept crossing its limits",
            event(),
        )
        .await
        .expect("quarantine")
        .expect("changed");
    assert_eq!(quarantined.mode, PolicyMode::Disabled);
    assert_eq!(
        quarantined.quarantine_reason.as_deref(),
        Some("kept crossing its limits")
    );
    assert!(quarantined.quarantined_at_ms.is_some());
    assert!(store
        .quarantine_policy(policy.id, fixed.version, "again", event())
        .await
        .expect("quarantine")
        .is_none());
    let deliveries = store
        .list_deliveries(hook.id, 10)
        .await
        .expect("deliveries");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].event, WebhookEvent::PolicyQuarantined);
    // Turning it back on lifts the quarantine.
    let back = store
        .update_policy(
            policy.id,
            PolicyPatch {
                mode: Some(PolicyMode::Permissive),
                ..PolicyPatch::default()
            },
        )
        .await
        .expect("on again");
    assert_eq!(back.quarantine_reason, None);
    assert_eq!(back.quarantined_at_ms, None);
}
