//! The store test suite (crates/store-tests) on a fresh PostgreSQL database per test. Needs
//! LANGGUARD_TEST_DATABASE_URL (see README); without it every test here is skipped, saying so.

use std::sync::Arc;

use langguard_store::Store;
use langguard_store_postgres::testing::TempDatabase;
use langguard_store_postgres::PgStore;

async fn fresh() -> Option<(TempDatabase, Arc<dyn Store>)> {
    let db = TempDatabase::create("the store suite").await?;
    let store = PgStore::open(db.url()).await.expect("open");
    Some((db, Arc::new(store)))
}

langguard_store_tests::store_suite!(fresh);
