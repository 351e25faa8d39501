//! Leases: which instance does a piece of background work when several share the database.

use async_trait::async_trait;
use langguard_store::*;

use crate::{leases, PgStore};

#[async_trait]
impl LeaseStore for PgStore {
    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
        leases::acquire(&self.lease_client().await?, name, holder, ttl_ms).await
    }

    async fn renew_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
        leases::renew(&self.lease_client().await?, name, holder, ttl_ms).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        leases::release(&self.lease_client().await?, name, holder).await
    }

    async fn lease_holder(&self, name: &str) -> StoreResult<Option<String>> {
        self.lease_client()
            .await?
            .query_opt("SELECT holder FROM leases WHERE name = $1", &[&name])
            .await
            .map_err(crate::db_err)?
            .map(|r| r.try_get(0).map_err(crate::db_err))
            .transpose()
    }
}
