//! Request counters that tests read to assert how a client behaved (how many pages it fetched,
//! whether it backed off, …).

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the emulator's counters since start or the last [`crate::Emulator::reset_stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every HTTP request the emulator answered, routed or not.
    pub requests: u64,
    /// Calls to either token-verify route.
    pub verify_calls: u64,
    /// Calls to `GET …/ai-gateway/gateways`.
    pub list_gateways_calls: u64,
    /// Calls to `GET …/gateways/{gw}`.
    pub get_gateway_calls: u64,
    /// Every request to `GET …/logs`, including rejected ones.
    pub list_logs_calls: u64,
    /// Calls to `GET …/logs/{id}`.
    pub get_log_calls: u64,
    /// Calls to `GET …/logs/{id}/request` or `…/response`.
    pub body_calls: u64,
    /// Responses sent with status 429 (rate limiter and injected).
    pub rate_limited: u64,
    /// Injected 5xx responses.
    pub server_errors: u64,
    /// Calls to `PUT …/gateways/{gw}`.
    pub update_gateway_calls: u64,
    /// Calls to the Logpush job routes.
    pub logpush_job_calls: u64,
    /// Push deliveries made (OTLP requests and Logpush files), duplicates not counted.
    pub push_deliveries: u64,
    /// HTTP requests or bucket writes of pushes, retries and duplicates included.
    pub push_attempts: u64,
    pub push_retries: u64,
    /// Deliveries sent a second time on purpose (`PushFaults::duplicate_every`).
    pub push_duplicates: u64,
    /// Deliveries given up on.
    pub push_failures: u64,
    /// Logpush validation uploads sent when HTTP jobs were created.
    pub validation_uploads: u64,
    /// Calls to `POST /client/v4/graphql`.
    pub graphql_calls: u64,
}

/// Which route a request hit; decides the per-endpoint counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Verify,
    ListGateways,
    GetGateway,
    UpdateGateway,
    LogpushJobs,
    ListLogs,
    GetLog,
    Body,
    Graphql,
    /// `DELETE …/logs`: counted in `requests` only.
    DeleteLogs,
    /// `PATCH …/logs/{id}`: counted in `requests` only.
    PatchLog,
    /// The 404 fallback: counted in `requests` only.
    Unrouted,
}

/// Lock-free counters shared by all request handlers.
#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    requests: AtomicU64,
    verify_calls: AtomicU64,
    list_gateways_calls: AtomicU64,
    get_gateway_calls: AtomicU64,
    list_logs_calls: AtomicU64,
    get_log_calls: AtomicU64,
    body_calls: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    update_gateway_calls: AtomicU64,
    logpush_job_calls: AtomicU64,
    graphql_calls: AtomicU64,
}

impl StatsCounters {
    pub(crate) fn record_request(&self, endpoint: Endpoint) {
        bump(&self.requests);
        let counter = match endpoint {
            Endpoint::Verify => &self.verify_calls,
            Endpoint::ListGateways => &self.list_gateways_calls,
            Endpoint::GetGateway => &self.get_gateway_calls,
            Endpoint::UpdateGateway => &self.update_gateway_calls,
            Endpoint::LogpushJobs => &self.logpush_job_calls,
            Endpoint::ListLogs => &self.list_logs_calls,
            Endpoint::GetLog => &self.get_log_calls,
            Endpoint::Body => &self.body_calls,
            Endpoint::Graphql => &self.graphql_calls,
            Endpoint::Unrouted | Endpoint::DeleteLogs | Endpoint::PatchLog => return,
        };
        bump(counter);
    }

    pub(crate) fn record_rate_limited(&self) {
        bump(&self.rate_limited);
    }

    pub(crate) fn record_server_error(&self) {
        bump(&self.server_errors);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            requests: read(&self.requests),
            verify_calls: read(&self.verify_calls),
            list_gateways_calls: read(&self.list_gateways_calls),
            get_gateway_calls: read(&self.get_gateway_calls),
            list_logs_calls: read(&self.list_logs_calls),
            get_log_calls: read(&self.get_log_calls),
            body_calls: read(&self.body_calls),
            rate_limited: read(&self.rate_limited),
            server_errors: read(&self.server_errors),
            update_gateway_calls: read(&self.update_gateway_calls),
            logpush_job_calls: read(&self.logpush_job_calls),
            graphql_calls: read(&self.graphql_calls),
            ..Stats::default()
        }
    }

    pub(crate) fn reset(&self) {
        for counter in [
            &self.requests,
            &self.verify_calls,
            &self.list_gateways_calls,
            &self.get_gateway_calls,
            &self.list_logs_calls,
            &self.get_log_calls,
            &self.body_calls,
            &self.rate_limited,
            &self.server_errors,
            &self.graphql_calls,
            &self.update_gateway_calls,
            &self.logpush_job_calls,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_endpoint_and_resets() {
        let counters = StatsCounters::default();
        counters.record_request(Endpoint::ListLogs);
        counters.record_request(Endpoint::ListLogs);
        counters.record_request(Endpoint::Unrouted);
        counters.record_rate_limited();
        let stats = counters.snapshot();
        assert_eq!(stats.requests, 3);
        assert_eq!(stats.list_logs_calls, 2);
        assert_eq!(stats.rate_limited, 1);
        counters.reset();
        assert_eq!(counters.snapshot(), Stats::default());
    }
}
