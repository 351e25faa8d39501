//! The log fields people govern with — DLP actions and profiles, feedback, scores, BYOK — come
//! through a sync as Cloudflare lists them, and feedback given after the call reaches the
//! stored log.

mod common;

use std::time::Duration;

use common::{harness, ACCOUNT};
use langguard_cf_emulator::Faults;
use langguard_store::prelude::*;
use langguard_store::{search, CostSource, Interaction, SyncTrigger, TraceFilter, TraceQuery};
use langguard_sync::SyncSettings;

async fn find(h: &common::Harness, query: &str) -> Vec<Interaction> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .store
            .traces(&TraceQuery {
                filter: TraceFilter {
                    search: search::parse(query).expect("parses"),
                    ..TraceFilter::default()
                },
                limit: 1_000,
                after,
                ..TraceQuery::default()
            })
            .await
            .expect("traces");
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => return out,
        }
    }
}

#[tokio::test]
async fn governance_fields_arrive_and_later_feedback_is_refreshed() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 400, 11);
    let target = h.emulator.emulator.log_ids(ACCOUNT, "gw")[17].clone();
    assert!(h
        .emulator
        .emulator
        .rate_log(ACCOUNT, "gw", &target, Some(1), None));

    let run = h.sync().await;
    assert_eq!(run.status.as_str(), "succeeded", "{:?}", run.error);
    h.assert_exact(&["gw"]).await;

    // The synthetic logs carry DLP matches and BYOK calls on some rows (as live ones do).
    let blocked = find(&h, "dlp_action:BLOCK").await;
    assert!(
        !blocked.is_empty(),
        "DLP-blocked logs are kept and searchable"
    );
    for i in &blocked {
        let profiles = i.log.details.dlp_profiles.as_ref().expect("profiles kept");
        assert_eq!(profiles[0]["profile"]["profile_id"], "pii-ssn");
    }
    let byok = find(&h, "byok:true").await;
    assert!(!byok.is_empty(), "BYOK logs are kept and searchable");
    for i in &byok {
        assert_eq!(i.log.cost_usd, Some(0.0), "Cloudflare's 0 is kept");
        assert_eq!(i.log.cost_source, Some(CostSource::Byok));
        assert!(i.log.details.cost_estimate_usd.is_some_and(|c| c > 0.0));
    }
    let feedback = |rows: Vec<Interaction>| {
        let i = rows.into_iter().next().expect("the rated log is stored");
        (i.log.details.feedback, i.log.details.score)
    };
    let by_id = format!("log_id:{target}");
    assert_eq!(feedback(find(&h, &by_id).await), (Some(1), None));

    // Someone changes their mind an hour after the call; the walk has long passed the log.
    assert!(h
        .emulator
        .emulator
        .rate_log(ACCOUNT, "gw", &target, Some(-1), Some(0.2)));
    // Within the hour the same engine doesn't read feedback again (one call an hour, not
    // one a sync)…
    let calls = h.list_calls();
    h.sync().await;
    assert_eq!(feedback(find(&h, &by_id).await), (Some(1), None));
    let idle_calls = h.list_calls() - calls;

    // …and once it is due, it does.
    let engine = h.engine_with(SyncSettings {
        feedback_refresh_every: Duration::ZERO,
        ..SyncSettings::default()
    });
    let calls = h.list_calls();
    let run = engine
        .sync(h.integration_id, SyncTrigger::Manual, None)
        .await
        .expect("sync ran");
    assert_eq!(run.status.as_str(), "succeeded", "{:?}", run.error);
    assert_eq!(feedback(find(&h, &by_id).await), (Some(-1), Some(0.2)));
    assert_eq!(
        h.list_calls() - calls,
        idle_calls + 1,
        "the refresh costs one call when few logs were rated"
    );
    h.assert_exact(&["gw"]).await;
}

#[tokio::test]
async fn a_feedback_refresh_cloudflare_refuses_never_fails_the_sync() {
    let h = harness(&["gw"]).await;
    h.seed("gw", 120, 5);
    let target = h.emulator.emulator.log_ids(ACCOUNT, "gw")[3].clone();
    assert_eq!(h.sync().await.status.as_str(), "succeeded");
    assert!(h
        .emulator
        .emulator
        .rate_log(ACCOUNT, "gw", &target, Some(-1), None));
    h.emulator.emulator.set_faults(Faults {
        reject_filter_keys: vec!["feedback".into()],
        ..Faults::default()
    });
    let engine = h.engine_with(SyncSettings {
        feedback_refresh_every: Duration::ZERO,
        ..SyncSettings::default()
    });
    let run = engine
        .sync(h.integration_id, SyncTrigger::Manual, None)
        .await
        .expect("sync ran");
    assert_eq!(run.status.as_str(), "succeeded", "{:?}", run.error);
    let integration = h.integration().await;
    assert_eq!(
        integration.status.as_str(),
        "connected",
        "{:?}",
        integration.status_message
    );
    // The rating waits for a refresh Cloudflare accepts; nothing else is lost.
    let rated = find(&h, &format!("log_id:{target}")).await;
    assert_ne!(rated[0].log.details.feedback, Some(-1));
    h.assert_exact(&["gw"]).await;
}
