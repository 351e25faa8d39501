//! What only the SQLite backend has: a database file that outlives the process. The store's
//! behaviour itself is tested by the shared suite (tests/suite.rs).

use langguard_store::*;
use langguard_store_sqlite::SqliteStore;
use langguard_store_tests::integration;

fn log(id: &str, ms: i64) -> NewInteraction {
    NewInteraction {
        log_id: id.into(),
        created_at_ms: ms,
        provider: "openai".into(),
        model: "gpt-4o".into(),
        path: None,
        status_code: Some(200),
        success: true,
        cached: false,
        duration_ms: 1,
        tokens_in: None,
        tokens_out: None,
        cost_usd: None,
        cost_source: None,
        metadata: None,
        requested_model: None,
        details: Default::default(),
    }
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lg.db").to_string_lossy().into_owned();
    {
        let store = SqliteStore::open(&path).await.expect("open");
        let i = integration(&store, "cf").await;
        store
            .ingest_batch(i.id, "gw", vec![log("a", 1)], Some(1))
            .await
            .expect("ingest");
        store.close().await;
    }
    let store = SqliteStore::open(&format!("sqlite://{path}"))
        .await
        .expect("reopen");
    assert_eq!(
        store
            .count_interactions(&Scope::default())
            .await
            .expect("count"),
        1
    );
}

#[test]
fn a_body_sample_is_stable_and_about_its_size() {
    let settings = BodySettings {
        mode: BodyMode::Sampled,
        sample_percent: 10,
        retention_days: 30,
    };
    let picked = (0..10_000)
        .filter(|n| settings.wants(&format!("log-{n}")))
        .count();
    assert!((800..1_200).contains(&picked), "{picked}");
    assert_eq!(settings.wants("log-7"), settings.wants("log-7"));
}
