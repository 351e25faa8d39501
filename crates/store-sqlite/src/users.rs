//! Users, sessions and integration edits.

use langguard_store::*;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::{db_err, get_integration_on, now_ms};

const USER_COLUMNS: &str = "id, email, password_hash, role, created_at, last_active_at";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<User>> {
    let role: String = row.get("role")?;
    let Some(role) = Role::parse(&role) else {
        return Ok(Err(StoreError::Corrupt(format!("user role {role:?}"))));
    };
    Ok(Ok(User {
        id: row.get("id")?,
        email: row.get("email")?,
        role,
        password_hash: row.get("password_hash")?,
        created_at_ms: row.get("created_at")?,
        last_active_at_ms: row.get("last_active_at")?,
    }))
}

pub(crate) fn get_user(conn: &Connection, id: UserId) -> StoreResult<User> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        [id],
        user_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| StoreError::NotFound {
        what: format!("user {id}"),
    })
}

pub(crate) fn create_user(conn: &Connection, new: &NewUser) -> StoreResult<User> {
    let email = new.email.trim();
    if email.is_empty() || !email.contains('@') {
        return Err(StoreError::Invalid(format!(
            "{email:?} is not an email address"
        )));
    }
    match conn.execute(
        "INSERT INTO users (email, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![email, new.password_hash, new.role.as_str(), now_ms()],
    ) {
        Ok(_) => get_user(conn, conn.last_insert_rowid()),
        Err(e) => Err(match db_err(e) {
            StoreError::Conflict { .. } => StoreError::Conflict {
                what: format!("a user with email {email:?}"),
            },
            other => other,
        }),
    }
}

pub(crate) fn list_users(conn: &Connection) -> StoreResult<Vec<User>> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY email"))
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], user_from_row)
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    rows.into_iter().collect()
}

pub(crate) fn find_user_by_email(conn: &Connection, email: &str) -> StoreResult<Option<User>> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"),
        [email.trim()],
        user_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()
}

pub(crate) fn update_user(conn: &Connection, id: UserId, patch: &UserPatch) -> StoreResult<User> {
    if let Some(role) = patch.role {
        conn.execute(
            "UPDATE users SET role = ?1 WHERE id = ?2",
            params![role.as_str(), id],
        )
        .map_err(db_err)?;
    }
    if let Some(hash) = &patch.password_hash {
        conn.execute(
            "UPDATE users SET password_hash = ?1 WHERE id = ?2",
            params![hash, id],
        )
        .map_err(db_err)?;
        // A new password ends every session of the old one.
        conn.execute("DELETE FROM sessions WHERE user_id = ?1", [id])
            .map_err(db_err)?;
    }
    get_user(conn, id)
}

pub(crate) fn delete_user(conn: &Connection, id: UserId) -> StoreResult<()> {
    let deleted = conn
        .execute("DELETE FROM users WHERE id = ?1", [id])
        .map_err(db_err)?;
    if deleted == 0 {
        return Err(StoreError::NotFound {
            what: format!("user {id}"),
        });
    }
    Ok(())
}

pub(crate) fn session_user(
    conn: &Connection,
    token_hash: &[u8],
    now: i64,
) -> StoreResult<Option<User>> {
    let user_id: Option<UserId> = conn
        .query_row(
            "SELECT user_id FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
            params![token_hash, now],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    let Some(user_id) = user_id else {
        return Ok(None);
    };
    // Once a minute is plenty for "Last Active", and spares a write per request.
    conn.execute(
        "UPDATE users SET last_active_at = ?1 WHERE id = ?2 \
         AND (last_active_at IS NULL OR last_active_at < ?1 - 60000)",
        params![now, user_id],
    )
    .map_err(db_err)?;
    get_user(conn, user_id).map(Some)
}

pub(crate) fn update_integration(
    conn: &Connection,
    id: IntegrationId,
    patch: &IntegrationPatch,
) -> StoreResult<Integration> {
    let mut sets: Vec<&str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(name) = &patch.name {
        sets.push("name = ?");
        values.push(Value::Text(name.clone()));
    }
    if let Some(account) = &patch.account_id {
        sets.push("account_id = ?");
        values.push(Value::Text(account.clone()));
    }
    if let Some(token) = &patch.sealed_api_token {
        sets.push("api_token_sealed = ?");
        values.push(Value::Blob(token.clone()));
    }
    if let Some(enabled) = patch.enabled {
        sets.push("enabled = ?");
        values.push(Value::Integer(i64::from(enabled)));
        // Disabling shows at once; enabling waits for the next sync to say how it went.
        sets.push(if enabled {
            "status = CASE WHEN status = 'disabled' THEN 'pending' ELSE status END"
        } else {
            "status = 'disabled'"
        });
    }
    if let Some(minutes) = patch.sync_interval_minutes {
        sets.push("sync_interval_minutes = ?");
        values.push(Value::Integer(minutes));
    }
    if let Some(lookback) = patch.lookback_days {
        sets.push("lookback_days = ?");
        values.push(lookback.map_or(Value::Null, Value::Integer));
    }
    if let Some(minutes) = patch.trailing_window_minutes {
        sets.push("trailing_window_minutes = ?");
        values.push(Value::Integer(minutes));
    }
    if let Some(bodies) = patch.bodies {
        sets.push("bodies_mode = ?");
        values.push(Value::Text(bodies.mode.as_str().into()));
        sets.push("bodies_sample_percent = ?");
        values.push(Value::Integer(bodies.sample_percent));
        sets.push("bodies_retention_days = ?");
        values.push(Value::Integer(bodies.retention_days));
    }
    sets.push("updated_at = ?");
    values.push(Value::Integer(now_ms()));
    values.push(Value::Integer(id));
    let sql = format!("UPDATE integrations SET {} WHERE id = ?", sets.join(", "));
    let changed = conn
        .execute(&sql, params_from_iter(values))
        .map_err(|e| match db_err(e) {
            StoreError::Conflict { .. } => StoreError::Conflict {
                what: format!(
                    "an integration named {:?}",
                    patch.name.as_deref().unwrap_or_default()
                ),
            },
            other => other,
        })?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("integration {id}"),
        });
    }
    get_integration_on(conn, id)
}

/// See [`Store::count_login_attempt`].
pub(crate) fn count_login_attempt(
    conn: &mut Connection,
    keys: &[String],
    max: i64,
    window_ms: i64,
    now: i64,
) -> StoreResult<Result<(), i64>> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db_err)?;
    for key in keys {
        let row: Option<(i64, i64)> = tx
            .query_row(
                "SELECT attempts, window_start FROM login_attempts WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_err)?;
        if let Some((attempts, start)) = row {
            if attempts >= max && now - start < window_ms {
                return Ok(Err(window_ms - (now - start)));
            }
        }
    }
    for key in keys {
        tx.execute(
            "INSERT INTO login_attempts (key, attempts, window_start) VALUES (?1, 1, ?2) \
             ON CONFLICT (key) DO UPDATE SET \
             attempts = CASE WHEN ?2 - window_start >= ?3 THEN 1 ELSE attempts + 1 END, \
             window_start = CASE WHEN ?2 - window_start >= ?3 THEN ?2 ELSE window_start END",
            params![key, now, window_ms],
        )
        .map_err(db_err)?;
    }
    // Old windows are dropped as new attempts come: no sweeper needed.
    tx.execute(
        "DELETE FROM login_attempts WHERE window_start < ?1",
        [now - window_ms],
    )
    .map_err(db_err)?;
    tx.commit().map_err(db_err)?;
    Ok(Ok(()))
}

pub(crate) fn clear_login_attempts(conn: &Connection, keys: &[String]) -> StoreResult<()> {
    for key in keys {
        conn.execute("DELETE FROM login_attempts WHERE key = ?1", [key])
            .map_err(db_err)?;
    }
    Ok(())
}
