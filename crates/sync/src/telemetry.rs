//! What the sync engine tells Prometheus (through the `metrics` facade; the server installs
//! the exporter). Label values are bounded: integration and gateway names come from the
//! admin's configuration, and provider/model pairs beyond a fixed number fold into `other`.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use langguard_store::Traffic;

/// Gives every metric the sync engine records its HELP text (call once the exporter is
/// installed).
pub fn describe_metrics() {
    use metrics::describe_counter as counter;
    counter!(
        "langguard_gateway_requests_total",
        "Gateway requests imported, by integration, gateway, provider and model"
    );
    counter!(
        "langguard_gateway_errors_total",
        "Imported gateway requests that failed (not a 2xx/3xx status)"
    );
    counter!(
        "langguard_gateway_rate_limited_total",
        "Imported gateway requests the provider answered with 429"
    );
    counter!(
        "langguard_gateway_cache_hits_total",
        "Imported gateway requests served from the gateway's cache"
    );
    counter!(
        "langguard_gateway_tokens_in_total",
        "Input tokens of imported gateway requests"
    );
    counter!(
        "langguard_gateway_tokens_out_total",
        "Output tokens of imported gateway requests"
    );
    counter!(
        "langguard_gateway_cost_microusd_total",
        "Cost of imported gateway requests in millionths of a US dollar"
    );
    counter!(
        "langguard_interactions_imported_total",
        "Interactions stored by syncs, by integration and gateway"
    );
    counter!(
        "langguard_sync_runs_total",
        "Sync runs finished, by integration and result"
    );
    counter!(
        "langguard_cloudflare_requests_total",
        "Requests LangGuard made to the Cloudflare API, by integration"
    );
    counter!(
        "langguard_cloudflare_rate_limited_total",
        "Cloudflare API requests answered with 429, by integration"
    );
    metrics::describe_gauge!(
        "langguard_coverage_ratio",
        "Share of the requests Cloudflare's analytics counted that LangGuard holds, over the \
         settled hours of the last coverage check, by integration and gateway (1 = complete)"
    );
}

/// Sets `langguard_coverage_ratio` per gateway from a coverage check's hours: held over
/// counted, each hour's holding capped at its count, settled hours only.
pub fn record_coverage(integration: &str, hours: &[langguard_store::CoverageHour], now_ms: i64) {
    let mut per_gateway: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    for hour in hours
        .iter()
        .filter(|h| h.hour_ms + crate::coverage::HOUR_MS + crate::coverage::SETTLE_MS <= now_ms)
    {
        let (held, counted) = per_gateway.entry(hour.gateway.as_str()).or_default();
        *held += hour.stored.min(hour.cloudflare);
        *counted += hour.cloudflare;
    }
    for (gateway, (held, counted)) in per_gateway {
        let ratio = if counted == 0 {
            1.0
        } else {
            held as f64 / counted as f64
        };
        metrics::gauge!(
            "langguard_coverage_ratio",
            "integration" => integration.to_owned(),
            "gateway" => gateway.to_owned()
        )
        .set(ratio);
    }
}

/// Distinct provider/model label pairs kept before the rest count as `other`.
const MAX_MODEL_LABELS: usize = 200;

fn model_labels(provider: &str, model: &str) -> (String, String) {
    static SEEN: OnceLock<Mutex<HashSet<(String, String)>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = (provider.to_owned(), model.to_owned());
    if seen.contains(&key) || seen.len() < MAX_MODEL_LABELS {
        seen.insert(key.clone());
        key
    } else {
        ("other".to_owned(), "other".to_owned())
    }
}

/// Counts newly stored traffic (per integration, gateway, provider and model).
pub fn record_traffic(integration: &str, gateway: &str, traffic: &[Traffic]) {
    for t in traffic {
        let (provider, model) = model_labels(&t.provider, &t.model);
        let labels = [
            ("integration", integration.to_owned()),
            ("gateway", gateway.to_owned()),
            ("provider", provider),
            ("model", model),
        ];
        metrics::counter!("langguard_gateway_requests_total", &labels)
            .increment(t.requests.max(0) as u64);
        metrics::counter!("langguard_gateway_errors_total", &labels)
            .increment(t.errors.max(0) as u64);
        metrics::counter!("langguard_gateway_rate_limited_total", &labels)
            .increment(t.rate_limited.max(0) as u64);
        metrics::counter!("langguard_gateway_cache_hits_total", &labels)
            .increment(t.cache_hits.max(0) as u64);
        metrics::counter!("langguard_gateway_tokens_in_total", &labels)
            .increment(t.tokens_in.max(0) as u64);
        metrics::counter!("langguard_gateway_tokens_out_total", &labels)
            .increment(t.tokens_out.max(0) as u64);
        // Micro-dollars keep the counter an integer; dashboards divide by 1e6.
        metrics::counter!("langguard_gateway_cost_microusd_total", &labels)
            .increment((t.cost_usd.max(0.0) * 1e6).round() as u64);
        metrics::counter!("langguard_interactions_imported_total", "integration" => integration.to_owned(), "gateway" => gateway.to_owned())
            .increment(t.requests.max(0) as u64);
    }
}

pub(crate) fn record_run(integration: &str, result: &str, requests: u64, rate_limited: u64) {
    let integration = integration.to_owned();
    metrics::counter!("langguard_sync_runs_total", "integration" => integration.clone(), "result" => result.to_owned())
        .increment(1);
    metrics::counter!("langguard_cloudflare_requests_total", "integration" => integration.clone())
        .increment(requests);
    metrics::counter!("langguard_cloudflare_rate_limited_total", "integration" => integration)
        .increment(rate_limited);
}
