//! Alert rules, alerts and silences through the trait.

use std::sync::Arc;

use langguard_store::*;

pub fn rule(name: &str) -> NewAlertRule {
    NewAlertRule {
        name: name.into(),
        description: "5xx storms".into(),
        enabled: true,
        metric: AlertMetric::ErrorRate,
        severity: None,
        condition: AlertCondition::Above,
        threshold: 5.0,
        window_minutes: 15,
        for_minutes: 5,
        min_requests: 20,
        renotify_minutes: Some(60),
        scope: AlertScope {
            provider: Some("openai".into()),
            ..AlertScope::default()
        },
        group_by: Some(GroupBy::Model),
        channel_ids: vec![4, 9],
        created_by: Some("admin@example.com".into()),
    }
}

fn alert(rule_id: i64, group: &str, state: AlertState, at: i64) -> Alert {
    Alert {
        id: 0,
        rule_id,
        group: group.into(),
        state,
        value: Some(12.5),
        threshold: 5.0,
        pending_since_ms: at,
        fired_at_ms: (state == AlertState::Firing).then_some(at),
        resolved_at_ms: None,
        notified_at_ms: None,
        evaluated_at_ms: at,
    }
}

pub async fn alert_rules_keep_what_they_say_and_alerts_their_history(store: Arc<dyn Store>) {
    let created = store
        .create_alert_rule(rule("errors"))
        .await
        .expect("create");
    assert_eq!(created.metric, AlertMetric::ErrorRate);
    assert_eq!(created.scope.provider.as_deref(), Some("openai"));
    assert_eq!(created.group_by, Some(GroupBy::Model));
    assert_eq!(created.renotify_minutes, Some(60));
    assert!(matches!(
        store.create_alert_rule(rule("errors")).await,
        Err(StoreError::Conflict { .. })
    ));
    let other = store
        .create_alert_rule(rule("other"))
        .await
        .expect("create");
    assert_eq!(
        store.list_alert_rules().await.expect("list"),
        vec![created.clone(), other.clone()]
    );

    let mut changed = NewAlertRule::from_rule(&created);
    changed.threshold = 10.0;
    changed.severity = Some(Severity::High);
    changed.group_by = None;
    changed.scope = AlertScope::default();
    let replaced = store
        .replace_alert_rule(created.id, changed)
        .await
        .expect("replace");
    assert_eq!(replaced.threshold, 10.0);
    assert_eq!(replaced.group_by, None);
    assert_eq!(replaced.severity, Some(Severity::High));
    assert_eq!(replaced.created_at_ms, created.created_at_ms);
    assert!(matches!(
        store
            .replace_alert_rule(created.id, NewAlertRule::from_rule(&other))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.get_alert_rule(9_999).await,
        Err(StoreError::NotFound { .. })
    ));

    // An evaluation opens alerts; the next fires one and drops the other.
    let t = 1_790_000_000_000;
    store
        .save_alert_changes(
            vec![
                AlertChange::Open(alert(created.id, "gpt-4o", AlertState::Pending, t)),
                AlertChange::Open(alert(created.id, "gpt-4o-mini", AlertState::Pending, t)),
                AlertChange::Open(alert(other.id, "", AlertState::Firing, t)),
            ],
            vec![],
        )
        .await
        .expect("open");
    let open = store.open_alerts().await.expect("open alerts");
    assert_eq!(open.len(), 3);
    let mut fired = open[0].clone();
    fired.state = AlertState::Firing;
    fired.fired_at_ms = Some(t + 300_000);
    fired.notified_at_ms = Some(t + 300_000);
    store
        .save_alert_changes(
            vec![
                AlertChange::Update(fired.clone()),
                AlertChange::Drop(open[1].id),
            ],
            vec![],
        )
        .await
        .expect("fire");
    let open = store.open_alerts().await.expect("open alerts");
    assert_eq!(open.len(), 2);
    assert_eq!(open[0], fired);

    // A second open alert of one rule and group is refused: one at a time.
    assert!(store
        .save_alert_changes(
            vec![AlertChange::Open(alert(
                created.id,
                "gpt-4o",
                AlertState::Pending,
                t
            ))],
            vec![],
        )
        .await
        .is_err());
    // Nothing of the refused evaluation was kept.
    assert_eq!(store.open_alerts().await.expect("open").len(), 2);

    let mut resolved = fired.clone();
    resolved.state = AlertState::Resolved;
    resolved.resolved_at_ms = Some(t + 900_000);
    store
        .save_alert_changes(vec![AlertChange::Update(resolved.clone())], vec![])
        .await
        .expect("resolve");
    let history = store
        .list_alerts(&AlertQuery {
            rule_id: Some(created.id),
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .expect("history");
    assert_eq!(history, vec![resolved.clone()]);
    let firing = store
        .list_alerts(&AlertQuery {
            states: vec![AlertState::Firing, AlertState::Pending],
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .expect("firing");
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0].rule_id, other.id);
    let page = store
        .list_alerts(&AlertQuery {
            limit: 1,
            ..AlertQuery::default()
        })
        .await
        .expect("page");
    let next = store
        .list_alerts(&AlertQuery {
            limit: 10,
            before_id: Some(page[0].id),
            ..AlertQuery::default()
        })
        .await
        .expect("next page");
    assert_eq!(page.len() + next.len(), 2);

    // Deleting a rule takes its alerts and silences with it; changes for it are skipped.
    store
        .create_alert_silence(NewAlertSilence {
            rule_id: Some(other.id),
            group: None,
            starts_at_ms: t,
            ends_at_ms: t + 3_600_000,
            reason: "maintenance".into(),
            created_by: None,
        })
        .await
        .expect("silence");
    store.delete_alert_rule(other.id).await.expect("delete");
    assert!(store.open_alerts().await.expect("open").is_empty());
    assert!(store
        .list_alert_silences(None)
        .await
        .expect("silences")
        .is_empty());
    store
        .save_alert_changes(
            vec![AlertChange::Open(alert(
                other.id,
                "",
                AlertState::Pending,
                t,
            ))],
            vec![],
        )
        .await
        .expect("a deleted rule's change is skipped");
    assert!(store.open_alerts().await.expect("open").is_empty());
    assert!(matches!(
        store.delete_alert_rule(other.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn silences_cover_their_time_and_end_early(store: Arc<dyn Store>) {
    let r = store
        .create_alert_rule(rule("latency"))
        .await
        .expect("rule");
    let t = 1_790_000_000_000;
    let everything = store
        .create_alert_silence(NewAlertSilence {
            rule_id: None,
            group: None,
            starts_at_ms: t,
            ends_at_ms: t + 3_600_000,
            reason: "upgrade window".into(),
            created_by: Some("admin@example.com".into()),
        })
        .await
        .expect("silence");
    let one_group = store
        .create_alert_silence(NewAlertSilence {
            rule_id: Some(r.id),
            group: Some("gpt-4o".into()),
            starts_at_ms: t,
            ends_at_ms: t + 7_200_000,
            reason: "known slow".into(),
            created_by: None,
        })
        .await
        .expect("silence");
    assert!(everything.covers(r.id, "anything", t + 1));
    assert!(!everything.covers(r.id, "anything", t + 3_600_000));
    assert!(one_group.covers(r.id, "gpt-4o", t + 3_700_000));
    assert!(!one_group.covers(r.id, "claude", t + 1));
    assert!(!one_group.covers(r.id + 1, "gpt-4o", t + 1));
    assert!(matches!(
        store
            .create_alert_silence(NewAlertSilence {
                rule_id: Some(9_999),
                group: None,
                starts_at_ms: t,
                ends_at_ms: t + 1,
                reason: "x".into(),
                created_by: None,
            })
            .await,
        Err(StoreError::NotFound { .. })
    ));

    let active = store
        .list_alert_silences(Some(t + 3_650_000))
        .await
        .expect("active");
    assert_eq!(active, vec![one_group.clone()]);
    assert_eq!(store.list_alert_silences(None).await.expect("all").len(), 2);

    let ended = store
        .end_alert_silence(one_group.id, t + 60_000)
        .await
        .expect("end");
    assert_eq!(ended.ends_at_ms, t + 60_000);
    // Ending it again later doesn't bring it back.
    let again = store
        .end_alert_silence(one_group.id, t + 600_000)
        .await
        .expect("end again");
    assert_eq!(again.ends_at_ms, t + 60_000);
    assert!(store
        .list_alert_silences(Some(t + 120_000))
        .await
        .expect("active")
        .iter()
        .all(|s| s.id != one_group.id));
    assert!(matches!(
        store.end_alert_silence(9_999, t).await,
        Err(StoreError::NotFound { .. })
    ));
}
