//! The emulator's data: accounts, their gateways, and each gateway's logs.
//!
//! Each gateway keeps its logs in one vector sorted by `(created_at, id)`. That order is the
//! API's default ordering with its id tie-break, so the common importer query
//! (`created_at` range + `order_by=created_at`) is a binary search plus a walk, even with
//! 100k+ logs per gateway. Records are reference counted so a page can be serialised after the
//! lock is released and inserting a late log only moves pointers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::log_record::{format_millis, LogRecord, UnixMillis};
use crate::push::settings::{GatewayUpdate, LogpushJob, OtelExporter};
use crate::push::LogSystem;

/// All accounts by id.
#[derive(Debug, Default)]
pub(crate) struct Store {
    accounts: BTreeMap<String, Account>,
}

#[derive(Debug, Default)]
struct Account {
    /// In creation order, which is also the order the gateways list returns.
    gateways: Vec<Gateway>,
    log_system: LogSystem,
    logpush_jobs: Vec<LogpushJob>,
    next_job_id: u64,
}

impl Store {
    pub(crate) fn add_account(&mut self, account_id: &str) {
        self.accounts.entry(account_id.to_owned()).or_default();
    }

    pub(crate) fn has_account(&self, account_id: &str) -> bool {
        self.accounts.contains_key(account_id)
    }

    pub(crate) fn set_log_system(&mut self, account_id: &str, system: LogSystem) {
        self.accounts
            .entry(account_id.to_owned())
            .or_default()
            .log_system = system;
    }

    /// `true` when the account's Logs API serves its logs (Legacy Logs).
    pub(crate) fn logs_api_serves(&self, account_id: &str) -> bool {
        self.accounts
            .get(account_id)
            .is_none_or(|account| account.log_system == LogSystem::Legacy)
    }

    pub(crate) fn logpush_jobs(&self, account_id: &str) -> &[LogpushJob] {
        self.accounts
            .get(account_id)
            .map_or(&[], |account| account.logpush_jobs.as_slice())
    }

    pub(crate) fn logpush_jobs_mut(&mut self, account_id: &str) -> Option<&mut Vec<LogpushJob>> {
        self.accounts
            .get_mut(account_id)
            .map(|account| &mut account.logpush_jobs)
    }

    /// The next job id of the account (ids are numeric, as Cloudflare's are).
    pub(crate) fn next_job_id(&mut self, account_id: &str) -> u64 {
        let account = self.accounts.entry(account_id.to_owned()).or_default();
        account.next_job_id += 1;
        // Cloudflare's job ids are six-digit and up; start there so nobody mistakes them for
        // indexes.
        100_000 + account.next_job_id
    }

    /// Notes a delivery's outcome on the job, as Cloudflare's `last_complete` / `last_error`.
    pub(crate) fn record_job_outcome(
        &mut self,
        account_id: &str,
        job_id: u64,
        now: &str,
        error: Option<String>,
    ) {
        let Some(job) = self
            .logpush_jobs_mut(account_id)
            .and_then(|jobs| jobs.iter_mut().find(|job| job.id == job_id))
        else {
            return;
        };
        match error {
            None => job.last_complete = Some(now.to_owned()),
            Some(message) => {
                job.last_error = Some(now.to_owned());
                job.error_message = Some(message);
            }
        }
    }

    /// Whether a request appended to this gateway now leaves as a push.
    pub(crate) fn pushes(&self, account_id: &str, gateway_id: &str) -> bool {
        let Some(gateway) = self.gateway(account_id, gateway_id) else {
            return false;
        };
        !gateway.settings.otel.is_empty()
            || (gateway.settings.logpush_key().is_some()
                && self.logpush_jobs(account_id).iter().any(|job| job.enabled))
    }

    pub(crate) fn gateway_mut(
        &mut self,
        account_id: &str,
        gateway_id: &str,
    ) -> Option<&mut Gateway> {
        self.accounts
            .get_mut(account_id)?
            .gateways
            .iter_mut()
            .find(|gateway| gateway.id == gateway_id)
    }

    /// The account's gateways, or `None` for an unknown account.
    pub(crate) fn gateways(&self, account_id: &str) -> Option<&[Gateway]> {
        self.accounts
            .get(account_id)
            .map(|account| account.gateways.as_slice())
    }

    pub(crate) fn gateway(&self, account_id: &str, gateway_id: &str) -> Option<&Gateway> {
        self.gateways(account_id)?
            .iter()
            .find(|gateway| gateway.id == gateway_id)
    }

    /// The gateway, created (with its account) if missing. The control API uses this so a
    /// test can seed logs without first declaring every object.
    pub(crate) fn gateway_entry(
        &mut self,
        account_id: &str,
        gateway_id: &str,
        now: UnixMillis,
    ) -> &mut Gateway {
        let account = self.accounts.entry(account_id.to_owned()).or_default();
        let index = match account
            .gateways
            .iter()
            .position(|gateway| gateway.id == gateway_id)
        {
            Some(index) => index,
            None => {
                account.gateways.push(Gateway::new(gateway_id, now));
                account.gateways.len() - 1
            }
        };
        &mut account.gateways[index]
    }
}

/// One AI Gateway and its logs.
#[derive(Debug)]
pub(crate) struct Gateway {
    pub id: String,
    pub created_at: UnixMillis,
    pub modified_at: UnixMillis,
    pub settings: GatewaySettings,
    pub logs: GatewayLogs,
}

/// The settings `PUT …/gateways/{id}` changes.
#[derive(Clone, Debug)]
pub(crate) struct GatewaySettings {
    pub cache_invalidate_on_update: bool,
    pub cache_ttl: Option<u32>,
    pub collect_logs: bool,
    pub rate_limiting_interval: Option<u32>,
    pub rate_limiting_limit: Option<u32>,
    pub rate_limiting_technique: String,
    pub authentication: bool,
    pub logpush: bool,
    pub logpush_public_key: Option<String>,
    pub otel: Vec<OtelExporter>,
}

impl GatewaySettings {
    /// The public key Logpush encrypts with, when Logpush is on.
    pub(crate) fn logpush_key(&self) -> Option<&str> {
        self.logpush
            .then_some(self.logpush_public_key.as_deref())
            .flatten()
    }
}

impl Gateway {
    fn new(id: &str, created_at: UnixMillis) -> Self {
        let is_default = id == "default";
        Self {
            id: id.to_owned(),
            created_at,
            modified_at: created_at,
            settings: GatewaySettings {
                cache_invalidate_on_update: false,
                cache_ttl: (!is_default).then_some(300),
                collect_logs: true,
                rate_limiting_interval: (!is_default).then_some(60),
                rate_limiting_limit: (!is_default).then_some(600),
                rate_limiting_technique: if is_default { "fixed" } else { "sliding" }.to_owned(),
                authentication: !is_default,
                logpush: false,
                logpush_public_key: None,
                otel: Vec::new(),
            },
            logs: GatewayLogs::default(),
        }
    }

    /// Applies a validated PUT body: fields it leaves out keep Cloudflare's defaults for an
    /// update (off / none), as a full replacement does.
    pub(crate) fn update(&mut self, update: GatewayUpdate, now: UnixMillis) {
        let settings = &mut self.settings;
        settings.cache_invalidate_on_update = update.cache_invalidate_on_update;
        settings.cache_ttl = update.cache_ttl;
        settings.collect_logs = update.collect_logs;
        settings.rate_limiting_interval = update.rate_limiting_interval;
        settings.rate_limiting_limit = update.rate_limiting_limit;
        if let Some(technique) = update.rate_limiting_technique {
            settings.rate_limiting_technique = technique;
        }
        if let Some(authentication) = update.authentication {
            settings.authentication = authentication;
        }
        settings.logpush = update.logpush.unwrap_or(false);
        settings.logpush_public_key = update.logpush_public_key;
        settings.otel = update.otel.unwrap_or_default();
        self.modified_at = now;
    }

    /// The gateway object of API-NOTES §3, shaped like `fixtures/list-gateways-200.json`.
    /// A gateway named `default` looks like an account's auto-created default gateway.
    pub(crate) fn json(&self) -> GatewayJson<'_> {
        let is_default = self.id == "default";
        let settings = &self.settings;
        GatewayJson {
            id: &self.id,
            created_at: format_millis(self.created_at),
            modified_at: format_millis(self.modified_at),
            cache_invalidate_on_update: settings.cache_invalidate_on_update,
            cache_ttl: settings.cache_ttl,
            collect_logs: settings.collect_logs,
            rate_limiting_interval: settings.rate_limiting_interval,
            rate_limiting_limit: settings.rate_limiting_limit,
            rate_limiting_technique: &settings.rate_limiting_technique,
            authentication: settings.authentication,
            is_default,
            log_management: if is_default { 100_000 } else { 5_000_000 },
            log_management_strategy: if is_default {
                "STOP_INSERTING"
            } else {
                "DELETE_OLDEST"
            },
            logpush: settings.logpush,
            logpush_public_key: settings.logpush_public_key.as_deref(),
            otel: (!settings.otel.is_empty()).then_some(settings.otel.as_slice()),
            retry_backoff: "exponential",
            retry_delay: 250,
            retry_max_attempts: 3,
            store_id: None,
            stripe: None,
            workers_ai_billing_mode: "postpaid",
            zdr: false,
        }
    }
}

/// JSON rendering of a gateway.
#[derive(Debug, Serialize)]
pub(crate) struct GatewayJson<'a> {
    id: &'a str,
    created_at: String,
    modified_at: String,
    cache_invalidate_on_update: bool,
    cache_ttl: Option<u32>,
    collect_logs: bool,
    rate_limiting_interval: Option<u32>,
    rate_limiting_limit: Option<u32>,
    rate_limiting_technique: &'a str,
    authentication: bool,
    is_default: bool,
    log_management: u32,
    log_management_strategy: &'static str,
    logpush: bool,
    logpush_public_key: Option<&'a str>,
    otel: Option<&'a [OtelExporter]>,
    retry_backoff: &'static str,
    retry_delay: u32,
    retry_max_attempts: u32,
    store_id: Option<&'static str>,
    stripe: Option<()>,
    workers_ai_billing_mode: &'static str,
    zdr: bool,
}

/// A gateway's logs, sorted by `(created_at, id)`, with an id index for the get routes.
#[derive(Debug, Default)]
pub(crate) struct GatewayLogs {
    sorted: Vec<Arc<LogRecord>>,
    created_at_by_id: HashMap<String, UnixMillis>,
    /// Requests per minute as Cloudflare's analytics count them: every request whose log was
    /// stored, plus those that left none; deleting a log takes nothing away.
    requests_per_minute: BTreeMap<UnixMillis, u64>,
}

/// Above this batch size a merge-by-sort beats inserting records one by one.
const BULK_INSERT_THRESHOLD: usize = 64;

impl GatewayLogs {
    pub(crate) fn as_slice(&self) -> &[Arc<LogRecord>] {
        &self.sorted
    }

    /// Stores `records`, skipping any whose id is already present, and returns the ids added.
    pub(crate) fn insert(&mut self, mut records: Vec<LogRecord>) -> Vec<String> {
        records.retain(|record| !self.created_at_by_id.contains_key(&record.id));
        records.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        records.dedup_by(|a, b| a.id == b.id);
        let ids: Vec<String> = records.iter().map(|record| record.id.clone()).collect();
        for record in &records {
            self.count_requests(record.created_at, 1);
            self.created_at_by_id
                .insert(record.id.clone(), record.created_at);
        }

        let appends_at_end = match (self.sorted.last(), records.first()) {
            (Some(last), Some(first)) => last.sort_key() <= first.sort_key(),
            _ => true,
        };
        if appends_at_end {
            self.sorted.extend(records.into_iter().map(Arc::new));
        } else if records.len() < BULK_INSERT_THRESHOLD {
            for record in records {
                let at = self
                    .sorted
                    .partition_point(|existing| existing.sort_key() < record.sort_key());
                self.sorted.insert(at, Arc::new(record));
            }
        } else {
            self.sorted.extend(records.into_iter().map(Arc::new));
            // Stable sort of two sorted runs is a linear merge.
            self.sorted.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        }
        ids
    }

    /// Counts `n` requests at `at` in the analytics.
    pub(crate) fn count_requests(&mut self, at: UnixMillis, n: u64) {
        *self
            .requests_per_minute
            .entry(at - at.rem_euclid(60_000))
            .or_default() += n;
    }

    /// Requests per minute with `from <= minute < to`.
    pub(crate) fn requests_per_minute(
        &self,
        from: UnixMillis,
        to: UnixMillis,
    ) -> impl Iterator<Item = (UnixMillis, u64)> + '_ {
        self.requests_per_minute
            .range(from..to.max(from))
            .map(|(minute, n)| (*minute, *n))
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Arc<LogRecord>> {
        let created_at = *self.created_at_by_id.get(id)?;
        let start = self
            .sorted
            .partition_point(|record| record.created_at < created_at);
        self.sorted[start..]
            .iter()
            .take_while(|record| record.created_at == created_at)
            .find(|record| record.id == id)
    }

    /// Changes one log in place (`PATCH …/logs/{id}`); `false` when there is none with `id`.
    pub(crate) fn update(&mut self, id: &str, change: impl FnOnce(&mut LogRecord)) -> bool {
        let Some(&created_at) = self.created_at_by_id.get(id) else {
            return false;
        };
        let start = self
            .sorted
            .partition_point(|record| record.created_at < created_at);
        let Some(record) = self.sorted[start..]
            .iter_mut()
            .take_while(|record| record.created_at == created_at)
            .find(|record| record.id == id)
        else {
            return false;
        };
        change(Arc::make_mut(record));
        true
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.sorted.iter().map(|record| record.id.clone()).collect()
    }

    /// Removes the logs with these ids; returns how many there were.
    pub(crate) fn remove(&mut self, ids: &std::collections::HashSet<&str>) -> usize {
        let before = self.sorted.len();
        self.sorted
            .retain(|record| !ids.contains(record.id.as_str()));
        for id in ids {
            self.created_at_by_id.remove(*id);
        }
        before - self.sorted.len()
    }

    /// Removes `n` logs spread evenly through the gateway's history; returns their ids.
    pub(crate) fn remove_spread(&mut self, n: usize) -> Vec<String> {
        let len = self.sorted.len();
        let n = n.min(len);
        let ids: Vec<String> = (0..n)
            .map(|i| self.sorted[(2 * i + 1) * len / (2 * n)].id.clone())
            .collect();
        self.remove(&ids.iter().map(String::as_str).collect());
        ids
    }

    /// Removes the `n` oldest logs (a full gateway with `DELETE_OLDEST`), returning their ids.
    pub(crate) fn evict_oldest(&mut self, n: usize) -> Vec<String> {
        let n = n.min(self.sorted.len());
        let evicted: Vec<String> = self
            .sorted
            .drain(..n)
            .map(|record| record.id.clone())
            .collect();
        for id in &evicted {
            self.created_at_by_id.remove(id);
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_record::test_support::sample_record;

    fn is_sorted(logs: &GatewayLogs) -> bool {
        logs.as_slice()
            .windows(2)
            .all(|pair| pair[0].sort_key() < pair[1].sort_key())
    }

    #[test]
    fn keeps_logs_sorted_whatever_the_insert_order() {
        let mut logs = GatewayLogs::default();
        logs.insert(
            (0..100)
                .map(|i| sample_record(&format!("b{i:03}"), i * 10))
                .collect(),
        );
        // A single late log, a late batch, a batch at the end and a duplicate id.
        logs.insert(vec![sample_record("late", 55)]);
        logs.insert(
            (0..80)
                .map(|i| sample_record(&format!("a{i:03}"), i * 7))
                .collect(),
        );
        logs.insert(vec![sample_record("z", 5_000), sample_record("b001", 1)]);
        assert_eq!(logs.as_slice().len(), 182);
        assert!(is_sorted(&logs));
        assert_eq!(logs.get("late").map(|r| r.created_at), Some(55));
        assert_eq!(logs.get("b001").map(|r| r.created_at), Some(10));
        assert!(logs.get("missing").is_none());
    }

    #[test]
    fn equal_timestamps_are_ordered_by_id() {
        let mut logs = GatewayLogs::default();
        let added = logs.insert(vec![sample_record("c", 5), sample_record("a", 5)]);
        assert_eq!(added, ["a", "c"]);
        logs.insert(vec![sample_record("b", 5)]);
        assert_eq!(logs.ids(), ["a", "b", "c"]);
    }

    #[test]
    fn control_api_creates_missing_objects() {
        let mut store = Store::default();
        assert!(!store.has_account("acct"));
        store.gateway_entry("acct", "gw", 0);
        store.gateway_entry("acct", "gw", 0);
        assert!(store.has_account("acct"));
        assert_eq!(store.gateways("acct").map(<[Gateway]>::len), Some(1));
        assert!(store.gateway("acct", "other").is_none());
    }

    #[test]
    fn gateway_json_has_the_fixture_fields() {
        let gateway = Gateway::new("prod-chat", 0);
        let json = serde_json::to_value(gateway.json()).expect("serialise");
        for field in [
            "id",
            "created_at",
            "modified_at",
            "cache_invalidate_on_update",
            "cache_ttl",
            "collect_logs",
            "rate_limiting_interval",
            "rate_limiting_limit",
        ] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        assert_eq!(json["created_at"], "1970-01-01T00:00:00.000Z");
    }
}
