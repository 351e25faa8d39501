//! The store's behaviour through its trait.

use std::sync::Arc;

use langguard_store::*;

use crate::integration;

pub(crate) fn log(id: &str, ms: i64, duration: i64, success: bool, status: i64) -> NewInteraction {
    NewInteraction {
        log_id: id.into(),
        created_at_ms: ms,
        provider: if (ms / 1_000) % 2 == 0 {
            "openai"
        } else {
            "anthropic"
        }
        .into(),
        model: "m".into(),
        path: Some("chat/completions".into()),
        status_code: Some(status),
        success,
        cached: duration < 10,
        duration_ms: duration,
        tokens_in: success.then_some(10),
        tokens_out: success.then_some(5),
        cost_usd: success.then_some(0.001),
        cost_source: success.then_some(CostSource::Gateway),
        metadata: Some(r#"{"team":"a"}"#.into()),
        requested_model: None,
        details: Default::default(),
    }
}

pub async fn duplicates_are_skipped_and_never_counted_twice(store: Arc<dyn Store>) {
    let i = integration(&*store, "cf").await;
    let batch: Vec<_> = (0..10)
        .map(|n| log(&format!("l{n}"), 1_000 + n, 100, true, 200))
        .collect();
    let first = store
        .ingest_batch(i.id, "gw", batch.clone(), Some(1_009))
        .await
        .expect("ingest");
    assert_eq!((first.inserted, first.duplicates), (10, 0));
    let traffic: i64 = first.traffic.iter().map(|t| t.requests).sum();
    assert_eq!(traffic, 10, "traffic counts what was stored");
    // The same logs again, plus one new one and one listed twice in the batch.
    let mut again = batch.clone();
    again.push(log("new", 2_000, 50, false, 429));
    again.push(log("new", 2_000, 50, false, 429));
    let second = store
        .ingest_batch(i.id, "gw", again.clone(), Some(2_000))
        .await
        .expect("ingest");
    assert_eq!((second.inserted, second.duplicates), (1, 11));
    assert_eq!(second.traffic.len(), 1);
    assert_eq!(
        (second.traffic[0].requests, second.traffic[0].rate_limited),
        (1, 1)
    );

    let m = store.metrics(&Scope::default()).await.expect("metrics");
    assert_eq!(m.requests, 11);
    assert_eq!(m.errors, 1);
    assert_eq!(m.rate_limited, 1);
    assert_eq!(m.tokens_in, 100);
    assert_eq!(m.unpriced_requests, 1);
    assert!((m.cost_usd - 0.01).abs() < 1e-12);
    assert_eq!(
        store
            .count_interactions(&Scope::default())
            .await
            .expect("count"),
        11
    );
    assert_eq!(
        store
            .get_integration(i.id)
            .await
            .expect("get")
            .interactions_synced,
        11
    );
}

pub async fn log_details_are_kept_and_refreshed_when_cloudflare_changes_them(
    store: Arc<dyn Store>,
) {
    let i = integration(&*store, "cf").await;
    let mut first = log("l1", 1_000, 100, true, 200);
    first.details = LogDetails {
        dlp_action: Some("FLAG".into()),
        user_agent: Some("curl/8.5.0".into()),
        ..LogDetails::default()
    };
    let plain = log("l2", 1_001, 100, true, 200);
    store
        .ingest_batch(i.id, "gw", vec![first.clone(), plain.clone()], Some(1_001))
        .await
        .expect("ingest");
    let all = TraceQuery {
        limit: 10,
        ..TraceQuery::default()
    };
    let stored = |rows: Vec<Interaction>, id: &str| -> LogDetails {
        rows.into_iter()
            .find(|r| r.log.log_id == id)
            .map(|r| r.log.details)
            .expect("stored")
    };
    let rows = store.traces(&all).await.expect("traces");
    assert_eq!(stored(rows.items.clone(), "l1"), first.details);
    assert!(stored(rows.items, "l2").is_empty());

    // Feedback set on Cloudflare later: a re-read refreshes the row without counting it again.
    let mut later = first.clone();
    later.details.feedback = Some(-1);
    let again = store
        .ingest_batch(i.id, "gw", vec![later.clone(), plain], None)
        .await
        .expect("ingest");
    assert_eq!((again.inserted, again.duplicates), (0, 2));
    let rows = store.traces(&all).await.expect("traces");
    assert_eq!(stored(rows.items, "l1").feedback, Some(-1));
    assert_eq!(
        store.metrics(&Scope::default()).await.expect("m").requests,
        2
    );

    // The refresh on its own: changed rows only, and never a row it doesn't hold.
    let mut score = later.details.clone();
    score.score = Some(0.5);
    let changed = store
        .refresh_details(
            i.id,
            "gw",
            vec![
                ("l1".into(), score.clone()),
                ("l1-unknown".into(), score.clone()),
            ],
        )
        .await
        .expect("refresh");
    assert_eq!(changed, 1);
    let unchanged = store
        .refresh_details(i.id, "gw", vec![("l1".into(), score.clone())])
        .await
        .expect("refresh");
    assert_eq!(unchanged, 0);
    let rows = store.traces(&all).await.expect("traces");
    assert_eq!(rows.items.len(), 2);
    assert_eq!(stored(rows.items, "l1"), score);

    // A re-read keeps the stored BYOK estimate (it goes with the stored cost, which a re-read
    // doesn't change), and a log whose fields are all gone now is stored without them.
    let mut byok = log("l3", 1_002, 100, true, 200);
    byok.details.cost_estimate_usd = Some(0.25);
    byok.details.feedback = Some(1);
    store
        .ingest_batch(i.id, "gw", vec![byok.clone()], None)
        .await
        .expect("ingest");
    let mut reread = byok.clone();
    reread.details.cost_estimate_usd = Some(9.0);
    reread.details.feedback = Some(-1);
    let mut cleared = later.clone();
    cleared.details = LogDetails::default();
    store
        .ingest_batch(i.id, "gw", vec![reread, cleared], None)
        .await
        .expect("ingest");
    let rows = store.traces(&all).await.expect("traces");
    let l3 = stored(rows.items.clone(), "l3");
    assert_eq!((l3.feedback, l3.cost_estimate_usd), (Some(-1), Some(0.25)));
    assert!(stored(rows.items, "l1").is_empty());
}

pub async fn the_cursor_moves_with_the_rows_and_never_backwards(store: Arc<dyn Store>) {
    let i = integration(&*store, "cf").await;
    store
        .upsert_gateways(i.id, &["gw".into(), "other".into()])
        .await
        .expect("gateways");
    store
        .ingest_batch(i.id, "gw", vec![log("a", 5_000, 1, true, 200)], Some(5_000))
        .await
        .expect("ingest");
    store
        .ingest_batch(i.id, "gw", vec![log("b", 4_000, 1, true, 200)], Some(4_000))
        .await
        .expect("ingest");
    store
        .ingest_batch(i.id, "gw", vec![], None)
        .await
        .expect("ingest");
    let gateways = store.list_gateways(i.id).await.expect("list");
    assert_eq!(gateways.len(), 2);
    assert_eq!(gateways[0].gateway_id, "gw");
    assert_eq!(gateways[0].cursor_ms, Some(5_000));
    assert_eq!(gateways[1].cursor_ms, None);
    // Re-discovering keeps the cursor.
    store
        .upsert_gateways(i.id, &["gw".into()])
        .await
        .expect("gateways");
    assert_eq!(
        store.list_gateways(i.id).await.expect("list")[0].cursor_ms,
        Some(5_000)
    );
    assert_eq!(
        store
            .count_gateway_interactions(i.id, "gw", 4_000, 5_000)
            .await
            .expect("count"),
        1
    );
    assert_eq!(
        store
            .count_gateway_interactions(i.id, "gw", 3_999, 5_000)
            .await
            .expect("count"),
        2
    );
}

pub async fn trailing_windows_are_set_per_integration_and_widen_per_gateway(store: Arc<dyn Store>) {
    let i = integration(&*store, "cf").await;
    assert_eq!(
        i.trailing_window_minutes,
        langguard_store::DEFAULT_TRAILING_WINDOW_MINUTES
    );
    let changed = store
        .update_integration(
            i.id,
            IntegrationPatch {
                trailing_window_minutes: Some(90),
                ..IntegrationPatch::default()
            },
        )
        .await
        .expect("patch");
    assert_eq!(changed.trailing_window_minutes, 90);
    assert_eq!(
        store
            .get_integration(i.id)
            .await
            .expect("read")
            .trailing_window_minutes,
        90
    );
    store
        .upsert_gateways(i.id, &["gw".into(), "other".into()])
        .await
        .expect("gateways");
    let windows = |gateways: Vec<GatewayState>| {
        gateways
            .into_iter()
            .map(|g| g.late_window_ms)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        windows(store.list_gateways(i.id).await.expect("list")),
        [None, None]
    );
    store
        .widen_late_window(i.id, "gw", 3_600_000)
        .await
        .expect("widen");
    // Never narrowed, and only the gateway named.
    store
        .widen_late_window(i.id, "gw", 60_000)
        .await
        .expect("widen");
    assert_eq!(
        windows(store.list_gateways(i.id).await.expect("list")),
        [Some(3_600_000), None]
    );
}

pub async fn rollup_metrics_match_the_raw_rows_exactly(store: Arc<dyn Store>) {
    let i = integration(&*store, "cf").await;
    let mut durations = Vec::new();
    let mut batch = Vec::new();
    for n in 0..3_000i64 {
        let d = (n * 7919) % 4_000 + 1;
        durations.push(d as f64);
        batch.push(log(
            &format!("id{n}"),
            n * 1_000,
            d,
            n % 13 != 0,
            if n % 13 == 0 { 500 } else { 200 },
        ));
    }
    // In uneven batches, so buckets are merged across transactions.
    for chunk in batch.chunks(777) {
        store
            .ingest_batch(i.id, "gw", chunk.to_vec(), None)
            .await
            .expect("ingest");
    }
    let m = store.metrics(&Scope::default()).await.expect("metrics");
    assert_eq!(m.requests, 3_000);
    assert_eq!(m.errors, (0..3_000).filter(|n| n % 13 == 0).count() as i64);
    durations.sort_by(f64::total_cmp);
    for (q, got) in [
        (0.5, m.latency_ms.p50),
        (0.9, m.latency_ms.p90),
        (0.99, m.latency_ms.p99),
    ] {
        let exact = durations[(q * (durations.len() - 1) as f64) as usize];
        let got = got.expect("percentile");
        assert!(
            (got - exact).abs() / exact <= 0.01,
            "p{q}: {got} vs {exact}"
        );
    }
    let by_provider = store
        .metrics_by(&Scope::default(), GroupBy::Provider)
        .await
        .expect("by");
    assert_eq!(by_provider.len(), 2);
    assert_eq!(
        by_provider.iter().map(|g| g.metrics.requests).sum::<i64>(),
        3_000
    );
    // A time range covers whole minutes.
    let ten_minutes = Scope {
        from_ms: Some(0),
        to_ms: Some(599_999),
        ..Scope::default()
    };
    assert_eq!(
        store.metrics(&ten_minutes).await.expect("metrics").requests,
        600
    );
}

pub async fn integrations_sync_runs_and_deletion(store: Arc<dyn Store>) {
    let i = integration(&*store, "cf").await;
    assert!(matches!(
        store
            .create_integration(NewIntegration {
                name: "cf".into(),
                account_id: "x".into(),
                api_token: SealFor::new(|_| vec![]),
                enabled: true,
                sync_interval_minutes: 15,
                lookback_days: None,
                trailing_window_minutes: langguard_store::DEFAULT_TRAILING_WINDOW_MINUTES,
            })
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let SyncClaim::Claimed(run) = store
        .claim_sync(i.id, SyncTrigger::Cli, "cli", 60_000)
        .await
        .expect("claim")
    else {
        panic!("a free integration is claimed");
    };
    let counts = SyncCounts {
        items_fetched: 5,
        items_ingested: 4,
        duplicates_skipped: 1,
        ..SyncCounts::default()
    };
    store
        .finish_sync_run(
            run.id,
            &SyncRunOutcome {
                status: SyncRunStatus::Succeeded,
                counts: counts.clone(),
                error: None,
                hint: None,
            },
        )
        .await
        .expect("finish");
    let got = store.get_sync_run(run.id).await.expect("get");
    assert_eq!(got.status, SyncRunStatus::Succeeded);
    assert_eq!(got.counts, counts);
    assert!(got.finished_at_ms.is_some());
    store
        .release_lease(&sync_lease_name(i.id), "cli")
        .await
        .expect("release");
    // A run no lease covers (its process lost the lease and stopped).
    let SyncClaim::Claimed(orphan) = store
        .claim_sync(i.id, SyncTrigger::Schedule, "gone", 60_000)
        .await
        .expect("claim")
    else {
        panic!("a released integration is claimed");
    };
    store
        .release_lease(&sync_lease_name(i.id), "gone")
        .await
        .expect("release");
    // Instance A claims the integration; B, pressing Sync Now at the same moment, is told A's
    // run is going. A's claim failed the orphan it found.
    let SyncClaim::Claimed(run_a) = store
        .claim_sync(i.id, SyncTrigger::Manual, "instance-a", 60_000)
        .await
        .expect("claim")
    else {
        panic!("a free integration is claimed");
    };
    assert_eq!(
        store.get_sync_run(orphan.id).await.expect("get").status,
        SyncRunStatus::Failed
    );
    assert_eq!(
        store
            .claim_sync(i.id, SyncTrigger::Manual, "instance-b", 60_000)
            .await
            .expect("claim"),
        SyncClaim::Busy {
            run_id: Some(run_a.id),
            holder: "instance-a".into()
        }
    );
    // A live lease keeps its run from being called abandoned; A renews, B can't take it.
    assert_eq!(
        store
            .fail_abandoned_sync_runs("process stopped")
            .await
            .expect("fail"),
        0
    );
    let lease = sync_lease_name(i.id);
    assert!(store
        .acquire_lease(&lease, "instance-a", 60_000)
        .await
        .expect("renew"));
    assert!(!store
        .acquire_lease(&lease, "instance-b", 60_000)
        .await
        .expect("take"));
    // A dies: it stops renewing, and once its lease expires B takes over, failing A's run.
    assert!(store
        .acquire_lease(&lease, "instance-a", -1)
        .await
        .expect("expire"));
    let SyncClaim::Claimed(run_b) = store
        .claim_sync(i.id, SyncTrigger::Schedule, "instance-b", 60_000)
        .await
        .expect("claim")
    else {
        panic!("an expired lease is taken over");
    };
    assert_ne!(run_a.id, run_b.id);
    let failed = store.get_sync_run(run_a.id).await.expect("get");
    assert_eq!(failed.status, SyncRunStatus::Failed);
    assert!(failed.error.is_some_and(|e| e.contains("stopped")));
    // B finishes and lets go: the next claim, by anyone, is free, and a late renewal doesn't
    // bring the lease back.
    assert!(store
        .renew_lease(&lease, "instance-b", 60_000)
        .await
        .expect("renew"));
    store
        .release_lease(&lease, "instance-b")
        .await
        .expect("release");
    assert!(!store
        .renew_lease(&lease, "instance-b", 60_000)
        .await
        .expect("renew"));
    store
        .release_lease(&lease, "instance-a")
        .await
        .expect("releasing a lease one doesn't hold is harmless");
    // A run left by a holder whose lease has gone is abandoned.
    assert_eq!(
        store
            .fail_abandoned_sync_runs("process stopped")
            .await
            .expect("fail"),
        1
    );
    assert_eq!(
        store.get_sync_run(run_b.id).await.expect("get").status,
        SyncRunStatus::Failed
    );
    // Worker leases: one holder at a time.
    assert!(store
        .acquire_lease("policy-worker", "a", 60_000)
        .await
        .expect("a"));
    assert!(!store
        .acquire_lease("policy-worker", "b", 60_000)
        .await
        .expect("b"));
    store
        .set_integration_status(i.id, IntegrationStatus::Connected, None)
        .await
        .expect("status");
    assert_eq!(
        store.get_integration(i.id).await.expect("get").status,
        IntegrationStatus::Connected
    );

    store
        .ingest_batch(i.id, "gw", vec![log("a", 1, 1, true, 200)], Some(1))
        .await
        .expect("ingest");
    store.delete_integration(i.id).await.expect("delete");
    assert_eq!(
        store
            .count_interactions(&Scope::default())
            .await
            .expect("count"),
        0
    );
    // A sync still running (on another instance) stores nothing for a deleted integration.
    assert!(matches!(
        store
            .ingest_batch(i.id, "gw", vec![log("late", 2, 1, true, 200)], Some(2))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store
            .count_interactions(&Scope::default())
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        store
            .metrics(&Scope::default())
            .await
            .expect("metrics")
            .requests,
        0
    );
    assert!(store.list_integrations().await.expect("list").is_empty());
    assert!(matches!(
        store.get_integration(i.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn hourly_and_minute_rollups_combine_to_the_exact_figures(store: Arc<dyn Store>) {
    let i = integration(&*store, "cf").await;
    // One log every 30 s for 10 hours, from 00:00 of day 1 (in ms since the epoch).
    let day = 86_400_000i64;
    let batch: Vec<_> = (0..1_200)
        .map(|n| {
            log(
                &format!("h{n}"),
                day + n * 30_000,
                10 + n % 500,
                n % 7 != 0,
                200,
            )
        })
        .collect();
    for chunk in batch.chunks(333) {
        store
            .ingest_batch(i.id, "gw", chunk.to_vec(), None)
            .await
            .expect("ingest");
    }
    let minute = 60_000;
    for (from, to) in [
        (None, None),
        (Some(day), Some(day + 10 * 3_600_000)),
        (Some(day + 17 * minute), Some(day + 343 * minute)),
        (Some(day + 61 * minute), Some(day + 119 * minute)),
        (Some(day + 59 * minute), Some(day + 61 * minute)),
        (None, Some(day + 125 * minute)),
        (Some(day + 125 * minute), None),
    ] {
        let scope = Scope {
            from_ms: from,
            to_ms: to,
            ..Scope::default()
        };
        let m = store.metrics(&scope).await.expect("metrics");
        let exact = store.count_interactions(&scope).await.expect("count");
        assert_eq!(m.requests as u64, exact, "range {from:?}..{to:?}");
        let series = store
            .metrics_series(&scope, Bucket::Hour, None)
            .await
            .expect("series");
        let summed: i64 = series
            .iter()
            .flat_map(|s| &s.points)
            .map(|p| p.metrics.requests)
            .sum();
        assert_eq!(summed as u64, exact, "hourly series over {from:?}..{to:?}");
        let by_minute = store
            .metrics_series(&scope, Bucket::Minute, None)
            .await
            .expect("series");
        let summed: i64 = by_minute
            .iter()
            .flat_map(|s| &s.points)
            .map(|p| p.metrics.requests)
            .sum();
        assert_eq!(
            summed as u64, exact,
            "per-minute series over {from:?}..{to:?}"
        );
    }
    // Percentiles from hour sketches stay within the bound too.
    let mut durations: Vec<f64> = batch.iter().map(|l| l.duration_ms as f64).collect();
    durations.sort_by(f64::total_cmp);
    let m = store.metrics(&Scope::default()).await.expect("metrics");
    let exact = durations[(0.95 * (durations.len() - 1) as f64) as usize];
    let p95 = m.latency_ms.p95.expect("p95");
    assert!((p95 - exact).abs() <= exact * 0.01, "{p95} vs {exact}");
    store.delete_integration(i.id).await.expect("delete");
    assert_eq!(
        store
            .metrics(&Scope::default())
            .await
            .expect("metrics")
            .requests,
        0
    );
}

pub async fn bodies_are_kept_for_their_retention(store: Arc<dyn Store>) {
    let i = integration(&*store, "cf").await;
    store
        .ingest_batch(i.id, "gw", vec![log("a", 1_000, 5, true, 200)], None)
        .await
        .expect("ingest");
    store
        .update_integration(
            i.id,
            IntegrationPatch {
                bodies: Some(BodySettings {
                    mode: BodyMode::All,
                    sample_percent: 10,
                    retention_days: 2,
                }),
                ..IntegrationPatch::default()
            },
        )
        .await
        .expect("settings");
    let id = store.interactions_after(0, 10).await.expect("rows")[0].id;
    let bodies = Bodies {
        request: Some("{\"q\":1}".into()),
        response: None,
    };
    store
        .store_bodies(vec![(id, i.id, bodies.clone())])
        .await
        .expect("store");
    assert_eq!(store.bodies(vec![id]).await.expect("read")[&id], bodies);
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1_000;
    assert_eq!(
        store.prune_bodies(now + 86_400_000).await.expect("prune"),
        0
    );
    assert_eq!(
        store
            .prune_bodies(now + 3 * 86_400_000)
            .await
            .expect("prune"),
        1
    );
    assert!(store.bodies(vec![id]).await.expect("read").is_empty());
}

pub async fn retention_deletes_old_rows_in_batches_and_keeps_the_rollups(store: Arc<dyn Store>) {
    let i = integration(&*store, "cf").await;
    const DAY: i64 = 86_400_000;
    let old: Vec<_> = (0..5)
        .map(|n| log(&format!("old-{n}"), 10 * DAY + n * 1_000, 5, true, 200))
        .collect();
    let recent: Vec<_> = (0..3)
        .map(|n| log(&format!("new-{n}"), 40 * DAY + n * 1_000, 5, true, 200))
        .collect();
    store
        .ingest_batch(i.id, "gw", [old, recent].concat(), None)
        .await
        .expect("ingest");
    let rows = store.interactions_after(0, 100).await.expect("rows");
    let oldest = rows
        .iter()
        .find(|r| r.log.log_id == "old-0")
        .expect("old")
        .id;
    let policy = store
        .create_policy(NewPolicy {
            name: "p".into(),
            display_name: "P".into(),
            description: String::new(),
            category: PolicyCategory::Audit,
            severity: Severity::Low,
            mode: PolicyMode::Enforce,
            config: "{}".into(),
            rego: "package langguard.p".into(),
            builtin_id: None,
        })
        .await
        .expect("policy");
    store
        .record_evaluations(
            vec![NewViolation {
                policy_id: policy.id,
                interaction_id: oldest,
                severity: Severity::Low,
                kind: "k".into(),
                message: "m".into(),
                evidence: "{}".into(),
            }],
            None,
        )
        .await
        .expect("violation");
    store
        .store_bodies(vec![(oldest, i.id, Bodies::default())])
        .await
        .expect("body");
    let before = store.metrics(&Scope::default()).await.expect("metrics");

    let cutoff = 30 * DAY;
    let mut batches = Vec::new();
    loop {
        let n = store
            .delete_interactions_before(cutoff, 2)
            .await
            .expect("delete");
        batches.push(n);
        if n < 2 {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1], "the oldest first, two at a time");
    let left: Vec<String> = store
        .interactions_after(0, 100)
        .await
        .expect("rows")
        .into_iter()
        .map(|r| r.log.log_id)
        .collect();
    assert_eq!(left, ["new-0", "new-1", "new-2"]);
    let violations = store
        .violations(&ViolationQuery {
            limit: 10,
            ..ViolationQuery::default()
        })
        .await
        .expect("violations");
    assert_eq!(
        violations.total, 0,
        "violations of deleted rows go with them"
    );
    assert!(store.bodies(vec![oldest]).await.expect("bodies").is_empty());
    assert_eq!(
        store.metrics(&Scope::default()).await.expect("metrics"),
        before,
        "rollups keep the history"
    );
}

pub async fn sign_in_attempts_are_counted_per_key_and_forgiven(store: Arc<dyn Store>) {
    let keys = |a: &str, b: &str| [a.to_owned(), b.to_owned()];
    let (max, window) = (3, 60_000);
    for t in 0..3 {
        assert_eq!(
            store
                .count_login_attempt(&keys("account:a", "address:ip"), max, window, 1_000 + t)
                .await
                .expect("count"),
            Ok(())
        );
    }
    // The account is spent, and so is the address for another account.
    assert_eq!(
        store
            .count_login_attempt(&keys("account:a", "address:other"), max, window, 2_000)
            .await
            .expect("count"),
        Err(59_000)
    );
    assert!(store
        .count_login_attempt(&keys("account:b", "address:ip"), max, window, 2_000)
        .await
        .expect("count")
        .is_err());
    assert_eq!(
        store
            .count_login_attempt(&keys("account:b", "address:new"), max, window, 2_000)
            .await
            .expect("count"),
        Ok(())
    );
    // A window later, or after a successful sign-in, the count starts over.
    assert_eq!(
        store
            .count_login_attempt(&keys("account:a", "address:ip"), max, window, 61_000)
            .await
            .expect("count"),
        Ok(())
    );
    store
        .clear_login_attempts(&keys("account:b", "address:new"))
        .await
        .expect("clear");
    for t in 0..3 {
        assert!(store
            .count_login_attempt(&keys("account:b", "address:new"), max, window, 62_000 + t)
            .await
            .expect("count")
            .is_ok());
    }
}

pub async fn re_sealing_never_overwrites_a_credential_changed_meanwhile(store: Arc<dyn Store>) {
    let a = crate::integration(store.as_ref(), "a").await;
    let b = crate::integration(store.as_ref(), "b").await;
    // b's token changes (a PATCH on another instance) after the re-sealer read it.
    store
        .update_integration(
            b.id,
            IntegrationPatch {
                sealed_api_token: Some(vec![9, 9]),
                ..IntegrationPatch::default()
            },
        )
        .await
        .expect("patch");
    let swap = |i: &Integration, new: Vec<u8>| SealedSwap {
        id: i.id,
        old: i.sealed_api_token.clone(),
        new,
    };
    let err = store
        .replace_sealed_tokens(SealedSwaps {
            integration_tokens: vec![swap(&a, vec![7]), swap(&b, vec![8])],
            ..SealedSwaps::default()
        })
        .await
        .expect_err("b changed");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    // All or none: a kept its value too, and b its new one.
    let a_now = store.get_integration(a.id).await.expect("a");
    let b_now = store.get_integration(b.id).await.expect("b");
    assert_eq!(a_now.sealed_api_token, a.sealed_api_token);
    assert_eq!(b_now.sealed_api_token, vec![9, 9]);
    // With the values it holds now, the swap is made.
    store
        .replace_sealed_tokens(SealedSwaps {
            integration_tokens: vec![swap(&a_now, vec![7]), swap(&b_now, vec![8])],
            ..SealedSwaps::default()
        })
        .await
        .expect("swapped");
    assert_eq!(
        store
            .get_integration(b.id)
            .await
            .expect("b")
            .sealed_api_token,
        vec![8]
    );
    // A Logpush key pair is given once: a second caller keeps the first pair.
    let with_key = store
        .set_push_key(a.id, "PUBLIC-1", SealFor::new(|_| vec![1]))
        .await
        .expect("key");
    assert_eq!(with_key.push_public_key.as_deref(), Some("PUBLIC-1"));
    let again = store
        .set_push_key(a.id, "PUBLIC-2", SealFor::new(|_| vec![2]))
        .await
        .expect("key");
    assert_eq!(again.push_public_key.as_deref(), Some("PUBLIC-1"));
    assert_eq!(again.sealed_push_private_key, Some(vec![1]));
    store
        .replace_sealed_tokens(SealedSwaps {
            push_keys: vec![SealedSwap {
                id: a.id,
                old: vec![1],
                new: vec![3],
            }],
            ..SealedSwaps::default()
        })
        .await
        .expect("re-sealed");
    assert_eq!(
        store
            .get_integration(a.id)
            .await
            .expect("a")
            .sealed_push_private_key,
        Some(vec![3])
    );
}
