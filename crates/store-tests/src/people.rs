//! People and teams through the trait: rollups at ingest, the backfill of logs stored before a
//! key was named, the rolling window, and a changed key.

use std::collections::BTreeMap;
use std::sync::Arc;

use langguard_store::*;

const DAY: i64 = DAY_MS;

/// Requests, errors, cache hits, tokens, cents, active days, first and last seen.
type Figures = (i64, i64, i64, i64, i64, i64, i64, i64);
/// 2026-11-30T00:00:00Z, a day boundary.
const TODAY: i64 = 1_796_083_200_000;

fn call(id: usize, at: i64, user: &str, team: &str, cost: f64, success: bool) -> NewInteraction {
    NewInteraction {
        log_id: format!("p{id}"),
        created_at_ms: at,
        provider: if id.is_multiple_of(3) {
            "anthropic"
        } else {
            "openai"
        }
        .into(),
        model: if id.is_multiple_of(3) {
            "claude"
        } else {
            "gpt-4o"
        }
        .into(),
        path: None,
        status_code: Some(if success { 200 } else { 500 }),
        success,
        cached: id.is_multiple_of(4),
        duration_ms: 100,
        tokens_in: Some(10),
        tokens_out: Some(id as i64 % 7),
        cost_usd: Some(cost),
        cost_source: Some(CostSource::Gateway),
        metadata: Some(format!(r#"{{"user_id":"{user}","team":"{team}"}}"#)),
        requested_model: None,
        details: Default::default(),
    }
}

/// 400 calls over 45 days by 7 users in 3 teams, some failing.
fn traffic(first_id: usize) -> Vec<NewInteraction> {
    (first_id..first_id + 400)
        .map(|i| {
            let at = TODAY - 45 * DAY + (i as i64 * 9_973_331) % (46 * DAY);
            call(
                i,
                at,
                &format!("u{}", i % 7),
                &format!("t{}", i % 3),
                (i % 11) as f64 * 0.25,
                i % 13 != 0,
            )
        })
        .collect()
}

/// What the summary of `kind` must say, from the raw logs: per identity, the window's
/// requests, errors, cache hits, tokens, spend (in cents, to compare exactly), active days,
/// and all-time first and last seen.
fn expected(logs: &[NewInteraction], key: &str, window_start: i64) -> BTreeMap<String, Figures> {
    let mut out: BTreeMap<String, Figures> = BTreeMap::new();
    let mut days: BTreeMap<String, std::collections::BTreeSet<i64>> = BTreeMap::new();
    for log in logs {
        let meta: serde_json::Value =
            serde_json::from_str(log.metadata.as_deref().unwrap()).unwrap();
        let who = meta[key].as_str().unwrap().to_owned();
        let e = out
            .entry(who.clone())
            .or_insert((0, 0, 0, 0, 0, 0, i64::MAX, i64::MIN));
        e.6 = e.6.min(log.created_at_ms);
        e.7 = e.7.max(log.created_at_ms);
        if log.created_at_ms < window_start {
            continue;
        }
        e.0 += 1;
        e.1 += i64::from(!log.success);
        e.2 += i64::from(log.cached);
        e.3 += log.tokens_in.unwrap() + log.tokens_out.unwrap();
        e.4 += (log.cost_usd.unwrap() * 100.0).round() as i64;
        days.entry(who)
            .or_default()
            .insert(day_of(log.created_at_ms));
    }
    for (who, e) in out.iter_mut() {
        e.5 = days.get(who).map_or(0, |d| d.len() as i64);
    }
    // Identities with nothing in the window are not listed.
    out.retain(|_, e| e.0 > 0);
    out
}

async fn summary(store: &dyn Store, kind: IdentityKind) -> BTreeMap<String, Figures> {
    // What ingest appended counts once folded (the upkeep does it each minute).
    store.fold_identities(u32::MAX).await.expect("fold");
    let page = store
        .people(&PeopleQuery {
            kind,
            sort: PeopleSort::Spend,
            search: None,
            limit: 1_000,
            offset: 0,
        })
        .await
        .expect("people");
    assert_eq!(page.total as usize, page.people.len());
    let spends: Vec<f64> = page.people.iter().map(|p| p.cost_usd).collect();
    assert!(
        spends.windows(2).all(|w| w[0] >= w[1]),
        "by spend: {spends:?}"
    );
    page.people
        .into_iter()
        .map(|p| {
            (
                p.identity,
                (
                    p.requests,
                    p.errors,
                    p.cache_hits,
                    p.tokens_in + p.tokens_out,
                    (p.cost_usd * 100.0).round() as i64,
                    p.active_days,
                    p.first_seen_ms,
                    p.last_seen_ms,
                ),
            )
        })
        .collect()
}

async fn backfill(store: &dyn Store) {
    // Small steps, so the backfill's resumption is exercised.
    while store.backfill_identities(37).await.expect("backfill") > 0 {}
    assert!(store
        .identity_keys()
        .await
        .unwrap()
        .iter()
        .all(|k| k.backfill_below_id.is_none()));
}

pub async fn people_rollups_match_the_raw_logs_through_backfill_ingest_and_rollover(
    store: Arc<dyn Store>,
) {
    let store = store.as_ref();
    let integration = crate::integration(store, "people").await;
    store.advance_people_window(TODAY).await.expect("advance");
    let window = people_window_start(TODAY);
    assert_eq!(store.people_window_start().await.unwrap(), window);

    // Stored before anyone named a key: counted by the backfill.
    let before = traffic(0);
    store
        .ingest_batch(integration.id, "gw", before.clone(), None)
        .await
        .expect("ingest");
    assert!(summary(store, IdentityKind::User).await.is_empty());
    let keys = store
        .set_identity_key(IdentityKind::User, Some("user_id".into()), None)
        .await
        .expect("key");
    assert_eq!(keys.len(), 1);
    assert!(keys[0].backfill_below_id.is_some());
    store
        .set_identity_key(IdentityKind::Team, Some("team".into()), None)
        .await
        .expect("key");

    // Stored while the backfill has not run: counted at ingest, not twice by the backfill.
    let during = traffic(400);
    store
        .ingest_batch(integration.id, "gw", during.clone(), None)
        .await
        .expect("ingest");
    assert!(store.fold_identities(u32::MAX).await.unwrap() > 0);
    assert_eq!(store.fold_identities(u32::MAX).await.unwrap(), 0);
    backfill(store).await;
    let all: Vec<NewInteraction> = before.iter().chain(&during).cloned().collect();
    assert_eq!(
        summary(store, IdentityKind::User).await,
        expected(&all, "user_id", window)
    );
    assert_eq!(
        summary(store, IdentityKind::Team).await,
        expected(&all, "team", window)
    );
    // A duplicate counts for nobody.
    store
        .ingest_batch(integration.id, "gw", during[..50].to_vec(), None)
        .await
        .expect("again");
    assert_eq!(
        summary(store, IdentityKind::User).await,
        expected(&all, "user_id", window)
    );

    // Ten days on: the summary holds the new window only, and the days keep the history.
    let later = TODAY + 10 * DAY;
    assert!(store.advance_people_window(later).await.unwrap());
    assert!(!store.advance_people_window(later).await.unwrap());
    let window = people_window_start(later);
    assert_eq!(
        summary(store, IdentityKind::User).await,
        expected(&all, "user_id", window)
    );
    let days = store
        .identity_days(IdentityKind::User, "u3", 0)
        .await
        .unwrap();
    let u3: Vec<&NewInteraction> = all
        .iter()
        .filter(|l| l.metadata.as_deref().unwrap().contains("\"u3\""))
        .collect();
    assert_eq!(
        days.iter().map(|d| d.totals.requests).sum::<i64>(),
        u3.len() as i64
    );
    assert!(days.windows(2).all(|w| w[0].day_ms < w[1].day_ms));

    // One identity: the same figures, its top model, its models by spend.
    let person = store
        .person(IdentityKind::User, "u3")
        .await
        .unwrap()
        .expect("u3");
    assert_eq!(expected(&all, "user_id", window)["u3"].0, person.requests);
    let models = store
        .identity_models(IdentityKind::User, "u3", window)
        .await
        .unwrap();
    let top = models
        .first()
        .map(|m| (m.provider.clone(), m.model.clone()));
    assert_eq!(person.top_model, top);
    assert!(models.windows(2).all(|w| w[0].cost_usd >= w[1].cost_usd));
    assert_eq!(
        store.person(IdentityKind::User, "nobody").await.unwrap(),
        None
    );

    // Search and sorts.
    let found = store
        .people(&PeopleQuery {
            kind: IdentityKind::Team,
            sort: PeopleSort::Requests,
            search: Some("T1".into()),
            limit: 10,
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        found
            .people
            .iter()
            .map(|p| p.identity.as_str())
            .collect::<Vec<_>>(),
        ["t1"]
    );
    for sort in PeopleSort::ALL {
        let page = store
            .people(&PeopleQuery {
                kind: IdentityKind::User,
                sort: *sort,
                search: None,
                limit: 3,
                offset: 2,
            })
            .await
            .unwrap();
        assert_eq!(page.people.len(), 3, "{sort:?}");
        assert_eq!(page.total, 7);
    }

    // A different key for users: their rollups are rebuilt from it; teams keep theirs.
    let renamed: Vec<NewInteraction> = (800..900)
        .map(|i| {
            let mut log = call(i, TODAY + 10 * DAY - 1_000, "x", "t9", 1.0, true);
            log.metadata = Some(format!(r#"{{"uid":"v{}","team":"t9"}}"#, i % 2));
            log
        })
        .collect();
    store
        .ingest_batch(integration.id, "gw", renamed.clone(), None)
        .await
        .unwrap();
    store
        .set_identity_key(IdentityKind::User, Some("uid".into()), None)
        .await
        .unwrap();
    backfill(store).await;
    let users = summary(store, IdentityKind::User).await;
    assert_eq!(users.keys().collect::<Vec<_>>(), ["v0", "v1"]);
    assert_eq!(users["v0"].0, 50);
    assert_eq!(summary(store, IdentityKind::Team).await["t9"].0, 100);
    // Forgetting a key drops its figures.
    let keys = store
        .set_identity_key(IdentityKind::User, None, None)
        .await
        .unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kind).collect::<Vec<_>>(),
        [IdentityKind::Team]
    );
    assert!(summary(store, IdentityKind::User).await.is_empty());
}

/// SQLite reuses the ids of deleted newest rows: a log stored after a key was named must still
/// not be counted again by that key's backfill.
pub async fn a_backfill_never_counts_a_log_stored_after_its_key(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let kept = crate::integration(store, "kept").await;
    let dropped = crate::integration(store, "dropped").await;
    store.advance_people_window(TODAY).await.expect("advance");
    let recent = |first: usize| -> Vec<NewInteraction> {
        (first..first + 100)
            .map(|i| {
                let at = TODAY - (i as i64 % 20) * DAY + 1_000;
                call(i, at, &format!("u{}", i % 7), "t", 1.0, true)
            })
            .collect()
    };
    let before = recent(0);
    store
        .ingest_batch(kept.id, "gw", before.clone(), None)
        .await
        .expect("ingest");
    // The newest ids belong to the integration about to be deleted.
    store
        .ingest_batch(dropped.id, "gw", recent(400), None)
        .await
        .expect("ingest");
    store
        .set_identity_key(IdentityKind::User, Some("user_id".into()), None)
        .await
        .expect("key");
    store.delete_integration(dropped.id).await.expect("delete");
    let after = recent(800);
    store
        .ingest_batch(kept.id, "gw", after.clone(), None)
        .await
        .expect("ingest");
    backfill(store).await;
    let all: Vec<NewInteraction> = before.into_iter().chain(after).collect();
    let want = expected(&all, "user_id", people_window_start(TODAY));
    assert_eq!(want.values().map(|f| f.0).sum::<i64>(), 200);
    assert_eq!(summary(store, IdentityKind::User).await, want);
}

/// A call by `user` in session `sid` (none: `None`).
fn session_call(id: usize, at: i64, user: &str, sid: Option<&str>, cost: f64) -> NewInteraction {
    NewInteraction {
        metadata: Some(match sid {
            Some(sid) => format!(r#"{{"user_id":"{user}","sid":"{sid}"}}"#),
            None => format!(r#"{{"user_id":"{user}"}}"#),
        }),
        ..call(id, at, user, "t", cost, true)
    }
}

fn figures(s: &UserSession) -> (&str, &str, i64, i64, f64) {
    (&s.user, &s.session, s.hour_ms, s.requests, s.cost_usd)
}

pub async fn user_sessions_add_up_and_keep_their_first_flag(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let integration = crate::integration(store, "sessions").await;
    store.advance_people_window(TODAY).await.expect("advance");
    let start = TODAY - 2 * DAY;
    // Stored before the keys: counted by the backfill.
    let before: Vec<NewInteraction> = (0..3)
        .map(|i| session_call(i, start + i as i64 * 1_000, "u1", Some("a"), 1.0))
        .collect();
    store
        .ingest_batch(integration.id, "gw", before, None)
        .await
        .expect("ingest");
    store
        .set_identity_key(
            IdentityKind::User,
            Some("user_id".into()),
            Some("sid".into()),
        )
        .await
        .expect("keys");
    let hour = TODAY - DAY + 5 * HOUR_MS;
    store
        .ingest_batch(
            integration.id,
            "gw",
            vec![
                session_call(10, start + 5_000, "u1", Some("a"), 1.0),
                session_call(11, hour + 10, "u1", None, 2.0),
                session_call(12, hour + 20, "u2", Some("b"), 0.5),
            ],
            None,
        )
        .await
        .expect("ingest");
    backfill(store).await;
    store.fold_identities(u32::MAX).await.expect("fold");

    let due = store.sessions_to_check(0, 100).await.expect("due");
    let mut got: Vec<_> = due.iter().map(figures).collect();
    got.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    assert_eq!(
        got,
        [
            ("u1", "", hour, 1, 2.0),
            ("u1", "a", 0, 4, 4.0),
            ("u2", "b", 0, 1, 0.5)
        ]
    );
    let a = due.iter().find(|s| s.session == "a").expect("a");
    assert_eq!((a.first_ms, a.last_ms), (start, start + 5_000));
    assert_eq!(
        store.session_costs("u1", 0, i64::MAX).await.expect("costs"),
        [(start, 4.0), (hour + 10, 2.0)]
    );
    // Only the sessions started before the one judged.
    assert_eq!(
        store.session_costs("u1", 0, start).await.unwrap(),
        Vec::<(i64, f64)>::new()
    );
    // Sessions started before `since` are not due (a baseline no longer reaches them).
    assert_eq!(
        store.sessions_to_check(start + 1, 100).await.unwrap().len(),
        2
    );
    assert_eq!(
        store.session_cost_percentile(99.0).await.unwrap(),
        Some(4.0)
    );
    assert_eq!(
        store.session_cost_percentile(50.0).await.unwrap(),
        Some(2.0)
    );

    let flag = |at: i64| SessionAnomaly {
        flagged_at_ms: at,
        spend_usd: 4.0,
        user_p95_usd: 1.0,
        baseline_sessions: 12,
        org_p99_usd: 3.0,
    };
    let checks = due
        .iter()
        .map(|s| SessionCheck {
            user: s.user.clone(),
            session: s.session.clone(),
            hour_ms: s.hour_ms,
            requests: s.requests,
            anomaly: (s.session == "a").then(|| flag(TODAY - DAY)),
        })
        .collect();
    store.save_session_checks(checks).await.expect("save");
    assert_eq!(store.sessions_to_check(0, 100).await.unwrap(), vec![]);
    let all = AnomalyQuery {
        user: None,
        since_ms: 0,
        limit: 10,
    };
    let flagged = store.spend_anomalies(&all).await.expect("anomalies");
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].anomaly, Some(flag(TODAY - DAY)));
    assert_eq!(
        store.count_spend_anomalies(start, start + 1).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .count_spend_anomalies(TODAY, TODAY + DAY)
            .await
            .unwrap(),
        0
    );
    let person = store.person(IdentityKind::User, "u1").await.unwrap();
    assert_eq!(person.map(|p| p.anomalies), Some(1));

    // More traffic makes the session due again; a second flag keeps the first one's figures.
    store
        .ingest_batch(
            integration.id,
            "gw",
            vec![session_call(13, start + 9_000, "u1", Some("a"), 1.0)],
            None,
        )
        .await
        .expect("ingest");
    store.fold_identities(u32::MAX).await.expect("fold");
    let due = store.sessions_to_check(0, 100).await.expect("due");
    assert_eq!(
        due.iter().map(figures).collect::<Vec<_>>(),
        [("u1", "a", 0, 5, 5.0)]
    );
    store
        .save_session_checks(vec![SessionCheck {
            user: "u1".into(),
            session: "a".into(),
            hour_ms: 0,
            requests: 5,
            anomaly: Some(flag(TODAY)),
        }])
        .await
        .expect("save");
    let named = store
        .user_sessions(vec![
            ("u1".into(), "a".into(), 0),
            ("u9".into(), "x".into(), 0),
        ])
        .await
        .expect("sessions");
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].anomaly, Some(flag(TODAY - DAY)));
    assert_eq!(named[0].cost_usd, 5.0);

    // A new session key starts the sessions over.
    store
        .set_identity_key(
            IdentityKind::User,
            Some("user_id".into()),
            Some("conv".into()),
        )
        .await
        .expect("keys");
    assert_eq!(store.spend_anomalies(&all).await.unwrap(), vec![]);
    assert_eq!(store.sessions_to_check(0, 100).await.unwrap(), vec![]);
}
