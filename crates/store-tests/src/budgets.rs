//! Budgets and the evaluator's record of their groups through the trait.

use std::sync::Arc;

use langguard_store::*;

pub fn budget(name: &str) -> NewBudget {
    NewBudget {
        name: name.into(),
        amount_usd: 2_000.0,
        period: BudgetPeriod::Month,
        time_zone: "America/New_York".into(),
        scope: AlertScope {
            provider: Some("openai".into()),
            ..AlertScope::default()
        },
        group_by: Some(GroupBy::Model),
        thresholds: vec![50, 80, 100],
        enabled: true,
        created_by: Some("admin@example.com".into()),
    }
}

fn group(budget_id: BudgetId, group: &str, spent: f64, notified: u32) -> BudgetGroup {
    BudgetGroup {
        budget_id,
        group: group.into(),
        period_start_ms: 1_793_505_600_000,
        spent_usd: spent,
        forecast_usd: spent * 2.0,
        notified_percent: notified,
        evaluated_at_ms: 1_794_000_000_000,
    }
}

pub async fn budgets_keep_what_they_say_and_their_groups(store: Arc<dyn Store>) {
    let created = store.create_budget(budget("Teams")).await.expect("create");
    assert_eq!(created.name, "Teams");
    assert_eq!(created.period, BudgetPeriod::Month);
    assert_eq!(created.time_zone, "America/New_York");
    assert_eq!(created.scope.provider.as_deref(), Some("openai"));
    assert_eq!(created.group_by, Some(GroupBy::Model));
    assert_eq!(created.thresholds, vec![50, 80, 100]);
    assert_eq!(store.get_budget(created.id).await.expect("get"), created);
    assert!(matches!(
        store.create_budget(budget("Teams")).await,
        Err(StoreError::Conflict { .. })
    ));
    let other = store
        .create_budget(NewBudget {
            period: BudgetPeriod::Week,
            group_by: None,
            thresholds: vec![90],
            ..budget("Everything")
        })
        .await
        .expect("second");
    let names: Vec<String> = store
        .list_budgets()
        .await
        .expect("list")
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["Teams", "Everything"]);

    // A replacement keeps who made it and when.
    let replaced = store
        .replace_budget(
            created.id,
            NewBudget {
                amount_usd: 2_500.0,
                enabled: false,
                created_by: None,
                ..budget("Teams renamed")
            },
        )
        .await
        .expect("replace");
    assert_eq!(replaced.name, "Teams renamed");
    assert_eq!(replaced.amount_usd, 2_500.0);
    assert!(!replaced.enabled);
    assert_eq!(replaced.created_by.as_deref(), Some("admin@example.com"));
    assert_eq!(replaced.created_at_ms, created.created_at_ms);
    assert!(matches!(
        store
            .replace_budget(other.id, budget("Teams renamed"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.replace_budget(9_999, budget("Nobody")).await,
        Err(StoreError::NotFound { .. })
    ));

    // Groups and their notices are saved together; a row per (budget, group) is replaced.
    let hook = store
        .create_webhook(NewWebhook {
            url: "https://hooks.example.com/budgets".into(),
            secret: SealFor::new(|_| vec![1]),
            kind: ChannelKind::Webhook,
            name: String::new(),
            settings: "{}".into(),
            events: vec![WebhookEvent::BudgetThreshold],
            min_severity: Severity::Low,
            enabled: true,
        })
        .await
        .expect("webhook");
    let notice = || {
        OutgoingEvent::new(
            WebhookEvent::BudgetThreshold,
            serde_json::json!({"budgetId": created.id, "threshold": 50}),
            None,
        )
    };
    store
        .save_budget_groups(
            vec![
                group(created.id, "gpt-4o", 1_200.0, 50),
                group(created.id, "o3", 10.0, 0),
            ],
            vec![notice()],
        )
        .await
        .expect("save");
    store
        .save_budget_groups(
            vec![group(created.id, "gpt-4o", 1_700.0, 80)],
            vec![notice()],
        )
        .await
        .expect("save again");
    let mut groups = store.budget_groups().await.expect("groups");
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    assert_eq!(
        groups,
        vec![
            group(created.id, "gpt-4o", 1_700.0, 80),
            group(created.id, "o3", 10.0, 0)
        ]
    );
    let log = store.list_deliveries(hook.id, 10).await.expect("log");
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|d| d.event == WebhookEvent::BudgetThreshold));

    // Groups of a budget deleted meanwhile are skipped; deleting takes its groups along.
    store.delete_budget(created.id).await.expect("delete");
    store
        .save_budget_groups(vec![group(created.id, "gpt-4o", 1.0, 0)], vec![])
        .await
        .expect("save for a deleted budget");
    assert!(store.budget_groups().await.expect("groups").is_empty());
    assert!(matches!(
        store.get_budget(created.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_budget(created.id).await,
        Err(StoreError::NotFound { .. })
    ));
}
