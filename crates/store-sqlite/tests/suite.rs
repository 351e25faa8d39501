//! The store test suite (crates/store-tests) on a fresh SQLite file per test.

use std::sync::Arc;

use langguard_store::Store;
use langguard_store_sqlite::SqliteStore;

async fn fresh() -> Option<(tempfile::TempDir, Arc<dyn Store>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("lg.db").to_string_lossy())
        .await
        .expect("open");
    Some((dir, Arc::new(store)))
}

langguard_store_tests::store_suite!(fresh);
