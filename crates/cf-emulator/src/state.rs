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

/// All accounts by id.
#[derive(Debug, Default)]
pub(crate) struct Store {
    accounts: BTreeMap<String, Account>,
}

#[derive(Debug, Default)]
struct Account {
    /// In creation order, which is also the order the gateways list returns.
    gateways: Vec<Gateway>,
}

impl Store {
    pub(crate) fn add_account(&mut self, account_id: &str) {
        self.accounts.entry(account_id.to_owned()).or_default();
    }

    pub(crate) fn has_account(&self, account_id: &str) -> bool {
        self.accounts.contains_key(account_id)
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
    pub logs: GatewayLogs,
}

impl Gateway {
    fn new(id: &str, created_at: UnixMillis) -> Self {
        Self {
            id: id.to_owned(),
            created_at,
            logs: GatewayLogs::default(),
        }
    }

    /// The gateway object of API-NOTES §3, shaped like `fixtures/list-gateways-200.json`.
    /// A gateway named `default` looks like an account's auto-created default gateway.
    pub(crate) fn json(&self) -> GatewayJson<'_> {
        let is_default = self.id == "default";
        let created_at = format_millis(self.created_at);
        GatewayJson {
            id: &self.id,
            created_at: created_at.clone(),
            modified_at: created_at,
            cache_invalidate_on_update: false,
            cache_ttl: (!is_default).then_some(300),
            collect_logs: true,
            rate_limiting_interval: (!is_default).then_some(60),
            rate_limiting_limit: (!is_default).then_some(600),
            rate_limiting_technique: if is_default { "fixed" } else { "sliding" },
            authentication: !is_default,
            is_default,
            log_management: if is_default { 100_000 } else { 5_000_000 },
            log_management_strategy: if is_default {
                "STOP_INSERTING"
            } else {
                "DELETE_OLDEST"
            },
            logpush: false,
            logpush_public_key: None,
            otel: None,
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
    rate_limiting_technique: &'static str,
    authentication: bool,
    is_default: bool,
    log_management: u32,
    log_management_strategy: &'static str,
    logpush: bool,
    logpush_public_key: Option<&'static str>,
    otel: Option<()>,
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

    pub(crate) fn ids(&self) -> Vec<String> {
        self.sorted.iter().map(|record| record.id.clone()).collect()
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
