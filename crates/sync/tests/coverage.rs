//! Coverage: each sync compares the hours it holds with Cloudflare's analytics (GraphQL), reads
//! short hours again however old, marks hours that stay short, and copes with analytics that
//! are sampled, lag, or may not be read at all.

mod common;

use common::*;
use langguard_cf_emulator::{EmulatorConfig, TokenSpec};
use langguard_store::prelude::*;
use langguard_store::{CoverageHour, NewWebhook, SealFor, Severity, SyncRunStatus, WebhookEvent};
use langguard_sync::coverage::MAX_REREADS;
use time::OffsetDateTime;

const HOUR_MS: i64 = 3_600_000;

fn hours_ago(hours: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() - time::Duration::hours(hours)
}

fn hour_of(at: OffsetDateTime) -> i64 {
    let ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    ms - ms.rem_euclid(HOUR_MS)
}

async fn coverage(h: &Harness) -> Vec<CoverageHour> {
    h.store
        .coverage_hours(h.integration_id, 0, i64::MAX)
        .await
        .expect("coverage")
}

async fn hour_row(h: &Harness, hour: i64) -> CoverageHour {
    coverage(h)
        .await
        .into_iter()
        .find(|row| row.gateway == "gw" && row.hour_ms == hour)
        .expect("a row for the hour")
}

#[tokio::test]
async fn a_log_later_than_the_trailing_window_is_found_by_its_hours_count() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 600, 41);
    assert_eq!(h.sync().await.status, SyncRunStatus::Succeeded);
    assert!(coverage(&h)
        .await
        .iter()
        .all(|row| row.cloudflare == row.stored && row.rereads == 0));
    // Visible only now, three hours after it happened: far outside the 30-minute window.
    let at = hours_ago(3);
    let late = h.emulator.emulator.append_logs(ACCOUNT, "gw", 1, at);
    let run = h.sync().await;
    assert_eq!(run.counts.items_ingested, 1, "{run:?}");
    assert!(h.stored_ids().await.contains(&late[0]));
    let row = hour_row(&h, hour_of(at)).await;
    assert_eq!(
        (row.cloudflare, row.stored, row.rereads),
        (row.stored, row.cloudflare, 1)
    );
    assert_eq!(row.degraded_at_ms, None);
}

#[tokio::test]
async fn requests_that_left_no_log_mark_their_hour_degraded_after_its_rereads() {
    let h = harness(&["gw"]).await;
    let hook = h
        .store
        .create_webhook(NewWebhook {
            url: "https://hooks.example.com/coverage".into(),
            secret: SealFor::new(|_| vec![1]),
            kind: langguard_store::ChannelKind::Webhook,
            name: String::new(),
            settings: "{}".into(),
            events: vec![WebhookEvent::CoverageDegraded],
            min_severity: Severity::Low,
            enabled: true,
        })
        .await
        .expect("webhook");
    h.seed("gw", 300, 42);
    let at = hours_ago(4);
    // Sent with `cf-aig-collect-log: false`: counted, never logged.
    h.emulator
        .emulator
        .record_unlogged_requests(ACCOUNT, "gw", 5, at);
    for _ in 1..MAX_REREADS {
        assert_eq!(h.sync().await.status, SyncRunStatus::Succeeded);
        let row = hour_row(&h, hour_of(at)).await;
        assert_eq!(row.degraded_at_ms, None, "{row:?}");
    }
    // The last re-read leaves it short: degraded.
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    let row = hour_row(&h, hour_of(at)).await;
    assert_eq!(row.cloudflare, row.stored + 5);
    assert_eq!(row.rereads, MAX_REREADS);
    assert!(row.degraded_at_ms.is_some());
    // Announced once, to the webhook subscribed to it.
    let announced = |h: &Harness| {
        let store = h.store.clone();
        async move {
            store
                .list_deliveries(hook.id, 10)
                .await
                .expect("deliveries")
        }
    };
    let deliveries = announced(&h).await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].event, WebhookEvent::CoverageDegraded);
    let body: serde_json::Value = serde_json::from_str(&deliveries[0].body).expect("json");
    assert_eq!(body["data"]["gateway"], "gw");
    assert_eq!(body["data"]["cloudflare"].as_i64(), Some(row.cloudflare));
    // Given up on: no more re-reads, just the window probe and the walk.
    let before = h.emulator.emulator.stats().list_logs_calls;
    h.sync().await;
    assert!(h.emulator.emulator.stats().list_logs_calls - before <= 2);
    assert_eq!(announced(&h).await.len(), 1);
}

#[tokio::test]
async fn sampled_and_lagging_counts_are_not_mistaken_for_gaps() {
    let config = EmulatorConfig {
        analytics_sampled_above: 1_000,
        analytics_sampling_error: 0.015,
        analytics_lag: std::time::Duration::from_secs(600),
        ..EmulatorConfig::default()
    };
    let h = harness_with(config, TOKEN, TokenSpec::user(&[ACCOUNT]), &["gw"]).await;
    h.emulator.emulator.seed_logs(
        ACCOUNT,
        "gw",
        langguard_cf_emulator::SeedSpec {
            count: 12_000,
            from: hours_ago(4),
            to: OffsetDateTime::now_utc(),
            seed: 43,
        },
    );
    assert_eq!(h.sync().await.status, SyncRunStatus::Succeeded);
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    let rows = coverage(&h).await;
    // Busy hours' counts are estimates: some differ from what is held, none is re-read.
    assert!(
        rows.iter().any(|row| row.cloudflare != row.stored),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .all(|row| row.rereads == 0 && row.degraded_at_ms.is_none()),
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_token_without_analytics_permission_still_imports_and_says_why_coverage_is_unknown() {
    let spec = TokenSpec {
        analytics_read: false,
        ..TokenSpec::user(&[ACCOUNT])
    };
    let h = harness_with(EmulatorConfig::default(), TOKEN, spec, &["gw"]).await;
    h.seed("gw", 200, 44);
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    h.assert_exact(&["gw"]).await;
    let integration = h.integration().await;
    assert!(integration.coverage_checked_at_ms.is_some());
    assert!(
        integration
            .coverage_error
            .as_deref()
            .is_some_and(|why| why.contains("Account Analytics: Read")),
        "{:?}",
        integration.coverage_error
    );
    assert!(coverage(&h).await.is_empty());
}

#[tokio::test]
async fn an_account_on_the_new_log_system_is_told_so_instead_of_connected_with_no_logs() {
    let h = harness(&["gw"]).await;
    h.emulator.emulator.set_log_system(
        ACCOUNT,
        langguard_cf_emulator::LogSystem::WorkersObservability,
    );
    h.seed("gw", 250, 45);
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!(run.counts.items_ingested, 0);
    let integration = h.integration().await;
    assert_eq!(
        integration.status,
        langguard_store::IntegrationStatus::Warning
    );
    let message = integration.status_message.unwrap_or_default();
    assert!(
        message.contains("new log system") && message.contains("Set up push"),
        "{message}"
    );
    assert!(message.contains("250 requests on gateway gw"), "{message}");
}
