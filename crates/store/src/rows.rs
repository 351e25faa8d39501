//! Rows to records, written once for both backends: each backend reads its row's columns
//! through [`Columns`], in the order the `*_COLUMNS` constants give, and the mapping — with its
//! check that enum columns hold a known word — happens here.

use sha2::{Digest, Sha256};

use crate::{
    Alert, AlertCondition, AlertMetric, AlertRule, AlertScope, AlertSilence, AlertState,
    GatewayState, GroupBy, IdentityKind, IngestSource, NewInteraction, NewViolation, Person,
    Policy, PolicyCategory, PolicyMode, SessionAnomaly, Severity, StoreError, StoreResult,
    UserSession, Violation, ViolationStatus,
};

/// A row's columns by position, as a backend reads them.
pub trait Columns {
    fn int(&self, index: usize) -> StoreResult<i64>;
    fn opt_int(&self, index: usize) -> StoreResult<Option<i64>>;
    fn text(&self, index: usize) -> StoreResult<String>;
    fn opt_text(&self, index: usize) -> StoreResult<Option<String>>;
    fn real(&self, index: usize) -> StoreResult<f64>;
    fn opt_real(&self, index: usize) -> StoreResult<Option<f64>>;
    fn flag(&self, index: usize) -> StoreResult<bool>;
}

/// An enum column's word, or `Corrupt` naming what held it: data LangGuard didn't write.
fn word<T>(parse: fn(&str) -> Option<T>, what: &str, value: String) -> StoreResult<T> {
    parse(&value).ok_or_else(|| StoreError::Corrupt(format!("{what} {value:?}")))
}

/// The gateway columns, in [`GatewayState::from_columns`]'s order.
pub const GATEWAY_COLUMNS: &str =
    "gateway_id, cursor_ms, last_synced_at, source, source_since_ms, previous_source, \
     late_window_ms";

impl GatewayState {
    pub fn from_columns(row: &impl Columns) -> StoreResult<GatewayState> {
        Ok(GatewayState {
            gateway_id: row.text(0)?,
            cursor_ms: row.opt_int(1)?,
            last_synced_at_ms: row.opt_int(2)?,
            source: word(IngestSource::parse, "gateway source", row.text(3)?)?,
            source_since_ms: row.opt_int(4)?,
            previous_source: row
                .opt_text(5)?
                .map(|w| word(IngestSource::parse, "gateway source", w))
                .transpose()?,
            late_window_ms: row.opt_int(6)?,
        })
    }
}

/// The policy columns, in [`Policy::from_columns`]'s order.
pub const POLICY_COLUMNS: &str = "id, name, display_name, description, category, severity, \
     mode, config, rego, builtin_id, version, created_at, updated_at, quarantine_reason, \
     quarantined_at";

impl Policy {
    pub fn from_columns(row: &impl Columns) -> StoreResult<Policy> {
        Ok(Policy {
            id: row.int(0)?,
            name: row.text(1)?,
            display_name: row.text(2)?,
            description: row.text(3)?,
            category: word(PolicyCategory::parse, "policy category", row.text(4)?)?,
            severity: word(Severity::parse, "policy severity", row.text(5)?)?,
            mode: word(PolicyMode::parse, "policy mode", row.text(6)?)?,
            config: row.text(7)?,
            rego: row.text(8)?,
            builtin_id: row.opt_text(9)?,
            version: row.int(10)?,
            created_at_ms: row.int(11)?,
            updated_at_ms: row.int(12)?,
            quarantine_reason: row.opt_text(13)?,
            quarantined_at_ms: row.opt_int(14)?,
        })
    }
}

/// The alert rule columns, in [`AlertRule::from_columns`]'s order.
pub const ALERT_RULE_COLUMNS: &str = "id, name, description, enabled, metric, severity, \
     condition, threshold, window_minutes, for_minutes, min_requests, renotify_minutes, scope, \
     group_by, created_by, created_at, updated_at, channel_ids";

/// A rule's channels as their column keeps them (a JSON array of ids).
pub fn channel_ids_text(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

/// A rule's scope as its column keeps it (JSON text: scopes grow new keys without a migration).
pub fn alert_scope_text(scope: &AlertScope) -> String {
    serde_json::to_string(scope).unwrap_or_else(|_| "{}".into())
}

impl AlertRule {
    pub fn from_columns(row: &impl Columns) -> StoreResult<AlertRule> {
        let scope = row.text(12)?;
        Ok(AlertRule {
            id: row.int(0)?,
            name: row.text(1)?,
            description: row.text(2)?,
            enabled: row.flag(3)?,
            metric: word(AlertMetric::parse, "alert metric", row.text(4)?)?,
            severity: row
                .opt_text(5)?
                .map(|w| word(Severity::parse, "alert severity", w))
                .transpose()?,
            condition: word(AlertCondition::parse, "alert condition", row.text(6)?)?,
            threshold: row.real(7)?,
            window_minutes: row.int(8)?,
            for_minutes: row.int(9)?,
            min_requests: row.int(10)?,
            renotify_minutes: row.opt_int(11)?,
            scope: serde_json::from_str(&scope)
                .map_err(|_| StoreError::Corrupt(format!("alert rule scope {scope:?}")))?,
            group_by: row
                .opt_text(13)?
                .map(|w| word(GroupBy::parse, "alert group", w))
                .transpose()?,
            created_by: row.opt_text(14)?,
            created_at_ms: row.int(15)?,
            updated_at_ms: row.int(16)?,
            channel_ids: {
                let ids = row.text(17)?;
                serde_json::from_str(&ids)
                    .map_err(|_| StoreError::Corrupt(format!("alert rule channels {ids:?}")))?
            },
        })
    }
}

/// The alert columns, in [`Alert::from_columns`]'s order.
pub const ALERT_COLUMNS: &str = "id, rule_id, group_key, state, value, threshold, \
     pending_since, fired_at, resolved_at, notified_at, evaluated_at";

impl Alert {
    pub fn from_columns(row: &impl Columns) -> StoreResult<Alert> {
        Ok(Alert {
            id: row.int(0)?,
            rule_id: row.int(1)?,
            group: row.text(2)?,
            state: word(AlertState::parse, "alert state", row.text(3)?)?,
            value: row.opt_real(4)?,
            threshold: row.real(5)?,
            pending_since_ms: row.int(6)?,
            fired_at_ms: row.opt_int(7)?,
            resolved_at_ms: row.opt_int(8)?,
            notified_at_ms: row.opt_int(9)?,
            evaluated_at_ms: row.int(10)?,
        })
    }
}

/// The silence columns, in [`AlertSilence::from_columns`]'s order.
pub const SILENCE_COLUMNS: &str =
    "id, rule_id, group_key, starts_at, ends_at, reason, created_by, created_at";

impl AlertSilence {
    pub fn from_columns(row: &impl Columns) -> StoreResult<AlertSilence> {
        Ok(AlertSilence {
            id: row.int(0)?,
            rule_id: row.opt_int(1)?,
            group: row.opt_text(2)?,
            starts_at_ms: row.int(3)?,
            ends_at_ms: row.int(4)?,
            reason: row.text(5)?,
            created_by: row.opt_text(6)?,
            created_at_ms: row.int(7)?,
        })
    }
}

/// The query [`Violation::from_columns`] reads (the interaction's model and gateway are empty
/// once retention has deleted it). Standard SQL, the same in both backends.
pub const VIOLATION_SELECT: &str = "SELECT v.id, v.policy_id, p.name, v.interaction_id, \
     v.severity, v.kind, v.message, v.evidence, v.status, v.notes, v.occurred_at, \
     v.detected_at, v.updated_at, COALESCE(i.model, ''), COALESCE(i.gateway, '') \
     FROM violations v JOIN policies p ON p.id = v.policy_id \
     LEFT JOIN interactions i ON i.id = v.interaction_id";

impl Violation {
    pub fn from_columns(row: &impl Columns) -> StoreResult<Violation> {
        Ok(Violation {
            id: row.int(0)?,
            policy_id: row.int(1)?,
            policy_name: row.text(2)?,
            interaction_id: row.int(3)?,
            severity: word(Severity::parse, "violation severity", row.text(4)?)?,
            kind: row.text(5)?,
            message: row.text(6)?,
            evidence: row.text(7)?,
            status: word(ViolationStatus::parse, "violation status", row.text(8)?)?,
            notes: row.opt_text(9)?,
            occurred_at_ms: row.int(10)?,
            detected_at_ms: row.int(11)?,
            updated_at_ms: row.int(12)?,
            model: row.text(13)?,
            gateway: row.text(14)?,
        })
    }
}

impl NewViolation {
    /// What makes a finding the same finding again (its type, message and evidence), so a
    /// re-evaluation stores it once: 16 bytes of SHA-256 over the length-prefixed parts.
    pub fn fingerprint(&self) -> Vec<u8> {
        let mut hash = Sha256::new();
        for part in [&self.kind, &self.message, &self.evidence] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        hash.finalize()[..16].to_vec()
    }
}

/// The budget columns, in [`Budget::from_columns`]'s order.
pub const BUDGET_COLUMNS: &str = "id, name, amount_usd, period, time_zone, scope, group_by, \
     thresholds, enabled, created_by, created_at, updated_at";

/// A budget's thresholds as their column keeps them (a JSON array of percentages).
pub fn thresholds_text(thresholds: &[u32]) -> String {
    serde_json::to_string(thresholds).unwrap_or_else(|_| "[]".into())
}

impl crate::Budget {
    pub fn from_columns(row: &impl Columns) -> StoreResult<crate::Budget> {
        let scope = row.text(5)?;
        let thresholds = row.text(7)?;
        Ok(crate::Budget {
            id: row.int(0)?,
            name: row.text(1)?,
            amount_usd: row.real(2)?,
            period: word(crate::BudgetPeriod::parse, "budget period", row.text(3)?)?,
            time_zone: row.text(4)?,
            scope: serde_json::from_str(&scope)
                .map_err(|_| StoreError::Corrupt(format!("budget scope {scope:?}")))?,
            group_by: row
                .opt_text(6)?
                .map(|w| word(GroupBy::parse, "budget group", w))
                .transpose()?,
            thresholds: serde_json::from_str(&thresholds)
                .map_err(|_| StoreError::Corrupt(format!("budget thresholds {thresholds:?}")))?,
            enabled: row.flag(8)?,
            created_by: row.opt_text(9)?,
            created_at_ms: row.int(10)?,
            updated_at_ms: row.int(11)?,
        })
    }
}

/// The budget group columns, in [`BudgetGroup::from_columns`]'s order.
pub const BUDGET_GROUP_COLUMNS: &str = "budget_id, group_key, period_start, spent_usd, \
     forecast_usd, notified_percent, evaluated_at";

impl crate::BudgetGroup {
    pub fn from_columns(row: &impl Columns) -> StoreResult<crate::BudgetGroup> {
        let notified = row.int(5)?;
        Ok(crate::BudgetGroup {
            budget_id: row.int(0)?,
            group: row.text(1)?,
            period_start_ms: row.int(2)?,
            spent_usd: row.real(3)?,
            forecast_usd: row.real(4)?,
            notified_percent: u32::try_from(notified)
                .map_err(|_| StoreError::Corrupt(format!("budget notified percent {notified}")))?,
            evaluated_at_ms: row.int(6)?,
        })
    }
}

/// The saved view columns (of `saved_views v JOIN users u`), in [`SavedView::from_columns`]'s
/// order.
pub const SAVED_VIEW_COLUMNS: &str =
    "v.id, v.name, v.query, v.owner_id, u.email, v.shared, v.created_at, v.updated_at";

impl crate::SavedView {
    pub fn from_columns(row: &impl Columns) -> StoreResult<crate::SavedView> {
        Ok(crate::SavedView {
            id: row.int(0)?,
            name: row.text(1)?,
            query: row.text(2)?,
            owner_id: row.int(3)?,
            owner_email: row.text(4)?,
            shared: row.flag(5)?,
            created_at_ms: row.int(6)?,
            updated_at_ms: row.int(7)?,
        })
    }
}

/// The summary columns, in [`Person::from_columns`]'s order.
pub const PERSON_COLUMNS: &str = "kind, identity, requests, errors, cache_hits, tokens_in, \
    tokens_out, cost_usd, first_seen_ms, last_seen_ms";

impl Person {
    /// One identity's summary row; active days and top model are filled in by the caller.
    pub fn from_columns(row: &impl Columns) -> StoreResult<Person> {
        Ok(Person {
            kind: word(IdentityKind::parse, "identity kind", row.text(0)?)?,
            identity: row.text(1)?,
            requests: row.int(2)?,
            errors: row.int(3)?,
            cache_hits: row.int(4)?,
            tokens_in: row.int(5)?,
            tokens_out: row.int(6)?,
            cost_usd: row.real(7)?,
            first_seen_ms: row.int(8)?,
            last_seen_ms: row.int(9)?,
            active_days: 0,
            anomalies: 0,
            top_model: None,
        })
    }
}

/// The user session columns, in [`UserSession::from_columns`]'s order.
pub const USER_SESSION_COLUMNS: &str = "identity, session, hour_ms, first_ms, last_ms, requests, \
    cost_usd, flagged_at, flag_spend_usd, user_p95_usd, baseline_sessions, org_p99_usd";

impl UserSession {
    pub fn from_columns(row: &impl Columns) -> StoreResult<UserSession> {
        let anomaly = match row.opt_int(7)? {
            None => None,
            Some(flagged_at_ms) => Some(SessionAnomaly {
                flagged_at_ms,
                spend_usd: row.opt_real(8)?.unwrap_or(0.0),
                user_p95_usd: row.opt_real(9)?.unwrap_or(0.0),
                baseline_sessions: row.opt_int(10)?.unwrap_or(0),
                org_p99_usd: row.opt_real(11)?.unwrap_or(0.0),
            }),
        };
        Ok(UserSession {
            user: row.text(0)?,
            session: row.text(1)?,
            hour_ms: row.int(2)?,
            first_ms: row.int(3)?,
            last_ms: row.int(4)?,
            requests: row.int(5)?,
            cost_usd: row.real(6)?,
            anomaly,
        })
    }
}

/// The interaction columns the people backfill reads, in [`backfill_log`]'s order (after the id).
pub const BACKFILL_COLUMNS: &str =
    "id, created_at, provider, model, success, cached, tokens_in, tokens_out, cost_usd, metadata";

/// A stored log's id, and the log as the people backfill counts it: only what the identity
/// rollups read.
pub fn backfill_log(row: &impl Columns) -> StoreResult<(i64, NewInteraction)> {
    Ok((
        row.int(0)?,
        NewInteraction {
            log_id: String::new(),
            created_at_ms: row.int(1)?,
            provider: row.text(2)?,
            model: row.text(3)?,
            path: None,
            status_code: None,
            success: row.flag(4)?,
            cached: row.flag(5)?,
            duration_ms: 0,
            tokens_in: row.opt_int(6)?,
            tokens_out: row.opt_int(7)?,
            cost_usd: row.opt_real(8)?,
            cost_source: None,
            metadata: row.opt_text(9)?,
            requested_model: None,
            details: Default::default(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Vec<Option<String>>);

    impl Columns for Fake {
        fn int(&self, i: usize) -> StoreResult<i64> {
            Ok(self.opt_int(i)?.unwrap_or_default())
        }
        fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
            Ok(self.0[i].as_deref().and_then(|v| v.parse().ok()))
        }
        fn text(&self, i: usize) -> StoreResult<String> {
            Ok(self.0[i].clone().unwrap_or_default())
        }
        fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
            Ok(self.0[i].clone())
        }
        fn real(&self, i: usize) -> StoreResult<f64> {
            Ok(self.opt_real(i)?.unwrap_or_default())
        }
        fn opt_real(&self, i: usize) -> StoreResult<Option<f64>> {
            Ok(self.0[i].as_deref().and_then(|v| v.parse().ok()))
        }
        fn flag(&self, i: usize) -> StoreResult<bool> {
            Ok(self.0[i].as_deref() == Some("true"))
        }
    }

    #[test]
    fn an_unknown_word_is_corrupt_data_not_a_panic() {
        let mut cols: Vec<Option<String>> = vec![Some("1".into()); 15];
        cols[4] = Some("high".into());
        cols[8] = Some("new".into());
        assert!(Violation::from_columns(&Fake(cols.clone())).is_ok());
        cols[8] = Some("exploded".into());
        assert!(matches!(
            Violation::from_columns(&Fake(cols)),
            Err(StoreError::Corrupt(m)) if m.contains("exploded")
        ));
    }

    #[test]
    fn fingerprints_tell_parts_apart() {
        let v = |kind: &str, message: &str| NewViolation {
            policy_id: 1,
            interaction_id: 1,
            severity: Severity::Low,
            kind: kind.into(),
            message: message.into(),
            evidence: "{}".into(),
        };
        assert_eq!(v("a", "b").fingerprint(), v("a", "b").fingerprint());
        assert_ne!(v("ab", "").fingerprint(), v("a", "b").fingerprint());
        assert_eq!(v("a", "b").fingerprint().len(), 16);
    }
}
