//! The one error type of the Cloudflare client, in the user's words: each variant is a different
//! thing for a person (or the sync engine) to do next.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum CloudflareError {
    /// The token is invalid, revoked, expired or malformed.
    #[error("Cloudflare rejected the API token ({code_text}{message})", code_text = code_prefix(*code))]
    AuthFailed { code: Option<i64>, message: String },
    /// The token is valid but lacks *AI Gateway: Read*, or does not cover this account.
    #[error("the API token is not allowed to do this ({code_text}{message})", code_text = code_prefix(*code))]
    PermissionDenied { code: Option<i64>, message: String },
    /// The account, gateway, log or route does not exist.
    #[error("not found on Cloudflare ({code_text}{message})", code_text = code_prefix(*code))]
    NotFound { code: Option<i64>, message: String },
    /// Cloudflare refused the request's parameters.
    #[error("Cloudflare refused the request as invalid ({code_text}{message})", code_text = code_prefix(*code))]
    Validation { code: Option<i64>, message: String },
    /// Over the API rate limit; Cloudflare asks to wait this long.
    #[error("rate limited by Cloudflare; retry in {} s", retry_after.as_secs_f64().ceil())]
    RateLimited { retry_after: Duration },
    /// Cloudflare answered with a server error (or an unexpected status).
    #[error("Cloudflare answered HTTP {status} ({code_text}{message})", code_text = code_prefix(*code))]
    Upstream {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// The request did not complete: connection refused or cut, DNS, TLS or timeout.
    #[error("could not reach Cloudflare: {0}")]
    Network(String),
    /// Cloudflare's answer could not be understood.
    #[error("could not understand Cloudflare's response: {0}")]
    Decode(String),
}

fn code_prefix(code: Option<i64>) -> String {
    code.map(|c| format!("code {c}: ")).unwrap_or_default()
}

impl CloudflareError {
    /// Worth trying again after a pause: rate limits, server errors and broken connections.
    /// Auth, permission, not-found and validation errors will fail the same way again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CloudflareError::RateLimited { .. }
                | CloudflareError::Upstream { .. }
                | CloudflareError::Network(_)
        )
    }

    /// A stable snake_case name: the error code the API, the web UI and the CLI report for a
    /// failed connection test (DESIGN's `/integrations/test`).
    pub fn kind(&self) -> &'static str {
        match self {
            CloudflareError::AuthFailed { .. } => "auth_failed",
            CloudflareError::PermissionDenied { .. } => "permission_denied",
            CloudflareError::NotFound { .. } => "account_not_found",
            CloudflareError::Validation { .. } => "invalid_request",
            CloudflareError::RateLimited { .. } => "rate_limited",
            CloudflareError::Upstream { .. } => "upstream_error",
            CloudflareError::Network(_) => "unreachable",
            CloudflareError::Decode(_) => "invalid_response",
        }
    }

    /// What a person can do about it, in the product's troubleshooting words.
    pub fn hint(&self) -> &'static str {
        match self {
            CloudflareError::AuthFailed { .. } => {
                "Confirm the API token hasn't been revoked or expired, and that it was copied whole."
            }
            CloudflareError::PermissionDenied { .. } => {
                "Check that the API token has AI Gateway read permissions and includes this account."
            }
            CloudflareError::NotFound { .. } => {
                "Check the Account ID (Cloudflare dashboard → Account home → Account ID) and that the gateway still exists."
            }
            CloudflareError::Validation { .. } => {
                "Cloudflare refused the request's parameters; this is likely a LangGuard bug worth reporting."
            }
            CloudflareError::RateLimited { .. } => {
                "Cloudflare allows 1,200 API requests per 5 minutes per user or token; raise the sync interval or wait for the limit to reset."
            }
            CloudflareError::Upstream { .. } => {
                "Cloudflare's API is having trouble; the next sync will retry. Check https://www.cloudflarestatus.com if it persists."
            }
            CloudflareError::Network(_) => {
                "Check that this machine can reach the Cloudflare API (DNS, proxy, firewall) and that the API base URL is right."
            }
            CloudflareError::Decode(_) => {
                "Cloudflare sent a response LangGuard could not read; the next sync will try again. Report it if it persists."
            }
        }
    }
}
