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
}
