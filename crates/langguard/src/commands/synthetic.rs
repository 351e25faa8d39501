//! Synthetic gateway logs through the real ingest path (decode → normalise → store with
//! rollups), for the ingest benchmark and for filling a store to test at scale.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use langguard_cf_emulator::{synthetic_log_pages, SeedSpec};
use langguard_cloudflare::types::{Envelope, GatewayLog};
use langguard_pricing::Pricer;
use langguard_store::{
    IngestOutcome, Integration, IntegrationId, NewIntegration, Store, StoreResult,
};
use langguard_sync::normalize;

/// Pages are generated ahead, untimed, this many logs at a time: the generator's own cost stays
/// out of the figures and memory stays bounded.
const GENERATED_AHEAD: usize = 50_000;

#[derive(Debug, Clone, Copy, Default)]
pub struct Ingested {
    pub logs: usize,
    pub bytes: usize,
    pub decode: Duration,
    pub normalise: Duration,
    /// Wall time of decode, normalise and store together (generation excluded).
    pub elapsed: Duration,
}

/// An integration for a benchmark's synthetic logs, named `{prefix}-{now}` so runs against a
/// kept database don't collide; never synced (its token is a placeholder).
pub async fn bench_integration(
    store: &dyn Store,
    prefix: &str,
    enabled: bool,
) -> StoreResult<Integration> {
    store
        .create_integration(NewIntegration {
            name: format!("{prefix}-{}", crate::app::now_ms()),
            account_id: "bench".into(),
            api_token: langguard_store::SealFor::new(|_| vec![0]),
            enabled,
            sync_interval_minutes: 15,
            lookback_days: None,
            trailing_window_minutes: langguard_store::DEFAULT_TRAILING_WINDOW_MINUTES,
        })
        .await
}

/// Ingests `spec`'s logs, `batch` per transaction, spreading pages over `gateways`, each
/// batch's write overlapping the decoding of the next pages (as the sync engine does).
/// `progress` is called after every generated chunk.
pub async fn ingest_synthetic(
    store: Arc<dyn Store>,
    integration_id: IntegrationId,
    spec: &SeedSpec,
    batch: usize,
    gateways: &[&str],
    mut progress: impl FnMut(&Ingested),
) -> anyhow::Result<Ingested> {
    let pricer = Pricer::shared();
    let mut pages = synthetic_log_pages(spec, 50).enumerate().peekable();
    let mut totals = Ingested::default();
    let mut buffers: Vec<Vec<_>> = gateways
        .iter()
        .map(|_| Vec::with_capacity(batch + 50))
        .collect();
    let mut in_flight: Option<tokio::task::JoinHandle<StoreResult<IngestOutcome>>> = None;
    while pages.peek().is_some() {
        let ahead: Vec<(usize, Vec<u8>)> = pages.by_ref().take(GENERATED_AHEAD / 50).collect();
        let started = Instant::now();
        let last_chunk = pages.peek().is_none();
        for (n, (index, body)) in ahead.iter().enumerate() {
            totals.bytes += body.len();
            let t = Instant::now();
            let page: Envelope<Vec<GatewayLog>> =
                serde_json::from_slice(body).context("decoding a synthetic page")?;
            let rows = page.result.unwrap_or_default();
            let t2 = Instant::now();
            totals.decode += t2 - t;
            totals.logs += rows.len();
            let g = index % gateways.len().max(1);
            for row in rows {
                buffers[g].push(normalize(row, pricer)?);
            }
            totals.normalise += t2.elapsed();
            let end = last_chunk && n + 1 == ahead.len();
            for (g, gateway) in gateways.iter().enumerate() {
                if buffers[g].len() >= batch || (end && !buffers[g].is_empty()) {
                    if let Some(previous) = in_flight.take() {
                        previous.await??;
                    }
                    let newest = buffers[g].iter().map(|i| i.created_at_ms).max();
                    let rows = std::mem::replace(&mut buffers[g], Vec::with_capacity(batch + 50));
                    let (store, gateway) = (store.clone(), (*gateway).to_owned());
                    in_flight = Some(tokio::spawn(async move {
                        store
                            .ingest_batch(integration_id, &gateway, rows, newest)
                            .await
                    }));
                }
            }
        }
        if let Some(previous) = in_flight.take() {
            previous.await??;
        }
        totals.elapsed += started.elapsed();
        progress(&totals);
    }
    Ok(totals)
}
