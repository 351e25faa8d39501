//! Pushed logs: stored once with their bodies, counted from one source per gateway, and the
//! handover from the Logs API leaving neither a gap nor a double count.

use std::sync::Arc;

use langguard_store::*;

use crate::integration;
use crate::store::log;

fn pushed(source: IngestSource, key: &str, ms: i64, body: Option<&str>) -> PushedInteraction {
    let mut interaction = log(&source.log_id(key), ms, 120, true, 200);
    interaction.requested_model = Some("cloudflare/auto".into());
    PushedInteraction {
        interaction,
        bodies: body.map(|b| Bodies {
            request: Some(b.into()),
            response: Some(format!("re: {b}")),
        }),
    }
}

pub async fn pushed_logs_are_stored_once_with_their_bodies(store: Arc<dyn Store>) {
    let i = integration(&*store, "cf").await;
    let batch = vec![
        pushed(IngestSource::Otlp, "t1:s1", 1_000, Some("hello")),
        pushed(IngestSource::Otlp, "t1:s2", 2_000, None),
        // Listed twice in one batch: stored once.
        pushed(IngestSource::Otlp, "t1:s1", 1_000, Some("hello")),
    ];
    let first = store
        .ingest_pushed(i.id, "app", IngestSource::Otlp, batch.clone())
        .await
        .expect("push");
    assert_eq!(
        (first.inserted, first.duplicates, first.other_source),
        (2, 1, 0)
    );
    // The whole batch again (an exporter's retry): nothing new, nothing counted twice.
    let again = store
        .ingest_pushed(i.id, "app", IngestSource::Otlp, batch)
        .await
        .expect("push");
    assert_eq!((again.inserted, again.duplicates), (0, 3));

    let rows = store.interactions_after(0, 10).await.expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].log.log_id, "otlp:t1:s1");
    assert_eq!(
        rows[0].log.requested_model.as_deref(),
        Some("cloudflare/auto")
    );
    assert_eq!(
        IngestSource::of_log_id(&rows[0].log.log_id),
        IngestSource::Otlp
    );
    let bodies = store
        .bodies(rows.iter().map(|r| r.id).collect())
        .await
        .expect("bodies");
    assert_eq!(bodies.len(), 1, "only the row that carried bodies has them");
    assert_eq!(bodies[&rows[0].id].request.as_deref(), Some("hello"));
    assert_eq!(bodies[&rows[0].id].response.as_deref(), Some("re: hello"));

    let metrics = store.metrics(&Scope::default()).await.expect("metrics");
    assert_eq!(metrics.requests, 2);
    let gateways = store.list_gateways(i.id).await.expect("gateways");
    assert_eq!(gateways.len(), 1, "a gateway is created on its first push");
    assert_eq!(gateways[0].source, IngestSource::Otlp);
    assert_eq!(gateways[0].source_since_ms, None);
    assert_eq!(
        store
            .get_integration(i.id)
            .await
            .unwrap()
            .interactions_synced,
        2
    );
}

pub async fn a_gateway_counts_one_source_and_hands_over_without_gap_or_overlap(
    store: Arc<dyn Store>,
) {
    let i = integration(&*store, "cf").await;
    // Pulled up to 5,000 (the cursor).
    store
        .ingest_batch(
            i.id,
            "gw",
            vec![
                log("p1", 4_000, 10, true, 200),
                log("p2", 5_000, 10, true, 200),
            ],
            Some(5_000),
        )
        .await
        .expect("pull");
    // The first push takes over right after the cursor: the same requests pushed again up to
    // 5,000 are pull's, everything after is the push's.
    let outcome = store
        .ingest_pushed(
            i.id,
            "gw",
            IngestSource::Logpush,
            vec![
                pushed(IngestSource::Logpush, "a", 4_000, None),
                pushed(IngestSource::Logpush, "b", 5_000, None),
                pushed(IngestSource::Logpush, "c", 5_001, None),
            ],
        )
        .await
        .expect("push");
    assert_eq!((outcome.inserted, outcome.other_source), (1, 2));
    let gw = store.list_gateways(i.id).await.expect("gateways").remove(0);
    assert_eq!(gw.source, IngestSource::Logpush);
    assert_eq!(gw.source_since_ms, Some(5_001));
    assert_eq!(gw.previous_source, Some(IngestSource::LogsApi));
    assert_eq!(gw.pull_until_ms(), Some(5_001));
    assert!(gw.counts(IngestSource::LogsApi, 5_000));
    assert!(!gw.counts(IngestSource::LogsApi, 5_001));

    // Another push source never takes over on its own: its logs are left out.
    let otlp = store
        .ingest_pushed(
            i.id,
            "gw",
            IngestSource::Otlp,
            vec![pushed(IngestSource::Otlp, "x", 9_000, None)],
        )
        .await
        .expect("push");
    assert_eq!((otlp.inserted, otlp.other_source), (0, 1));

    // Switched in setup: from now on OpenTelemetry counts, and Logpush's older logs still do.
    let switched = store
        .set_gateway_source(i.id, "gw", IngestSource::Otlp, Handover::PullHistory)
        .await
        .expect("switch");
    assert_eq!(switched.source, IngestSource::Otlp);
    assert_eq!(switched.previous_source, Some(IngestSource::Logpush));
    let since = switched.source_since_ms.expect("a handover instant");
    assert!(switched.counts(IngestSource::Logpush, since - 1));
    assert!(switched.counts(IngestSource::Otlp, since));
    assert!(!switched.counts(IngestSource::Logpush, since));

    let total = store
        .count_interactions(&Scope::default())
        .await
        .expect("count");
    assert_eq!(
        total, 3,
        "p1, p2 pulled and c pushed: nothing twice, nothing missing"
    );
}

pub async fn a_gateway_of_an_account_that_never_pulled_counts_every_push(store: Arc<dyn Store>) {
    let i = integration(&*store, "new-account").await;
    // Discovered by a sync whose Logs API had nothing (the new log system).
    store
        .upsert_gateways(i.id, &["gw".to_owned()])
        .await
        .expect("discover");
    let outcome = store
        .ingest_pushed(
            i.id,
            "gw",
            IngestSource::Logpush,
            vec![pushed(IngestSource::Logpush, "old", 1, None)],
        )
        .await
        .expect("push");
    assert_eq!(
        outcome.inserted, 1,
        "no cursor: the push counts from the beginning"
    );
    let gw = store.list_gateways(i.id).await.expect("gateways").remove(0);
    assert_eq!(gw.pull_until_ms(), Some(i64::MIN), "nothing left to pull");

    // Chosen in setup before any sync: with history on the Logs API it is pulled up to now
    // and pushes count after; without, pushes count from the beginning.
    for (gateway, handover) in [
        ("legacy", Handover::PullHistory),
        ("fresh", Handover::CountEveryPush),
    ] {
        store
            .upsert_gateways(i.id, &[gateway.to_owned()])
            .await
            .expect("discover");
        let before = langguard_clock::now_ms();
        let chosen = store
            .set_gateway_source(i.id, gateway, IngestSource::Logpush, handover)
            .await
            .expect("choose");
        assert_eq!(chosen.previous_source, Some(IngestSource::LogsApi));
        match handover {
            Handover::PullHistory => {
                let since = chosen.source_since_ms.expect("a handover");
                assert!(since >= before, "{since} {before}");
                assert!(chosen.counts(IngestSource::LogsApi, since - 1));
                assert!(chosen.counts(IngestSource::Logpush, since));
            }
            _ => {
                assert_eq!(chosen.source_since_ms, None);
                assert!(chosen.counts(IngestSource::Logpush, 1));
            }
        }
    }
}

/// A sync writing while a push takes over: rows the sync stored beyond its cursor (newest
/// first, before the cursor moves) stay the pull's, and what it writes after the handover is
/// left out — the same request is never counted twice.
pub async fn a_handover_during_a_sync_counts_nothing_twice(store: Arc<dyn Store>) {
    let i = integration(&*store, "cf").await;
    store
        .ingest_batch(
            i.id,
            "gw",
            vec![log("p1", 1_000, 10, true, 200)],
            Some(1_000),
        )
        .await
        .expect("pull");
    // The sync, walking newest first, has stored 3,000 but not yet moved its cursor.
    store
        .ingest_batch(i.id, "gw", vec![log("p3", 3_000, 10, true, 200)], None)
        .await
        .expect("pull");
    // The push takes over after the newest stored row, not after the stale cursor.
    let pushed = store
        .ingest_pushed(
            i.id,
            "gw",
            IngestSource::Otlp,
            vec![
                pushed(IngestSource::Otlp, "same-as-p3", 3_000, None),
                pushed(IngestSource::Otlp, "after", 3_001, None),
            ],
        )
        .await
        .expect("push");
    assert_eq!((pushed.inserted, pushed.other_source), (1, 1));
    // The sync goes on: a row below the handover is still the pull's, one above it is not,
    // and its cursor stops right before the handover.
    let pulled = store
        .ingest_batch(
            i.id,
            "gw",
            vec![
                log("p2", 2_000, 10, true, 200),
                log("p4", 4_000, 10, true, 200),
            ],
            Some(4_000),
        )
        .await
        .expect("pull");
    assert_eq!((pulled.inserted, pulled.other_source), (1, 1));
    let gw = store.list_gateways(i.id).await.expect("gateways").remove(0);
    assert_eq!(gw.source_since_ms, Some(3_001));
    assert_eq!(
        gw.cursor_ms,
        Some(3_000),
        "the cursor stops before the handover"
    );
    assert_eq!(
        store
            .count_interactions(&Scope::default())
            .await
            .expect("count"),
        4,
        "p1, p2, p3 pulled and `after` pushed"
    );
}

pub async fn bucket_files_are_recorded_once_and_secrets_re_sealed_safely(store: Arc<dyn Store>) {
    let i = integration(&*store, "cf").await;
    let other = integration(&*store, "other").await;
    let bucket = store
        .create_bucket(NewPushBucket {
            integration_id: i.id,
            endpoint: "https://acct.r2.cloudflarestorage.com".into(),
            bucket: "ai-logs".into(),
            prefix: "logs".into(),
            region: "auto".into(),
            access_key_id: "AKIA".into(),
            // Sealed for its own row: the id is part of what is sealed.
            secret_access_key: SealFor::new(|id| format!("sealed-for-{id}").into_bytes()),
        })
        .await
        .expect("create");
    assert_eq!(
        bucket.sealed_secret,
        format!("sealed-for-{}", bucket.id).into_bytes()
    );
    assert_eq!((bucket.files_imported, bucket.records_imported), (0, 0));
    assert_eq!(
        store.list_buckets(Some(other.id)).await.expect("list"),
        vec![]
    );
    assert_eq!(store.list_buckets(None).await.expect("list").len(), 1);

    let file = |key: &str, records: i64, at: i64| ImportedObject {
        key: key.into(),
        records,
        error: None,
        imported_at_ms: at,
    };
    assert!(store
        .record_imported_object(bucket.id, file("logs/a.log.gz", 50, 1_000))
        .await
        .expect("record"));
    // Another instance finished the same file too: recorded and counted once.
    assert!(!store
        .record_imported_object(bucket.id, file("logs/a.log.gz", 50, 2_000))
        .await
        .expect("record"));
    let given_up = ImportedObject {
        error: Some("larger than 64 MiB".into()),
        ..file("logs/b.log.gz", 0, 3_000)
    };
    assert!(store
        .record_imported_object(bucket.id, given_up)
        .await
        .expect("record"));
    let mut keys = store.imported_object_keys(bucket.id).await.expect("keys");
    keys.sort();
    assert_eq!(keys, ["logs/a.log.gz", "logs/b.log.gz"]);
    let recent = store
        .recent_imported_objects(bucket.id, 1)
        .await
        .expect("recent");
    assert_eq!(recent[0].key, "logs/b.log.gz");
    store
        .set_bucket_listed(bucket.id, 4_000, Some("could not list".into()))
        .await
        .expect("listed");
    let read = store.get_bucket(bucket.id).await.expect("get");
    assert_eq!((read.files_imported, read.records_imported), (2, 50));
    assert_eq!(read.last_listed_at_ms, Some(4_000));
    assert_eq!(read.last_error.as_deref(), Some("could not list"));

    // Re-sealing swaps only a secret that still holds what it was read with.
    let stale = SealedSwaps {
        bucket_secrets: vec![SealedSwap {
            id: bucket.id,
            old: b"not what is stored".to_vec(),
            new: b"new".to_vec(),
        }],
        ..SealedSwaps::default()
    };
    assert!(store.replace_sealed_tokens(stale).await.is_err());
    let fresh = SealedSwaps {
        bucket_secrets: vec![SealedSwap {
            id: bucket.id,
            old: read.sealed_secret.clone(),
            new: b"new".to_vec(),
        }],
        ..SealedSwaps::default()
    };
    store.replace_sealed_tokens(fresh).await.expect("re-seal");
    assert_eq!(
        store
            .get_bucket(bucket.id)
            .await
            .expect("get")
            .sealed_secret,
        b"new"
    );

    // The bucket's import lease names its holder, so a dead process's can be told.
    let lease = format!("bucket-import:{}", bucket.id);
    assert_eq!(store.lease_holder(&lease).await.expect("holder"), None);
    assert!(store
        .acquire_lease(&lease, "host:123:1", 60_000)
        .await
        .expect("lease"));
    assert_eq!(
        store.lease_holder(&lease).await.expect("holder").as_deref(),
        Some("host:123:1")
    );

    // Deleting the integration takes its buckets and their file lists with it.
    store.delete_integration(i.id).await.expect("delete");
    assert!(store.get_bucket(bucket.id).await.is_err());
    assert_eq!(store.list_buckets(None).await.expect("list"), vec![]);
}
