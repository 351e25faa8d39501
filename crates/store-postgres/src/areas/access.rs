//! People and credentials: users, sessions, sign-in attempts, API keys, the audit log.

use async_trait::async_trait;
use langguard_store::*;

use crate::records::RowExt;
use crate::{access, db_err, users, PgStore};

#[async_trait]
impl AccessStore for PgStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        users::create_user(&self.client().await?, &new).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        users::list_users(&self.client().await?).await
    }

    async fn get_user(&self, id: UserId) -> StoreResult<User> {
        users::get_user(&self.client().await?, id).await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        users::find_user_by_email(&self.client().await?, email).await
    }

    async fn update_user(&self, id: UserId, patch: UserPatch) -> StoreResult<User> {
        users::update_user(&mut self.client().await?, id, &patch).await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        users::delete_user(&self.client().await?, id).await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let n: i64 = self
            .client()
            .await?
            .query_one("SELECT COUNT(*) FROM users", &[])
            .await
            .map_err(db_err)?
            .at(0)?;
        Ok(n.max(0) as u64)
    }

    async fn create_session(
        &self,
        token_hash: &[u8],
        user: UserId,
        expires_at_ms: i64,
    ) -> StoreResult<()> {
        users::create_session(&self.client().await?, token_hash, user, expires_at_ms).await
    }

    async fn session_user(&self, token_hash: &[u8], now_ms: i64) -> StoreResult<Option<User>> {
        users::session_user(&self.client().await?, token_hash, now_ms).await
    }

    async fn delete_session(&self, token_hash: &[u8]) -> StoreResult<()> {
        self.client()
            .await?
            .execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn count_login_attempt(
        &self,
        keys: &[String],
        max: i64,
        window_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Result<(), i64>> {
        users::count_login_attempt(&mut self.client().await?, keys, max, window_ms, now_ms).await
    }

    async fn clear_login_attempts(&self, keys: &[String]) -> StoreResult<()> {
        users::clear_login_attempts(&self.client().await?, keys).await
    }

    async fn record_audit(&self, entry: NewAuditEntry) -> StoreResult<()> {
        access::record_audit(&self.client().await?, &entry).await
    }

    async fn list_audit(&self, limit: u32, before_id: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
        access::list_audit(&self.client().await?, limit, before_id).await
    }

    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey> {
        access::create_api_key(&self.client().await?, &new).await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        access::list_api_keys(&self.client().await?).await
    }

    async fn revoke_api_key(&self, id: i64) -> StoreResult<ApiKey> {
        access::revoke_api_key(&self.client().await?, id).await
    }

    async fn api_key_user(
        &self,
        token_hash: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<(ApiKey, User)>> {
        access::api_key_user(&self.client().await?, token_hash, now_ms).await
    }
}
