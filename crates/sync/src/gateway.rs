//! Importing one gateway's logs since its cursor.
//!
//! The cursor is the `created_at` (Unix ms) up to which every visible log is stored, and it
//! commits in the same transaction as the rows it covers. A sync:
//!
//! 1. **Reconciles the trailing window** `(cursor − W, cursor]`. One call with `per_page=5` asks
//!    Cloudflare how many logs it has there (`total_count`); if that is more than we stored, logs
//!    became visible late. The window is then bisected — a count probe per half — down to
//!    sub-windows of a few pages, and only those are read again. One late log in a busy window
//!    costs a dozen probes, not a re-read of thousands of rows.
//! 2. **Walks the new range** `(cursor, sync start)` newest first, 50 per page, pages 1, 2, … until
//!    a short page. The fixed upper bound keeps logs appended meanwhile out of this run (the next
//!    one takes them) so the walk always ends; walking from the newest end means the two things
//!    that move rows while we page — logs appearing late inside the range (they shift rows down:
//!    read twice, stored once) and the gateway evicting its oldest logs when full (below us: no
//!    shift at all) — can never make us skip a row. Rows are written as they come, and the
//!    cursor moves to the newest row with the last batch, once everything below it is stored.
//!
//! Cloudflare may keep time finer than the milliseconds `created_at` shows: `created_at gt C`
//! then also lists rows shown at `C`. Those are expected at every lower bound and deduplicated
//! by their ids, never taken for a filter that was ignored.
//!
//! For `n` new logs that is `ceil((n + 1) / 50)` list calls plus one probe. The price of the
//! newest-first walk: a sync killed mid-way keeps its rows but not its progress, so the next run
//! reads the range again (storing nothing twice).

use std::time::Duration;

use langguard_cloudflare::{
    CloudflareClient, CloudflareError, Direction, LogFilter, LogQuery, MAX_LOGS_PER_PAGE,
};
use langguard_pricing::Pricer;
use langguard_store::{IngestOutcome, IntegrationId, NewInteraction, Store, SyncCounts};

use crate::normalize::normalize;
use crate::{RunError, SyncProgress};

/// `per_page` of a count probe: SPEC-2024 documents 5 as the minimum, and a server that enforces
/// it refuses anything smaller (7001) — every sync after the first would fail.
const COUNT_PROBE_PER_PAGE: u32 = 5;
/// Reconciliation reads a sub-window once it holds at most this many logs (four pages).
const RECONCILE_READ_AT: i64 = 4 * MAX_LOGS_PER_PAGE as i64;

pub(crate) struct GatewayImport<'a> {
    pub client: &'a CloudflareClient,
    pub integration_name: &'a str,
    pub store: &'a dyn Store,
    pub pricer: &'a Pricer,
    pub integration_id: IntegrationId,
    pub gateway: &'a str,
    pub trailing_window: Duration,
    pub flush_rows: usize,
    /// Unix ms when the sync started: the exclusive upper bound of what this run imports.
    pub sync_started_ms: i64,
    pub counts: &'a mut SyncCounts,
    pub rejected: &'a mut u64,
    pub progress: Option<&'a (dyn Fn(&SyncProgress) + Send + Sync)>,
}

type PendingWrite<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = langguard_store::StoreResult<IngestOutcome>> + Send + 'a>,
>;

impl GatewayImport<'_> {
    /// `cursor`: the gateway's stored cursor; `floor_ms`: where a first sync starts (exclusive),
    /// `None` for all history.
    pub async fn run(
        &mut self,
        cursor: Option<i64>,
        floor_ms: Option<i64>,
    ) -> Result<(), RunError> {
        if let Some(cursor) = cursor {
            let after = cursor.saturating_sub(self.trailing_window.as_millis() as i64);
            self.reconcile(after, cursor).await?;
        }
        let lower = cursor.or(floor_ms);
        self.walk(lower, self.sync_started_ms, true).await
    }

    /// Finds and reads logs of `(after, until]` that Cloudflare has and we don't.
    async fn reconcile(&mut self, after: i64, until: i64) -> Result<(), RunError> {
        let mut windows = vec![(after, until)];
        while let Some((a, b)) = windows.pop() {
            let remote = self.remote_count(a, b).await?;
            let local = self
                .store
                .count_gateway_interactions(self.integration_id, self.gateway, a, b)
                .await? as i64;
            match remote {
                // Without a count to compare, reading the window again is the safe choice.
                None => {
                    tracing::warn!(
                        gateway = self.gateway,
                        "no total_count from Cloudflare; re-reading the trailing window"
                    );
                    self.walk(Some(a), b.saturating_add(1), false).await?;
                }
                // Fewer than stored means logs were deleted on Cloudflare: nothing to fetch.
                Some(remote) if remote <= local => {}
                Some(remote) if remote <= RECONCILE_READ_AT || b - a <= 1 => {
                    tracing::info!(
                        gateway = self.gateway,
                        remote,
                        local,
                        "logs appeared late; reading them"
                    );
                    self.walk(Some(a), b.saturating_add(1), false).await?;
                }
                Some(_) => {
                    let mid = a + (b - a) / 2;
                    windows.push((mid, b));
                    windows.push((a, mid));
                }
            }
        }
        Ok(())
    }

    /// How many logs Cloudflare lists with `after < created_at <= until`.
    async fn remote_count(&mut self, after: i64, until: i64) -> Result<Option<i64>, RunError> {
        let probe = self
            .client
            .list_logs(
                self.gateway,
                &LogQuery {
                    page: 1,
                    // The smallest page the API's schema documents; only `total_count` is read.
                    per_page: COUNT_PROBE_PER_PAGE,
                    direction: Direction::Desc,
                    filters: vec![
                        LogFilter::created_after(after),
                        LogFilter::created_before(until.saturating_add(1)),
                    ],
                },
            )
            .await?;
        Ok(probe.info.and_then(|i| i.total_count))
    }

    /// Reads every log with `lower < created_at < upper`, newest first, storing as it goes. A
    /// batch's write runs while the next page is fetched and decoded, so the network and the
    /// database work at the same time; batches still commit in order. With `advance_cursor`,
    /// the last batch moves the cursor to the newest row read.
    async fn walk(
        &mut self,
        lower: Option<i64>,
        upper: i64,
        advance_cursor: bool,
    ) -> Result<(), RunError> {
        let (store, gateway, integration_id) = (self.store, self.gateway, self.integration_id);
        let capacity = self.flush_rows + MAX_LOGS_PER_PAGE as usize;
        let mut buffer: Vec<NewInteraction> = Vec::with_capacity(capacity);
        let mut query = LogQuery {
            page: 1,
            per_page: MAX_LOGS_PER_PAGE,
            direction: Direction::Desc,
            filters: lower
                .map(LogFilter::created_after)
                .into_iter()
                .chain([LogFilter::created_before(upper)])
                .collect(),
        };
        let mut newest: Option<i64> = None;
        let mut in_flight: Option<PendingWrite<'_>> = None;
        loop {
            let fetch = self.client.list_logs(gateway, &query);
            let page = match in_flight.take() {
                Some(write) => {
                    let (page, written) = tokio::join!(fetch, write);
                    self.record(written?);
                    page?
                }
                None => fetch.await?,
            };
            let n = page.logs.len() + page.rejected.len();
            self.counts.items_fetched += n as i64;
            for rejected in &page.rejected {
                tracing::warn!(gateway, %rejected, "skipping a log that cannot be read");
            }
            *self.rejected += page.rejected.len() as u64;
            for log in page.logs {
                match normalize(log, self.pricer) {
                    Ok(interaction) => {
                        let at = interaction.created_at_ms;
                        // The cursor's meaning rests on Cloudflare applying the time filter;
                        // if it ever doesn't, stop rather than move the cursor on bad data.
                        // A row shown at exactly the lower bound is normal: Cloudflare may keep
                        // time finer than the milliseconds it shows, so `gt <bound>` lists rows
                        // a fraction of a millisecond after it. They are stored once (the ids
                        // decide); only rows clearly outside the range mean the filter was
                        // ignored.
                        if lower.is_some_and(|l| at < l) || at >= upper {
                            return Err(CloudflareError::Decode(format!(
                                "Cloudflare listed log {} (created {}) outside the requested time range; the filters were not applied",
                                interaction.log_id,
                                langguard_clock::format_ms(at)
                            ))
                            .into());
                        }
                        newest = newest.max(Some(at));
                        buffer.push(interaction);
                    }
                    Err(rejected) => {
                        *self.rejected += 1;
                        tracing::warn!(gateway, %rejected, "skipping a log that cannot be stored");
                    }
                }
            }
            let last_page = n < MAX_LOGS_PER_PAGE as usize;
            if buffer.len() >= self.flush_rows || last_page {
                // Only the last batch moves the cursor: until then, older rows are still unread.
                let cursor = (advance_cursor && last_page).then_some(newest).flatten();
                let rows = std::mem::replace(&mut buffer, Vec::with_capacity(capacity));
                in_flight = Some(store.ingest_batch(integration_id, gateway, rows, cursor));
            }
            if last_page {
                if let Some(write) = in_flight.take() {
                    self.record(write.await?);
                }
                return Ok(());
            }
            query.page += 1;
        }
    }

    fn record(&mut self, outcome: IngestOutcome) {
        crate::telemetry::record_traffic(self.integration_name, self.gateway, &outcome.traffic);
        self.counts.items_ingested += outcome.inserted as i64;
        self.counts.duplicates_skipped += outcome.duplicates as i64;
        if let Some(progress) = self.progress {
            progress(&SyncProgress {
                gateway: self.gateway.to_owned(),
                counts: self.counts.clone(),
            });
        }
    }
}
