//! The audit log and API keys.

use deadpool_postgres::{Client, GenericClient};
use langguard_store::*;
use tokio_postgres::Row;

use crate::records::RowExt;
use crate::users::get_user;
use crate::{db_err, not_found, now_ms};

pub(crate) async fn record_audit(c: &Client, e: &NewAuditEntry) -> StoreResult<()> {
    c.execute(
        "INSERT INTO audit_log (at, user_id, user_email, action, resource, details, address) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &now_ms(),
            &e.user_id,
            &e.user_email,
            &e.action,
            &e.resource,
            &e.details.to_string(),
            &e.address,
        ],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list_audit(
    c: &Client,
    limit: u32,
    before_id: Option<i64>,
) -> StoreResult<Vec<AuditEntry>> {
    let rows = c
        .query(
            "SELECT id, at, user_id, user_email, action, resource, details, address \
             FROM audit_log WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
            &[&before_id, &i64::from(limit)],
        )
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            let details: String = r.at(6)?;
            Ok(AuditEntry {
                id: r.at(0)?,
                at_ms: r.at(1)?,
                user_id: r.at(2)?,
                user_email: r.at(3)?,
                action: r.at(4)?,
                resource: r.at(5)?,
                details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                address: r.at(7)?,
            })
        })
        .collect()
}

const KEY_COLUMNS: &str =
    "id, user_id, name, prefix, scope, integration_id, created_at, expires_at, last_used_at, \
     revoked_at";

fn key_from_row(row: &Row) -> StoreResult<ApiKey> {
    let scope: String = row.col("scope")?;
    let scope = ApiKeyScope::parse(&scope)
        .ok_or_else(|| StoreError::Corrupt(format!("API key scope {scope:?}")))?;
    Ok(ApiKey {
        id: row.col("id")?,
        user_id: row.col("user_id")?,
        name: row.col("name")?,
        prefix: row.col("prefix")?,
        scope,
        integration_id: row.col("integration_id")?,
        created_at_ms: row.col("created_at")?,
        expires_at_ms: row.col("expires_at")?,
        last_used_at_ms: row.col("last_used_at")?,
        revoked_at_ms: row.col("revoked_at")?,
    })
}

async fn get_key(c: &impl GenericClient, id: i64) -> StoreResult<ApiKey> {
    c.query_opt(
        &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"),
        &[&id],
    )
    .await
    .map_err(db_err)?
    .map(|r| key_from_row(&r))
    .transpose()?
    .ok_or_else(|| not_found(format!("API key {id}")))
}

pub(crate) async fn create_api_key(c: &Client, new: &NewApiKey) -> StoreResult<ApiKey> {
    let row = c
        .query_one(
            &format!(
                "INSERT INTO api_keys (user_id, name, prefix, token_hash, scope, integration_id, \
                 created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 RETURNING {KEY_COLUMNS}"
            ),
            &[
                &new.user_id,
                &new.name,
                &new.prefix,
                &new.token_hash,
                &new.scope.as_str(),
                &new.integration_id,
                &now_ms(),
                &new.expires_at_ms,
            ],
        )
        .await
        .map_err(db_err)?;
    key_from_row(&row)
}

pub(crate) async fn list_api_keys(c: &Client) -> StoreResult<Vec<ApiKey>> {
    c.query(
        &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id DESC"),
        &[],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(key_from_row)
    .collect()
}

pub(crate) async fn revoke_api_key(c: &Client, id: i64) -> StoreResult<ApiKey> {
    c.execute(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
        &[&now_ms(), &id],
    )
    .await
    .map_err(db_err)?;
    get_key(c, id).await
}

pub(crate) async fn api_key_user(
    c: &Client,
    token_hash: &[u8],
    now: i64,
) -> StoreResult<Option<(ApiKey, User)>> {
    let key = c
        .query_opt(
            &format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = $1 \
                 AND revoked_at IS NULL AND expires_at > $2"
            ),
            &[&token_hash, &now],
        )
        .await
        .map_err(db_err)?
        .map(|r| key_from_row(&r))
        .transpose()?;
    let Some(key) = key else {
        return Ok(None);
    };
    // "Last Used" to the minute spares a write per request.
    c.execute(
        "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 \
         AND (last_used_at IS NULL OR last_used_at < $1::bigint - 60000)",
        &[&now, &key.id],
    )
    .await
    .map_err(db_err)?;
    let user = get_user(c, key.user_id).await?;
    Ok(Some((key, user)))
}
