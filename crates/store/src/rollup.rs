//! Per-minute rollups: what a batch of new interactions adds to each
//! (minute, integration, gateway, provider, model) bucket, and how buckets turn into [`Metrics`].
//! Backends store and sum these; the arithmetic lives here once.

use std::collections::HashMap;

use crate::{IntegrationId, LatencySketch, LatencySummary, Metrics, NewInteraction};

const MINUTE_MS: i64 = 60_000;

/// Start of the minute (Unix ms) that `ms` falls in.
pub fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RollupKey {
    pub minute_ms: i64,
    pub integration_id: IntegrationId,
    pub gateway: String,
    pub provider: String,
    pub model: String,
}

/// Additive figures of one bucket (or of many merged buckets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollupTotals {
    pub requests: i64,
    pub errors: i64,
    pub cache_hits: i64,
    pub rate_limited: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub unpriced: i64,
    pub duration_ms_sum: i64,
    pub latency: LatencySketch,
}

impl RollupTotals {
    pub fn add_interaction(&mut self, log: &NewInteraction) {
        self.requests += 1;
        self.errors += i64::from(!log.success);
        self.cache_hits += i64::from(log.cached);
        self.rate_limited += i64::from(log.is_rate_limited());
        self.tokens_in += log.tokens_in.unwrap_or(0);
        self.tokens_out += log.tokens_out.unwrap_or(0);
        match log.cost_usd {
            Some(cost) => self.cost_usd += cost,
            None => self.unpriced += 1,
        }
        self.duration_ms_sum += log.duration_ms;
        self.latency.add(log.duration_ms as f64);
    }

    pub fn merge(&mut self, other: &RollupTotals) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.cache_hits += other.cache_hits;
        self.rate_limited += other.rate_limited;
        self.tokens_in += other.tokens_in;
        self.tokens_out += other.tokens_out;
        self.cost_usd += other.cost_usd;
        self.unpriced += other.unpriced;
        self.duration_ms_sum += other.duration_ms_sum;
        self.latency.merge(&other.latency);
    }

    pub fn to_metrics(&self) -> Metrics {
        let rate = |n: i64| (self.requests > 0).then(|| n as f64 / self.requests as f64);
        let [p50, p90, p95, p99] = self.latency.quantiles([0.5, 0.9, 0.95, 0.99]);
        Metrics {
            requests: self.requests,
            errors: self.errors,
            error_rate: rate(self.errors),
            success_rate: rate(self.requests - self.errors),
            cache_hits: self.cache_hits,
            cache_hit_rate: rate(self.cache_hits),
            rate_limited: self.rate_limited,
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            cost_usd: self.cost_usd,
            unpriced_requests: self.unpriced,
            latency_ms: LatencySummary {
                avg: (self.requests > 0)
                    .then(|| self.duration_ms_sum as f64 / self.requests as f64),
                p50,
                p90,
                p95,
                p99,
            },
        }
    }
}

/// The rollup additions of one batch, keyed by bucket.
#[derive(Debug, Default)]
pub struct RollupDelta {
    pub buckets: HashMap<RollupKey, RollupTotals>,
}

impl RollupDelta {
    /// The same delta in wider buckets (`width_ms` a multiple of a minute), e.g. hours.
    pub fn rebucket(&self, width_ms: i64) -> RollupDelta {
        let mut buckets: HashMap<RollupKey, RollupTotals> = HashMap::new();
        for (key, totals) in &self.buckets {
            let wide = RollupKey {
                minute_ms: key.minute_ms.div_euclid(width_ms) * width_ms,
                ..key.clone()
            };
            buckets.entry(wide).or_default().merge(totals);
        }
        RollupDelta { buckets }
    }

    /// The delta summed per provider and model, whatever the minute.
    pub fn traffic(&self) -> Vec<crate::Traffic> {
        let mut by_model: HashMap<(&str, &str), crate::Traffic> = HashMap::new();
        for (key, t) in &self.buckets {
            let entry = by_model
                .entry((&key.provider, &key.model))
                .or_insert_with(|| crate::Traffic {
                    provider: key.provider.clone(),
                    model: key.model.clone(),
                    ..Default::default()
                });
            entry.requests += t.requests;
            entry.errors += t.errors;
            entry.rate_limited += t.rate_limited;
            entry.cache_hits += t.cache_hits;
            entry.tokens_in += t.tokens_in;
            entry.tokens_out += t.tokens_out;
            entry.cost_usd += t.cost_usd;
        }
        by_model.into_values().collect()
    }

    pub fn from_batch<'a>(
        integration_id: IntegrationId,
        gateway: &str,
        logs: impl IntoIterator<Item = &'a NewInteraction>,
    ) -> Self {
        let mut buckets: HashMap<RollupKey, RollupTotals> = HashMap::new();
        for log in logs {
            let key = RollupKey {
                minute_ms: minute_of(log.created_at_ms),
                integration_id,
                gateway: gateway.to_owned(),
                provider: log.provider.clone(),
                model: log.model.clone(),
            };
            buckets.entry(key).or_default().add_interaction(log);
        }
        Self { buckets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(ms: i64, success: bool, cached: bool, status: i64, cost: Option<f64>) -> NewInteraction {
        NewInteraction {
            log_id: format!("l{ms}"),
            created_at_ms: ms,
            provider: "openai".into(),
            model: "gpt-4o".into(),
            path: None,
            status_code: Some(status),
            success,
            cached,
            duration_ms: 100,
            tokens_in: Some(10),
            tokens_out: None,
            cost_usd: cost,
            cost_source: None,
            metadata: None,
            requested_model: None,
            details: Default::default(),
        }
    }

    #[test]
    fn minutes_round_down_even_before_the_epoch() {
        assert_eq!(minute_of(59_999), 0);
        assert_eq!(minute_of(60_000), 60_000);
        assert_eq!(minute_of(-1), -60_000);
    }

    #[test]
    fn a_batch_splits_into_minute_buckets_with_exact_counts() {
        let logs = [
            log(1_000, true, false, 200, Some(0.5)),
            log(2_000, false, false, 429, None),
            log(61_000, true, true, 200, Some(0.25)),
        ];
        let delta = RollupDelta::from_batch(1, "gw", &logs);
        assert_eq!(delta.buckets.len(), 2);
        let mut total = RollupTotals::default();
        for t in delta.buckets.values() {
            total.merge(t);
        }
        let m = total.to_metrics();
        assert_eq!(
            (m.requests, m.errors, m.cache_hits, m.rate_limited),
            (3, 1, 1, 1)
        );
        assert_eq!((m.tokens_in, m.tokens_out, m.unpriced_requests), (30, 0, 1));
        assert_eq!(m.cost_usd, 0.75);
        assert_eq!(m.error_rate, Some(1.0 / 3.0));
        assert_eq!(m.latency_ms.avg, Some(100.0));
    }

    #[test]
    fn no_requests_means_no_rates() {
        let m = RollupTotals::default().to_metrics();
        assert_eq!(m.error_rate, None);
        assert_eq!(m.latency_ms.p50, None);
    }
}
