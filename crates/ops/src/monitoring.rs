//! Monitoring's shared judgement of traffic.

use langguard_store::Metrics;

/// PRODUCT-SPEC §3's health of traffic over a range: Healthy at ≥ 95 % success, Warning from
/// 85 %, Critical below, Inactive without traffic.
pub fn health(metrics: &Metrics) -> &'static str {
    match metrics.success_rate {
        None => "inactive",
        Some(rate) if rate >= 0.95 => "healthy",
        Some(rate) if rate >= 0.85 => "warning",
        Some(_) => "critical",
    }
}
