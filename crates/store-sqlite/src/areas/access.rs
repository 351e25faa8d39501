//! People and credentials: users, sessions, sign-in attempts, API keys, the audit log.

use async_trait::async_trait;
use langguard_store::*;
use rusqlite::params;

use crate::{access, db_err, now_ms, users, SqliteStore};

#[async_trait]
impl AccessStore for SqliteStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        self.write(move |conn| users::create_user(conn, &new)).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.write(|conn| users::list_users(conn)).await
    }

    async fn get_user(&self, id: UserId) -> StoreResult<User> {
        self.write(move |conn| users::get_user(conn, id)).await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let email = email.to_owned();
        self.write(move |conn| users::find_user_by_email(conn, &email))
            .await
    }

    async fn update_user(&self, id: UserId, patch: UserPatch) -> StoreResult<User> {
        self.write(move |conn| users::update_user(conn, id, &patch))
            .await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        self.write(move |conn| users::delete_user(conn, id)).await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        self.write(|conn| {
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
                .map_err(db_err)?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn create_session(
        &self,
        token_hash: &[u8],
        user: UserId,
        expires_at_ms: i64,
    ) -> StoreResult<()> {
        let token_hash = token_hash.to_vec();
        self.write(move |conn| {
            let now = now_ms();
            // Expired sessions are dropped as new ones are made: no sweeper needed.
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])
                .map_err(db_err)?;
            conn.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![token_hash, user, now, expires_at_ms],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn session_user(&self, token_hash: &[u8], now_ms: i64) -> StoreResult<Option<User>> {
        let token_hash = token_hash.to_vec();
        self.write(move |conn| users::session_user(conn, &token_hash, now_ms))
            .await
    }

    async fn delete_session(&self, token_hash: &[u8]) -> StoreResult<()> {
        let token_hash = token_hash.to_vec();
        self.write(move |conn| {
            conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn count_login_attempt(
        &self,
        keys: &[String],
        max: i64,
        window_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Result<(), i64>> {
        let keys = keys.to_vec();
        self.write(move |conn| users::count_login_attempt(conn, &keys, max, window_ms, now_ms))
            .await
    }

    async fn clear_login_attempts(&self, keys: &[String]) -> StoreResult<()> {
        let keys = keys.to_vec();
        self.write(move |conn| users::clear_login_attempts(conn, &keys))
            .await
    }

    async fn record_audit(&self, entry: NewAuditEntry) -> StoreResult<()> {
        self.write(move |conn| access::record_audit(conn, &entry))
            .await
    }

    async fn list_audit(&self, limit: u32, before_id: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
        self.write(move |conn| access::list_audit(conn, limit, before_id))
            .await
    }

    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey> {
        self.write(move |conn| access::create_api_key(conn, &new))
            .await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.write(|conn| access::list_api_keys(conn)).await
    }

    async fn revoke_api_key(&self, id: i64) -> StoreResult<ApiKey> {
        self.write(move |conn| access::revoke_api_key(conn, id))
            .await
    }

    async fn api_key_user(
        &self,
        token_hash: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<(ApiKey, User)>> {
        let token_hash = token_hash.to_vec();
        self.write(move |conn| access::api_key_user(conn, &token_hash, now_ms))
            .await
    }
}
