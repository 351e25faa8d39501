//! Client-side rate limiting, shared by every caller that uses the same API token.
//!
//! Cloudflare allows 1,200 requests per 5 minutes per user or account-owned token, and once over
//! it blocks *all* calls for five minutes. So the limiter is a sliding window log: a burst of the
//! whole quota may go at once, but no window of `window` length ever holds more than `quota`
//! requests, whatever its alignment. On top of that, Cloudflare's own signals (`Retry-After` on a
//! 429, `Ratelimit: r=0;t=N`) pause every caller of the token until the stated time.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitPolicy {
    pub quota: u32,
    pub window: Duration,
}

impl Default for RateLimitPolicy {
    /// Cloudflare's documented limit, less a margin for the dashboard and other tools that
    /// share a user's budget.
    fn default() -> Self {
        Self {
            quota: 1_100,
            window: Duration::from_secs(300),
        }
    }
}

#[derive(Debug)]
struct State {
    sent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

#[derive(Debug)]
pub struct RateLimiter {
    policy: RateLimitPolicy,
    state: Mutex<State>,
}

impl RateLimiter {
    pub fn new(policy: RateLimitPolicy) -> Self {
        Self {
            policy: RateLimitPolicy {
                quota: policy.quota.max(1),
                window: policy.window,
            },
            state: Mutex::new(State {
                sent: VecDeque::new(),
                blocked_until: None,
            }),
        }
    }

    pub fn policy(&self) -> RateLimitPolicy {
        self.policy
    }

    /// Waits until a request may be sent and records it. Returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let started = Instant::now();
        loop {
            let wait = {
                let mut state = self.lock();
                let now = Instant::now();
                match state.blocked_until {
                    Some(until) if until > now => Some(until - now),
                    _ => {
                        state.blocked_until = None;
                        while state
                            .sent
                            .front()
                            .is_some_and(|t| now.duration_since(*t) >= self.policy.window)
                        {
                            state.sent.pop_front();
                        }
                        if state.sent.len() < self.policy.quota as usize {
                            state.sent.push_back(now);
                            None
                        } else {
                            // Full: the oldest request leaves the window first.
                            state.sent.front().map(|oldest| {
                                (*oldest + self.policy.window).saturating_duration_since(now)
                            })
                        }
                    }
                }
            };
            match wait {
                None => return started.elapsed(),
                Some(d) => tokio::time::sleep(d.max(Duration::from_millis(1))).await,
            }
        }
    }

    /// Pauses every caller for `duration` (Cloudflare said so: a 429's `Retry-After`, or a
    /// `Ratelimit` header with nothing remaining).
    pub fn pause_for(&self, duration: Duration) {
        let until = Instant::now() + duration;
        let mut state = self.lock();
        if state.blocked_until.is_none_or(|current| current < until) {
            state.blocked_until = Some(until);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a queue of instants; a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The process-wide limiter of a token. Keyed by a hash so the registry holds no token text.
pub fn limiter_for_token(token: &str, policy: RateLimitPolicy) -> Arc<RateLimiter> {
    static REGISTRY: OnceLock<Mutex<HashMap<u64, Arc<RateLimiter>>>> = OnceLock::new();
    let mut hasher = DefaultHasher::new();
    token.hash(&mut hasher);
    let key = hasher.finish();
    let mut registry = REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    registry
        .entry(key)
        .or_insert_with(|| Arc::new(RateLimiter::new(policy)))
        .clone()
}

/// Parses Cloudflare's `Ratelimit: "default";r=<remaining>;t=<seconds to reset>` header.
pub fn parse_ratelimit_header(value: &str) -> Option<(u64, u64)> {
    let mut remaining = None;
    let mut reset = None;
    for part in value.split(';') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("r=") {
            remaining = v.trim().parse().ok();
        } else if let Some(v) = part.strip_prefix("t=") {
            reset = v.trim().parse().ok();
        }
    }
    Some((remaining?, reset?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_the_quota_goes_at_once_then_the_window_holds() {
        let limiter = RateLimiter::new(RateLimitPolicy {
            quota: 3,
            window: Duration::from_secs(10),
        });
        for _ in 0..3 {
            assert_eq!(limiter.acquire().await, Duration::ZERO);
        }
        let waited = limiter.acquire().await;
        assert!(waited >= Duration::from_secs(10), "waited {waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller() {
        let limiter = Arc::new(RateLimiter::new(RateLimitPolicy {
            quota: 100,
            window: Duration::from_secs(10),
        }));
        limiter.pause_for(Duration::from_secs(7));
        let other = limiter.clone();
        let a = tokio::spawn(async move { other.acquire().await });
        let b = limiter.acquire().await;
        assert!(b >= Duration::from_secs(7));
        assert!(a.await.expect("task") >= Duration::from_secs(7));
    }

    #[test]
    fn the_ratelimit_header_is_read() {
        assert_eq!(
            parse_ratelimit_header("\"default\";r=0;t=42"),
            Some((0, 42))
        );
        assert_eq!(
            parse_ratelimit_header("\"default\";r=17; t=3"),
            Some((17, 3))
        );
        assert_eq!(parse_ratelimit_header("garbage"), None);
    }

    #[test]
    fn one_limiter_per_token() {
        let policy = RateLimitPolicy::default();
        let a = limiter_for_token("token-a-limiter-test", policy);
        let b = limiter_for_token("token-a-limiter-test", policy);
        let c = limiter_for_token("token-c-limiter-test", policy);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
