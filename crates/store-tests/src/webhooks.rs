//! Webhooks through the trait: the delivery queue, retries, disabling, changes and deletion.

use std::sync::Arc;

use langguard_store::*;

pub async fn webhooks_queue_deliveries_and_disable_after_failures(store: Arc<dyn Store>) {
    let hook = store
        .create_webhook(NewWebhook {
            url: "https://hooks.example.com/x".into(),
            secret: SealFor::new(|_| vec![1, 2]),
            kind: langguard_store::ChannelKind::Webhook,
            name: String::new(),
            settings: "{}".into(),
            events: vec![WebhookEvent::PolicyViolation, WebhookEvent::SyncFailed],
            min_severity: Severity::High,
            enabled: true,
        })
        .await
        .expect("create");
    assert_eq!(
        store.list_webhooks().await.expect("list"),
        vec![hook.clone()]
    );
    let event = |event, severity| OutgoingEvent {
        event,
        body: "{}".into(),
        severity,
        channels: None,
    };
    let progress = store.event_progress().await.expect("progress");
    let queued = store
        .enqueue_events(
            vec![
                event(WebhookEvent::PolicyViolation, Some(Severity::Critical)),
                event(WebhookEvent::PolicyViolation, Some(Severity::Low)),
                event(WebhookEvent::IntegrationStatusChanged, None),
                event(WebhookEvent::SyncFailed, None),
            ],
            progress.clone(),
            EventProgress {
                violation_id: 42,
                ..progress.clone()
            },
        )
        .await
        .expect("enqueue");
    assert_eq!(queued, 2, "subscribed events at or above the severity");
    // A second detection that started from the same progress (on another instance) queues
    // nothing: the first already did.
    assert_eq!(
        store
            .enqueue_events(
                vec![event(
                    WebhookEvent::PolicyViolation,
                    Some(Severity::Critical)
                )],
                progress.clone(),
                EventProgress {
                    violation_id: 42,
                    ..progress.clone()
                },
            )
            .await
            .expect("enqueue"),
        0
    );
    assert_eq!(
        store.event_progress().await.expect("progress").violation_id,
        42
    );
    let due = store
        .due_deliveries(i64::MAX - 1, 10, i64::MAX)
        .await
        .expect("due");
    assert_eq!(due.len(), 2);
    // Claimed: not handed out again (to this or another instance) until the claim ends.
    assert!(store
        .due_deliveries(i64::MAX - 1, 10, i64::MAX)
        .await
        .expect("due")
        .is_empty());
    // Fails twice in a row with a threshold of two: disabled.
    for (delivery, _) in &due {
        store
            .record_delivery(
                delivery.id,
                DeliveryAttempt {
                    response_code: Some(500),
                    error: Some("boom".into()),
                    succeeded: false,
                    retry_at_ms: None,
                },
                2,
            )
            .await
            .expect("record");
    }
    let hook = store.get_webhook(hook.id).await.expect("get");
    assert!(!hook.enabled);
    assert!(hook.disabled_reason.is_some());
    let log = store.list_deliveries(hook.id, 10).await.expect("log");
    assert!(log
        .iter()
        .all(|d| d.status == DeliveryStatus::Failed && d.attempts == 1));
}

pub async fn webhooks_are_changed_and_deleted_with_their_deliveries(store: Arc<dyn Store>) {
    let hook = store
        .create_webhook(NewWebhook {
            url: "https://hooks.example.com/a".into(),
            secret: SealFor::new(|_| vec![1]),
            kind: langguard_store::ChannelKind::Webhook,
            name: String::new(),
            settings: "{}".into(),
            events: vec![WebhookEvent::SyncFailed],
            min_severity: Severity::Low,
            enabled: true,
        })
        .await
        .unwrap();
    let changed = store
        .update_webhook(
            hook.id,
            WebhookPatch {
                url: Some("https://hooks.example.com/b".into()),
                events: Some(vec![
                    WebhookEvent::SyncFailed,
                    WebhookEvent::PolicyViolation,
                ]),
                min_severity: Some(Severity::High),
                enabled: Some(false),
                sealed_secret: None,
                name: Some("Ops".into()),
                settings: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.url, "https://hooks.example.com/b");
    assert_eq!(changed.name, "Ops");
    assert_eq!(changed.kind, ChannelKind::Webhook);
    assert_eq!(changed.events.len(), 2);
    assert_eq!(
        (changed.min_severity, changed.enabled),
        (Severity::High, false)
    );
    assert_eq!(changed.sealed_secret, hook.sealed_secret);
    store.delete_webhook(hook.id).await.unwrap();
    assert!(store.list_webhooks().await.unwrap().is_empty());
    assert!(matches!(
        store.get_webhook(hook.id).await,
        Err(StoreError::NotFound { .. })
    ));
}
