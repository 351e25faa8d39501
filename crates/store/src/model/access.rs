//! People and credentials: users, the audit log, API keys.

use serde::{Deserialize, Serialize};

use super::IntegrationId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Member,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }
}

pub type UserId = i64;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at_ms: i64,
    pub last_active_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub email: String,
    /// An Argon2id PHC string; the store never sees a password.
    pub password_hash: String,
    pub role: Role,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub password_hash: Option<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub user_id: Option<UserId>,
    pub user_email: Option<String>,
    /// `area.verb`, e.g. `integration.created`, `auth.login_failed`.
    pub action: String,
    /// `kind:id`, e.g. `integration:3`.
    pub resource: Option<String>,
    pub details: serde_json::Value,
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub user_id: Option<UserId>,
    pub user_email: Option<String>,
    pub action: String,
    pub resource: Option<String>,
    pub details: serde_json::Value,
    pub address: Option<String>,
}

/// What an API key may do (PRODUCT-SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyScope {
    /// Pushing traces only; no access to the rest of the API.
    Ingest,
    Read,
    Write,
    Admin,
}

impl ApiKeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyScope::Ingest => "ingest",
            ApiKeyScope::Read => "read",
            ApiKeyScope::Write => "write",
            ApiKeyScope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ingest" => Some(Self::Ingest),
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    pub user_id: UserId,
    pub name: String,
    /// The key's first characters, to recognise it in a list.
    pub prefix: String,
    pub scope: ApiKeyScope,
    /// For an `ingest` key: the one integration it may push for.
    pub integration_id: Option<IntegrationId>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub token_hash: Vec<u8>,
    pub scope: ApiKeyScope,
    pub integration_id: Option<IntegrationId>,
    pub expires_at_ms: i64,
}
