//! Importing one gateway's logs since its cursor.
//!
//! The cursor is the `created_at` (Unix ms) up to which every visible log is stored, and it
//! commits in the same transaction as the rows it covers. A sync then:
//!
//! 1. **Reconciles the trailing window** `(cursor − W, cursor]`: one call with `per_page=1` asks
//!    Cloudflare how many logs it has there (`total_count`); if that is more than we stored, logs
//!    became visible late (or shared the cursor's millisecond) and the window is read again.
//!    Re-reading only on a mismatch keeps the cost of an incremental sync at one extra call.
//! 2. **Walks forward** from the cursor: `created_at > cursor`, oldest first, 50 per page, pages
//!    1, 2, … until a short page. Logs appended meanwhile land at the end, so earlier pages don't
//!    move; a late log landing before the read position only shifts rows forward (read twice,
//!    stored once), never skipping one. Rows are written in batches with the cursor set to one
//!    millisecond before the newest row, since the next page may hold more rows of that
//!    millisecond.

use std::time::Duration;

use langguard_cloudflare::{CloudflareClient, Direction, LogFilter, LogQuery, MAX_LOGS_PER_PAGE};
use langguard_pricing::Pricer;
use langguard_store::{IngestOutcome, IntegrationId, NewInteraction, Store, SyncCounts};

use crate::normalize::normalize;
use crate::{RunError, SyncProgress};

pub(crate) struct GatewayImport<'a> {
    pub client: &'a CloudflareClient,
    pub store: &'a dyn Store,
    pub pricer: &'a Pricer,
    pub integration_id: IntegrationId,
    pub gateway: &'a str,
    pub trailing_window: Duration,
    pub flush_rows: usize,
    pub counts: &'a mut SyncCounts,
    pub rejected: &'a mut u64,
    pub progress: Option<&'a (dyn Fn(&SyncProgress) + Send + Sync)>,
}

impl GatewayImport<'_> {
    /// `cursor`: the gateway's stored cursor; `floor_ms`: where a first sync starts (exclusive),
    /// `None` for all history.
    pub async fn run(
        &mut self,
        cursor: Option<i64>,
        floor_ms: Option<i64>,
    ) -> Result<(), RunError> {
        match cursor {
            Some(cursor) => {
                self.reconcile_trailing_window(cursor).await?;
                self.walk(vec![LogFilter::created_after(cursor)], true)
                    .await
            }
            None => {
                let filters = floor_ms.map(LogFilter::created_after).into_iter().collect();
                self.walk(filters, true).await
            }
        }
    }

    async fn reconcile_trailing_window(&mut self, cursor: i64) -> Result<(), RunError> {
        let after = cursor.saturating_sub(self.trailing_window.as_millis() as i64);
        let window = vec![
            LogFilter::created_after(after),
            LogFilter::created_before(cursor.saturating_add(1)),
        ];
        let probe = self
            .client
            .list_logs(
                self.gateway,
                &LogQuery {
                    page: 1,
                    per_page: 1,
                    direction: Direction::Asc,
                    filters: window.clone(),
                },
            )
            .await?;
        let remote = probe.info.and_then(|i| i.total_count);
        let local = self
            .store
            .count_gateway_interactions(self.integration_id, self.gateway, after, cursor)
            .await?;
        // Without a count to compare, reading the window again is the safe choice.
        if remote.is_none_or(|r| r.max(0) as u64 > local) {
            tracing::info!(
                gateway = self.gateway,
                remote,
                local,
                "logs appeared late in the trailing window; reading it again"
            );
            self.walk(window, false).await?;
        }
        Ok(())
    }

    /// Pages through `filters`, oldest first. A batch's write to the store runs while the next
    /// page is fetched and decoded, so the network and the database work at the same time; the
    /// batches still commit in order, each with its cursor.
    async fn walk(
        &mut self,
        filters: Vec<LogFilter>,
        advance_cursor: bool,
    ) -> Result<(), RunError> {
        let (store, gateway, integration_id) = (self.store, self.gateway, self.integration_id);
        let mut buffer: Vec<NewInteraction> =
            Vec::with_capacity(self.flush_rows + MAX_LOGS_PER_PAGE as usize);
        let mut query = LogQuery {
            page: 1,
            per_page: MAX_LOGS_PER_PAGE,
            direction: Direction::Asc,
            filters,
        };
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
            let n = page.logs.len();
            self.counts.items_fetched += n as i64;
            for log in page.logs {
                match normalize(log, self.pricer) {
                    Ok(interaction) => buffer.push(interaction),
                    Err(rejected) => {
                        *self.rejected += 1;
                        tracing::warn!(gateway, %rejected, "skipping a log that cannot be stored");
                    }
                }
            }
            let last_page = n < MAX_LOGS_PER_PAGE as usize;
            if buffer.len() >= self.flush_rows || last_page {
                let cursor = if advance_cursor {
                    // The next page may hold more logs of the newest millisecond: stop just
                    // before it.
                    buffer
                        .iter()
                        .map(|i| i.created_at_ms)
                        .max()
                        .map(|newest| newest - 1)
                } else {
                    None
                };
                let rows = std::mem::replace(
                    &mut buffer,
                    Vec::with_capacity(self.flush_rows + MAX_LOGS_PER_PAGE as usize),
                );
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

type PendingWrite<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = langguard_store::StoreResult<IngestOutcome>> + Send + 'a>,
>;
