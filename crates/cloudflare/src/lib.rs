//! A typed, rate-aware client for the Cloudflare AI Gateway API (DESIGN §1, API-NOTES §1–5).
//!
//! - [`CloudflareClient`]: token verification (user and account-owned tokens), gateways, logs,
//!   log detail and bodies; every call limited per token, timed out and retried with backoff.
//! - [`CloudflareError`]: what went wrong, in the user's words, with a hint for each case.
//! - [`types`]: tolerant wire types — unknown fields ignored, nulls and absences accepted.

mod client;
mod decode;
mod error;
pub mod limiter;
mod query;

pub mod types;

pub use client::{
    classify_failure, decode_log_page, ClientConfig, ClientStats, CloudflareClient, Direction,
    FilterOperator, LogFilter, LogPage, LogQuery, RejectedRow, RetryPolicy, DEFAULT_API_BASE,
    MAX_LOGS_PER_PAGE,
};
pub use error::CloudflareError;
pub use limiter::{RateLimitPolicy, RateLimiter};
pub use types::{
    Gateway, GatewayLog, HourlyRequests, LogBody, LogDetail, LogpushJob, TokenKind, TokenStatus,
    TokenVerification, GRAPHQL_MAX_ROWS,
};
