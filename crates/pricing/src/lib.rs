//! The cost of a gateway log.
//!
//! Cloudflare's own figure wins when it has one (`cost`; `custom_cost: true` means the customer
//! priced it). When Cloudflare could not price a call, LangGuard estimates from the price table
//! bundled with the `genai-prices` crate, versioned with it. A model the table does not know gets
//! no cost at all and is counted as unpriced — never a made-up number.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock, RwLock};

use genai_prices::{Calculator, PriceRequest, Usage, UsageKey};
use langguard_store::CostSource;

/// Which price table estimates come from, for the record.
pub const PRICE_TABLE_VERSION: &str = "genai-prices 0.2.1 (bundled)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostOrigin {
    Gateway,
    Custom,
    Estimated,
    /// Cloudflare's 0 for a call made with the customer's own provider key.
    Byok,
}

/// A log's cost as an interaction stores it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Priced {
    pub cost_usd: Option<f64>,
    pub source: Option<CostSource>,
    /// Beside a BYOK 0: what the price table makes of the call (the provider bills it).
    pub byok_estimate_usd: Option<f64>,
}

/// What pricing needs to know about one log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostInput<'a> {
    pub provider: &'a str,
    pub model: &'a str,
    pub created_at_ms: i64,
    pub success: bool,
    pub cached: bool,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub gateway_cost: Option<f64>,
    pub custom_cost: bool,
    /// Cloudflare's `byok` flag, when the log carries it.
    pub byok: Option<bool>,
}

/// An admin's price for a model (Settings → Cost Estimates), in USD per 1,000 tokens. It
/// matches a log's model name exactly (version suffix included) and wins over the table.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceOverride {
    pub model: String,
    pub input_per_1k: f64,
    pub output_per_1k: f64,
}

/// Prices logs; cheap to share (`&'static` table, a small cache of unknown models).
#[derive(Debug)]
pub struct Pricer {
    calculator: &'static Calculator,
    /// (provider, model) pairs the table has no price for, so they are not looked up again.
    unknown: Mutex<HashSet<(String, String)>>,
    /// Exact model name → (input, output) USD per 1,000 tokens.
    overrides: RwLock<HashMap<String, (f64, f64)>>,
}

impl Default for Pricer {
    fn default() -> Self {
        Self::new()
    }
}

impl Pricer {
    pub fn new() -> Self {
        Self {
            calculator: Calculator::bundled(),
            unknown: Mutex::new(HashSet::new()),
            overrides: RwLock::new(HashMap::new()),
        }
    }

    /// Replaces the admin's prices (applied to logs priced from now on).
    pub fn set_overrides(&self, overrides: &[PriceOverride]) {
        let map = overrides
            .iter()
            .filter(|o| o.input_per_1k.is_finite() && o.output_per_1k.is_finite())
            .map(|o| (o.model.clone(), (o.input_per_1k, o.output_per_1k)))
            .collect();
        *self.overrides.write().unwrap_or_else(|e| e.into_inner()) = map;
    }

    /// The process-wide pricer (decoding the bundled table takes tens of milliseconds).
    pub fn shared() -> &'static Pricer {
        static PRICER: OnceLock<Pricer> = OnceLock::new();
        PRICER.get_or_init(Pricer::new)
    }

    /// [`Pricer::cost`] as an interaction stores it: the amount and its source, or neither,
    /// and for a BYOK 0 the table's estimate beside it.
    pub fn priced(&self, log: &CostInput<'_>) -> Priced {
        match self.cost(log) {
            None => Priced::default(),
            Some((cost, origin)) => Priced {
                cost_usd: Some(cost),
                source: Some(match origin {
                    CostOrigin::Gateway => CostSource::Gateway,
                    CostOrigin::Custom => CostSource::Custom,
                    CostOrigin::Estimated => CostSource::Estimated,
                    CostOrigin::Byok => CostSource::Byok,
                }),
                byok_estimate_usd: match origin {
                    CostOrigin::Byok => self.paid_call_estimate(log),
                    _ => None,
                },
            },
        }
    }

    /// The cost in USD and where it came from, or `None` when it cannot be known.
    pub fn cost(&self, log: &CostInput<'_>) -> Option<(f64, CostOrigin)> {
        if let Some(cost) = log.gateway_cost.filter(|c| c.is_finite() && *c >= 0.0) {
            let origin = if log.custom_cost {
                CostOrigin::Custom
            } else if cost == 0.0 && self.is_byok_zero(log) {
                CostOrigin::Byok
            } else {
                CostOrigin::Gateway
            };
            return Some((cost, origin));
        }
        let usage_known = log.tokens_in.is_some() || log.tokens_out.is_some();
        // A cache hit is served by Cloudflare without calling the provider, and a failed call
        // that reports no usage was not billed by it: both cost nothing, which is known.
        if log.cached || (!log.success && !usage_known) {
            return Some((0.0, CostOrigin::Estimated));
        }
        if !usage_known {
            return None;
        }
        self.estimate(log).map(|c| (c, CostOrigin::Estimated))
    }

    /// Whether Cloudflare's 0 is BYOK traffic rather than a free call: the log says `byok`, or
    /// says nothing and the price table charges for a successful, uncached call with usage
    /// (BYOK and custom providers show 0, API-NOTES §7).
    fn is_byok_zero(&self, log: &CostInput<'_>) -> bool {
        match log.byok {
            Some(byok) => byok,
            None => self.paid_call_estimate(log).is_some(),
        }
    }

    /// The table's price of a call the provider billed: successful, not served from cache,
    /// with usage; `None` when it is free or the table doesn't know the model.
    fn paid_call_estimate(&self, log: &CostInput<'_>) -> Option<f64> {
        let usage_known = log.tokens_in.is_some() || log.tokens_out.is_some();
        if log.cached || !log.success || !usage_known {
            return None;
        }
        self.estimate(log).filter(|c| *c > 0.0)
    }

    fn estimate(&self, log: &CostInput<'_>) -> Option<f64> {
        let admin_price = self
            .overrides
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(log.model)
            .copied();
        if let Some((input, output)) = admin_price {
            let tokens_in = log.tokens_in.unwrap_or(0).max(0) as f64;
            let tokens_out = log.tokens_out.unwrap_or(0).max(0) as f64;
            return Some(tokens_in / 1_000.0 * input + tokens_out / 1_000.0 * output);
        }
        let provider = price_table_provider(log.provider);
        // The unified endpoint prefixes models with their provider (`openai/gpt-4o-mini`).
        let model = match log.model.split_once('/') {
            Some((prefix, rest)) if price_table_provider(prefix) == provider => rest,
            _ => log.model,
        };
        let key = (provider.to_owned(), model.to_owned());
        if self.lock_unknown().contains(&key) {
            return None;
        }
        let mut usage = Usage::new();
        usage.insert(
            UsageKey::INPUT_TOKENS,
            log.tokens_in.unwrap_or(0).max(0) as f64,
        );
        usage.insert(
            UsageKey::OUTPUT_TOKENS,
            log.tokens_out.unwrap_or(0).max(0) as f64,
        );
        let mut request = PriceRequest::new(model, &usage).with_provider_id(provider);
        if let Some(at) = system_time(log.created_at_ms) {
            request = request.with_timestamp(at);
        }
        match self.calculator.calculate(&request) {
            Ok(price) if price.total_price.is_finite() && price.total_price >= 0.0 => {
                Some(price.total_price)
            }
            _ => {
                self.lock_unknown().insert(key);
                None
            }
        }
    }

    fn lock_unknown(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        self.unknown.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Cloudflare's provider slugs (API-NOTES §7) to the price table's provider ids.
fn price_table_provider(slug: &str) -> &str {
    match slug {
        "workers-ai" => "cloudflare",
        "azure-openai" => "azure",
        "aws-bedrock" => "aws",
        "google-ai-studio" | "google-vertex-ai" => "google",
        // xAI's slug is `grok` (API-NOTES §7); `xai` is what people and other gateways write.
        "grok" | "xai" | "x-ai" => "x-ai",
        "perplexity-ai" => "perplexity",
        "mistral" => "mistral",
        other => other,
    }
}

fn system_time(ms: i64) -> Option<std::time::SystemTime> {
    let ms = u64::try_from(ms).ok()?;
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admins_price_wins_over_the_table_but_not_over_cloudflare() {
        let pricer = Pricer::new();
        pricer.set_overrides(&[PriceOverride {
            model: "ft:acme-internal-v7".into(),
            input_per_1k: 0.01,
            output_per_1k: 0.03,
        }]);
        let priced = pricer.cost(&input("openai", "ft:acme-internal-v7"));
        let (cost, origin) = priced.expect("priced by the override");
        assert!((cost - (0.01 + 0.015)).abs() < 1e-12, "{cost}");
        assert_eq!(origin, CostOrigin::Estimated);
        // Exact names only: a version suffix is another model.
        assert!(pricer
            .cost(&input("openai", "ft:acme-internal-v7-2"))
            .is_none());
        let from_cloudflare = CostInput {
            gateway_cost: Some(0.5),
            ..input("openai", "ft:acme-internal-v7")
        };
        assert_eq!(
            pricer.cost(&from_cloudflare),
            Some((0.5, CostOrigin::Gateway))
        );
        pricer.set_overrides(&[]);
        assert!(pricer
            .cost(&input("openai", "ft:acme-internal-v7"))
            .is_none());
    }

    fn input<'a>(provider: &'a str, model: &'a str) -> CostInput<'a> {
        CostInput {
            provider,
            model,
            created_at_ms: 1_786_000_000_000,
            success: true,
            cached: false,
            tokens_in: Some(1_000),
            tokens_out: Some(500),
            gateway_cost: None,
            custom_cost: false,
            byok: None,
        }
    }

    #[test]
    fn cloudflare_cost_wins_and_custom_is_marked() {
        let p = Pricer::shared();
        let mut log = input("openai", "gpt-4o");
        log.gateway_cost = Some(0.5);
        assert_eq!(p.cost(&log), Some((0.5, CostOrigin::Gateway)));
        log.custom_cost = true;
        assert_eq!(p.cost(&log), Some((0.5, CostOrigin::Custom)));
    }

    #[test]
    fn known_models_are_estimated_from_the_table() {
        let p = Pricer::shared();
        for (provider, model) in [
            ("openai", "gpt-4o-mini"),
            ("openai", "openai/gpt-4o-mini"),
            ("anthropic", "claude-sonnet-4-20250514"),
            ("google-ai-studio", "gemini-2.0-flash"),
            ("workers-ai", "@cf/meta/llama-3.1-8b-instruct"),
            ("grok", "grok-3-mini"),
            ("xai", "grok-3-mini"),
            ("deepseek", "deepseek-chat"),
        ] {
            let (cost, origin) = p
                .cost(&input(provider, model))
                .unwrap_or_else(|| panic!("{provider}/{model} should be priced"));
            assert_eq!(origin, CostOrigin::Estimated);
            assert!(cost > 0.0 && cost < 1.0, "{provider}/{model}: {cost}");
        }
        // gpt-4o-mini: $0.15 / $0.60 per million tokens.
        let (cost, _) = p.cost(&input("openai", "gpt-4o-mini")).expect("priced");
        assert!(
            (cost - (1_000.0 * 0.15 + 500.0 * 0.6) / 1e6).abs() < 1e-9,
            "{cost}"
        );
    }

    #[test]
    fn a_byok_zero_is_kept_flagged_with_the_tables_estimate_beside_it() {
        let p = Pricer::shared();
        let mut flagged = input("openai", "gpt-4o-mini");
        flagged.gateway_cost = Some(0.0);
        flagged.byok = Some(true);
        let priced = p.priced(&flagged);
        assert_eq!(priced.cost_usd, Some(0.0));
        assert_eq!(priced.source, Some(CostSource::Byok));
        let estimate = priced.byok_estimate_usd.expect("estimated");
        assert!((estimate - (1_000.0 * 0.15 + 500.0 * 0.6) / 1e6).abs() < 1e-9);
        // Without the flag, a 0 for a call the table charges for is taken as BYOK too…
        flagged.byok = None;
        assert_eq!(p.priced(&flagged).source, Some(CostSource::Byok));
        // …but not when Cloudflare says it wasn't, nor for a cache hit or an unknown model.
        flagged.byok = Some(false);
        assert_eq!(p.priced(&flagged).source, Some(CostSource::Gateway));
        flagged.byok = None;
        flagged.cached = true;
        assert_eq!(p.priced(&flagged).source, Some(CostSource::Gateway));
        let mut unknown = input("openai", "ft:acme-internal-v7");
        unknown.gateway_cost = Some(0.0);
        assert_eq!(p.priced(&unknown).byok_estimate_usd, None);
        assert_eq!(p.priced(&unknown).source, Some(CostSource::Gateway));
    }

    #[test]
    fn unknown_models_stay_unpriced() {
        let p = Pricer::shared();
        assert_eq!(p.cost(&input("openai", "ft:acme-internal-v7")), None);
        assert_eq!(p.cost(&input("openai", "ft:acme-internal-v7")), None);
        let mut no_usage = input("openai", "gpt-4o");
        no_usage.tokens_in = None;
        no_usage.tokens_out = None;
        assert_eq!(p.cost(&no_usage), None);
    }

    #[test]
    fn cache_hits_and_failed_calls_without_usage_cost_nothing() {
        let p = Pricer::shared();
        let mut cached = input("openai", "ft:acme-internal-v7");
        cached.cached = true;
        assert_eq!(p.cost(&cached), Some((0.0, CostOrigin::Estimated)));
        let mut failed = input("anthropic", "claude-sonnet-4-20250514");
        failed.success = false;
        failed.tokens_in = None;
        failed.tokens_out = None;
        assert_eq!(p.cost(&failed), Some((0.0, CostOrigin::Estimated)));
    }
}
