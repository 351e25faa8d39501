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
