//! Fault injection: deterministic 429 storms, 5xx errors, latency, cut connections and late
//! log visibility, so an importer's retry and resume logic can be tested without a real outage.

use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Faults the emulator injects from now on. Counters (`*_next`) count down as they fire;
/// [`crate::Emulator::faults`] reports what is left.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// The next N API requests get 429 / 10100 with `Retry-After: retry_after_secs`.
    pub rate_limit_next: u32,
    /// `Retry-After` of injected 429s; 0 means 1.
    pub retry_after_secs: u64,
    /// The next N API requests get a 5xx (cycling 500, 502, 503) with a v4 failure envelope.
    pub server_error_next: u32,
    /// Probability (seeded RNG) that any API request gets a 5xx.
    pub server_error_rate: f64,
    /// Added before every response.
    pub latency: Duration,
    /// The next N successful list-logs responses send status 200, headers and part of the
    /// JSON body, then break the connection.
    pub cut_connection_next: u32,
    /// Live-traffic logs become visible to list calls only this long after their `created_at`.
    pub visibility_delay: Duration,
    /// The next N list-logs responses hold only the first half of their page's rows, with the
    /// full `total_count` (a partial response, a silent server-side cap).
    pub short_page_next: u32,
    /// Before answering each list-logs call, delete this many of the gateway's logs, spread
    /// evenly through them (someone pressing "Delete logs" while an import pages).
    pub delete_on_list: usize,
    /// List-logs calls that filter on one of these keys get 400 / 7001, as from an API that
    /// no longer accepts a filter.
    pub reject_filter_keys: Vec<String>,
}

/// A fault chosen for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InjectedFault {
    RateLimit { retry_after_secs: u64 },
    ServerError(StatusCode),
}

const SERVER_ERROR_CYCLE: [StatusCode; 3] = [
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
];

/// The active [`Faults`] plus the state needed to fire them reproducibly.
#[derive(Debug)]
pub(crate) struct FaultInjector {
    faults: Faults,
    rng: SmallRng,
    /// Seeds tie orders; apart from `rng` so it never shifts the 5xx sequence.
    tie_rng: SmallRng,
    next_server_error: usize,
}

impl FaultInjector {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            faults: Faults::default(),
            rng: SmallRng::seed_from_u64(seed),
            tie_rng: SmallRng::seed_from_u64(seed ^ 0x7469_6573),
            next_server_error: 0,
        }
    }

    /// Replaces the active faults. The 5xx cycle restarts so `server_error_next: 3` always
    /// yields 500, 502, 503; the RNG keeps its position so a run stays one seeded sequence.
    pub(crate) fn set(&mut self, faults: Faults) {
        self.faults = faults;
        self.next_server_error = 0;
    }

    pub(crate) fn current(&self) -> Faults {
        self.faults.clone()
    }

    pub(crate) fn latency(&self) -> Duration {
        self.faults.latency
    }

    pub(crate) fn visibility_delay(&self) -> Duration {
        self.faults.visibility_delay
    }

    /// Whether a `filters` parameter names a key the faults reject.
    pub(crate) fn rejects_filters(&self, raw: Option<&str>) -> bool {
        let Some(filters) = raw.and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        else {
            return false;
        };
        filters.as_array().is_some_and(|all| {
            all.iter().any(|f| {
                f["key"]
                    .as_str()
                    .is_some_and(|k| self.faults.reject_filter_keys.iter().any(|r| r == k))
            })
        })
    }

    /// How many logs to delete before this list call.
    pub(crate) fn delete_on_list(&self) -> usize {
        self.faults.delete_on_list
    }

    /// Consumes one queued short page, if any.
    pub(crate) fn take_short_page(&mut self) -> bool {
        if self.faults.short_page_next > 0 {
            self.faults.short_page_next -= 1;
            true
        } else {
            false
        }
    }

    /// A fresh seed for one listing's tie order.
    pub(crate) fn tie_seed(&mut self) -> u64 {
        self.tie_rng.gen()
    }

    /// Decides the injected fault (if any) for one API request: queued 429s first, then
    /// queued 5xx, then the random 5xx rate.
    pub(crate) fn next_fault(&mut self) -> Option<InjectedFault> {
        if self.faults.rate_limit_next > 0 {
            self.faults.rate_limit_next -= 1;
            return Some(InjectedFault::RateLimit {
                retry_after_secs: self.faults.retry_after_secs.max(1),
            });
        }
        if self.faults.server_error_next > 0 {
            self.faults.server_error_next -= 1;
            return Some(InjectedFault::ServerError(self.cycle_server_error()));
        }
        let rate = self.faults.server_error_rate;
        // The RNG is only consulted when a rate is set, so enabling other faults does not
        // shift the random sequence.
        if rate > 0.0 && self.rng.gen_bool(rate.min(1.0)) {
            return Some(InjectedFault::ServerError(self.cycle_server_error()));
        }
        None
    }

    /// Consumes one queued cut connection, if any.
    pub(crate) fn take_cut_connection(&mut self) -> bool {
        if self.faults.cut_connection_next > 0 {
            self.faults.cut_connection_next -= 1;
            true
        } else {
            false
        }
    }

    fn cycle_server_error(&mut self) -> StatusCode {
        let status = SERVER_ERROR_CYCLE[self.next_server_error % SERVER_ERROR_CYCLE.len()];
        self.next_server_error = self.next_server_error.wrapping_add(1);
        status
    }
}

/// How long the truncated body stays open before the connection breaks. The pause lets the
/// server flush status, headers and the first bytes, so the client sees a 200 whose body
/// stream fails — not a connection refused before any response.
const CUT_CONNECTION_PAUSE: Duration = Duration::from_millis(25);

/// A `200 application/json` response that sends the first half of `body` and then fails its
/// body stream, which makes the HTTP server abort the connection mid-body.
pub(crate) fn cut_connection_response(body: Vec<u8>) -> Response {
    let body = Bytes::from(body);
    let sent = body.slice(..body.len() / 2);
    let chunks = stream::iter([Ok::<Bytes, io::Error>(sent)]).chain(stream::once(async {
        tokio::time::sleep(CUT_CONNECTION_PAUSE).await;
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "emulated connection cut (Faults::cut_connection_next)",
        ))
    }));
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(chunks),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_faults_fire_in_order_and_count_down() {
        let mut injector = FaultInjector::new(1);
        injector.set(Faults {
            rate_limit_next: 1,
            server_error_next: 4,
            cut_connection_next: 1,
            ..Faults::default()
        });
        assert_eq!(
            injector.next_fault(),
            Some(InjectedFault::RateLimit {
                retry_after_secs: 1
            })
        );
        let statuses: Vec<_> = (0..4).filter_map(|_| injector.next_fault()).collect();
        assert_eq!(
            statuses,
            [500, 502, 503, 500].map(|code| InjectedFault::ServerError(
                StatusCode::from_u16(code).expect("valid status")
            ))
        );
        assert_eq!(injector.next_fault(), None);
        assert!(injector.take_cut_connection());
        assert!(!injector.take_cut_connection());
        assert_eq!(injector.current().server_error_next, 0);
    }

    #[test]
    fn random_server_errors_follow_the_seed() {
        let run = |seed| {
            let mut injector = FaultInjector::new(seed);
            injector.set(Faults {
                server_error_rate: 0.3,
                ..Faults::default()
            });
            (0..200)
                .map(|_| injector.next_fault().is_some())
                .collect::<Vec<_>>()
        };
        let first = run(7);
        assert_eq!(first, run(7));
        let hits = first.iter().filter(|hit| **hit).count();
        assert!((30..=90).contains(&hits), "{hits} hits for rate 0.3");
    }
}
