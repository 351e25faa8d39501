//! Helpers shared by the store's test files.

use langguard_store::*;
use langguard_store_sqlite::SqliteStore;

/// A store on a fresh SQLite file (kept while the directory lives).
pub async fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("lg.db").to_string_lossy())
        .await
        .expect("open");
    (dir, store)
}

pub async fn integration(store: &SqliteStore, name: &str) -> Integration {
    store
        .create_integration(NewIntegration {
            name: name.into(),
            account_id: "acct".into(),
            sealed_api_token: vec![1, 2, 3],
            enabled: true,
            sync_interval_minutes: 15,
            lookback_days: Some(7),
        })
        .await
        .expect("create")
}
