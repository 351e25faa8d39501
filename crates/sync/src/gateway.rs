//! Importing one gateway's logs since its cursor.
//!
//! The cursor is the `created_at` (Unix ms) up to which every visible log is stored, and it
//! commits in the same transaction as the rows it covers. A sync:
//!
//! 1. **Reconciles the trailing window** `(cursor − W, cursor]`: logs Cloudflare made visible
//!    after a sync had passed their time. `W` is the integration's `trailing_window_minutes`
//!    (default 30), widened per gateway once logs that late are seen. One call (`per_page=50`)
//!    gives Cloudflare's `total_count` for the window and its newest 50 rows; the rows are
//!    stored (duplicates skipped), so a window of up to 50 logs is compared id by id and
//!    nothing can hide in it — not even a deletion cancelling out a late arrival. A bigger
//!    window whose count differs from ours, either way (more: late logs; fewer: deletions, which
//!    may hide late logs), is bisected — a probe per half, halves whose counts agree dropped —
//!    down to sub-windows of at most 50 logs, compared id by id the same way, or a few pages,
//!    read again. One late log in a busy window costs a dozen probes, not a re-read.
//! 2. **Walks the new range** `(cursor, sync start)` **oldest first, by keyset**: every call asks
//!    for page 1 of `created_at gt P` where `P` is one millisecond before the newest row read
//!    so far, so rows deleted or inserted behind `P` never shift what comes next (offset pages
//!    would skip rows when a log is deleted mid-walk), and a short page is never taken for the
//!    end — only a page holding everything Cloudflare counts after `P` is. The rows of `P + 1`
//!    are read again on the next call and stored once. Rows commit every few thousand with the
//!    cursor at `P`, so a walk that fails or is killed — a first import of ten million logs takes
//!    about fifteen hours at the API's rate — resumes where it committed instead of starting
//!    over. The fixed upper bound keeps logs appended meanwhile for the next run, so the walk
//!    ends. Should a whole page of logs share one millisecond, the walk reads that millisecond
//!    by offset — pass after pass until the ids reach its count, as the API promises no order
//!    among equal times — and then moves on.
//! 3. **Checks the walk adds up**: the distinct rows read must reach the first page's
//!    `total_count`. When they don't (a partial page that was not a prefix, ties listed in an
//!    unstable order, deletions), the walked range is reconciled as in 1 and compared again —
//!    and the cursor, held back meanwhile (as it is from the moment a walk reads on from a
//!    short page), moves only once the range adds up: a failure or a kill before that leaves
//!    the range to be walked again, never behind the cursor.
//!
//! Cloudflare may keep time finer than the milliseconds `created_at` shows: `created_at gt C`
//! then also lists rows shown at `C`. Those are expected at every lower bound and deduplicated
//! by their ids, never taken for a filter that was ignored.
//!
//! For `n` new logs that is about `n / 49` list calls plus one probe; a quiet gateway's sync
//! is two calls.

use std::collections::HashMap;

use langguard_cloudflare::{
    CloudflareClient, CloudflareError, Direction, GatewayLog, LogFilter, LogPage, LogQuery,
    MAX_LOGS_PER_PAGE,
};
use langguard_pricing::Pricer;
use langguard_store::{IngestOutcome, IntegrationId, NewInteraction, Store, SyncCounts};

use crate::coverage::HOUR_MS;
use crate::normalize::normalize;
use crate::{RunError, SyncProgress};

/// Rows a page holds, as a count.
const PAGE: i64 = MAX_LOGS_PER_PAGE as i64;
/// Reconciliation reads a sub-window again once it holds at most this many logs (four pages).
const RECONCILE_READ_AT: i64 = 4 * PAGE;
/// How often a walk that does not add up is reconciled and compared again before the sync
/// fails (so the cursor never covers logs it may have missed without someone knowing).
const COMPLETENESS_ROUNDS: u32 = 3;
/// How many passes over one millisecond's logs are made before its count is given up on.
const TIE_ROUNDS: u32 = 20;
/// How often a page Cloudflare counts rows for but lists none is asked for again.
const EMPTY_PAGE_RETRIES: u32 = 3;
/// Pages of rated logs read again per refresh (2,500 logs).
const FEEDBACK_PAGES: u32 = 50;
/// The widest a trailing window grows on its own.
const MAX_LATE_WINDOW_MS: i64 = 24 * HOUR_MS;

pub(crate) struct GatewayImport<'a> {
    pub client: &'a CloudflareClient,
    pub integration_name: &'a str,
    pub store: &'a dyn Store,
    pub pricer: &'a Pricer,
    pub integration_id: IntegrationId,
    pub gateway: &'a str,
    /// How far behind the cursor to look for late-visible logs, in ms (the integration's
    /// setting, or the gateway's own once widened: [`crate::trailing_window_ms`]).
    pub trailing_window_ms: i64,
    pub flush_rows: usize,
    /// Unix ms when the sync started: the exclusive upper bound of what this run imports.
    pub sync_started_ms: i64,
    pub counts: &'a mut SyncCounts,
    pub rejected: &'a mut u64,
    pub progress: Option<&'a (dyn Fn(&SyncProgress) + Send + Sync)>,
    /// Whether Cloudflare was seen listing a row shown at exactly a `gt` bound (it keeps time
    /// finer than it shows): its counts then include the bound's millisecond, and ours must.
    pub fine_time: bool,
    /// `created_at` of the oldest row stored since this was last cleared.
    pub oldest_inserted: Option<i64>,
}

type PendingWrite<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = langguard_store::StoreResult<IngestOutcome>> + Send + 'a>,
>;

/// A page as [`GatewayImport::take_page`] leaves it.
struct TakenPage {
    total: Option<i64>,
    /// Rows listed, readable or not.
    listed: i64,
    /// Ids (when they had one) of the rows that could not be read as logs.
    unreadable: Vec<Option<String>>,
    rows: Vec<NewInteraction>,
}

/// What a walk read.
struct Walked {
    /// Distinct rows listed in the range (a row listed again at a keyset boundary counts once).
    listed: i64,
    /// `total_count` of the walk's first page: what Cloudflare had in the range when it began.
    expected: Option<i64>,
    inserted: u64,
    /// The cursor the walk would have committed, held back because what it read does not add
    /// up to `expected` (or a short page was read on from): committed once the range is
    /// made complete.
    held_cursor: Option<i64>,
}

impl GatewayImport<'_> {
    /// `cursor`: the gateway's stored cursor; `floor_ms`: where a first sync starts (exclusive),
    /// `None` for all history.
    pub async fn run(
        &mut self,
        cursor: Option<i64>,
        floor_ms: Option<i64>,
    ) -> Result<(), RunError> {
        if let Some(cursor) = cursor {
            let window = self.trailing_window_ms;
            let after = cursor.saturating_sub(window);
            self.oldest_inserted = None;
            self.reconcile(after, cursor).await?;
            if let Some(oldest_late) = self.oldest_inserted {
                self.widen_window(cursor, window, oldest_late).await?;
            }
        }
        let lower = cursor.or(floor_ms);
        let upper = self.sync_started_ms;
        let walked = self.walk(lower, upper, true).await?;
        if let Some(cursor) = walked.held_cursor {
            tracing::warn!(
                gateway = self.gateway,
                listed = walked.listed,
                expected = walked.expected,
                "the walk read fewer logs than Cloudflare counted; reading the parts that differ"
            );
            self.make_complete(lower.unwrap_or(0), upper - 1).await?;
            // Only now does the cursor pass what the walk read.
            self.store
                .ingest_batch(self.integration_id, self.gateway, Vec::new(), Some(cursor))
                .await?;
        }
        Ok(())
    }

    /// Reads again, from the Logs API, what it has of the hour starting at `hour_ms` and we
    /// don't: how coverage closes an hour short of Cloudflare's count. The first time by
    /// comparing counts (cheap; finds late logs), after that by reading the whole hour —
    /// equal counts can hide a missing log behind a deleted one.
    pub async fn reread_hour(&mut self, hour_ms: i64, attempt: i64) -> Result<(), RunError> {
        let end = hour_ms + HOUR_MS;
        if attempt <= 1 {
            self.reconcile(hour_ms - 1, end - 1).await
        } else {
            self.walk(Some(hour_ms - 1), end, false).await.map(|_| ())
        }
    }

    /// Reads again the gateway's rated logs created after `since_ms` and refreshes what we
    /// hold of them: feedback (and a score set with it) is given on Cloudflare after the call,
    /// usually long after the walk stored the log. Cloudflare filters by feedback (one call
    /// when few were rated); a score set without feedback is refreshed only when its log is
    /// read again. Newest first, at most [`FEEDBACK_PAGES`] pages a time. Returns how many
    /// stored logs changed.
    pub async fn refresh_feedback(&mut self, since_ms: i64) -> Result<u64, RunError> {
        let upper = self.sync_started_ms;
        let mut changed = 0;
        for page in 1..=FEEDBACK_PAGES {
            let listed = self
                .client
                .list_logs(
                    self.gateway,
                    &LogQuery {
                        page,
                        per_page: MAX_LOGS_PER_PAGE,
                        direction: Direction::Desc,
                        filters: vec![
                            LogFilter::created_after(since_ms),
                            LogFilter::created_before(upper),
                            LogFilter::rated(),
                        ],
                    },
                )
                .await?;
            // Not `take_page`: these rows were counted (and any unreadable one reported) when
            // the walk read them; a row that can't be read now is simply not refreshed.
            let rows = (listed.logs.len() + listed.rejected.len()) as i64;
            let total = listed.info.and_then(|i| i.total_count);
            let updates = listed
                .logs
                .into_iter()
                .filter_map(|log| normalize(log, self.pricer).ok())
                .map(|row| (row.log_id, row.details))
                .collect();
            changed += self
                .store
                .refresh_details(self.integration_id, self.gateway, updates)
                .await?;
            let seen = i64::from(page) * PAGE;
            if rows < PAGE || total.is_some_and(|total| total <= seen) {
                break;
            }
        }
        Ok(changed)
    }

    /// Reconciles `(after, until]` until our count reaches Cloudflare's (rows deleted meanwhile
    /// make theirs the smaller), or fails the sync saying so.
    async fn make_complete(&mut self, after: i64, until: i64) -> Result<(), RunError> {
        for round in 0..=COMPLETENESS_ROUNDS {
            let remote = self.probe(after, until).await?.0;
            let local = self.local_count(after, until).await?;
            let remote = match remote {
                Some(remote) if remote == local => return Ok(()),
                // Without a count, reading the range again is all there is to do.
                None if round > 0 => return Ok(()),
                // Fewer than stored: deletions, which may hide a row the walk skipped — the
                // sub-ranges that differ are compared id by id once.
                Some(remote) if remote < local && round > 0 => return Ok(()),
                Some(remote) => remote,
                None => local + 1,
            };
            if round == COMPLETENESS_ROUNDS && remote > local {
                return Err(RunError::Incomplete(format!(
                    "Cloudflare counts {remote} logs created after {} but only {local} could be \
                     read, after {COMPLETENESS_ROUNDS} attempts",
                    langguard_clock::format_ms(after),
                )));
            }
            self.reconcile(after, until).await?;
        }
        Ok(())
    }

    /// How many logs of `(after, until]` we store — counted as Cloudflare counts
    /// `created_at gt after`: with rows shown at `after` once it was seen to list them.
    async fn local_count(&self, after: i64, until: i64) -> Result<i64, RunError> {
        let after = if self.fine_time { after - 1 } else { after };
        Ok(self
            .store
            .count_gateway_interactions(self.integration_id, self.gateway, after, until)
            .await? as i64)
    }

    /// Finds and reads logs of `(after, until]` that Cloudflare has and we don't.
    async fn reconcile(&mut self, after: i64, until: i64) -> Result<(), RunError> {
        let mut windows = vec![(after, until)];
        while let Some((a, b)) = windows.pop() {
            let (remote, rows) = self.probe(a, b).await?;
            let listed = rows.len() as i64;
            // Every probe's rows are stored: a late log among a window's newest 50 is found
            // for free, and a window the page holds whole is compared id by id.
            self.store_rows(rows).await?;
            match remote {
                // Without a count to compare, reading the window again is the safe choice.
                None => {
                    tracing::warn!(
                        gateway = self.gateway,
                        "no total_count from Cloudflare; re-reading the trailing window"
                    );
                    self.walk(Some(a), b.saturating_add(1), false).await?;
                }
                Some(remote) if remote <= listed => {}
                Some(remote) => {
                    let local = self.local_count(a, b).await?;
                    if remote == local {
                        // Counts agree and the newest rows were compared: nothing to read.
                    } else if remote <= RECONCILE_READ_AT || b - a <= 1 {
                        tracing::info!(
                            gateway = self.gateway,
                            remote,
                            local,
                            "the logs of a window changed on Cloudflare; reading it again"
                        );
                        self.walk(Some(a), b.saturating_add(1), false).await?;
                    } else {
                        let mid = a + (b - a) / 2;
                        windows.push((mid, b));
                        windows.push((a, mid));
                    }
                }
            }
        }
        Ok(())
    }

    /// Late logs turned up `cursor − oldest_late` behind the cursor: when that is more than half
    /// the window, later ones may be just outside it, so the gateway's window doubles past it.
    async fn widen_window(
        &mut self,
        cursor: i64,
        window: i64,
        oldest_late: i64,
    ) -> Result<(), RunError> {
        let lateness = cursor - oldest_late;
        if lateness * 2 <= window || window >= MAX_LATE_WINDOW_MS {
            return Ok(());
        }
        let widened = (lateness * 2).clamp(window, MAX_LATE_WINDOW_MS);
        tracing::warn!(
            gateway = self.gateway,
            late_minutes = lateness / 60_000,
            window_minutes = widened / 60_000,
            "logs became visible late on Cloudflare; this gateway's trailing window is widened"
        );
        self.store
            .widen_late_window(self.integration_id, self.gateway, widened)
            .await?;
        self.trailing_window_ms = widened;
        Ok(())
    }

    /// A listed page made ready to store: its rows checked against `(lower, upper)` (see
    /// [`Self::accept`]), the ones that cannot be read or stored counted and logged.
    fn take_page(
        &mut self,
        page: LogPage,
        lower: Option<i64>,
        upper: i64,
    ) -> Result<TakenPage, RunError> {
        let listed = (page.logs.len() + page.rejected.len()) as i64;
        self.counts.items_fetched += listed;
        self.note_rejected(&page.rejected);
        let mut rows = Vec::with_capacity(page.logs.len());
        for log in page.logs {
            if let Some(row) = self.accept(log, lower, upper)? {
                rows.push(row);
            }
        }
        Ok(TakenPage {
            total: page.info.and_then(|i| i.total_count),
            listed,
            unreadable: page.rejected.into_iter().map(|r| r.id).collect(),
            rows,
        })
    }

    /// One call for `(after, until]`, newest first, a page of 50: Cloudflare's `total_count`
    /// and the window's newest rows.
    async fn probe(
        &mut self,
        after: i64,
        until: i64,
    ) -> Result<(Option<i64>, Vec<NewInteraction>), RunError> {
        let upper = until.saturating_add(1);
        let page = self
            .client
            .list_logs(
                self.gateway,
                &LogQuery {
                    page: 1,
                    per_page: MAX_LOGS_PER_PAGE,
                    direction: Direction::Desc,
                    filters: vec![
                        LogFilter::created_after(after),
                        LogFilter::created_before(upper),
                    ],
                },
            )
            .await?;
        let taken = self.take_page(page, Some(after), upper)?;
        Ok((taken.total, taken.rows))
    }

    async fn store_rows(&mut self, rows: Vec<NewInteraction>) -> Result<u64, RunError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let outcome = self
            .store
            .ingest_batch(self.integration_id, self.gateway, rows, None)
            .await?;
        let inserted = outcome.inserted;
        self.record(outcome);
        Ok(inserted)
    }

    /// Reads every log with `lower < created_at < upper`, oldest first by keyset (see the top
    /// of this file), storing as it goes. A batch's write runs while the next page is fetched
    /// and decoded, so the network and the database work at the same time; batches still
    /// commit in order. With `advance_cursor`, each batch moves the cursor to the keyset
    /// position, and the last one to the newest row read.
    async fn walk(
        &mut self,
        lower: Option<i64>,
        upper: i64,
        advance_cursor: bool,
    ) -> Result<Walked, RunError> {
        let (store, gateway, integration_id) = (self.store, self.gateway, self.integration_id);
        let capacity = self.flush_rows + MAX_LOGS_PER_PAGE as usize;
        let mut buffer: Vec<NewInteraction> = Vec::with_capacity(capacity);
        // Everything visible at or before `position` is stored or in `buffer`.
        let mut position = lower;
        let mut offset_page: u32 = 1;
        // Rows at or after `position` already listed: the next keyset call lists them again.
        let mut seen: Vec<(String, i64)> = Vec::new();
        let mut walked = Walked {
            listed: 0,
            expected: None,
            inserted: 0,
            held_cursor: None,
        };
        // Set once the walk reads on from a short page that was not the last: such a page may
        // have left rows out, so the cursor waits for the completeness check.
        let mut suspect = false;
        // The millisecond last read whole (ties): paged past, never read again.
        let mut read_ms: Option<i64> = None;
        let mut newest: Option<i64> = None;
        let mut empty_pages = 0;
        let mut in_flight: Option<PendingWrite<'_>> = None;
        loop {
            let query = LogQuery {
                page: offset_page,
                per_page: MAX_LOGS_PER_PAGE,
                direction: Direction::Asc,
                filters: position
                    .map(LogFilter::created_after)
                    .into_iter()
                    .chain([LogFilter::created_before(upper)])
                    .collect(),
            };
            let fetch = self.client.list_logs(gateway, &query);
            let page = match in_flight.take() {
                Some(write) => {
                    let (page, written) = tokio::join!(fetch, write);
                    walked.inserted += self.record(written?);
                    page?
                }
                None => fetch.await?,
            };
            let TakenPage {
                total,
                listed,
                unreadable,
                rows,
            } = self.take_page(page, position, upper)?;
            if walked.expected.is_none() && position == lower && offset_page == 1 {
                walked.expected = total;
            }
            walked.listed += unreadable.len() as i64;
            let mut page_newest: Option<i64> = None;
            for row in rows {
                let at = row.created_at_ms;
                page_newest = page_newest.max(Some(at));
                if !seen.iter().any(|(id, _)| *id == row.log_id) {
                    walked.listed += 1;
                    seen.push((row.log_id.clone(), at));
                }
                buffer.push(row);
            }
            newest = newest.max(page_newest);
            let before_page = i64::from(offset_page - 1) * PAGE;
            // Only a page holding everything Cloudflare counts is the end; a short one that
            // is not (a partial response, a server-side cap) is read on from.
            let mut done = match total {
                Some(total) => before_page + listed >= total,
                None => listed < PAGE,
            };
            if !done {
                if listed == 0 {
                    empty_pages += 1;
                    if empty_pages > EMPTY_PAGE_RETRIES {
                        return Err(RunError::Incomplete(format!(
                            "Cloudflare counts {} logs created after {} but lists none of them",
                            total.unwrap_or_default() - before_page,
                            position.map_or("the beginning".into(), langguard_clock::format_ms),
                        )));
                    }
                    continue;
                }
                empty_pages = 0;
                suspect |= listed < PAGE;
                match page_newest {
                    Some(newest_here) if position.is_none_or(|p| newest_here - 1 > p) => {
                        position = Some(newest_here - 1);
                        offset_page = 1;
                        seen.retain(|(_, at)| *at >= newest_here - 1);
                    }
                    // That millisecond is stored whole: page past its rows under the same
                    // keyset (a server keeping finer time lists them again after `gt` it).
                    Some(tie) if read_ms == Some(tie) => offset_page += 1,
                    // A whole page in one millisecond: read all of that millisecond, then
                    // go on after it.
                    Some(tie) => {
                        if let Some(write) = in_flight.take() {
                            walked.inserted += self.record(write.await?);
                        }
                        let (inserted, ids) = self.read_millisecond(tie).await?;
                        walked.inserted += inserted;
                        read_ms = Some(tie);
                        // When that millisecond was all Cloudflare counted, the walk is over.
                        done = offset_page == 1
                            && position.is_some_and(|p| tie == p + 1)
                            && total.is_some_and(|total| ids.len() as i64 >= total);
                        for id in ids {
                            if !seen.iter().any(|(seen_id, _)| *seen_id == id) {
                                walked.listed += 1;
                                seen.push((id, tie));
                            }
                        }
                        position = Some(tie);
                        offset_page = 1;
                        seen.retain(|(_, at)| *at >= tie);
                    }
                    // A page of rows that cannot be read: page past it by offset.
                    None => offset_page += 1,
                }
            }
            if buffer.len() >= self.flush_rows || done {
                let short = walked.expected.is_some_and(|e| walked.listed < e);
                let cursor = match (advance_cursor, done) {
                    (false, _) => None,
                    (true, true) if suspect || short => {
                        walked.held_cursor = newest.max(position);
                        None
                    }
                    (true, true) => newest.max(position),
                    (true, false) if suspect => None,
                    (true, false) => position,
                };
                let rows = std::mem::replace(&mut buffer, Vec::with_capacity(capacity));
                in_flight = Some(store.ingest_batch(integration_id, gateway, rows, cursor));
            }
            if done {
                if let Some(write) = in_flight.take() {
                    walked.inserted += self.record(write.await?);
                }
                return Ok(walked);
            }
        }
    }

    /// Reads every log shown at millisecond `ms` — more than a page of them — by offset pages
    /// of `(ms − 1, ms + 1)`, again until the distinct rows reach Cloudflare's count: the API
    /// promises no order among rows sharing a time, so one pass may list some twice and skip
    /// others. Returns the rows newly stored and the ids listed.
    async fn read_millisecond(&mut self, ms: i64) -> Result<(u64, Vec<String>), RunError> {
        // Each listed row's id and the time it was shown at, if it could be read (a server
        // keeping finer time lists rows shown at `ms - 1` too).
        let mut listed_at: HashMap<String, Option<i64>> = HashMap::new();
        let mut inserted = 0;
        let mut total = None;
        for _ in 0..TIE_ROUNDS {
            let mut page_no = 1;
            loop {
                let page = self
                    .client
                    .list_logs(
                        self.gateway,
                        &LogQuery {
                            page: page_no,
                            per_page: MAX_LOGS_PER_PAGE,
                            direction: Direction::Asc,
                            filters: vec![
                                LogFilter::created_after(ms - 1),
                                LogFilter::created_before(ms + 1),
                            ],
                        },
                    )
                    .await?;
                let taken = self.take_page(page, Some(ms - 1), ms + 1)?;
                total = taken.total.or(total);
                listed_at.extend(taken.unreadable.into_iter().flatten().map(|id| (id, None)));
                listed_at.extend(
                    taken
                        .rows
                        .iter()
                        .map(|row| (row.log_id.clone(), Some(row.created_at_ms))),
                );
                let listed = taken.listed;
                inserted += self.store_rows(taken.rows).await?;
                let read_all = total.is_some_and(|t| i64::from(page_no) * PAGE >= t);
                if listed < PAGE || read_all {
                    break;
                }
                page_no += 1;
            }
            if total.is_none_or(|t| listed_at.len() as i64 >= t) {
                let at_ms = listed_at
                    .into_iter()
                    .filter(|(_, at)| at.is_none_or(|at| at == ms))
                    .map(|(id, _)| id)
                    .collect();
                return Ok((inserted, at_ms));
            }
        }
        Err(RunError::Incomplete(format!(
            "Cloudflare counts {} logs at {} but lists only {} of them, however often asked",
            total.unwrap_or_default(),
            langguard_clock::format_ms(ms),
            listed_at.len()
        )))
    }

    /// The log as a row to store, if it can be stored at all; an error if Cloudflare listed it
    /// outside `(lower, upper)`.
    fn accept(
        &mut self,
        log: GatewayLog,
        lower: Option<i64>,
        upper: i64,
    ) -> Result<Option<NewInteraction>, RunError> {
        match normalize(log, self.pricer) {
            Ok(row) => {
                let at = row.created_at_ms;
                // The cursor's meaning rests on Cloudflare applying the time filter; if it ever
                // doesn't, stop rather than move the cursor on bad data. A row shown at exactly
                // the lower bound is normal (sub-millisecond time, see the top of this file);
                // only rows clearly outside the range mean the filter was ignored.
                if lower == Some(at) {
                    self.fine_time = true;
                }
                if lower.is_some_and(|l| at < l) || at >= upper {
                    return Err(CloudflareError::Decode(format!(
                        "Cloudflare listed log {} (created {}) outside the requested time range; the filters were not applied",
                        row.log_id,
                        langguard_clock::format_ms(at)
                    ))
                    .into());
                }
                Ok(Some(row))
            }
            Err(rejected) => {
                *self.rejected += 1;
                tracing::warn!(gateway = self.gateway, %rejected, "skipping a log that cannot be stored");
                Ok(None)
            }
        }
    }

    fn note_rejected(&mut self, rejected: &[langguard_cloudflare::RejectedRow]) {
        for row in rejected {
            tracing::warn!(gateway = self.gateway, %row, "skipping a log that cannot be read");
        }
        *self.rejected += rejected.len() as u64;
    }

    /// Counts a committed batch; returns how many rows it newly stored.
    fn record(&mut self, outcome: IngestOutcome) -> u64 {
        crate::telemetry::record_traffic(self.integration_name, self.gateway, &outcome.traffic);
        self.counts.items_ingested += outcome.inserted as i64;
        self.counts.duplicates_skipped += outcome.duplicates as i64;
        self.oldest_inserted = match (self.oldest_inserted, outcome.oldest_inserted_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(progress) = self.progress {
            progress(&SyncProgress {
                gateway: self.gateway.to_owned(),
                counts: self.counts.clone(),
            });
        }
        outcome.inserted
    }
}
