//! The holes an outside read of the importer found against what Cloudflare documents or may
//! do — deletions, short pages, late logs, killed first imports, ties in no particular order —
//! each against an emulator that does it: no surviving log is ever missed.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::*;
use langguard_cf_emulator::{EmulatorConfig, Faults, TokenSpec};
use langguard_store::prelude::*;
use langguard_store::{IntegrationPatch, SyncRunStatus, SyncTrigger};
use time::OffsetDateTime;

fn minutes_ago(minutes: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() - time::Duration::minutes(minutes)
}

/// Every log Cloudflare still has is stored (deleted ones may or may not have been read).
async fn assert_every_surviving_log_stored(h: &Harness, gateway: &str) {
    let stored = h.stored_ids().await;
    let missing: Vec<String> = h
        .emulator
        .emulator
        .log_ids(ACCOUNT, gateway)
        .into_iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} logs still on Cloudflare were skipped, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}

#[tokio::test]
async fn logs_deleted_while_a_walk_pages_shift_nothing_past_it() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 3_000, 31);
    // Someone deletes logs from the middle of the history while the first import pages.
    h.emulator.emulator.set_faults(Faults {
        delete_on_list: 3,
        ..Faults::default()
    });
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert!(h.emulator.emulator.deleted_on_list().len() > 100);
    assert_every_surviving_log_stored(&h, "gw").await;
}

#[tokio::test]
async fn a_short_page_that_is_not_the_last_is_read_on_from() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 1_000, 32);
    // Partial responses: the page holds half its rows, `total_count` says there are more.
    h.emulator.emulator.set_faults(Faults {
        short_page_next: 4,
        ..Faults::default()
    });
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    h.assert_exact(&["gw"]).await;
}

#[tokio::test]
async fn a_deletion_and_a_late_log_in_one_window_do_not_cancel_out() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 500, 33);
    for minutes in [20, 15, 12, 8, 4] {
        h.emulator
            .emulator
            .append_logs(ACCOUNT, "gw", 3, minutes_ago(minutes));
    }
    assert_eq!(h.sync().await.counts.items_ingested, 515);
    // One stored log of the trailing window is deleted on Cloudflare, and one log of the same
    // window becomes visible late: Cloudflare's count for the window is what we stored.
    let stored_recent = h.emulator.emulator.log_ids(ACCOUNT, "gw");
    let victim = stored_recent[stored_recent.len() - 5].clone();
    assert_eq!(h.emulator.emulator.delete_logs(ACCOUNT, "gw", &[victim]), 1);
    let late = h
        .emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 1, minutes_ago(10));
    let run = h.sync().await;
    assert_eq!(run.counts.items_ingested, 1, "{run:?}");
    assert!(h.stored_ids().await.contains(&late[0]));
    assert_every_surviving_log_stored(&h, "gw").await;
}

#[tokio::test]
async fn a_log_visible_45_minutes_late_is_read_within_a_wider_trailing_window() {
    let h = harness(&["gw"]).await;
    h.store
        .update_integration(
            h.integration_id,
            IntegrationPatch {
                trailing_window_minutes: Some(60),
                ..IntegrationPatch::default()
            },
        )
        .await
        .expect("set the window");
    h.seed("gw", 300, 34);
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 2, minutes_ago(1));
    assert_eq!(h.sync().await.status, SyncRunStatus::Succeeded);
    let late = h
        .emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 1, minutes_ago(45));
    let run = h.sync().await;
    assert_eq!(run.counts.items_ingested, 1, "{run:?}");
    assert!(h.stored_ids().await.contains(&late[0]));
}

#[tokio::test]
async fn a_gateway_where_late_logs_turn_up_widens_its_own_window() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 300, 35);
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 2, minutes_ago(1));
    h.sync().await;
    // 20 minutes late: inside the default 30-minute window, but in its older half.
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 1, minutes_ago(20));
    assert_eq!(h.sync().await.counts.items_ingested, 1);
    let window = h.store.list_gateways(h.integration_id).await.expect("gw")[0].late_window_ms;
    // Found 19 minutes behind the cursor: the window doubles past that.
    assert!(
        window.is_some_and(|w| w >= 36 * 60_000),
        "widened to {window:?}"
    );
    // Now a log 35 minutes late, outside the window the integration chose, is found too.
    let later = h
        .emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 1, minutes_ago(35));
    let run = h.sync().await;
    assert_eq!(run.counts.items_ingested, 1, "{run:?}");
    assert!(h.stored_ids().await.contains(&later[0]));

    // A log only a minute late does not widen anything.
    let before = h.store.list_gateways(h.integration_id).await.expect("gw")[0].late_window_ms;
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 1, minutes_ago(1));
    h.sync().await;
    let after = h.store.list_gateways(h.integration_id).await.expect("gw")[0].late_window_ms;
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_first_import_that_fails_midway_resumes_without_reading_again_what_it_stored() {
    let h = harness(&["gw"]).await;
    let total = 20_000;
    h.seed("gw", total, 36);
    // Halfway through, Cloudflare asks to wait longer than the client's retry budget (5 s
    // here): the sync fails, and the token holds off for those 6 s before the next one.
    let emulator = h.emulator.emulator.clone();
    let tripped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let progress = {
        let tripped = tripped.clone();
        move |p: &langguard_sync::SyncProgress| {
            if p.counts.items_ingested >= 10_000 && !tripped.swap(true, Ordering::SeqCst) {
                emulator.set_faults(Faults {
                    rate_limit_next: 1_000,
                    retry_after_secs: 6,
                    ..Faults::default()
                });
            }
        }
    };
    let failed = h
        .engine
        .sync(h.integration_id, SyncTrigger::Manual, Some(&progress))
        .await
        .expect("sync ran");
    assert_eq!(failed.status, SyncRunStatus::Failed, "{failed:?}");
    let committed = h.stored("gw").await;
    assert!(
        committed >= 10_000 && committed < total,
        "{committed} stored"
    );

    h.emulator.emulator.set_faults(Faults::default());
    h.emulator.emulator.reset_stats();
    let resumed = h.sync().await;
    assert_eq!(resumed.status, SyncRunStatus::Succeeded, "{resumed:?}");
    h.assert_exact(&["gw"]).await;
    // What was committed is not listed again: the rest, at 49 new rows a page, plus the
    // window probe and one batch of overlap.
    let remaining = (total - committed) as u64;
    let bound = remaining.div_ceil(49) + 5_000u64.div_ceil(49) + 3;
    assert!(
        h.list_calls() <= bound,
        "{} list calls to finish {remaining} logs (bound {bound})",
        h.list_calls()
    );
}

#[tokio::test]
async fn ties_listed_in_no_particular_order_are_all_read() {
    let config = EmulatorConfig {
        unstable_tie_order: true,
        ..EmulatorConfig::default()
    };
    let h = harness_with(config, TOKEN, TokenSpec::user(&[ACCOUNT]), &["gw"]).await;
    h.seed("gw", 400, 37);
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 230, minutes_ago(50));
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 120, minutes_ago(3));
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    h.assert_exact(&["gw"]).await;
    // And again in the trailing window.
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 90, minutes_ago(3));
    let run = h.sync().await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    h.assert_exact(&["gw"]).await;
}

#[tokio::test]
async fn a_full_page_in_one_millisecond_ends_on_a_server_keeping_finer_time() {
    // `gt M` lists the rows shown at M again there: a walk that has read M whole must page
    // past them, not read M again for ever.
    let config = EmulatorConfig {
        sub_millisecond_time: true,
        ..EmulatorConfig::default()
    };
    let h = harness_with(config, TOKEN, TokenSpec::user(&[ACCOUNT]), &["gw"]).await;
    h.seed("gw", 300, 39);
    for (n, minutes) in [(60, 40), (120, 20), (5, 2)] {
        h.emulator
            .emulator
            .append_logs(ACCOUNT, "gw", n, minutes_ago(minutes));
    }
    let first = tokio::time::timeout(std::time::Duration::from_secs(60), h.sync())
        .await
        .expect("the sync ends");
    assert_eq!(first.status, SyncRunStatus::Succeeded, "{first:?}");
    h.assert_exact(&["gw"]).await;
    h.emulator
        .emulator
        .append_logs(ACCOUNT, "gw", 55, minutes_ago(1));
    let second = tokio::time::timeout(std::time::Duration::from_secs(60), h.sync())
        .await
        .expect("the sync ends");
    assert_eq!(second.status, SyncRunStatus::Succeeded, "{second:?}");
    h.assert_exact(&["gw"]).await;
}
