//! Users and sessions.

use deadpool_postgres::{Client, GenericClient};
use langguard_store::*;
use tokio_postgres::Row;

use crate::records::RowExt;
use crate::{db_err, not_found, now_ms};

const USER_COLUMNS: &str = "id, email, password_hash, role, created_at, last_active_at";

fn user_from_row(row: &Row) -> StoreResult<User> {
    let role: String = row.col("role")?;
    let role =
        Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("user role {role:?}")))?;
    Ok(User {
        id: row.col("id")?,
        email: row.col("email")?,
        role,
        password_hash: row.col("password_hash")?,
        created_at_ms: row.col("created_at")?,
        last_active_at_ms: row.col("last_active_at")?,
    })
}

pub(crate) async fn get_user(c: &impl GenericClient, id: UserId) -> StoreResult<User> {
    c.query_opt(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
        &[&id],
    )
    .await
    .map_err(db_err)?
    .map(|r| user_from_row(&r))
    .transpose()?
    .ok_or_else(|| not_found(format!("user {id}")))
}

pub(crate) async fn create_user(c: &Client, new: &NewUser) -> StoreResult<User> {
    let email = new.email.trim();
    if email.is_empty() || !email.contains('@') {
        return Err(StoreError::Invalid(format!(
            "{email:?} is not an email address"
        )));
    }
    let row = c
        .query_one(
            &format!(
                "INSERT INTO users (email, password_hash, role, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING {USER_COLUMNS}"
            ),
            &[&email, &new.password_hash, &new.role.as_str(), &now_ms()],
        )
        .await
        .map_err(|e| match db_err(e) {
            StoreError::Conflict { .. } => StoreError::Conflict {
                what: format!("a user with email {email:?}"),
            },
            other => other,
        })?;
    user_from_row(&row)
}

pub(crate) async fn list_users(c: &Client) -> StoreResult<Vec<User>> {
    // SQLite's NOCASE collation orders ignoring ASCII case, bytewise otherwise.
    c.query(
        &format!("SELECT {USER_COLUMNS} FROM users ORDER BY lg_fold(email) COLLATE \"C\""),
        &[],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(user_from_row)
    .collect()
}

pub(crate) async fn find_user_by_email(c: &Client, email: &str) -> StoreResult<Option<User>> {
    c.query_opt(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE lg_fold(email) = lg_fold($1)"),
        &[&email.trim()],
    )
    .await
    .map_err(db_err)?
    .map(|r| user_from_row(&r))
    .transpose()
}

pub(crate) async fn update_user(
    c: &mut Client,
    id: UserId,
    patch: &UserPatch,
) -> StoreResult<User> {
    let tx = c.transaction().await.map_err(db_err)?;
    if let Some(role) = patch.role {
        tx.execute(
            "UPDATE users SET role = $1 WHERE id = $2",
            &[&role.as_str(), &id],
        )
        .await
        .map_err(db_err)?;
    }
    if let Some(hash) = &patch.password_hash {
        tx.execute(
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            &[hash, &id],
        )
        .await
        .map_err(db_err)?;
        // A new password ends every session of the old one.
        tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&id])
            .await
            .map_err(db_err)?;
    }
    let user = get_user(&tx, id).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(user)
}

pub(crate) async fn delete_user(c: &Client, id: UserId) -> StoreResult<()> {
    let deleted = c
        .execute("DELETE FROM users WHERE id = $1", &[&id])
        .await
        .map_err(db_err)?;
    if deleted == 0 {
        return Err(not_found(format!("user {id}")));
    }
    Ok(())
}

pub(crate) async fn create_session(
    c: &Client,
    token_hash: &[u8],
    user: UserId,
    expires_at_ms: i64,
) -> StoreResult<()> {
    let now = now_ms();
    // Expired sessions are dropped as new ones are made: no sweeper needed.
    c.execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now])
        .await
        .map_err(db_err)?;
    c.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
        &[&token_hash, &user, &now, &expires_at_ms],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn session_user(
    c: &Client,
    token_hash: &[u8],
    now: i64,
) -> StoreResult<Option<User>> {
    let row = c
        .query_opt(
            "SELECT user_id FROM sessions WHERE token_hash = $1 AND expires_at > $2",
            &[&token_hash, &now],
        )
        .await
        .map_err(db_err)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let user_id: UserId = row.at(0)?;
    // Once a minute is plenty for "Last Active", and spares a write per request.
    c.execute(
        "UPDATE users SET last_active_at = $1 WHERE id = $2 \
         AND (last_active_at IS NULL OR last_active_at < $1::bigint - 60000)",
        &[&now, &user_id],
    )
    .await
    .map_err(db_err)?;
    get_user(c, user_id).await.map(Some)
}

/// See [`Store::count_login_attempt`]. The rows are locked in key order (`FOR UPDATE`), so
/// parallel guesses through several instances are counted one after another.
pub(crate) async fn count_login_attempt(
    c: &mut Client,
    keys: &[String],
    max: i64,
    window_ms: i64,
    now: i64,
) -> StoreResult<Result<(), i64>> {
    let mut keys = keys.to_vec();
    keys.sort();
    let tx = c.transaction().await.map_err(db_err)?;
    // Make the rows exist, then lock them: an absent row can't be locked.
    tx.execute(
        "INSERT INTO login_attempts (key, attempts, window_start) \
         SELECT k, 0, $2::bigint FROM UNNEST($1::text[]) AS k ORDER BY k \
         ON CONFLICT (key) DO NOTHING",
        &[&keys, &now],
    )
    .await
    .map_err(db_err)?;
    let rows = tx
        .query(
            "SELECT attempts, window_start FROM login_attempts WHERE key = ANY($1) \
             ORDER BY key FOR UPDATE",
            &[&keys],
        )
        .await
        .map_err(db_err)?;
    for row in &rows {
        let (attempts, start): (i64, i64) = (row.at(0)?, row.at(1)?);
        if attempts >= max && now - start < window_ms {
            return Ok(Err(window_ms - (now - start)));
        }
    }
    tx.execute(
        "UPDATE login_attempts SET \
         attempts = CASE WHEN $2::bigint - window_start >= $3::bigint THEN 1 ELSE attempts + 1 END, \
         window_start = CASE WHEN $2::bigint - window_start >= $3::bigint THEN $2::bigint \
                        ELSE window_start END \
         WHERE key = ANY($1)",
        &[&keys, &now, &window_ms],
    )
    .await
    .map_err(db_err)?;
    // Old windows go as new attempts come; rows another sign-in has locked are left for later
    // (waiting for them could deadlock with it).
    tx.execute(
        "DELETE FROM login_attempts WHERE key IN (SELECT key FROM login_attempts \
         WHERE window_start < $1::bigint FOR UPDATE SKIP LOCKED)",
        &[&(now - window_ms)],
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(Ok(()))
}

pub(crate) async fn clear_login_attempts(c: &Client, keys: &[String]) -> StoreResult<()> {
    c.execute("DELETE FROM login_attempts WHERE key = ANY($1)", &[&keys])
        .await
        .map_err(db_err)?;
    Ok(())
}
