//! API tokens and authentication (API-NOTES §4, §8.7).
//!
//! Check order of every API request: the credentials header must be well-formed (else 400 /
//! 6003 + 6111), the token must be known (else 403 / 9109 on resource routes, 401 / 1000 on
//! the verify routes) and, on resource routes, active (else 403 / 9109). Permission and
//! account scope (403 / 10000) are checked later, after rate limiting and injected faults, in
//! [`TokenRecord::authorize`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{header, HeaderMap};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::envelope::ApiError;

/// Lifecycle state of a token, as verify reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenStatus {
    Active,
    Disabled,
    Expired,
}

impl TokenStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
        }
    }
}

/// What a configured token is and may do.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    /// 32 hex characters, returned by verify (it is not the secret).
    pub id: String,
    pub status: TokenStatus,
    /// Accounts this token may read.
    pub accounts: Vec<String>,
    /// `false`: 403 / 10000 "Authentication error" on AI Gateway routes.
    pub ai_gateway_read: bool,
    /// *AI Gateway: Edit*: gateway settings may be changed (`PUT …/gateways/{id}`); implies read.
    pub ai_gateway_edit: bool,
    /// *Logs: Edit* (Cloudflare's "Logs Write"): Logpush jobs may be listed, created and changed.
    pub logs_edit: bool,
    /// *Account Analytics: Read*: the GraphQL Analytics API answers for the token's accounts.
    pub analytics_read: bool,
    /// `Some(account)`: an account-owned token, verifiable only on
    /// `/accounts/{account}/tokens/verify`. `None`: a user token, verifiable on
    /// `/user/tokens/verify`.
    pub owner_account: Option<String>,
}

impl TokenSpec {
    /// An active user token with AI Gateway Read on `accounts`.
    pub fn user(accounts: &[&str]) -> Self {
        Self {
            id: next_token_id(),
            status: TokenStatus::Active,
            accounts: accounts
                .iter()
                .map(|account| (*account).to_owned())
                .collect(),
            ai_gateway_read: true,
            ai_gateway_edit: false,
            logs_edit: false,
            analytics_read: true,
            owner_account: None,
        }
    }

    /// An active user token with AI Gateway Edit and Logs Edit on `accounts`: what "Set up
    /// push" needs.
    pub fn editor(accounts: &[&str]) -> Self {
        Self {
            ai_gateway_edit: true,
            logs_edit: true,
            ..Self::user(accounts)
        }
    }

    /// An active account-owned token with AI Gateway Read on `account`.
    pub fn account_owned(account: &str) -> Self {
        Self {
            owner_account: Some(account.to_owned()),
            ..Self::user(&[account])
        }
    }
}

/// Token ids look random but follow a fixed sequence (SplitMix64 over a process-wide
/// counter), keeping test runs reproducible.
fn next_token_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{:016x}", splitmix64(2 * n), splitmix64(2 * n + 1))
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The permission a resource route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Permission {
    AiGatewayRead,
    AiGatewayEdit,
    LogsEdit,
}

/// Which kind of route authenticates the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access<'a> {
    /// A resource route of this account.
    Resource { account: &'a str, need: Permission },
    /// `GET /user/tokens/verify`.
    VerifyUser,
    /// `GET /accounts/{account}/tokens/verify`.
    VerifyAccount { account: &'a str },
}

impl<'a> Access<'a> {
    /// An AI Gateway route that reads.
    pub(crate) fn read(account: &'a str) -> Self {
        Self::Resource {
            account,
            need: Permission::AiGatewayRead,
        }
    }

    pub(crate) fn edit(account: &'a str) -> Self {
        Self::Resource {
            account,
            need: Permission::AiGatewayEdit,
        }
    }

    pub(crate) fn logs(account: &'a str) -> Self {
        Self::Resource {
            account,
            need: Permission::LogsEdit,
        }
    }

    fn is_verify(self) -> bool {
        !matches!(self, Access::Resource { .. })
    }
}

/// A configured token plus when it was added (for its verify validity window).
#[derive(Clone, Debug)]
pub(crate) struct TokenRecord {
    pub spec: TokenSpec,
    pub added_at: OffsetDateTime,
}

impl TokenRecord {
    /// Permission and account scope of a resource route. An unknown account is reported like
    /// an account the token does not cover, as Cloudflare does not reveal which ids exist.
    pub(crate) fn authorize(
        &self,
        account: &str,
        need: Permission,
        account_exists: bool,
    ) -> Result<(), ApiError> {
        let covers_account = self.spec.accounts.iter().any(|granted| granted == account);
        let permitted = match need {
            Permission::AiGatewayRead => self.spec.ai_gateway_read || self.spec.ai_gateway_edit,
            Permission::AiGatewayEdit => self.spec.ai_gateway_edit,
            Permission::LogsEdit => self.spec.logs_edit,
        };
        if permitted && covers_account && account_exists {
            Ok(())
        } else {
            Err(ApiError::authentication_error())
        }
    }

    /// The `result` of a successful verify: shaped like `fixtures/token-verify-200.json`.
    pub(crate) fn verify_result(&self) -> VerifyResult {
        let added = self.added_at.replace_nanosecond(0).unwrap_or(self.added_at);
        let (not_before, expires_on) = match self.spec.status {
            TokenStatus::Expired => (added - Duration::days(366), added - Duration::days(1)),
            TokenStatus::Active | TokenStatus::Disabled => (added, added + Duration::days(365)),
        };
        VerifyResult {
            id: self.spec.id.clone(),
            status: self.spec.status.as_str(),
            not_before: format_seconds(not_before),
            expires_on: format_seconds(expires_on),
        }
    }
}

/// `result` of the verify routes.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct VerifyResult {
    id: String,
    status: &'static str,
    not_before: String,
    expires_on: String,
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the verify routes' timestamp format.
fn format_seconds(at: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// All configured tokens by secret.
#[derive(Debug, Default)]
pub(crate) struct TokenRegistry {
    tokens: HashMap<String, TokenRecord>,
}

impl TokenRegistry {
    pub(crate) fn add(&mut self, token: &str, spec: TokenSpec, now: OffsetDateTime) {
        self.tokens.insert(
            token.to_owned(),
            TokenRecord {
                spec,
                added_at: now,
            },
        );
    }

    /// Forgets the token: it then fails exactly like a token that never existed.
    pub(crate) fn revoke(&mut self, token: &str) {
        self.tokens.remove(token);
    }

    /// Whether `token` may query the GraphQL Analytics API for `account`: `Err(401)` for an
    /// unknown or inactive token, `Err(403)` for one without *Account Analytics: Read* there.
    pub(crate) fn analytics(&self, token: &str, account: &str) -> Result<(), u16> {
        let record = self.tokens.get(token).ok_or(401u16)?;
        if record.spec.status != TokenStatus::Active {
            return Err(401);
        }
        if !record.spec.analytics_read || !record.spec.accounts.iter().any(|a| a == account) {
            return Err(403);
        }
        Ok(())
    }

    /// Authenticates `token` for `access` (see the module docs for the codes).
    pub(crate) fn authenticate(
        &self,
        token: &str,
        access: Access<'_>,
    ) -> Result<TokenRecord, ApiError> {
        let unknown = if access.is_verify() {
            ApiError::invalid_api_token
        } else {
            ApiError::invalid_access_token
        };
        let record = self.tokens.get(token).ok_or_else(unknown)?;
        match access {
            Access::Resource { .. } if record.spec.status != TokenStatus::Active => {
                return Err(ApiError::invalid_access_token());
            }
            // A token verified on the wrong route is "not found" there.
            Access::VerifyUser if record.spec.owner_account.is_some() => {
                return Err(ApiError::invalid_api_token());
            }
            Access::VerifyAccount { account }
                if record.spec.owner_account.as_deref() != Some(account) =>
            {
                return Err(ApiError::invalid_api_token());
            }
            _ => {}
        }
        Ok(record.clone())
    }
}

/// Extracts the secret from `Authorization: Bearer <token>`, or from `X-Auth-Key` when sent
/// with `X-Auth-Email` (the legacy global-key scheme; the key is looked up like a token).
pub(crate) fn credentials(headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::invalid_auth_header())?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or_else(ApiError::invalid_auth_header)?;
        let token = token.trim();
        if scheme.eq_ignore_ascii_case("bearer") && is_token_syntax(token) {
            return Ok(token.to_owned());
        }
        return Err(ApiError::invalid_auth_header());
    }
    let email = headers.get("x-auth-email").and_then(|v| v.to_str().ok());
    let key = headers.get("x-auth-key").and_then(|v| v.to_str().ok());
    match (email, key) {
        (Some(email), Some(key)) if !email.is_empty() && is_token_syntax(key) => Ok(key.to_owned()),
        _ => Err(ApiError::invalid_auth_header()),
    }
}

/// Token characters (RFC 6750 `b64token`); anything else is a garbled header.
fn is_token_syntax(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~+/=".contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use time::macros::datetime;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn parses_bearer_and_global_key_credentials() {
        assert_eq!(
            credentials(&headers(&[("authorization", "Bearer abc_DEF-123")])),
            Ok("abc_DEF-123".to_owned())
        );
        assert_eq!(
            credentials(&headers(&[("authorization", "bearer tok")])),
            Ok("tok".to_owned())
        );
        assert_eq!(
            credentials(&headers(&[
                ("x-auth-email", "a@b.c"),
                ("x-auth-key", "k123")
            ])),
            Ok("k123".to_owned())
        );
        for bad in [
            headers(&[]),
            headers(&[("authorization", "Bearer")]),
            headers(&[("authorization", "Bearer ")]),
            headers(&[("authorization", "Basic dXNlcjpwdw==")]),
            headers(&[("authorization", "Bearer two words")]),
            headers(&[("authorization", "tok")]),
            headers(&[("x-auth-key", "k123")]),
        ] {
            assert_eq!(credentials(&bad).map_err(|e| e.code()), Err(6003));
        }
    }

    #[test]
    fn token_ids_are_32_hex_and_distinct() {
        let a = TokenSpec::user(&["acct"]);
        let b = TokenSpec::account_owned("acct");
        assert_eq!(a.id.len(), 32);
        assert!(a.id.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_ne!(a.id, b.id);
        assert_eq!(b.owner_account.as_deref(), Some("acct"));
        assert_eq!(b.accounts, ["acct"]);
    }

    #[test]
    fn authentication_codes_per_route_kind() {
        let now = datetime!(2026-08-01 12:00 UTC);
        let mut registry = TokenRegistry::default();
        registry.add("user", TokenSpec::user(&["acct"]), now);
        registry.add("owned", TokenSpec::account_owned("acct"), now);
        let mut disabled = TokenSpec::user(&["acct"]);
        disabled.status = TokenStatus::Disabled;
        registry.add("disabled", disabled, now);

        let resource = Access::read("acct");
        let code = |registry: &TokenRegistry, token, access| {
            registry
                .authenticate(token, access)
                .map(|_| ())
                .map_err(|e| e.code())
        };
        assert_eq!(code(&registry, "user", resource), Ok(()));
        assert_eq!(code(&registry, "nope", resource), Err(9109));
        assert_eq!(code(&registry, "disabled", resource), Err(9109));
        assert_eq!(code(&registry, "nope", Access::VerifyUser), Err(1000));
        assert_eq!(code(&registry, "disabled", Access::VerifyUser), Ok(()));
        assert_eq!(code(&registry, "owned", Access::VerifyUser), Err(1000));
        assert_eq!(
            code(
                &registry,
                "owned",
                Access::VerifyAccount { account: "acct" }
            ),
            Ok(())
        );
        assert_eq!(
            code(
                &registry,
                "owned",
                Access::VerifyAccount { account: "other" }
            ),
            Err(1000)
        );
        assert_eq!(
            code(&registry, "user", Access::VerifyAccount { account: "acct" }),
            Err(1000)
        );

        registry.revoke("user");
        assert_eq!(code(&registry, "user", resource), Err(9109));
        assert_eq!(code(&registry, "user", Access::VerifyUser), Err(1000));
    }

    #[test]
    fn authorization_needs_permission_account_and_existence() {
        let record = |spec| TokenRecord {
            spec,
            added_at: datetime!(2026-08-01 12:00 UTC),
        };
        let reader = record(TokenSpec::user(&["acct"]));
        assert!(reader
            .authorize("acct", Permission::AiGatewayRead, true)
            .is_ok());
        assert_eq!(
            reader
                .authorize("other", Permission::AiGatewayRead, true)
                .map_err(|e| e.code()),
            Err(10000)
        );
        assert_eq!(
            reader
                .authorize("acct", Permission::AiGatewayRead, false)
                .map_err(|e| e.code()),
            Err(10000)
        );
        let mut no_permission = TokenSpec::user(&["acct"]);
        no_permission.ai_gateway_read = false;
        assert_eq!(
            record(no_permission)
                .authorize("acct", Permission::AiGatewayRead, true)
                .map_err(|e| e.code()),
            Err(10000)
        );
        // Reading needs no edit right; editing and Logpush need their own.
        assert_eq!(
            reader
                .authorize("acct", Permission::AiGatewayEdit, true)
                .map_err(|e| e.code()),
            Err(10000)
        );
        let editor = record(TokenSpec::editor(&["acct"]));
        for need in [
            Permission::AiGatewayRead,
            Permission::AiGatewayEdit,
            Permission::LogsEdit,
        ] {
            assert!(editor.authorize("acct", need, true).is_ok(), "{need:?}");
        }
    }

    #[test]
    fn verify_result_reports_status_and_window() {
        let mut spec = TokenSpec::user(&["acct"]);
        spec.id = "5d2a1c0e9f8b47a3b6e41f0c2d7a9e13".to_owned();
        let active = TokenRecord {
            spec: spec.clone(),
            added_at: datetime!(2026-08-01 00:00:00.250 UTC),
        };
        let json = serde_json::to_value(active.verify_result()).expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({
                "id": "5d2a1c0e9f8b47a3b6e41f0c2d7a9e13",
                "status": "active",
                "not_before": "2026-08-01T00:00:00Z",
                "expires_on": "2027-08-01T00:00:00Z"
            })
        );
        spec.status = TokenStatus::Expired;
        let expired = TokenRecord {
            spec,
            added_at: datetime!(2026-08-01 00:00 UTC),
        };
        let json = serde_json::to_value(expired.verify_result()).expect("serialise");
        assert_eq!(json["status"], "expired");
        assert_eq!(json["expires_on"], "2026-07-31T00:00:00Z");
    }
}
