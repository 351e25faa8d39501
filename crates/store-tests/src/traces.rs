//! Trace Explorer semantics through the store trait: every filter and search form checked
//! against a plain Rust reading of the same rows, every sort paged through, pages stable while
//! rows arrive, and the export equal to the listing.

use std::collections::HashSet;
use std::sync::Arc;

use langguard_store::search;
use langguard_store::*;

use crate::integration;

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// A deterministic, varied interaction: `n` picks every field through a small hash, so the
/// rows cover each filter's edge cases (missing path, tokens, cost, metadata; numbers and
/// booleans in metadata; `%` and `_` in values; shared timestamps).
fn varied(n: u64) -> NewInteraction {
    let h = |salt: u64| (n.wrapping_mul(2_654_435_761).wrapping_add(salt * 40_503)) >> 7;
    let pick = |salt: u64, k: u64| h(salt) % k;
    let models = [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-3-5-sonnet"),
        ("workers-ai", "@cf/meta/llama-3.1-8b-instruct"),
    ];
    let (provider, model) = models[pick(1, 4) as usize];
    let status_code = [200, 200, 200, 200, 429, 500][pick(2, 6) as usize];
    let success = status_code == 200;
    let metadata = match pick(3, 5) {
        0 => None,
        1 => Some(format!(
            r#"{{"team":"search","user":"u_{}","priority":{}}}"#,
            pick(4, 30),
            pick(5, 3) + 1
        )),
        2 => Some(format!(
            r#"{{"team":"support","beta":{},"note":"50% off_sale"}}"#,
            pick(6, 2) == 0
        )),
        3 => Some(r#"{"team":"support","note":"offxsale 50 percent"}"#.to_string()),
        _ => Some(format!(r#"{{"user":"U_{}","team":"Search"}}"#, pick(7, 30))),
    };
    // Cloudflare's extra log fields on three rows in four, in their JSON types.
    let details = match pick(17, 4) {
        0 => LogDetails::default(),
        1 => LogDetails {
            dlp_action: Some("BLOCK".into()),
            dlp_profiles: Some(serde_json::json!([{"profile": {"profile_id": "pii-ssn"}}])),
            feedback: Some(-1),
            user_agent: Some("openai-python/1.51.0".into()),
            ..LogDetails::default()
        },
        2 => LogDetails {
            dlp_action: Some("FLAG".into()),
            feedback: Some(1),
            byok: Some(true),
            event_id: Some(format!("evt-{n}")),
            ..LogDetails::default()
        },
        _ => LogDetails {
            request_type: Some("universal".into()),
            model_type: Some("chat".into()),
            step: Some(pick(18, 3) as i64),
            ..LogDetails::default()
        },
    };
    NewInteraction {
        log_id: format!("log-{n:04}"),
        // Several rows share each second.
        created_at_ms: T0 + (n as i64 / 3) * 1_000,
        provider: provider.into(),
        model: model.into(),
        path: (pick(8, 4) != 0).then(|| "v1/chat/completions".to_string()),
        status_code: Some(status_code),
        success,
        cached: pick(9, 4) == 0,
        duration_ms: (pick(10, 5_000) + 1) as i64,
        tokens_in: (pick(11, 5) != 0).then(|| pick(12, 100) as i64),
        tokens_out: (pick(13, 5) != 0).then(|| pick(14, 100) as i64),
        cost_usd: (pick(15, 4) != 0).then(|| pick(16, 50) as f64 / 10_000.0),
        cost_source: None,
        metadata,
        requested_model: (pick(19, 6) == 0).then(|| "cloudflare/auto".to_string()),
        details,
    }
}

/// The dataset: 420 rows over two integrations and three gateways.
async fn seeded(store: &dyn Store) -> Vec<Interaction> {
    let a = integration(store, "a").await;
    let b = integration(store, "b").await;
    for (integration, gateway, range) in [
        (a.id, "prod-chat", 0..200u64),
        (a.id, "support-bot", 200..320),
        (b.id, "batch-jobs", 320..420),
    ] {
        let batch: Vec<_> = range.map(varied).collect();
        store
            .ingest_batch(integration, gateway, batch, None)
            .await
            .expect("ingest");
    }
    let all = list_all(store, &TraceQuery::default(), 1_000).await;
    assert_eq!(all.len(), 420);
    all
}

/// Every page of a listing, following `next_cursor`.
async fn list_all(store: &dyn Store, query: &TraceQuery, limit: u32) -> Vec<Interaction> {
    let mut out = Vec::new();
    let mut query = TraceQuery {
        limit,
        ..query.clone()
    };
    loop {
        let page = store.traces(&query).await.expect("page");
        assert!(page.items.len() <= limit as usize);
        out.extend(page.items);
        match page.next_cursor {
            Some(cursor) => query.after = Some(cursor),
            None => return out,
        }
    }
}

fn ids(rows: &[Interaction]) -> Vec<i64> {
    rows.iter().map(|i| i.id).collect()
}

fn metadata_values(i: &Interaction) -> Vec<String> {
    let Some(text) = i.log.metadata.as_deref() else {
        return Vec::new();
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).expect("metadata JSON");
    object
        .values()
        .map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Bool(b) => i64::from(*b).to_string(),
            other => other.to_string(),
        })
        .collect()
}

fn metadata_value(i: &Interaction, key: &str) -> Option<serde_json::Value> {
    let text = i.log.metadata.as_deref()?;
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    object.get(key).cloned()
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack
        .to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

/// What a bare search term means: contained in any searchable field.
fn anywhere(i: &Interaction, term: &str) -> bool {
    let log = &i.log;
    [
        log.model.as_str(),
        log.requested_model.as_deref().unwrap_or(""),
        log.provider.as_str(),
        i.gateway.as_str(),
        log.path.as_deref().unwrap_or(""),
        log.log_id.as_str(),
    ]
    .iter()
    .any(|f| contains(f, term))
        || metadata_values(i).iter().any(|v| contains(v, term))
}

fn tokens(i: &Interaction) -> i64 {
    i.log.tokens_in.unwrap_or(0) + i.log.tokens_out.unwrap_or(0)
}

type Predicate = Box<dyn Fn(&Interaction) -> bool>;

fn search_filter(q: &str) -> TraceFilter {
    TraceFilter {
        search: search::parse(q).expect("parses"),
        ..TraceFilter::default()
    }
}

pub async fn filters_and_searches_match_exactly_the_rows_they_describe(store: Arc<dyn Store>) {
    let all = seeded(&*store).await;
    let integration_a = all
        .iter()
        .find(|i| i.gateway == "prod-chat")
        .expect("rows")
        .integration_id;
    let t = |seconds: i64| T0 + seconds * 1_000;
    let cases: Vec<(&str, TraceFilter, Predicate)> = vec![
        ("no filter", TraceFilter::default(), Box::new(|_| true)),
        (
            "status error",
            TraceFilter {
                status: Some(TraceStatus::Error),
                ..TraceFilter::default()
            },
            Box::new(|i| !i.log.success),
        ),
        (
            "cache hits",
            TraceFilter {
                cached: Some(true),
                ..TraceFilter::default()
            },
            Box::new(|i| i.log.cached),
        ),
        (
            "time range: from inclusive, to exclusive",
            TraceFilter {
                scope: Scope {
                    from_ms: Some(t(10)),
                    to_ms: Some(t(50)),
                    ..Scope::default()
                },
                ..TraceFilter::default()
            },
            Box::new(move |i| (t(10)..t(50)).contains(&i.log.created_at_ms)),
        ),
        (
            "integration, gateway, provider and model",
            TraceFilter {
                scope: Scope {
                    integration_id: Some(integration_a),
                    gateway: Some("prod-chat".into()),
                    provider: Some("openai".into()),
                    model: Some("gpt-4o".into()),
                    ..Scope::default()
                },
                ..TraceFilter::default()
            },
            Box::new(move |i| {
                i.integration_id == integration_a
                    && i.gateway == "prod-chat"
                    && i.log.provider == "openai"
                    && i.log.model == "gpt-4o"
            }),
        ),
        (
            "duration range, both ends inclusive",
            TraceFilter {
                duration_ms: Range {
                    min: Some(100),
                    max: Some(1_000),
                },
                ..TraceFilter::default()
            },
            Box::new(|i| (100..=1_000).contains(&i.log.duration_ms)),
        ),
        (
            "tokens at least 100 (missing counts are 0)",
            TraceFilter {
                tokens: Range {
                    min: Some(100),
                    max: None,
                },
                ..TraceFilter::default()
            },
            Box::new(|i| tokens(i) >= 100),
        ),
        (
            "tokens at most 20",
            TraceFilter {
                tokens: Range {
                    min: None,
                    max: Some(20),
                },
                ..TraceFilter::default()
            },
            Box::new(|i| tokens(i) <= 20),
        ),
        (
            "cost between 0.001 and 0.003 (unpriced never match)",
            TraceFilter {
                cost_usd: Range {
                    min: Some(0.001),
                    max: Some(0.003),
                },
                ..TraceFilter::default()
            },
            Box::new(|i| i.log.cost_usd.is_some_and(|c| (0.001..=0.003).contains(&c))),
        ),
        (
            "metadata team=search (exact, case-sensitive value)",
            TraceFilter {
                metadata: vec![("team".into(), "search".into())],
                ..TraceFilter::default()
            },
            Box::new(|i| metadata_value(i, "team") == Some("search".into())),
        ),
        (
            "metadata number priority=2",
            TraceFilter {
                metadata: vec![("priority".into(), "2".into())],
                ..TraceFilter::default()
            },
            Box::new(|i| metadata_value(i, "priority") == Some(2.into())),
        ),
        (
            "metadata boolean beta=true and team=support",
            TraceFilter {
                metadata: vec![
                    ("beta".into(), "true".into()),
                    ("team".into(), "support".into()),
                ],
                ..TraceFilter::default()
            },
            Box::new(|i| metadata_value(i, "beta") == Some(true.into())),
        ),
        (
            "search: bare term in the model",
            search_filter("gpt-4o"),
            Box::new(|i| anywhere(i, "gpt-4o")),
        ),
        (
            "search: case-insensitive",
            search_filter("GPT-4O"),
            Box::new(|i| anywhere(i, "gpt-4o")),
        ),
        (
            "search: bare term in a metadata value",
            search_filter("u_1"),
            Box::new(|i| anywhere(i, "u_1")),
        ),
        (
            "search: a metadata key alone is not a match",
            search_filter("priority"),
            Box::new(|i| anywhere(i, "priority")),
        ),
        (
            "search: phrase with a literal % and _",
            search_filter("\"50% off_sale\""),
            Box::new(|i| anywhere(i, "50% off_sale")),
        ),
        (
            "search: terms are ANDed",
            search_filter("openai prod"),
            Box::new(|i| anywhere(i, "openai") && anywhere(i, "prod")),
        ),
        (
            "search: OR",
            search_filter("anthropic OR workers-ai"),
            Box::new(|i| anywhere(i, "anthropic") || anywhere(i, "workers-ai")),
        ),
        (
            "search: NOT with a field",
            search_filter("support NOT status:error"),
            Box::new(|i| anywhere(i, "support") && i.log.success),
        ),
        (
            "search: NOT on a missing path matches",
            search_filter("NOT path:chat"),
            Box::new(|i| !i.log.path.as_deref().is_some_and(|p| contains(p, "chat"))),
        ),
        (
            "search: model field",
            search_filter("model:mini"),
            Box::new(|i| contains(&i.log.model, "mini")),
        ),
        (
            "search: metadata field, OR, and a cache flag",
            search_filter("team:search OR team:support cached:false"),
            Box::new(|i| {
                let team = metadata_value(i, "team")
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                (contains(&team, "search") || contains(&team, "support")) && !i.log.cached
            }),
        ),
        (
            "search: status code",
            search_filter("status_code:429"),
            Box::new(|i| i.log.status_code == Some(429)),
        ),
        (
            "search: metadata number through metadata.<key>",
            search_filter("metadata.priority:3"),
            Box::new(|i| metadata_value(i, "priority") == Some(3.into())),
        ),
        (
            "search: parentheses",
            search_filter("NOT (openai OR cached:true)"),
            Box::new(|i| !(anywhere(i, "openai") || i.log.cached)),
        ),
        (
            "log field dlp_action=BLOCK (exact)",
            TraceFilter {
                details: vec![(DetailField::DlpAction, "BLOCK".into())],
                ..TraceFilter::default()
            },
            Box::new(|i| i.log.details.dlp_action.as_deref() == Some("BLOCK")),
        ),
        (
            "log fields feedback=1 (a number) and byok=true (a boolean)",
            TraceFilter {
                details: vec![
                    (DetailField::Feedback, "1".into()),
                    (DetailField::Byok, "true".into()),
                ],
                ..TraceFilter::default()
            },
            Box::new(|i| i.log.details.feedback == Some(1) && i.log.details.byok == Some(true)),
        ),
        (
            "log field step=2 and the requested model",
            TraceFilter {
                details: vec![(DetailField::Step, "2".into())],
                requested_model: Some("cloudflare/auto".into()),
                ..TraceFilter::default()
            },
            Box::new(|i| {
                i.log.details.step == Some(2)
                    && i.log.requested_model.as_deref() == Some("cloudflare/auto")
            }),
        ),
        (
            "search: a log field, case-insensitive",
            search_filter("dlp_action:flag"),
            Box::new(|i| i.log.details.dlp_action.as_deref() == Some("FLAG")),
        ),
        (
            "search: inside a structured log field, and a boolean one",
            search_filter("dlp_profiles:pii-ssn OR byok:true"),
            Box::new(|i| i.log.details.dlp_profiles.is_some() || i.log.details.byok == Some(true)),
        ),
        (
            "search: numbers match exactly (feedback:1 is not -1)",
            search_filter("feedback:1 OR step:2"),
            Box::new(|i| i.log.details.feedback == Some(1) || i.log.details.step == Some(2)),
        ),
        (
            "search: NOT an exact log field matches rows without it",
            search_filter("NOT byok:true"),
            Box::new(|i| i.log.details.byok != Some(true)),
        ),
        (
            "search: NOT a log field matches rows without it",
            search_filter("NOT user_agent:openai"),
            Box::new(|i| i.log.details.user_agent.is_none()),
        ),
        (
            "search: the requested model, by field and bare",
            search_filter("requested_model:auto cloudflare/auto"),
            Box::new(|i| i.log.requested_model.is_some()),
        ),
        (
            "search with filters",
            TraceFilter {
                status: Some(TraceStatus::Success),
                duration_ms: Range {
                    min: Some(1_000),
                    max: None,
                },
                ..search_filter("gateway:support OR gateway:batch")
            },
            Box::new(|i| {
                i.log.success
                    && i.log.duration_ms >= 1_000
                    && (i.gateway.contains("support") || i.gateway.contains("batch"))
            }),
        ),
    ];
    for (name, filter, predicate) in cases {
        let expected: Vec<i64> = all.iter().filter(|i| predicate(i)).map(|i| i.id).collect();
        let got = list_all(
            &*store,
            &TraceQuery {
                filter,
                ..TraceQuery::default()
            },
            7,
        )
        .await;
        assert_eq!(ids(&got), expected, "{name}");
        // A case that matches nothing, or everything, tests little (unless that is its point).
        assert!(
            name == "no filter"
                || name.ends_with("is not a match")
                || (!expected.is_empty() && expected.len() < all.len()),
            "{name}: matched {} of {}",
            expected.len(),
            all.len()
        );
    }
}

pub async fn every_sort_pages_through_in_order(store: Arc<dyn Store>) {
    let all = seeded(&*store).await;
    for sort in [
        TraceSort::Time,
        TraceSort::Duration,
        TraceSort::Cost,
        TraceSort::Tokens,
    ] {
        for order in [SortOrder::Desc, SortOrder::Asc] {
            let key = |i: &Interaction| -> (f64, i64) {
                let k = match sort {
                    TraceSort::Time => i.log.created_at_ms as f64,
                    TraceSort::Duration => i.log.duration_ms as f64,
                    TraceSort::Cost => i.log.cost_usd.unwrap_or(-1.0),
                    TraceSort::Tokens => tokens(i) as f64,
                };
                (k, i.id)
            };
            let mut expected: Vec<&Interaction> = all.iter().collect();
            expected.sort_by(|a, b| {
                let (ka, kb) = (key(a), key(b));
                let ordering = ka.0.total_cmp(&kb.0).then(ka.1.cmp(&kb.1));
                match order {
                    SortOrder::Asc => ordering,
                    SortOrder::Desc => ordering.reverse(),
                }
            });
            let got = list_all(
                &*store,
                &TraceQuery {
                    sort,
                    order,
                    ..TraceQuery::default()
                },
                13,
            )
            .await;
            let expected: Vec<i64> = expected.iter().map(|i| i.id).collect();
            assert_eq!(ids(&got), expected, "{sort:?} {order:?}");
        }
    }
}

pub async fn a_cursor_only_continues_its_own_sort(store: Arc<dyn Store>) {
    seeded(&*store).await;
    let page = store
        .traces(&TraceQuery {
            limit: 5,
            ..TraceQuery::default()
        })
        .await
        .expect("page");
    let err = store
        .traces(&TraceQuery {
            limit: 5,
            sort: TraceSort::Cost,
            after: page.next_cursor,
            ..TraceQuery::default()
        })
        .await
        .expect_err("mismatched cursor");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

pub async fn pages_neither_skip_nor_repeat_while_rows_arrive(store: Arc<dyn Store>) {
    let all = seeded(&*store).await;
    let gateway_of = all[0].integration_id;
    let before: Vec<i64> = ids(&all);
    // Between every two pages, rows arrive newer than everything, older than everything and
    // in the middle of the range being paged through, with timestamps equal to existing ones.
    let mut query = TraceQuery {
        limit: 25,
        ..TraceQuery::default()
    };
    let mut got = Vec::new();
    let mut round = 0u64;
    loop {
        let page = store.traces(&query).await.expect("page");
        got.extend(page.items.iter().map(|i| i.id));
        let Some(cursor) = page.next_cursor else {
            break;
        };
        query.after = Some(cursor);
        round += 1;
        let arriving: Vec<_> = [T0 + 10_000_000, T0 - 10_000_000, T0 + 60_000, T0 + 1_000]
            .iter()
            .enumerate()
            .map(|(k, &ms)| NewInteraction {
                log_id: format!("late-{round}-{k}"),
                created_at_ms: ms,
                ..varied(round)
            })
            .collect();
        store
            .ingest_batch(gateway_of, "late", arriving, None)
            .await
            .expect("ingest");
    }
    assert!(round > 10, "paged through {round} pages");
    assert_eq!(
        got, before,
        "exactly the rows there when paging began, in order"
    );

    // And with a writer running flat out beside the reader: nothing repeats, nothing that was
    // there at the start goes missing.
    let writer_store = store.clone();
    let writer = tokio::spawn(async move {
        for round in 0..40u64 {
            let batch: Vec<_> = (0..20)
                .map(|k| NewInteraction {
                    log_id: format!("busy-{round}-{k}"),
                    created_at_ms: T0 + ((round * 20 + k) as i64 % 150) * 1_000,
                    ..varied(k)
                })
                .collect();
            writer_store
                .ingest_batch(gateway_of, "busy", batch, None)
                .await
                .expect("ingest");
            tokio::task::yield_now().await;
        }
    });
    let at_start: HashSet<i64> = ids(&list_all(&*store, &TraceQuery::default(), 1_000).await)
        .into_iter()
        .collect();
    let paged = list_all(&*store, &TraceQuery::default(), 10).await;
    writer.await.expect("writer");
    let paged_ids: Vec<i64> = ids(&paged);
    let unique: HashSet<i64> = paged_ids.iter().copied().collect();
    assert_eq!(unique.len(), paged_ids.len(), "no row twice");
    assert!(
        at_start.is_subset(&unique),
        "no row that was there is skipped"
    );
}

pub async fn the_export_is_the_listing_in_full(store: Arc<dyn Store>) {
    seeded(&*store).await;
    // Enough rows for several export batches.
    let i = integration(&*store, "bulk").await;
    let bulk: Vec<_> = (0..2_500u64)
        .map(|n| NewInteraction {
            log_id: format!("bulk-{n}"),
            ..varied(n)
        })
        .collect();
    store
        .ingest_batch(i.id, "bulk", bulk, None)
        .await
        .expect("ingest");
    for (filter, sort, order) in [
        (TraceFilter::default(), TraceSort::Time, SortOrder::Desc),
        (
            search_filter("team:search"),
            TraceSort::Cost,
            SortOrder::Asc,
        ),
    ] {
        let listed = list_all(
            &*store,
            &TraceQuery {
                filter: filter.clone(),
                sort,
                order,
                ..TraceQuery::default()
            },
            1_000,
        )
        .await;
        let mut rx = store.export_traces(filter, sort, order);
        let mut exported = Vec::new();
        while let Some(batch) = rx.recv().await {
            let batch = batch.expect("batch");
            assert!(!batch.is_empty() && batch.len() <= EXPORT_BATCH);
            exported.extend(batch);
        }
        assert_eq!(exported, listed);
    }
    // A reader that stops early stops the export without harm.
    let mut rx = store.export_traces(TraceFilter::default(), TraceSort::Time, SortOrder::Desc);
    assert!(rx.recv().await.is_some());
    drop(rx);
    assert_eq!(
        store
            .count_interactions(&Scope::default())
            .await
            .expect("count"),
        2_920
    );
}
