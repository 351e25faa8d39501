//! Deterministic synthetic gateway traffic: realistic providers, models, durations, token
//! counts, costs, metadata, ids and request/response bodies (API-NOTES §1.4, §7, §8.6).
//!
//! Shares the generator aims for (per log):
//! - ~5 % errors (success false, 4xx/5xx with 429 the most common, tokens null, no cost);
//! - ~10 % cache hits (a few ms, cost 0);
//! - ~15 % of successful logs without `cost` (unpriced model or not computable), ~5 % of
//!   uncached successes priced with `custom_cost`;
//! - metadata on ~60 %, the live-only extra fields on ~30 %, no stored payload on ~10 %;
//! - ids: ~90 % 26-char ULID-like, ~10 % 64-hex; ~5 % of seeded logs share their
//!   neighbour's millisecond.
//!
//! Everything is drawn from a caller-provided `SmallRng`, so the same seed gives the same logs.
//! Request/response bodies are rendered on demand by [`crate::bodies`].

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use time::OffsetDateTime;

use crate::log_record::{unix_millis, DlpMatch, LogExtras, LogRecord, Metadata, UnixMillis};

/// Parameters of [`crate::Emulator::seed_logs`].
#[derive(Clone, Debug)]
pub struct SeedSpec {
    /// Number of logs to create.
    pub count: usize,
    /// `created_at` values are spread uniformly over `[from, to)`; an empty or inverted range
    /// puts every log at `from`.
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    /// Seed of this history; the same spec always yields the same logs.
    pub seed: u64,
}

/// How a provider's bodies look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyStyle {
    OpenAi,
    Anthropic,
    WorkersAi,
    Gemini,
}

/// USD per million tokens.
#[derive(Clone, Copy, Debug)]
struct Price {
    input: f64,
    output: f64,
}

#[derive(Clone, Copy, Debug)]
struct ModelProfile {
    provider: &'static str,
    model: &'static str,
    path: &'static str,
    style: BodyStyle,
    /// `None`: a model no public price table knows, so Cloudflare cannot compute a cost.
    price: Option<Price>,
    /// Relative traffic share.
    weight: u32,
    /// Typical milliseconds per output token (groq is fast, big models slow).
    ms_per_token: f64,
    compatibility_mode: bool,
}

const fn profile(
    provider: &'static str,
    model: &'static str,
    path: &'static str,
    style: BodyStyle,
    price: Option<(f64, f64)>,
    weight: u32,
    ms_per_token: f64,
) -> ModelProfile {
    ModelProfile {
        provider,
        model,
        path,
        style,
        price: match price {
            Some((input, output)) => Some(Price { input, output }),
            None => None,
        },
        weight,
        ms_per_token,
        compatibility_mode: false,
    }
}

/// Providers and models with Cloudflare's slugs and (approximate) list prices.
#[rustfmt::skip]
const CATALOG: [ModelProfile; 15] = [
    profile("openai", "gpt-4o-mini", "chat/completions", BodyStyle::OpenAi, Some((0.15, 0.60)), 22, 7.0),
    profile("openai", "gpt-4o", "chat/completions", BodyStyle::OpenAi, Some((2.50, 10.00)), 8, 11.0),
    profile("openai", "gpt-4.1-mini", "chat/completions", BodyStyle::OpenAi, Some((0.40, 1.60)), 8, 8.0),
    profile("anthropic", "claude-sonnet-4-20250514", "v1/messages", BodyStyle::Anthropic, Some((3.00, 15.00)), 10, 13.0),
    profile("anthropic", "claude-3-5-haiku-20241022", "v1/messages", BodyStyle::Anthropic, Some((0.80, 4.00)), 6, 8.0),
    profile("workers-ai", "@cf/meta/llama-3.1-8b-instruct", "@cf/meta/llama-3.1-8b-instruct", BodyStyle::WorkersAi, Some((0.282, 0.827)), 10, 6.0),
    profile("google-ai-studio", "gemini-2.0-flash", "v1beta/models/gemini-2.0-flash:generateContent", BodyStyle::Gemini, Some((0.10, 0.40)), 7, 5.0),
    profile("groq", "llama-3.3-70b-versatile", "chat/completions", BodyStyle::OpenAi, Some((0.59, 0.79)), 5, 2.0),
    profile("mistral", "mistral-large-latest", "v1/chat/completions", BodyStyle::OpenAi, Some((2.00, 6.00)), 4, 10.0),
    profile("azure-openai", "gpt-4o", "contoso-eastus/gpt4o-prod/chat/completions", BodyStyle::OpenAi, Some((2.50, 10.00)), 5, 12.0),
    profile("deepseek", "deepseek-chat", "chat/completions", BodyStyle::OpenAi, Some((0.27, 1.10)), 4, 14.0),
    profile("grok", "grok-3-mini", "v1/chat/completions", BodyStyle::OpenAi, Some((0.30, 0.50)), 3, 9.0),
    profile("openai", "ft:acme-internal-v7", "chat/completions", BodyStyle::OpenAi, None, 3, 9.0),
    // The unified (OpenAI-compatible) endpoint logs a provider-prefixed model name.
    ModelProfile {
        compatibility_mode: true,
        ..profile("openai", "openai/gpt-4o-mini", "compat/chat/completions", BodyStyle::OpenAi, Some((0.15, 0.60)), 2, 7.0)
    },
    ModelProfile {
        compatibility_mode: true,
        ..profile("anthropic", "anthropic/claude-3-5-haiku-20241022", "compat/chat/completions", BodyStyle::OpenAi, Some((0.80, 4.00)), 1, 8.0)
    },
];

/// Price multiplier of requests priced through `cf-aig-custom-cost` (negotiated discount).
const CUSTOM_PRICE_FACTOR: f64 = 0.8;
/// Custom price (USD per million tokens) for models without a list price.
const CUSTOM_PRICE_UNLISTED: Price = Price {
    input: 1.2,
    output: 4.8,
};

const TEAMS: [&str; 6] = [
    "search", "support", "growth", "platform", "billing", "research",
];
const DEPARTMENTS: [&str; 5] = ["engineering", "sales", "marketing", "finance", "operations"];
const LOCATIONS: [(&str, &str); 6] = [
    ("WEUR", "AMS"),
    ("WEUR", "FRA"),
    ("ENAM", "IAD"),
    ("WNAM", "SJC"),
    ("APAC", "SIN"),
    ("EEUR", "WAW"),
];
const USER_AGENTS: [&str; 5] = [
    "OpenAI/Python 1.82.0",
    "OpenAI/JS 4.98.0",
    "Anthropic/Python 0.52.0",
    "langchain-core/0.3.63",
    "curl/8.5.0",
];
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Outcome class of one synthetic request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Error(u16),
    CacheHit,
    Success,
}

/// One synthetic log created at `created_at`, visible from `visible_at`.
pub(crate) fn synthesize_log(
    rng: &mut SmallRng,
    created_at: UnixMillis,
    visible_at: UnixMillis,
) -> LogRecord {
    let model = pick_model(rng);
    let outcome = pick_outcome(rng);
    let streamed =
        model.style == BodyStyle::OpenAi && outcome != Outcome::CacheHit && rng.gen_bool(0.2);

    let (tokens_in, tokens_out) = match outcome {
        Outcome::Error(_) => (None, None),
        _ => (
            Some(log_normal(rng, 550.0, 1.0).clamp(3.0, 200_000.0) as u32),
            Some(log_normal(rng, 180.0, 0.8).clamp(1.0, 16_000.0) as u32),
        ),
    };
    let duration_ms = match outcome {
        Outcome::CacheHit => rng.gen_range(2..=25),
        Outcome::Error(429) => log_normal(rng, 120.0, 0.6).clamp(5.0, 5_000.0) as u32,
        Outcome::Error(status) if status >= 500 => {
            log_normal(rng, 1_500.0, 1.0).clamp(20.0, 60_000.0) as u32
        }
        Outcome::Error(_) => log_normal(rng, 150.0, 0.5).clamp(5.0, 5_000.0) as u32,
        Outcome::Success => {
            let first_token = log_normal(rng, 350.0, 0.5);
            let generation =
                f64::from(tokens_out.unwrap_or(0)) * model.ms_per_token * log_normal(rng, 1.0, 0.3);
            (first_token + generation).clamp(60.0, 120_000.0) as u32
        }
    };
    let (cost, custom_cost) = price_log(rng, &model, outcome, tokens_in, tokens_out);

    let success = !matches!(outcome, Outcome::Error(_));
    let status_code = match outcome {
        Outcome::Error(status) => status,
        _ => 200,
    };
    let mut extras = rng.gen_bool(0.3).then(|| {
        let (region, colo) = LOCATIONS[rng.gen_range(0..LOCATIONS.len())];
        let event_id = uuid_like(rng);
        // Drawn from the event id rather than the generator, so adding these fields left
        // every other synthetic value (and the datasets tests and benches rely on) as it was.
        let roll = event_id
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
            % 100;
        let feedback = match rng.gen_range(0..20) {
            0 => Some(1),
            1 => Some(-1),
            _ => None,
        };
        Box::new(LogExtras {
            event_id,
            latency_ms: (f64::from(duration_ms) * rng.gen_range(0.3..0.9)) as u32,
            region,
            colo,
            score: feedback.map(|f: i8| if f > 0 { 0.9 } else { 0.1 }),
            feedback,
            user_agent: USER_AGENTS[rng.gen_range(0..USER_AGENTS.len())],
            dlp: match roll {
                0..=2 => Some(DlpMatch {
                    action: "BLOCK",
                    profile_id: "pii-ssn",
                }),
                3..=7 => Some(DlpMatch {
                    action: "FLAG",
                    profile_id: "credentials",
                }),
                _ => None,
            },
            byok: (10..20).contains(&roll) && outcome == Outcome::Success,
        })
    });
    // BYOK calls are billed by the provider: Cloudflare reports 0.
    let cost = match extras.as_deref_mut() {
        Some(extras) if extras.byok && cost.is_some() && !custom_cost => Some(0.0),
        Some(extras) => {
            extras.byok = false;
            cost
        }
        None => cost,
    };

    LogRecord {
        id: if rng.gen_bool(0.9) {
            ulid_like(rng, created_at)
        } else {
            hex_id(rng, 32)
        },
        created_at,
        visible_at,
        provider: model.provider,
        model: model.model,
        path: model.path,
        model_type: rng
            .gen_bool(0.9)
            .then_some(if model.style == BodyStyle::WorkersAi {
                "text-generation"
            } else {
                "chat"
            }),
        request_type: pick_request_type(rng, &model),
        duration_ms,
        success,
        cached: outcome == Outcome::CacheHit,
        status_code,
        tokens_in,
        tokens_out,
        cost,
        custom_cost,
        metadata: rng.gen_bool(0.6).then(|| synthesize_metadata(rng)),
        request_content_type: "application/json",
        response_content_type: if streamed {
            "text/event-stream"
        } else {
            "application/json"
        },
        step: u32::from(rng.gen_bool(0.03)),
        authentication: rng.gen_bool(0.4),
        wholesale: false,
        compatibility_mode: model.compatibility_mode,
        extras,
        payload_seed: rng.gen(),
        payload_stored: rng.gen_bool(0.9),
    }
}

/// A seeded history: `spec.count` logs over `[spec.from, spec.to)`, sorted by `created_at`,
/// visible at once. `salt` separates the id streams of different gateways that share a seed.
pub(crate) fn seeded_history(spec: &SeedSpec, salt: u64) -> Vec<LogRecord> {
    let mut rng = SmallRng::seed_from_u64(spec.seed ^ salt);
    let from = unix_millis(spec.from);
    let span = unix_millis(spec.to).saturating_sub(from).max(1);
    let mut times: Vec<UnixMillis> = (0..spec.count)
        .map(|_| from + rng.gen_range(0..span))
        .collect();
    times.sort_unstable();
    // Real gateways log several requests in one millisecond; make sure history has some.
    for i in 1..times.len() {
        if rng.gen_bool(0.05) {
            times[i] = times[i - 1];
        }
    }
    times
        .into_iter()
        .map(|created_at| synthesize_log(&mut rng, created_at, crate::log_record::ALWAYS_VISIBLE))
        .collect()
}

/// The body style of a logged model (OpenAI-like for anything not in the catalog).
pub(crate) fn body_style(model: &str, path: &str) -> BodyStyle {
    CATALOG
        .iter()
        .find(|profile| profile.model == model && profile.path == path)
        .map_or(BodyStyle::OpenAi, |profile| profile.style)
}

/// A stable 64-bit FNV-1a hash (std's hasher is randomly keyed per process).
pub(crate) fn stable_hash(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

fn pick_model(rng: &mut SmallRng) -> ModelProfile {
    let total: u32 = CATALOG.iter().map(|model| model.weight).sum();
    let mut ticket = rng.gen_range(0..total);
    for model in CATALOG {
        if ticket < model.weight {
            return model;
        }
        ticket -= model.weight;
    }
    CATALOG[0]
}

fn pick_outcome(rng: &mut SmallRng) -> Outcome {
    let roll: f64 = rng.gen();
    if roll < 0.05 {
        let status = match rng.gen_range(0..20) {
            0..=8 => 429,
            9..=11 => 400,
            12 => 401,
            13..=15 => 500,
            16 => 502,
            17..=18 => 503,
            _ => 504,
        };
        Outcome::Error(status)
    } else if roll < 0.15 {
        Outcome::CacheHit
    } else {
        Outcome::Success
    }
}

fn pick_request_type(rng: &mut SmallRng, model: &ModelProfile) -> Option<&'static str> {
    // Cloudflare does not document this enum; these values are the emulator's guess.
    let roll: f64 = rng.gen();
    if roll < 0.2 {
        None
    } else if model.style == BodyStyle::WorkersAi && roll < 0.6 {
        Some("workers-binding")
    } else if roll < 0.22 {
        Some("websocket")
    } else {
        Some("http")
    }
}

/// `(cost, custom_cost)` consistent with the token counts.
fn price_log(
    rng: &mut SmallRng,
    model: &ModelProfile,
    outcome: Outcome,
    tokens_in: Option<u32>,
    tokens_out: Option<u32>,
) -> (Option<f64>, bool) {
    let (Some(tokens_in), Some(tokens_out)) = (tokens_in, tokens_out) else {
        return (None, false);
    };
    let cost_at = |price: Price| {
        f64::from(tokens_in) * price.input / 1e6 + f64::from(tokens_out) * price.output / 1e6
    };
    match outcome {
        Outcome::Error(_) => (None, false),
        Outcome::CacheHit => (Some(0.0), false),
        Outcome::Success => {
            if rng.gen_bool(0.05) {
                let price = model.price.map_or(CUSTOM_PRICE_UNLISTED, |list| Price {
                    input: list.input * CUSTOM_PRICE_FACTOR,
                    output: list.output * CUSTOM_PRICE_FACTOR,
                });
                (Some(cost_at(price)), true)
            } else if rng.gen_bool(0.14) {
                // Not computable (e.g. a stream without usage): the importer must estimate.
                (None, false)
            } else {
                (model.price.map(cost_at), false)
            }
        }
    }
}

fn synthesize_metadata(rng: &mut SmallRng) -> Metadata {
    let mut pairs: Vec<(String, serde_json::Value)> = vec![(
        "team".to_owned(),
        json!(TEAMS[rng.gen_range(0..TEAMS.len())]),
    )];
    if rng.gen_bool(0.7) {
        pairs.push((
            "user".to_owned(),
            json!(format!("u_{}", rng.gen_range(1000..10_000))),
        ));
    }
    if rng.gen_bool(0.4) {
        pairs.push((
            "ai_app_id".to_owned(),
            json!(format!("app_{}", hex_id(rng, 4))),
        ));
    }
    if rng.gen_bool(0.3) {
        pairs.push((
            "department".to_owned(),
            json!(DEPARTMENTS[rng.gen_range(0..DEPARTMENTS.len())]),
        ));
    }
    if rng.gen_bool(0.05) {
        // Metadata values may be numbers or booleans too.
        pairs.push(("priority".to_owned(), json!(rng.gen_range(1..=3))));
    }
    // Built by hand to keep the insertion order (serde_json's map would sort the keys).
    let members: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("{}:{}", json!(key), value))
        .collect();
    Metadata {
        json: format!("{{{}}}", members.join(",")),
        pairs: pairs
            .into_iter()
            .map(|(key, value)| {
                let text = match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                };
                (key, text)
            })
            .collect(),
    }
}

/// A ULID-like id: 10 Crockford characters of the timestamp, 16 of randomness.
pub(crate) fn ulid_like(rng: &mut SmallRng, created_at: UnixMillis) -> String {
    let time = u128::from(u64::try_from(created_at).unwrap_or(0) & 0xFFFF_FFFF_FFFF);
    let random = u128::from(rng.gen::<u64>()) << 16 | u128::from(rng.gen::<u16>());
    let value = time << 80 | random;
    (0..26)
        .rev()
        .map(|i| char::from(CROCKFORD[((value >> (i * 5)) & 0x1F) as usize]))
        .collect()
}

/// `bytes` random bytes as lowercase hex (32 bytes = the 64-hex content-hash ids).
pub(crate) fn hex_id(rng: &mut SmallRng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rng.gen::<u8>()))
        .collect()
}

fn uuid_like(rng: &mut SmallRng) -> String {
    let hex = hex_id(rng, 16);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Log-normal sample with the given median (Box–Muller; `rand` 0.8 has no distributions).
fn log_normal(rng: &mut SmallRng, median: f64, sigma: f64) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]: ln is finite
    let u2: f64 = rng.gen();
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    median * (sigma * normal).exp()
}

/// Synthetic history rendered as the list endpoint's JSON pages (envelope and `result_info`
/// included) for benchmarks. Generated lazily, a slice of the time range at a time, so millions
/// of logs stream through flat memory.
pub fn synthetic_log_pages(spec: &SeedSpec, per_page: usize) -> impl Iterator<Item = Vec<u8>> {
    const CHUNK: usize = 10_000;
    let per_page = per_page.max(1);
    let total = spec.count;
    let chunks = total.div_ceil(CHUNK).max(1);
    let from = unix_millis(spec.from);
    let span = unix_millis(spec.to).saturating_sub(from).max(1);
    let seed = spec.seed;
    let records = (0..chunks).flat_map(move |i| {
        let count = CHUNK.min(total - i * CHUNK);
        let at = |k: usize| from + (span as i128 * k as i128 / chunks as i128) as i64;
        let chunk = SeedSpec {
            count,
            from: OffsetDateTime::from_unix_timestamp_nanos(i128::from(at(i)) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            to: OffsetDateTime::from_unix_timestamp_nanos(i128::from(at(i + 1)) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            seed: seed.wrapping_add(i as u64),
        };
        seeded_history(&chunk, 0)
    });
    let mut records = records.fuse();
    let mut page = 0usize;
    std::iter::from_fn(move || {
        let rows: Vec<LogRecord> = records.by_ref().take(per_page).collect();
        if rows.is_empty() {
            return None;
        }
        page += 1;
        let items: Vec<_> = rows.iter().map(LogRecord::list_item).collect();
        let body = serde_json::json!({
            "success": true, "errors": [], "messages": [],
            "result": items,
            "result_info": {"page": page, "per_page": per_page, "count": rows.len(), "total_count": total},
        });
        Some(serde_json::to_vec(&body).unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use time::macros::datetime;

    fn history(count: usize, seed: u64) -> Vec<LogRecord> {
        seeded_history(
            &SeedSpec {
                count,
                from: datetime!(2026-08-01 00:00 UTC),
                to: datetime!(2026-08-02 00:00 UTC),
                seed,
            },
            0,
        )
    }

    fn share(logs: &[LogRecord], predicate: impl Fn(&LogRecord) -> bool) -> f64 {
        logs.iter().filter(|log| predicate(log)).count() as f64 / logs.len() as f64
    }

    #[test]
    fn same_seed_same_logs_different_seed_different_logs() {
        assert_eq!(history(300, 9), history(300, 9));
        assert_ne!(history(300, 9), history(300, 10));
    }

    #[test]
    fn history_is_sorted_within_range_with_shared_milliseconds() {
        let logs = history(20_000, 1);
        let from = unix_millis(datetime!(2026-08-01 00:00 UTC));
        let to = unix_millis(datetime!(2026-08-02 00:00 UTC));
        assert!(logs
            .windows(2)
            .all(|pair| pair[0].created_at <= pair[1].created_at));
        assert!(logs.iter().all(|log| (from..to).contains(&log.created_at)));
        let shared = logs
            .windows(2)
            .filter(|pair| pair[0].created_at == pair[1].created_at)
            .count() as f64
            / logs.len() as f64;
        assert!((0.04..0.08).contains(&shared), "shared timestamps {shared}");
        let ids: HashSet<&str> = logs.iter().map(|log| log.id.as_str()).collect();
        assert_eq!(ids.len(), logs.len());
    }

    #[test]
    fn shares_match_the_documented_mix() {
        let logs = history(20_000, 2);
        let errors = share(&logs, |log| !log.success);
        let cached = share(&logs, |log| log.cached);
        let metadata = share(&logs, |log| log.metadata.is_some());
        let no_payload = share(&logs, |log| !log.payload_stored);
        let extras = share(&logs, |log| log.extras.is_some());
        let successes: Vec<LogRecord> = logs.iter().filter(|log| log.success).cloned().collect();
        let without_cost = share(&successes, |log| log.cost.is_none());
        let custom = share(&successes, |log| log.custom_cost);
        assert!((0.04..0.06).contains(&errors), "errors {errors}");
        assert!((0.09..0.11).contains(&cached), "cached {cached}");
        assert!((0.57..0.63).contains(&metadata), "metadata {metadata}");
        assert!((0.09..0.11).contains(&no_payload), "payload {no_payload}");
        assert!((0.27..0.33).contains(&extras), "extras {extras}");
        assert!(
            (0.12..0.19).contains(&without_cost),
            "without cost {without_cost}"
        );
        assert!((0.03..0.06).contains(&custom), "custom {custom}");
        assert!(logs.iter().any(|log| log.status_code == 429));
        assert!(logs.iter().any(|log| log.model == "ft:acme-internal-v7"));
        let median = {
            let mut durations: Vec<u32> = successes
                .iter()
                .filter(|log| !log.cached)
                .map(|log| log.duration_ms)
                .collect();
            durations.sort_unstable();
            durations[durations.len() / 2]
        };
        assert!((300..=3000).contains(&median), "median duration {median}");
    }

    #[test]
    fn errors_have_no_tokens_or_cost_and_costs_follow_tokens() {
        for log in history(5_000, 3) {
            if !log.success {
                assert!(log.tokens_in.is_none() && log.tokens_out.is_none() && log.cost.is_none());
                assert!(log.status_code >= 400);
            } else if log.cached {
                assert_eq!(log.cost, Some(0.0));
                assert!(log.duration_ms < 30);
            } else if log.extras.as_ref().is_some_and(|extras| extras.byok) {
                // BYOK: the provider bills the call; Cloudflare reports 0.
                assert_eq!(log.cost, Some(0.0));
                assert!(!log.custom_cost);
            } else if let (Some(cost), false) = (log.cost, log.custom_cost) {
                let profile = CATALOG
                    .iter()
                    .find(|model| model.model == log.model && model.path == log.path)
                    .expect("catalog model");
                let price = profile.price.expect("priced model");
                let expected = f64::from(log.tokens_in.unwrap_or(0)) * price.input / 1e6
                    + f64::from(log.tokens_out.unwrap_or(0)) * price.output / 1e6;
                assert!((cost - expected).abs() < 1e-12);
            }
            if log.model == "ft:acme-internal-v7" && !log.custom_cost {
                assert!(log.cost.is_none() || log.cached);
            }
        }
    }

    #[test]
    fn ids_are_ulid_like_or_64_hex() {
        let logs = history(2_000, 4);
        let ulids = logs
            .iter()
            .filter(|log| {
                log.id.len() == 26 && log.id.bytes().all(|byte| CROCKFORD.contains(&byte))
            })
            .count();
        let hashes = logs
            .iter()
            .filter(|log| log.id.len() == 64 && log.id.bytes().all(|byte| byte.is_ascii_hexdigit()))
            .count();
        assert_eq!(ulids + hashes, logs.len());
        assert!(hashes > 100 && ulids > 1_600);
    }

    #[test]
    fn ulid_time_prefix_sorts_with_time() {
        let mut rng = SmallRng::seed_from_u64(0);
        let early = ulid_like(&mut rng, 1_000);
        let late = ulid_like(&mut rng, 2_000);
        assert!(early[..10] < late[..10]);
        assert_eq!(ulid_like(&mut rng, 0)[..10], *"0000000000");
    }

    #[test]
    fn metadata_is_a_json_string_with_matching_pairs() {
        let mut rng = SmallRng::seed_from_u64(5);
        for _ in 0..200 {
            let metadata = synthesize_metadata(&mut rng);
            let parsed: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&metadata.json).expect("metadata is JSON");
            assert_eq!(parsed.len(), metadata.pairs.len());
            assert!(parsed.contains_key("team"));
            assert!(metadata.pairs.len() <= 5);
        }
    }

    #[test]
    fn stable_hash_is_stable() {
        assert_eq!(stable_hash(&["a", "b"]), stable_hash(&["a", "b"]));
        assert_ne!(stable_hash(&["ab", ""]), stable_hash(&["a", "b"]));
    }
}
