//! Per-token fixed-window rate limiter (API-NOTES §5, §8.8).
//!
//! Cloudflare allows 1200 requests per 5 minutes per user or account-owned token; once the
//! quota is spent every call is rejected with 429 until the window is over. A fixed window
//! (opened by the first request after the previous one expired) reproduces that "blocked for
//! the rest of the window" behaviour exactly and is easy to reason about in tests.
//!
//! Time comes from `tokio::time::Instant`, so tests running on a paused tokio clock can move
//! through windows without sleeping.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// The limiter's verdict for one request plus the data of the `Ratelimit` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateStatus {
    /// The request is over quota and must be answered with 429.
    pub limited: bool,
    /// Requests left in the current window.
    pub remaining: u32,
    /// Time until the current window ends.
    pub resets_in: Duration,
}

impl RateStatus {
    /// Seconds until the window resets, rounded up as Cloudflare does for `Retry-After`.
    pub(crate) fn reset_secs(&self) -> u64 {
        ceil_secs(self.resets_in)
    }

    /// `Retry-After` value: never 0, so a client that honours it cannot busy-loop.
    pub(crate) fn retry_after_secs(&self) -> u64 {
        self.reset_secs().max(1)
    }

    /// Value of the `Ratelimit` header: `"default";r=<remaining>;t=<seconds to reset>`.
    pub(crate) fn header_value(&self) -> String {
        format!("\"default\";r={};t={}", self.remaining, self.reset_secs())
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    opened_at: Instant,
    used: u32,
}

/// Counts requests per token in fixed windows.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    quota: u32,
    window: Duration,
    windows: HashMap<String, Window>,
}

impl RateLimiter {
    pub(crate) fn new(quota: u32, window: Duration) -> Self {
        Self {
            quota,
            window,
            windows: HashMap::new(),
        }
    }

    pub(crate) fn quota(&self) -> u32 {
        self.quota
    }

    pub(crate) fn window_secs(&self) -> u64 {
        ceil_secs(self.window)
    }

    /// Value of the `Ratelimit-Policy` header: `"default";q=<quota>;w=<window seconds>`.
    pub(crate) fn policy_header_value(&self) -> String {
        format!("\"default\";q={};w={}", self.quota, self.window_secs())
    }

    /// Counts one request of `token` at `now` and says whether it is allowed.
    pub(crate) fn check(&mut self, token: &str, now: Instant) -> RateStatus {
        let window = self.window;
        let entry = self.windows.entry(token.to_owned()).or_insert(Window {
            opened_at: now,
            used: 0,
        });
        if now.saturating_duration_since(entry.opened_at) >= window {
            *entry = Window {
                opened_at: now,
                used: 0,
            };
        }
        entry.used = entry.used.saturating_add(1);
        RateStatus {
            limited: entry.used > self.quota,
            remaining: self.quota.saturating_sub(entry.used),
            resets_in: (entry.opened_at + window).saturating_duration_since(now),
        }
    }

    /// The status reported to a caller the limiter cannot attribute to a token (missing or
    /// unknown credentials): a fresh, untouched window.
    pub(crate) fn anonymous_status(&self) -> RateStatus {
        RateStatus {
            limited: false,
            remaining: self.quota,
            resets_in: self.window,
        }
    }

    /// Drops the window of a revoked token.
    pub(crate) fn forget(&mut self, token: &str) {
        self.windows.remove(token);
    }
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_quota_then_blocks_until_the_window_ends() {
        let mut limiter = RateLimiter::new(3, Duration::from_secs(300));
        let start = Instant::now();
        for expected_remaining in [2, 1, 0] {
            let status = limiter.check("tok", start);
            assert!(!status.limited);
            assert_eq!(status.remaining, expected_remaining);
        }
        let blocked = limiter.check("tok", start + Duration::from_millis(100_500));
        assert!(blocked.limited);
        assert_eq!(blocked.remaining, 0);
        // 199.5 s left, rounded up.
        assert_eq!(blocked.retry_after_secs(), 200);
        assert_eq!(blocked.header_value(), "\"default\";r=0;t=200");

        // Still blocked just before the window closes, free again once it has.
        assert!(
            limiter
                .check("tok", start + Duration::from_millis(299_999))
                .limited
        );
        let fresh = limiter.check("tok", start + Duration::from_secs(300));
        assert!(!fresh.limited);
        assert_eq!(fresh.remaining, 2);
        assert_eq!(fresh.reset_secs(), 300);
    }

    #[test]
    fn tokens_have_independent_windows() {
        let mut limiter = RateLimiter::new(1, Duration::from_secs(10));
        let now = Instant::now();
        assert!(!limiter.check("a", now).limited);
        assert!(limiter.check("a", now).limited);
        assert!(!limiter.check("b", now).limited);
        limiter.forget("a");
        assert!(!limiter.check("a", now).limited);
    }

    #[test]
    fn retry_after_is_never_zero_and_policy_is_formatted() {
        let mut limiter = RateLimiter::new(0, Duration::from_secs(300));
        let now = Instant::now();
        let status = limiter.check("tok", now);
        assert!(status.limited);
        assert!(status.retry_after_secs() >= 1);
        assert_eq!(limiter.policy_header_value(), "\"default\";q=0;w=300");
        assert_eq!(
            limiter.anonymous_status().header_value(),
            "\"default\";r=0;t=300"
        );
    }
}
