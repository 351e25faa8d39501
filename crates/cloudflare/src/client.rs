//! The HTTP client: one method per Cloudflare call LangGuard makes, each going through the shared
//! per-token limiter, a timeout, and retries with jittered backoff for what is worth retrying.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

pub use crate::decode::{classify_failure, decode_log_page};
use crate::decode::{decode_envelope, envelope_failure, network_error, retry_after};
use crate::error::CloudflareError;
use crate::limiter::{limiter_for_token, parse_ratelimit_header, RateLimitPolicy, RateLimiter};
pub use crate::query::{Direction, FilterOperator, LogFilter, LogPage, LogQuery, RejectedRow};
use crate::types::{
    Envelope, Gateway, LogBody, LogDetail, LogpushJob, ResultInfo, TokenKind, TokenStatus,
    TokenVerification,
};

pub const DEFAULT_API_BASE: &str = "https://api.cloudflare.com/client/v4";

/// Cloudflare refuses `per_page` over 50 on the logs endpoint (it does not clamp).
pub const MAX_LOGS_PER_PAGE: u32 = 50;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A 429 asking to wait longer than this is returned to the caller instead of waited out.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(330),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub api_base: String,
    /// Limit on one HTTP exchange, body included.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub rate_limit: RateLimitPolicy,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            api_base: DEFAULT_API_BASE.to_owned(),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            rate_limit: RateLimitPolicy::default(),
        }
    }
}

/// Counters of what a client did, for sync-run records and metrics.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    rate_limit_wait_ms: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClientStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    pub retries: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Time spent waiting for the rate limit (client-side budget or Cloudflare's `Retry-After`).
    pub rate_limit_wait_ms: u64,
}

/// A client for one account and API token. Cheap to clone; clones share counters and limiter.
#[derive(Clone)]
pub struct CloudflareClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    account_id: String,
    token: String,
    retry: RetryPolicy,
    limiter: Arc<RateLimiter>,
    counters: Counters,
}

impl fmt::Debug for CloudflareClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareClient")
            .field("base", &self.inner.base.as_str())
            .field("account_id", &self.inner.account_id)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl CloudflareClient {
    pub fn new(
        config: &ClientConfig,
        account_id: &str,
        api_token: &str,
    ) -> Result<Self, CloudflareError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("langguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CloudflareError::Network(format!("could not set up HTTP: {e}")))?;
        Self::with_http(http, config, account_id, api_token)
    }

    /// Shares an existing connection pool (one per process is plenty).
    pub fn with_http(
        http: reqwest::Client,
        config: &ClientConfig,
        account_id: &str,
        api_token: &str,
    ) -> Result<Self, CloudflareError> {
        let base = Url::parse(config.api_base.trim_end_matches('/')).map_err(|e| {
            CloudflareError::Network(format!(
                "the Cloudflare API base URL {:?} is not a URL: {e}",
                config.api_base
            ))
        })?;
        if base.cannot_be_a_base() {
            return Err(CloudflareError::Network(format!(
                "the Cloudflare API base URL {:?} cannot have paths",
                config.api_base
            )));
        }
        let account_id = account_id.trim();
        if account_id.is_empty() {
            return Err(CloudflareError::NotFound {
                code: None,
                message: "the Account ID is empty".into(),
            });
        }
        let token = api_token.trim();
        if token.is_empty() {
            return Err(CloudflareError::AuthFailed {
                code: None,
                message: "the API token is empty".into(),
            });
        }
        // Cloudflare tokens are printable ASCII; anything else can't go in a header, and would
        // otherwise surface later as a baffling network error.
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CloudflareError::AuthFailed {
                code: None,
                message: "the API token contains spaces or characters that are not printable ASCII; copy it again".into(),
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                account_id: account_id.to_owned(),
                token: token.to_owned(),
                retry: config.retry.clone(),
                limiter: limiter_for_token(token, config.rate_limit),
                counters: Counters::default(),
            }),
        })
    }

    pub fn account_id(&self) -> &str {
        &self.inner.account_id
    }

    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        ClientStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            rate_limit_wait_ms: c.rate_limit_wait_ms.load(Ordering::Relaxed),
        }
    }

    /// Verifies the token, as a user token first and then as a token owned by the account,
    /// each on its own path. A token that is not `active` is an auth failure.
    pub async fn verify_token(&self) -> Result<(TokenKind, TokenVerification), CloudflareError> {
        let (kind, verification) = match self.verify_user_token().await {
            Ok(v) => (TokenKind::User, v),
            Err(
                user_err @ (CloudflareError::AuthFailed { .. }
                | CloudflareError::PermissionDenied { .. }),
            ) => match self.verify_account_token().await {
                Ok(v) => (TokenKind::Account, v),
                // Invalid on both paths: the user path's answer is the clearer one.
                Err(CloudflareError::AuthFailed { .. }) => return Err(user_err),
                Err(account_err) => return Err(account_err),
            },
            Err(e) => return Err(e),
        };
        match verification.status {
            TokenStatus::Active => Ok((kind, verification)),
            status => Err(CloudflareError::AuthFailed {
                code: None,
                message: format!(
                    "the token is {}",
                    match status {
                        TokenStatus::Disabled => "disabled",
                        TokenStatus::Expired => "expired",
                        _ => "not active",
                    }
                ),
            }),
        }
    }

    pub async fn verify_user_token(&self) -> Result<TokenVerification, CloudflareError> {
        self.get_result(&["user", "tokens", "verify"], &[]).await
    }

    pub async fn verify_account_token(&self) -> Result<TokenVerification, CloudflareError> {
        let account = self.inner.account_id.clone();
        self.get_result(&["accounts", &account, "tokens", "verify"], &[])
            .await
    }

    /// Every gateway of the account (all pages). A page shorter than asked is not the end
    /// while `total_count` says there are more: the server may serve fewer per page than
    /// `per_page` asks (a clamp the documentation does not state) and page on by its own size.
    pub async fn list_gateways(&self) -> Result<Vec<Gateway>, CloudflareError> {
        const PER_PAGE: u32 = 50;
        /// Cloudflare allows 20 gateways per account; this only bounds a misbehaving server.
        const MAX_PAGES: u32 = 1_000;
        let account = self.inner.account_id.clone();
        let mut gateways: Vec<Gateway> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for page in 1..=MAX_PAGES {
            let (batch, info): (Vec<Gateway>, _) = self
                .get_page(
                    &["accounts", &account, "ai-gateway", "gateways"],
                    &[
                        ("page", page.to_string()),
                        ("per_page", PER_PAGE.to_string()),
                    ],
                )
                .await?;
            let n = batch.len();
            let before = gateways.len();
            gateways.extend(batch.into_iter().filter(|g| seen.insert(g.id.clone())));
            let total = info.and_then(|i| i.total_count).map(|t| t.max(0) as usize);
            let done = match total {
                Some(total) => gateways.len() >= total,
                // Without a total, a short page is the last one.
                None => n < PER_PAGE as usize,
            };
            // An empty page, or one with nothing new (a server ignoring `page`), ends it too.
            if done || n == 0 || gateways.len() == before {
                break;
            }
        }
        Ok(gateways)
    }

    /// One page of a gateway's logs. `filters` go on the wire as one JSON-encoded parameter:
    /// the API silently ignores the dotted form the official SDKs send.
    pub async fn list_logs(
        &self,
        gateway: &str,
        query: &LogQuery,
    ) -> Result<LogPage, CloudflareError> {
        let account = self.inner.account_id.clone();
        let mut params = vec![
            ("page", query.page.max(1).to_string()),
            (
                "per_page",
                query.per_page.clamp(1, MAX_LOGS_PER_PAGE).to_string(),
            ),
            ("order_by", "created_at".to_owned()),
            (
                "order_by_direction",
                match query.direction {
                    Direction::Asc => "asc",
                    Direction::Desc => "desc",
                }
                .to_owned(),
            ),
        ];
        if !query.filters.is_empty() {
            let json = serde_json::to_string(&query.filters)
                .map_err(|e| CloudflareError::Decode(format!("could not encode filters: {e}")))?;
            params.push(("filters", json));
        }
        let response = self
            .send(&logs_path(&account, gateway, &[]), &params, Body::Envelope)
            .await?;
        decode_log_page(&response.body)
    }

    pub async fn get_log(&self, gateway: &str, log_id: &str) -> Result<LogDetail, CloudflareError> {
        let account = self.inner.account_id.clone();
        self.get_result(&logs_path(&account, gateway, &[log_id]), &[])
            .await
    }

    /// The stored request body, or `None` when Cloudflare kept no payload for this log.
    pub async fn get_log_request(
        &self,
        gateway: &str,
        log_id: &str,
    ) -> Result<Option<LogBody>, CloudflareError> {
        self.get_body(gateway, log_id, "request").await
    }

    /// The stored response body, or `None` when Cloudflare kept no payload for this log.
    pub async fn get_log_response(
        &self,
        gateway: &str,
        log_id: &str,
    ) -> Result<Option<LogBody>, CloudflareError> {
        self.get_body(gateway, log_id, "response").await
    }

    async fn get_body(
        &self,
        gateway: &str,
        log_id: &str,
        which: &str,
    ) -> Result<Option<LogBody>, CloudflareError> {
        let account = self.inner.account_id.clone();
        match self
            .send(
                &logs_path(&account, gateway, &[log_id, which]),
                &[],
                Body::Raw,
            )
            .await
        {
            Ok(response) => Ok(Some(LogBody {
                content_type: response
                    .headers
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                bytes: response.body,
            })),
            // Listed logs may have no stored payload (`cf-aig-collect-log-payload: false`):
            // 404 with code 7002. Any other 404 (no such gateway or route) is a real error.
            Err(CloudflareError::NotFound {
                code: Some(7002), ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The gateway object as Cloudflare returns it, every field kept: a settings update is a
    /// full replacement, so what LangGuard does not change must go back as it came.
    pub async fn gateway_settings(
        &self,
        gateway: &str,
    ) -> Result<serde_json::Value, CloudflareError> {
        let account = self.inner.account_id.clone();
        self.get_result(
            &["accounts", &account, "ai-gateway", "gateways", gateway],
            &[],
        )
        .await
    }

    /// `PUT …/ai-gateway/gateways/{id}` (needs *AI Gateway: Edit*); returns the updated gateway.
    pub async fn update_gateway(
        &self,
        gateway: &str,
        settings: &serde_json::Value,
    ) -> Result<serde_json::Value, CloudflareError> {
        let account = self.inner.account_id.clone();
        self.write_result(
            Method::Put,
            &["accounts", &account, "ai-gateway", "gateways", gateway],
            settings,
        )
        .await
    }

    /// The account's Logpush jobs (needs *Logs: Edit*, Cloudflare's "Logs Write").
    pub async fn list_logpush_jobs(&self) -> Result<Vec<LogpushJob>, CloudflareError> {
        let account = self.inner.account_id.clone();
        let response = self
            .send(
                &["accounts", &account, "logpush", "jobs"],
                &[],
                Body::Envelope,
            )
            .await?;
        let envelope: Envelope<Vec<LogpushJob>> = decode_envelope(&response.body)?;
        Ok(envelope.result.unwrap_or_default())
    }

    /// Creates a Logpush job. Cloudflare first sends an HTTP destination a small validation
    /// upload and refuses the job when it is not accepted.
    pub async fn create_logpush_job(
        &self,
        job: &serde_json::Value,
    ) -> Result<LogpushJob, CloudflareError> {
        let account = self.inner.account_id.clone();
        self.write_result(
            Method::Post,
            &["accounts", &account, "logpush", "jobs"],
            job,
        )
        .await
    }

    pub async fn update_logpush_job(
        &self,
        job_id: i64,
        changes: &serde_json::Value,
    ) -> Result<LogpushJob, CloudflareError> {
        let account = self.inner.account_id.clone();
        let id = job_id.to_string();
        self.write_result(
            Method::Put,
            &["accounts", &account, "logpush", "jobs", &id],
            changes,
        )
        .await
    }

    /// Requests per gateway and hour of the account as Cloudflare's GraphQL Analytics API
    /// counts them (`aiGatewayRequestsAdaptiveGroups`, needs *Account Analytics: Read*), for
    /// the hours starting within `[from_ms, to_ms]`. One query covers up to 32 days and 10,000
    /// gateway-hours; the counts lag minutes behind and busy hours are sampled (API-NOTES §6).
    pub async fn hourly_request_counts(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<crate::types::HourlyRequests>, CloudflareError> {
        const QUERY: &str = "query LangGuardCoverage($accountTag: string!, $start: Time!, \
            $end: Time!, $limit: uint64!) { viewer { accounts(filter: {accountTag: $accountTag}) \
            { aiGatewayRequestsAdaptiveGroups(limit: $limit, filter: {datetimeHour_geq: $start, \
            datetimeHour_leq: $end}, orderBy: [datetimeHour_ASC]) { count dimensions { gateway \
            datetimeHour } } } } }";
        let hour = |ms: i64| {
            langguard_clock::format_ms(ms - ms.rem_euclid(3_600_000)).replace(".000Z", "Z")
        };
        let payload = serde_json::json!({
            "query": QUERY,
            "variables": {
                "accountTag": self.inner.account_id,
                "start": hour(from_ms),
                "end": hour(to_ms),
                "limit": crate::types::GRAPHQL_MAX_ROWS,
            },
        });
        let body = serde_json::to_vec(&payload)
            .map_err(|e| CloudflareError::Decode(format!("could not encode the query: {e}")))?;
        let response = self
            .send_request(&["graphql"], &[], Body::Raw, Some((Method::Query, body)))
            .await?;
        crate::decode::decode_hourly_requests(&response.body)
    }

    async fn write_result<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        payload: &serde_json::Value,
    ) -> Result<T, CloudflareError> {
        let body = serde_json::to_vec(payload)
            .map_err(|e| CloudflareError::Decode(format!("could not encode the request: {e}")))?;
        let response = self
            .send_request(path, &[], Body::Envelope, Some((method, body)))
            .await?;
        let envelope: Envelope<T> = decode_envelope(&response.body)?;
        envelope
            .result
            .ok_or_else(|| CloudflareError::Decode("the response has no `result`".into()))
    }

    async fn get_result<T: DeserializeOwned>(
        &self,
        path: &[&str],
        params: &[(&str, String)],
    ) -> Result<T, CloudflareError> {
        let response = self.send(path, params, Body::Envelope).await?;
        let envelope: Envelope<T> = decode_envelope(&response.body)?;
        envelope
            .result
            .ok_or_else(|| CloudflareError::Decode("the response has no `result`".into()))
    }

    async fn get_page<T: DeserializeOwned>(
        &self,
        path: &[&str],
        params: &[(&str, String)],
    ) -> Result<(Vec<T>, Option<ResultInfo>), CloudflareError> {
        let response = self.send(path, params, Body::Envelope).await?;
        let envelope: Envelope<Vec<T>> = decode_envelope(&response.body)?;
        Ok((envelope.result.unwrap_or_default(), envelope.result_info))
    }

    fn url(&self, path: &[&str], params: &[(&str, String)]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        if !params.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    async fn send(
        &self,
        path: &[&str],
        params: &[(&str, String)],
        body: Body,
    ) -> Result<RawResponse, CloudflareError> {
        self.send_request(path, params, body, None).await
    }

    /// One call with limiter, retries and error mapping. Returns a 2xx response whose envelope
    /// (if it has one) did not say `success: false`. A GET or PUT is retried on any retryable
    /// failure; a POST only on 429, when Cloudflare certainly did not act on it — a POST whose
    /// answer was lost might have created something, and must not create it twice.
    async fn send_request(
        &self,
        path: &[&str],
        params: &[(&str, String)],
        body: Body,
        write: Option<(Method, Vec<u8>)>,
    ) -> Result<RawResponse, CloudflareError> {
        let url = self.url(path, params);
        let retry = &self.inner.retry;
        let counters = &self.inner.counters;
        let mut attempt = 1u32;
        loop {
            let waited = self.inner.limiter.acquire().await;
            counters
                .rate_limit_wait_ms
                .fetch_add(waited.as_millis() as u64, Ordering::Relaxed);
            counters.requests.fetch_add(1, Ordering::Relaxed);
            let error = match self.attempt(&url, body, write.as_ref()).await {
                Ok(response) => return Ok(response),
                Err(e) => e,
            };
            let may_repeat = !matches!(write, Some((Method::Post, _)))
                || matches!(error, CloudflareError::RateLimited { .. });
            if let CloudflareError::RateLimited { retry_after } = &error {
                // Every caller of this token holds off, even when this call gives up now.
                counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                self.inner
                    .limiter
                    .pause_for(*retry_after + jitter(retry.base_delay));
            }
            if !error.is_retryable() || !may_repeat || attempt >= retry.max_attempts {
                return Err(error);
            }
            let delay = match &error {
                CloudflareError::RateLimited { retry_after } => {
                    if *retry_after > retry.max_rate_limit_wait {
                        return Err(error);
                    }
                    // `acquire` sleeps out the pause set above, and counts it as a wait.
                    Duration::ZERO
                }
                _ => backoff(retry, attempt),
            };
            tracing::debug!(
                url.path = url.path(),
                attempt,
                error = %error,
                delay_ms = delay.as_millis() as u64,
                "retrying Cloudflare call"
            );
            counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        url: &Url,
        kind: Body,
        write: Option<&(Method, Vec<u8>)>,
    ) -> Result<RawResponse, CloudflareError> {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", self.inner.token))
            .map_err(|_| CloudflareError::AuthFailed {
                code: None,
                message: "the API token cannot be sent in a header".into(),
            })?;
        // Keeps the token out of any debug output of the request.
        authorization.set_sensitive(true);
        let request = match write {
            None => self.inner.http.get(url.clone()),
            Some((method, payload)) => {
                let request = match method {
                    Method::Put => self.inner.http.put(url.clone()),
                    Method::Post | Method::Query => self.inner.http.post(url.clone()),
                };
                request
                    .header(CONTENT_TYPE, "application/json")
                    .body(payload.clone())
            }
        };
        let response = request
            .header(AUTHORIZATION, authorization)
            .send()
            .await
            .map_err(network_error)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(network_error)?.to_vec();
        self.observe_rate_limit_headers(&headers);
        if (200..300).contains(&status) {
            // Cloudflare can report failure inside a 200; look before trusting it. A stored
            // request or response body is the customer's data, never an envelope to obey.
            if kind == Body::Envelope {
                if let Some(errors) = envelope_failure(&body) {
                    return Err(classify_failure(status, &errors, retry_after(&headers)));
                }
            }
            return Ok(RawResponse { headers, body });
        }
        let errors = serde_json::from_slice::<Envelope<serde::de::IgnoredAny>>(&body)
            .map(|e| e.errors)
            .unwrap_or_default();
        Err(classify_failure(status, &errors, retry_after(&headers)))
    }

    /// `Ratelimit: …;r=<remaining>;t=<reset>` is Cloudflare's own count, which includes the
    /// dashboard and other tools spending the same user's budget: when it is nearly spent,
    /// every caller of this token holds off until the reset rather than earn a 5-minute block.
    fn observe_rate_limit_headers(&self, headers: &HeaderMap) {
        const RESERVE: u64 = 2;
        if let Some((remaining, reset)) = headers
            .get("ratelimit")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_ratelimit_header)
        {
            if remaining <= RESERVE && reset > 0 {
                self.inner.limiter.pause_for(Duration::from_secs(reset));
            }
        }
    }
}

/// `accounts/{account}/ai-gateway/gateways/{gateway}/logs[/…]`.
fn logs_path<'a>(account: &'a str, gateway: &'a str, tail: &[&'a str]) -> Vec<&'a str> {
    let mut path = vec![
        "accounts",
        account,
        "ai-gateway",
        "gateways",
        gateway,
        "logs",
    ];
    path.extend_from_slice(tail);
    path
}

/// The methods besides GET LangGuard uses: writes (push setup), and GraphQL queries — a POST
/// that only reads, so it is retried like a GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Put,
    Post,
    Query,
}

struct RawResponse {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// What a successful response carries: a v4 envelope, or a raw stored body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Envelope,
    Raw,
}

/// Exponential backoff with full jitter: spreads retries of many callers apart.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(policy.max_delay);
    Duration::from_secs_f64(rand::thread_rng().gen_range(0.5..=1.0) * exp.as_secs_f64())
}

fn jitter(max: Duration) -> Duration {
    Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..=1.0) * max.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        assert!(backoff(&p, 1) <= Duration::from_millis(100));
        assert!(backoff(&p, 20) <= Duration::from_secs(1));
        assert!(backoff(&p, 20) >= Duration::from_millis(500));
    }

    #[test]
    fn filters_are_one_json_parameter() {
        let config = ClientConfig {
            api_base: "http://127.0.0.1:1/client/v4".into(),
            ..ClientConfig::default()
        };
        let client = CloudflareClient::new(&config, "acct", "tok").expect("client");
        let filters = serde_json::to_string(&[LogFilter::created_after(0)]).expect("json");
        let url = client.url(&["accounts", "acct", "logs"], &[("filters", filters)]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/client/v4/accounts/acct/logs?filters=%5B%7B%22key%22%3A%22created_at%22%2C%22operator%22%3A%22gt%22%2C%22value%22%3A%5B%221970-01-01T00%3A00%3A00.000Z%22%5D%7D%5D"
        );
        assert!(!format!("{client:?}").contains("tok\""));
    }
}
