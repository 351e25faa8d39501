//! Emulator configuration: the knobs a test or the demo binary sets once at start-up.

use std::time::Duration;

/// Sort direction of a list call (`order_by_direction` / deprecated `direction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Oldest / smallest first.
    Asc,
    /// Newest / largest first. Cloudflare's own MCP server and live reports suggest this is the
    /// real default, so the emulator starts with it (API-NOTES §1.1, §8.4).
    #[default]
    Desc,
}

impl Direction {
    /// Parses the wire value (`asc` / `desc`, exact lowercase as the API documents it).
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        match raw {
            "asc" => Some(Self::Asc),
            "desc" => Some(Self::Desc),
            _ => None,
        }
    }
}

/// Static configuration of one [`crate::Emulator`].
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Requests a token may make per `rate_limit_window` (Cloudflare: 1200).
    pub rate_limit_quota: u32,
    /// Length of the fixed rate-limit window (Cloudflare: 300 s).
    pub rate_limit_window: Duration,
    /// Largest accepted `per_page` on the gateways list (SPEC-2024: 100).
    pub gateways_max_per_page: u32,
    /// When set, the gateways list silently serves at most this many per page, whatever
    /// `per_page` asked (a server-side clamp below the client's page size).
    pub gateways_clamp_per_page: Option<u32>,
    /// Smallest `per_page` the logs list accepts (live: 1; SPEC-2024 documents 5).
    pub logs_min_per_page: u32,
    /// Keep time finer than the milliseconds `created_at` shows (Cloudflare may): every log
    /// then sits a fraction of a millisecond after its shown time, so `created_at gt X`
    /// also lists logs shown at exactly X.
    pub sub_millisecond_time: bool,
    /// Direction used when a list call sends neither `order_by_direction` nor `direction`.
    pub default_order_direction: Direction,
    /// Seed of every random choice the emulator makes on its own (faults, appended and live
    /// logs), so a test run is reproducible.
    pub seed: u64,
    /// How often a serving emulator delivers queued pushes; `None`: only when a test calls
    /// `Emulator::flush_pushes`.
    pub push_interval: Option<Duration>,
    /// Deliveries in flight at once.
    pub push_concurrency: usize,
    /// First retry delay of a failed delivery (doubling per attempt).
    pub push_retry_delay: Duration,
    /// Longest wait between attempts, `Retry-After` included.
    pub push_retry_max_delay: Duration,
    /// Attempts per delivery, the first included, before it is given up (and counted in
    /// `Stats::push_failures`).
    pub push_max_attempts: u32,
    /// Accept `http://` push destinations (loopback tests). Cloudflare pushes over HTTPS only.
    pub allow_http_push: bool,
    /// Endpoint of the S3-compatible store `r2://` Logpush destinations write to (Cloudflare:
    /// `https://<account>.r2.cloudflarestorage.com`).
    pub r2_endpoint: Option<String>,
    /// List logs sharing a `created_at` in an order that changes from call to call (the API
    /// promises no tie-break), so offset pages through such a group may repeat and skip rows.
    pub unstable_tie_order: bool,
    /// GraphQL analytics count a request only this long after it happened (Cloudflare's
    /// ingestion lag: 139–365 s typical, once more than 14 minutes).
    pub analytics_lag: Duration,
    /// Hours of a gateway with more requests than this are sampled: their count is off by up
    /// to `analytics_sampling_error` (a fraction), as adaptive datasets' sample-corrected
    /// counts are.
    pub analytics_sampled_above: u64,
    pub analytics_sampling_error: f64,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            rate_limit_quota: 1200,
            rate_limit_window: Duration::from_secs(300),
            gateways_max_per_page: 100,
            gateways_clamp_per_page: None,
            logs_min_per_page: 1,
            sub_millisecond_time: false,
            default_order_direction: Direction::Desc,
            seed: 42,
            push_interval: Some(Duration::from_secs(1)),
            push_concurrency: 4,
            push_retry_delay: Duration::from_millis(500),
            push_retry_max_delay: Duration::from_secs(30),
            push_max_attempts: 12,
            allow_http_push: false,
            r2_endpoint: None,
            unstable_tie_order: false,
            analytics_lag: Duration::ZERO,
            analytics_sampled_above: 10_000,
            analytics_sampling_error: 0.0,
        }
    }
}
