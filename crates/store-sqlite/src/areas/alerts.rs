//! Alert rules, the alerts they raise, and silences.

use async_trait::async_trait;
use langguard_store::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

use langguard_store::rows::{
    alert_scope_text, channel_ids_text, ALERT_COLUMNS, ALERT_RULE_COLUMNS as RULE_COLUMNS,
    SILENCE_COLUMNS,
};

use crate::records::SqliteRow;
use crate::{db_err, not_found, now_ms, SqliteStore};

fn rule_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<AlertRule>> {
    Ok(AlertRule::from_columns(&SqliteRow(row)))
}

fn alert_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<Alert>> {
    Ok(Alert::from_columns(&SqliteRow(row)))
}

fn silence_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<AlertSilence>> {
    Ok(AlertSilence::from_columns(&SqliteRow(row)))
}

fn get_rule_on(conn: &Connection, id: AlertRuleId) -> StoreResult<AlertRule> {
    conn.query_row(
        &format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = ?1"),
        [id],
        rule_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| not_found(format!("alert rule {id}")))
}

fn name_conflict(name: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| match db_err(e) {
        StoreError::Conflict { .. } => StoreError::Conflict {
            what: format!("an alert rule named {name:?}"),
        },
        other => other,
    }
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<StoreResult<T>>>) -> StoreResult<Vec<T>> {
    rows.map(|r| r.map_err(db_err)?).collect()
}

#[async_trait]
impl AlertStore for SqliteStore {
    async fn create_alert_rule(&self, new: NewAlertRule) -> StoreResult<AlertRule> {
        self.write(move |conn| {
            let now = now_ms();
            let scope = alert_scope_text(&new.scope);
            conn.execute(
                "INSERT INTO alert_rules (name, description, enabled, metric, severity, condition, \
                 threshold, window_minutes, for_minutes, min_requests, renotify_minutes, scope, \
                 group_by, created_by, created_at, updated_at, channel_ids) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, \
                 ?16)",
                params![
                    new.name,
                    new.description,
                    new.enabled,
                    new.metric.as_str(),
                    new.severity.map(Severity::as_str),
                    new.condition.as_str(),
                    new.threshold,
                    new.window_minutes,
                    new.for_minutes,
                    new.min_requests,
                    new.renotify_minutes,
                    scope,
                    new.group_by.map(GroupBy::as_str),
                    new.created_by,
                    now,
                    channel_ids_text(&new.channel_ids)
                ],
            )
            .map_err(name_conflict(&new.name))?;
            get_rule_on(conn, conn.last_insert_rowid())
        })
        .await
    }

    async fn list_alert_rules(&self) -> StoreResult<Vec<AlertRule>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY id"
                ))
                .map_err(db_err)?;
            let rows = stmt.query_map([], rule_from_row).map_err(db_err)?;
            collect(rows)
        })
        .await
    }

    async fn get_alert_rule(&self, id: AlertRuleId) -> StoreResult<AlertRule> {
        self.read(move |conn| get_rule_on(conn, id)).await
    }

    async fn replace_alert_rule(
        &self,
        id: AlertRuleId,
        rule: NewAlertRule,
    ) -> StoreResult<AlertRule> {
        self.write(move |conn| {
            let scope = alert_scope_text(&rule.scope);
            let changed = conn
                .execute(
                    "UPDATE alert_rules SET name = ?2, description = ?3, enabled = ?4, metric = ?5, \
                     severity = ?6, condition = ?7, threshold = ?8, window_minutes = ?9, \
                     for_minutes = ?10, min_requests = ?11, renotify_minutes = ?12, scope = ?13, \
                     group_by = ?14, updated_at = ?15, channel_ids = ?16 WHERE id = ?1",
                    params![
                        id,
                        rule.name,
                        rule.description,
                        rule.enabled,
                        rule.metric.as_str(),
                        rule.severity.map(Severity::as_str),
                        rule.condition.as_str(),
                        rule.threshold,
                        rule.window_minutes,
                        rule.for_minutes,
                        rule.min_requests,
                        rule.renotify_minutes,
                        scope,
                        rule.group_by.map(GroupBy::as_str),
                        now_ms(),
                        channel_ids_text(&rule.channel_ids)
                    ],
                )
                .map_err(name_conflict(&rule.name))?;
            if changed == 0 {
                return Err(not_found(format!("alert rule {id}")));
            }
            get_rule_on(conn, id)
        })
        .await
    }

    async fn delete_alert_rule(&self, id: AlertRuleId) -> StoreResult<()> {
        self.write(move |conn| {
            let deleted = conn
                .execute("DELETE FROM alert_rules WHERE id = ?1", [id])
                .map_err(db_err)?;
            if deleted == 0 {
                return Err(not_found(format!("alert rule {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn list_alerts(&self, query: &AlertQuery) -> StoreResult<Vec<Alert>> {
        let query = query.clone();
        self.read(move |conn| {
            let states: Vec<&str> = query.states.iter().map(|s| s.as_str()).collect();
            let states_json = serde_json::to_string(&states).unwrap_or_else(|_| "[]".into());
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts \
                     WHERE (?1 IS NULL OR rule_id = ?1) \
                     AND (?2 = '[]' OR state IN (SELECT value FROM json_each(?2))) \
                     AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map(
                    params![query.rule_id, states_json, query.before_id, query.limit],
                    alert_from_row,
                )
                .map_err(db_err)?;
            collect(rows)
        })
        .await
    }

    async fn open_alerts(&self) -> StoreResult<Vec<Alert>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE state <> 'resolved' ORDER BY id"
                ))
                .map_err(db_err)?;
            let rows = stmt.query_map([], alert_from_row).map_err(db_err)?;
            collect(rows)
        })
        .await
    }

    async fn save_alert_changes(
        &self,
        changes: Vec<AlertChange>,
        events: Vec<OutgoingEvent>,
    ) -> StoreResult<()> {
        if changes.is_empty() && events.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            {
                let mut open = tx
                    .prepare_cached(
                        "INSERT INTO alerts (rule_id, group_key, state, value, threshold, \
                         pending_since, fired_at, resolved_at, notified_at, evaluated_at) \
                         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 \
                         WHERE EXISTS (SELECT 1 FROM alert_rules WHERE id = ?1)",
                    )
                    .map_err(db_err)?;
                let mut update = tx
                    .prepare_cached(
                        "UPDATE alerts SET state = ?2, value = ?3, threshold = ?4, \
                         fired_at = ?5, resolved_at = ?6, notified_at = ?7, evaluated_at = ?8 \
                         WHERE id = ?1",
                    )
                    .map_err(db_err)?;
                let mut drop = tx
                    .prepare_cached("DELETE FROM alerts WHERE id = ?1")
                    .map_err(db_err)?;
                for change in &changes {
                    match change {
                        AlertChange::Open(a) => {
                            open.execute(params![
                                a.rule_id,
                                a.group,
                                a.state.as_str(),
                                a.value,
                                a.threshold,
                                a.pending_since_ms,
                                a.fired_at_ms,
                                a.resolved_at_ms,
                                a.notified_at_ms,
                                a.evaluated_at_ms
                            ])
                            .map_err(db_err)?;
                        }
                        AlertChange::Update(a) => {
                            update
                                .execute(params![
                                    a.id,
                                    a.state.as_str(),
                                    a.value,
                                    a.threshold,
                                    a.fired_at_ms,
                                    a.resolved_at_ms,
                                    a.notified_at_ms,
                                    a.evaluated_at_ms
                                ])
                                .map_err(db_err)?;
                        }
                        AlertChange::Drop(id) => {
                            drop.execute([id]).map_err(db_err)?;
                        }
                    }
                }
            }
            crate::webhooks::insert_deliveries(&tx, &events, now_ms())?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn create_alert_silence(&self, new: NewAlertSilence) -> StoreResult<AlertSilence> {
        self.write(move |conn| {
            if let Some(rule) = new.rule_id {
                get_rule_on(conn, rule)?;
            }
            conn.execute(
                "INSERT INTO alert_silences (rule_id, group_key, starts_at, ends_at, reason, \
                 created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    new.rule_id,
                    new.group,
                    new.starts_at_ms,
                    new.ends_at_ms,
                    new.reason,
                    new.created_by,
                    now_ms()
                ],
            )
            .map_err(db_err)?;
            get_silence_on(conn, conn.last_insert_rowid())
        })
        .await
    }

    async fn list_alert_silences(&self, at_ms: Option<i64>) -> StoreResult<Vec<AlertSilence>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SILENCE_COLUMNS} FROM alert_silences \
                     WHERE ?1 IS NULL OR ends_at > ?1 ORDER BY id DESC LIMIT 200"
                ))
                .map_err(db_err)?;
            let rows = stmt.query_map([at_ms], silence_from_row).map_err(db_err)?;
            collect(rows)
        })
        .await
    }

    async fn end_alert_silence(&self, id: i64, at_ms: i64) -> StoreResult<AlertSilence> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE alert_silences SET ends_at = MIN(ends_at, MAX(starts_at, ?2)) WHERE id = ?1",
                params![id, at_ms],
            )
            .map_err(db_err)?;
            get_silence_on(conn, id)
        })
        .await
    }
}

fn get_silence_on(conn: &Connection, id: i64) -> StoreResult<AlertSilence> {
    conn.query_row(
        &format!("SELECT {SILENCE_COLUMNS} FROM alert_silences WHERE id = ?1"),
        [id],
        silence_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| not_found(format!("silence {id}")))
}
