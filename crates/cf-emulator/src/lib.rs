//! A faithful local emulator of the Cloudflare AI Gateway REST API (`/client/v4`), for
//! LangGuard's importer tests, benchmarks and demo.
//!
//! It serves the routes an importer uses — gateways, logs (list, detail, request/response
//! bodies) and token verification — with Cloudflare's envelope, error codes, pagination,
//! ordering, JSON `filters`, per-token rate limits and `Ratelimit` headers as documented in
//! `shared/cloudflare/API-NOTES.md` (§1–5, §8). Tests drive it through a control API: seed
//! deterministic synthetic history, append late logs, run live traffic, and inject faults
//! (429 storms, 5xx, latency, cut connections, delayed visibility).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use langguard_cf_emulator::{Emulator, EmulatorConfig, SeedSpec, TokenSpec};
//! use time::{Duration, OffsetDateTime};
//!
//! let emulator = Emulator::new(EmulatorConfig::default());
//! emulator.add_account("acct");
//! emulator.add_token("secret", TokenSpec::user(&["acct"]));
//! emulator.add_gateway("acct", "prod-chat");
//! let now = OffsetDateTime::now_utc();
//! emulator.seed_logs("acct", "prod-chat", SeedSpec { count: 1000, from: now - Duration::hours(24), to: now, seed: 1 });
//! let running = emulator.spawn().await?;
//! println!("point the importer at {}", running.base_url());
//! # Ok(()) }
//! ```

mod analytics;
mod auth;
mod bodies;
mod config;
mod emulator;
mod envelope;
mod faults;
mod filters;
mod listing;
mod live;
mod log_record;
pub mod moto;
mod push;
mod query;
mod rate_limit;
mod routes;
mod state;
mod stats;
mod synthetic;

pub use auth::{TokenSpec, TokenStatus};
pub use config::{Direction, EmulatorConfig};
pub use emulator::{Emulator, RunningEmulator};
pub use faults::Faults;
pub use live::LiveTraffic;
pub use moto::MotoServer;
pub use push::{LogSystem, PushFaults, PushedRecord};
pub use stats::Stats;
pub use synthetic::{synthetic_log_pages, SeedSpec};
