//! The audit log and API keys.

use langguard_store::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::users::get_user;
use crate::{db_err, now_ms};

pub(crate) fn record_audit(conn: &Connection, e: &NewAuditEntry) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO audit_log (at, user_id, user_email, action, resource, details, address) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            now_ms(),
            e.user_id,
            e.user_email,
            e.action,
            e.resource,
            e.details.to_string(),
            e.address
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn list_audit(
    conn: &Connection,
    limit: u32,
    before_id: Option<i64>,
) -> StoreResult<Vec<AuditEntry>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, at, user_id, user_email, action, resource, details, address FROM audit_log \
             WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![before_id, i64::from(limit)], |r| {
            let details: String = r.get(6)?;
            Ok(AuditEntry {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                user_id: r.get(2)?,
                user_email: r.get(3)?,
                action: r.get(4)?,
                resource: r.get(5)?,
                details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                address: r.get(7)?,
            })
        })
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    Ok(rows)
}

const KEY_COLUMNS: &str =
    "id, user_id, name, prefix, scope, integration_id, created_at, expires_at, last_used_at, \
     revoked_at";

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<ApiKey>> {
    let scope: String = row.get("scope")?;
    let Some(scope) = ApiKeyScope::parse(&scope) else {
        return Ok(Err(StoreError::Corrupt(format!("API key scope {scope:?}"))));
    };
    Ok(Ok(ApiKey {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        name: row.get("name")?,
        prefix: row.get("prefix")?,
        scope,
        integration_id: row.get("integration_id")?,
        created_at_ms: row.get("created_at")?,
        expires_at_ms: row.get("expires_at")?,
        last_used_at_ms: row.get("last_used_at")?,
        revoked_at_ms: row.get("revoked_at")?,
    }))
}

fn get_key(conn: &Connection, id: i64) -> StoreResult<ApiKey> {
    conn.query_row(
        &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"),
        [id],
        key_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| StoreError::NotFound {
        what: format!("API key {id}"),
    })
}

pub(crate) fn create_api_key(conn: &Connection, new: &NewApiKey) -> StoreResult<ApiKey> {
    conn.execute(
        "INSERT INTO api_keys (user_id, name, prefix, token_hash, scope, integration_id, \
         created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            new.user_id,
            new.name,
            new.prefix,
            new.token_hash,
            new.scope.as_str(),
            new.integration_id,
            now_ms(),
            new.expires_at_ms
        ],
    )
    .map_err(db_err)?;
    get_key(conn, conn.last_insert_rowid())
}

pub(crate) fn list_api_keys(conn: &Connection) -> StoreResult<Vec<ApiKey>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id DESC"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], key_from_row)
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    rows.into_iter().collect()
}

pub(crate) fn revoke_api_key(conn: &Connection, id: i64) -> StoreResult<ApiKey> {
    conn.execute(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2",
        params![now_ms(), id],
    )
    .map_err(db_err)?;
    get_key(conn, id)
}

pub(crate) fn api_key_user(
    conn: &Connection,
    token_hash: &[u8],
    now: i64,
) -> StoreResult<Option<(ApiKey, User)>> {
    let key = conn
        .query_row(
            &format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = ?1 \
                 AND revoked_at IS NULL AND expires_at > ?2"
            ),
            params![token_hash, now],
            key_from_row,
        )
        .optional()
        .map_err(db_err)?
        .transpose()?;
    let Some(key) = key else {
        return Ok(None);
    };
    // "Last Used" to the minute spares a write per request.
    conn.execute(
        "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 \
         AND (last_used_at IS NULL OR last_used_at < ?1 - 60000)",
        params![now, key.id],
    )
    .map_err(db_err)?;
    let user = get_user(conn, key.user_id)?;
    Ok(Some((key, user)))
}
