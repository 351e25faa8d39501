//! API keys: created for a user with a scope and an expiry (the secret shown once), revoked.

use langguard_clock::{format_ms, now_ms};
use langguard_store::{ApiKey, ApiKeyScope, IntegrationId, NewApiKey, User};
use serde::Serialize;
use serde_json::json;
use tracing::instrument;

use crate::credentials::new_api_key;
use crate::{Actor, OpsError, OpsResult, Services};

/// The lifetimes a key may have, in days.
pub const EXPIRY_DAYS: [u32; 5] = [30, 60, 90, 180, 365];

/// An API key as shown: never its secret or hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: i64,
    pub name: String,
    /// The key's first characters, to recognise it by.
    pub prefix: String,
    #[schema(value_type = String, example = "read")]
    pub scope: ApiKeyScope,
    /// The integration an `ingest` key pushes for.
    pub integration_id: Option<i64>,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub user_id: i64,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scope: k.scope,
            integration_id: k.integration_id,
            created_at: format_ms(k.created_at_ms),
            expires_at: format_ms(k.expires_at_ms),
            last_used_at: k.last_used_at_ms.map(format_ms),
            revoked_at: k.revoked_at_ms.map(format_ms),
            user_id: k.user_id,
        }
    }
}

/// A new key with its secret, shown this once (it is stored hashed).
/// Not `Debug`: it holds the key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedApiKeyView {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    /// The key itself (`lgr_…`).
    pub key: String,
}

/// What a new key is to be.
#[derive(Debug, Clone)]
pub struct NewKey<'a> {
    pub name: &'a str,
    pub scope: ApiKeyScope,
    pub expires_in_days: u32,
    /// Required for (and only for) the `ingest` scope: the one integration the key pushes for.
    pub integration_id: Option<IntegrationId>,
}

/// Checks, creates and audits an API key for `owner`; returns it with its secret (shown
/// once).
#[instrument(skip_all, fields(user_id = owner.id))]
pub async fn add(ops: &Services, owner: &User, new: NewKey<'_>) -> OpsResult<(ApiKey, String)> {
    let NewKey {
        name,
        scope,
        expires_in_days,
        integration_id,
    } = new;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(OpsError::invalid(
            "invalid_name",
            "name must be 1 to 100 characters",
        ));
    }
    if !EXPIRY_DAYS.contains(&expires_in_days) {
        return Err(OpsError::invalid(
            "invalid_expiry",
            "expires_in_days must be 30, 60, 90, 180 or 365",
        ));
    }
    match (scope, integration_id) {
        (ApiKeyScope::Ingest, None) => {
            return Err(OpsError::invalid(
                "integration_required",
                "an ingest key pushes data for one integration: give its integration_id",
            ))
        }
        (ApiKeyScope::Ingest, Some(id)) => {
            // 404 for an integration that isn't there.
            ops.store.get_integration(id).await?;
        }
        (_, Some(_)) => {
            return Err(OpsError::invalid(
                "integration_not_allowed",
                "integration_id is for ingest keys only; read, write and admin keys reach \
                 every integration their role allows",
            ))
        }
        (_, None) => {}
    }
    let (secret, hash) = new_api_key();
    let key = ops
        .store
        .create_api_key(NewApiKey {
            user_id: owner.id,
            name: name.to_owned(),
            prefix: secret.chars().take(12).collect(),
            token_hash: hash,
            scope,
            integration_id,
            expires_at_ms: now_ms() + i64::from(expires_in_days) * 86_400_000,
        })
        .await?;
    ops.audit(
        Actor::User(owner),
        "api_key.created",
        Some(format!("api_key:{}", key.id)),
        json!({"name": key.name, "scope": key.scope, "integration_id": key.integration_id}),
        None,
    )
    .await;
    Ok((key, secret))
}

#[instrument(skip_all, fields(key_id = id))]
pub async fn revoke(ops: &Services, actor: Actor<'_>, id: i64) -> OpsResult<ApiKey> {
    let key = ops.store.revoke_api_key(id).await?;
    ops.audit(
        actor,
        "api_key.revoked",
        Some(format!("api_key:{id}")),
        json!({"name": key.name}),
        None,
    )
    .await;
    Ok(key)
}
