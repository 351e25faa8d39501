//! Leases: which instance does a piece of background work when several share the database.

use async_trait::async_trait;
use langguard_store::*;

use crate::{leases, SqliteStore};

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |conn| leases::acquire(conn, &name, &holder, ttl_ms))
            .await
    }

    async fn renew_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |conn| leases::renew(conn, &name, &holder, ttl_ms))
            .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |conn| leases::release(conn, &name, &holder))
            .await
    }

    async fn lease_holder(&self, name: &str) -> StoreResult<Option<String>> {
        let name = name.to_owned();
        self.read(move |conn| {
            use rusqlite::OptionalExtension;
            conn.query_row("SELECT holder FROM leases WHERE name = ?1", [&name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(crate::db_err)
        })
        .await
    }
}
