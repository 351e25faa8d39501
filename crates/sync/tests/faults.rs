//! The sync engine against the Cloudflare emulator under every fault it can inject: whatever
//! happens, each log ends up stored exactly once, and the number of list calls stays within
//! `ceil(n/50)` plus a small constant per gateway.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use langguard_cf_emulator::{EmulatorConfig, Faults, SeedSpec, TokenSpec};
use langguard_cloudflare::{ClientConfig, RateLimitPolicy, RetryPolicy};
use langguard_secrets::Sealer;
use langguard_store::prelude::*;
use langguard_store::{sync_lease_name, IntegrationStatus, SyncRunStatus, SyncTrigger};
use langguard_sync::{SyncEngine, SyncError, SyncSettings};
use time::OffsetDateTime;

#[tokio::test]
async fn clean_import_is_exact_and_list_calls_are_ceil_n_over_50_plus_a_constant() {
    let h = harness(&["prod-chat", "support"]).await;
    h.seed("prod-chat", 1_234, 1);
    h.seed("support", 50, 2);
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!(run.counts.items_ingested, 1_284);
    assert_eq!(run.counts.gateways, 2);
    h.assert_exact(&["prod-chat", "support"]).await;
    // First sync: ceil(n/50) pages, plus one empty page when n is a multiple of 50.
    assert!(
        h.list_calls() <= 1_234u64.div_ceil(50) + 1 + 50u64.div_ceil(50) + 1,
        "{} calls",
        h.list_calls()
    );

    // Nothing new: one probe of the trailing window and one page per gateway.
    h.emulator.emulator.reset_stats();
    let run = h.sync().await;
    assert_eq!(run.counts.items_ingested, 0);
    assert!(h.list_calls() <= 2 * 2, "{} calls", h.list_calls());

    // 120 new logs on one gateway.
    h.emulator.emulator.reset_stats();
    h.emulator.emulator.append_logs(
        ACCOUNT,
        "prod-chat",
        120,
        OffsetDateTime::now_utc() - time::Duration::seconds(5),
    );
    let run = h.sync().await;
    assert_eq!(run.counts.items_ingested, 120);
    // They share one millisecond: it is read as its own range (its first page again).
    assert!(
        h.list_calls() <= 120u64.div_ceil(50) + 1 + 2 + 2,
        "{} calls",
        h.list_calls()
    );
    h.assert_exact(&["prod-chat", "support"]).await;
    let integration = h.integration().await;
    assert_eq!(integration.status, IntegrationStatus::Connected);
    assert_eq!(integration.interactions_synced, 1_404);
}

#[tokio::test]
async fn a_429_storm_is_waited_out_with_retry_after() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 400, 3);
    h.emulator.emulator.set_faults(Faults {
        rate_limit_next: 3,
        retry_after_secs: 1,
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert!(run.counts.rate_limit_waits >= 1, "{run:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    h.assert_exact(&["gw"]).await;
    let integration = h.integration().await;
    assert_eq!(integration.status, IntegrationStatus::Warning);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 700, 4);
    h.emulator.emulator.set_faults(Faults {
        server_error_next: 5,
        server_error_rate: 0.15,
        ..Faults::default()
    });
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert!(run.counts.retries >= 5, "{run:?}");
    h.assert_exact(&["gw"]).await;
}

#[tokio::test]
async fn connections_cut_mid_body_are_retried() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 300, 5);
    h.emulator.emulator.set_faults(Faults {
        cut_connection_next: 3,
        ..Faults::default()
    });
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert!(run.counts.retries >= 3, "{run:?}");
    h.assert_exact(&["gw"]).await;
}

#[tokio::test]
async fn slow_responses_time_out_then_recover_without_losing_anything() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 120, 6);
    let first = h.sync().await;
    assert_eq!(first.status, SyncRunStatus::Succeeded);
    h.emulator.emulator.append_logs(
        ACCOUNT,
        "gw",
        60,
        OffsetDateTime::now_utc() - time::Duration::seconds(2),
    );
    // Slower than the client's timeout on every call: the run fails and says why.
    let slow_engine = SyncEngine::new(
        h.store.clone(),
        Sealer::from_key(&[3; 32]),
        ClientConfig {
            timeout: Duration::from_millis(100),
            retry: RetryPolicy {
                max_attempts: 2,
                ..client_config(String::new()).retry
            },
            ..client_config(h.emulator.base_url())
        },
        SyncSettings::default(),
    );
    h.emulator.emulator.set_faults(Faults {
        latency: Duration::from_millis(300),
        ..Faults::default()
    });
    let failed = slow_engine
        .sync(h.integration_id, SyncTrigger::Manual, None)
        .await
        .expect("ran");
    assert_eq!(failed.status, SyncRunStatus::Failed);
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("timed out"),
        "{failed:?}"
    );
    assert!(failed.hint.is_some());
    assert_eq!(
        h.stored("gw").await,
        120,
        "nothing lost, nothing half-written"
    );
    // Slow but within the timeout: fine.
    h.emulator.emulator.set_faults(Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    });
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    h.assert_exact(&["gw"]).await;
}

#[tokio::test]
async fn a_revoked_token_fails_with_a_hint_and_keeps_what_was_stored() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 100, 7);
    assert_eq!(h.sync().await.status, SyncRunStatus::Succeeded);
    h.emulator.emulator.revoke_token(TOKEN);
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 10, OffsetDateTime::now_utc());
    let calls_before = h.emulator.emulator.stats().requests;
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Failed);
    assert!(
        run.hint.as_deref().unwrap_or_default().contains("revoked"),
        "{run:?}"
    );
    // Auth errors are not retried.
    assert_eq!(h.emulator.emulator.stats().requests - calls_before, 1);
    assert_eq!(h.stored("gw").await, 100);
    let integration = h.integration().await;
    assert_eq!(integration.status, IntegrationStatus::Failed);
    assert!(
        !format!("{run:?}{integration:?}").contains(TOKEN),
        "the token leaked"
    );
}

#[tokio::test]
async fn a_token_without_ai_gateway_permission_fails_with_a_hint() {
    let spec = TokenSpec {
        ai_gateway_read: false,
        ..TokenSpec::user(&[ACCOUNT])
    };
    let h = harness_with(EmulatorConfig::default(), "no-perm", spec, &["gw"]).await;
    h.seed("gw", 10, 8);
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Failed);
    assert!(
        run.hint
            .as_deref()
            .unwrap_or_default()
            .contains("AI Gateway read permissions"),
        "{run:?}"
    );
    assert_eq!(h.stored("gw").await, 0);
}

#[tokio::test]
async fn logs_that_become_visible_late_are_picked_up_from_the_trailing_window() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 200, 9);
    let now = OffsetDateTime::now_utc();
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 5, now - time::Duration::seconds(10));
    assert_eq!(h.sync().await.counts.items_ingested, 205);
    // Logs stamped minutes before the cursor, visible only now.
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 30, now - time::Duration::minutes(3));
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 4, now - time::Duration::seconds(10));
    let run = h.sync().await;
    assert_eq!(run.counts.items_ingested, 34, "{run:?}");
    h.assert_exact(&["gw"]).await;
}

#[tokio::test]
async fn count_probes_keep_to_the_documented_per_page_minimum() {
    // A Logs API that enforces SPEC-2024's `per_page` minimum of 5: the reconciliation's count
    // probes of every sync after the first must still be accepted.
    let config = EmulatorConfig {
        logs_min_per_page: 5,
        ..EmulatorConfig::default()
    };
    let h = harness_with(config, TOKEN, TokenSpec::user(&[ACCOUNT]), &["gw"]).await;
    h.seed("gw", 300, 21);
    assert_eq!(h.sync().await.status, SyncRunStatus::Succeeded);
    let now = OffsetDateTime::now_utc();
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 12, now - time::Duration::minutes(3));
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!(run.counts.items_ingested, 12, "{run:?}");
    h.assert_exact(&["gw"]).await;
}

#[tokio::test]
async fn a_logs_api_keeping_sub_millisecond_time_never_sticks_on_a_boundary_row() {
    // `created_at gt <cursor>` also lists the rows shown at the cursor's millisecond: every
    // sync after the first meets them, and each must go on, storing nothing twice.
    let config = EmulatorConfig {
        sub_millisecond_time: true,
        ..EmulatorConfig::default()
    };
    let h = harness_with(config, TOKEN, TokenSpec::user(&[ACCOUNT]), &["gw"]).await;
    h.seed("gw", 250, 22);
    let first = h.sync().await;
    assert_eq!(first.status, SyncRunStatus::Succeeded, "{first:?}");
    for round in 0..3 {
        let now = OffsetDateTime::now_utc();
        h.emulator
            .emulator
            .append_logs(ACCOUNT, "gw", 4, now - time::Duration::seconds(5));
        let run = h.sync().await;
        assert_eq!(
            run.status,
            SyncRunStatus::Succeeded,
            "round {round}: {run:?}"
        );
        assert_eq!(run.counts.items_ingested, 4, "round {round}: {run:?}");
        h.assert_exact(&["gw"]).await;
    }
}

#[tokio::test]
async fn many_logs_in_one_millisecond_across_pages() {
    let h = harness(&["gw"]).await;
    let at = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    h.emulator.emulator.append_logs(ACCOUNT, "gw", 173, at);
    assert_eq!(h.sync().await.counts.items_ingested, 173);
    h.emulator.emulator.append_logs(ACCOUNT, "gw", 77, at);
    h.sync().await;
    h.assert_exact(&["gw"]).await;
    assert_eq!(h.stored("gw").await, 250);
}

#[tokio::test]
async fn logs_appended_during_a_sync_and_delayed_visibility() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 3_000, 10);
    h.emulator.emulator.set_faults(Faults {
        latency: Duration::from_millis(2),
        visibility_delay: Duration::from_millis(700),
        ..Faults::default()
    });
    let live = h.emulator.emulator.start_live_traffic(ACCOUNT, "gw", 300.0);
    for _ in 0..3 {
        assert_eq!(h.sync().await.status, SyncRunStatus::Succeeded);
    }
    assert!(live.appended() > 0);
    live.stop();
    // Let the last live logs become visible, then one more sync catches up exactly.
    tokio::time::sleep(Duration::from_millis(900)).await;
    h.sync().await;
    h.assert_exact(&["gw"]).await;
}

#[tokio::test]
async fn only_one_sync_per_integration_at_a_time() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 500, 11);
    h.emulator.emulator.set_faults(Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    });
    let (a, b) = tokio::join!(
        h.engine.sync(h.integration_id, SyncTrigger::Manual, None),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            h.engine
                .sync(h.integration_id, SyncTrigger::Manual, None)
                .await
        }
    );
    let a = a.expect("first sync runs");
    assert!(matches!(b, Err(SyncError::AlreadyRunning { run_id }) if run_id == Some(a.id)));
    h.assert_exact(&["gw"]).await;
}

#[tokio::test]
async fn the_client_side_limiter_keeps_us_under_cloudflares_limit() {
    // Cloudflare's quota squeezed to 30 calls per 2 s; the client budgets 25 per 2 s.
    let config = EmulatorConfig {
        rate_limit_quota: 30,
        rate_limit_window: Duration::from_secs(2),
        ..EmulatorConfig::default()
    };
    let h = harness_with(config, "limited", TokenSpec::user(&[ACCOUNT]), &["gw"]).await;
    h.seed("gw", 2_000, 12);
    let engine = SyncEngine::new(
        h.store.clone(),
        Sealer::from_key(&[3; 32]),
        ClientConfig {
            rate_limit: RateLimitPolicy {
                quota: 25,
                window: Duration::from_secs(2),
            },
            ..client_config(h.emulator.base_url())
        },
        SyncSettings::default(),
    );
    let run = engine
        .sync(h.integration_id, SyncTrigger::Manual, None)
        .await
        .expect("ran");
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!(
        h.emulator.emulator.stats().rate_limited,
        0,
        "a self-inflicted 429"
    );
    h.assert_exact(&["gw"]).await;
}

#[tokio::test]
async fn a_full_gateway_evicting_its_oldest_logs_mid_sync_costs_no_surviving_log() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 4_000, 13);
    h.emulator.emulator.set_faults(Faults {
        latency: Duration::from_millis(3),
        ..Faults::default()
    });
    let evicted = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let evictor = {
        let emulator = h.emulator.emulator.clone();
        let evicted = evicted.clone();
        tokio::spawn(async move {
            // DELETE_OLDEST at work while the first sync pages through the history.
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let gone = emulator.evict_oldest(ACCOUNT, "gw", 25);
                evicted.lock().expect("lock").extend(gone);
            }
        })
    };
    let run = h.sync().await;
    evictor.await.expect("evictor");
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    let evicted = evicted.lock().expect("lock").len();
    assert!(evicted > 0);
    // Every log still on Cloudflare is stored; evicted ones may or may not have been read.
    let mut missing = 0;
    let stored_ids = h.stored_ids().await;
    for id in h.emulator.emulator.log_ids(ACCOUNT, "gw") {
        missing += usize::from(!stored_ids.contains(&id));
    }
    assert_eq!(missing, 0, "logs still on Cloudflare were skipped");
}

#[tokio::test]
async fn one_late_log_in_a_busy_window_is_found_with_a_few_probes() {
    let h = harness(&["gw"]).await;
    let now = OffsetDateTime::now_utc();
    h.emulator.emulator.seed_logs(
        ACCOUNT,
        "gw",
        SeedSpec {
            count: 5_000,
            from: now - time::Duration::minutes(9),
            to: now - time::Duration::seconds(2),
            seed: 14,
        },
    );
    assert_eq!(h.sync().await.counts.items_ingested, 5_000);
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 1, now - time::Duration::minutes(5));
    h.emulator.emulator.reset_stats();
    let run = h.sync().await;
    assert_eq!(run.counts.items_ingested, 1, "{run:?}");
    // Re-reading the whole window would take 100 calls; bisection takes a few dozen at most.
    assert!(h.list_calls() <= 40, "{} list calls", h.list_calls());
    h.assert_exact(&["gw"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_whose_lease_is_taken_over_stops_and_leaves_the_status_alone() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 3_000, 21);
    h.emulator.emulator.set_faults(Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    });
    // Renewed every 100 ms: a takeover is noticed quickly.
    let engine = SyncEngine::new(
        h.store.clone(),
        Sealer::from_key(&[3; 32]),
        client_config(h.emulator.base_url()),
        SyncSettings {
            lease_ttl: Duration::from_millis(300),
            ..SyncSettings::default()
        },
    );
    let lease = sync_lease_name(h.integration_id);
    let (run, ()) = tokio::join!(
        engine.sync(h.integration_id, SyncTrigger::Manual, None),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            // As if this process had stalled past its lease and another instance took over.
            assert!(h
                .store
                .acquire_lease(&lease, engine.holder(), -1)
                .await
                .expect("expire"));
            assert!(h
                .store
                .acquire_lease(&lease, "another-instance", 60_000)
                .await
                .expect("take over"));
        }
    );
    let run = run.expect("the run is recorded");
    assert_eq!(run.status, SyncRunStatus::Failed);
    assert!(
        run.error
            .as_deref()
            .is_some_and(|e| e.contains("took over")),
        "{run:?}"
    );
    assert!(run.counts.items_fetched < 3_000, "it stopped early");
    // The new holder's lease is untouched, and the status is left for it to report.
    assert!(!h
        .store
        .acquire_lease(&lease, "a third instance", 60_000)
        .await
        .expect("lease"));
    let integration = h.integration().await;
    assert_ne!(integration.status, IntegrationStatus::Failed);
}

/// Once a push takes a gateway over, the pull keeps what it had (late-visible logs below the
/// handover included) and stops at the handover; a gateway that pushed before it was ever
/// pulled is not pulled at all. With the push counting from the handover on, nothing is
/// counted twice and nothing is missed.
#[tokio::test]
async fn a_pushed_gateway_is_pulled_only_up_to_its_handover() {
    use langguard_store::{IngestSource, PushedInteraction};
    let h = harness(&["legacy", "fresh"]).await;
    let pushed = |key: &str, at: i64| PushedInteraction {
        interaction: langguard_sync::normalize(
            serde_json::from_value(serde_json::json!({
                "id": IngestSource::Logpush.log_id(key),
                "created_at": langguard_clock::format_ms(at),
                "provider": "openai", "model": "gpt-4o-mini", "success": true,
                "status_code": 200, "duration": 10, "tokens_in": 1, "tokens_out": 1
            }))
            .expect("log"),
            h.engine.pricer(),
        )
        .expect("normalises"),
        bodies: None,
    };
    // `fresh` pushes before any sync: it never counts the Logs API.
    h.store
        .ingest_pushed(
            h.integration_id,
            "fresh",
            IngestSource::Logpush,
            vec![pushed("first", langguard_clock::now_ms() - 60_000)],
        )
        .await
        .expect("push");
    h.seed("legacy", 120, 7);
    h.seed("fresh", 30, 8);
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!(h.stored("legacy").await, 120);
    assert_eq!(
        h.stored("fresh").await,
        1,
        "a pushed gateway is never pulled"
    );
    let cursor = h
        .store
        .list_gateways(h.integration_id)
        .await
        .expect("gateways")
        .into_iter()
        .find(|g| g.gateway_id == "legacy")
        .and_then(|g| g.cursor_ms)
        .expect("a cursor");

    // The first push to `legacy` hands it over right after the cursor.
    let outcome = h
        .store
        .ingest_pushed(
            h.integration_id,
            "legacy",
            IngestSource::Logpush,
            vec![pushed("old", cursor), pushed("new", cursor + 1_000)],
        )
        .await
        .expect("push");
    assert_eq!((outcome.inserted, outcome.other_source), (1, 1));

    // Cloudflare's Logs API still gets logs after the handover: they are the push's now.
    h.emulator.emulator.append_logs(
        ACCOUNT,
        "legacy",
        40,
        OffsetDateTime::now_utc() - time::Duration::seconds(5),
    );
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!(
        run.counts.items_ingested, 0,
        "nothing pulled past the handover"
    );
    assert_eq!(h.stored("legacy").await, 120 + 1);
    assert_eq!(h.stored("fresh").await, 1);
}
