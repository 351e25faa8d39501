//! Alert rules, the alerts they raise, and silences.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use langguard_store::rows::{
    alert_scope_text, channel_ids_text, ALERT_COLUMNS, ALERT_RULE_COLUMNS as RULE_COLUMNS,
    SILENCE_COLUMNS,
};
use langguard_store::*;
use tokio_postgres::Row;

use crate::records::PgRow;
use crate::{db_err, not_found, now_ms, PgStore};

fn rules(rows: Vec<Row>) -> StoreResult<Vec<AlertRule>> {
    rows.iter()
        .map(|r| AlertRule::from_columns(&PgRow(r)))
        .collect()
}

fn alerts(rows: Vec<Row>) -> StoreResult<Vec<Alert>> {
    rows.iter()
        .map(|r| Alert::from_columns(&PgRow(r)))
        .collect()
}

fn silences(rows: Vec<Row>) -> StoreResult<Vec<AlertSilence>> {
    rows.iter()
        .map(|r| AlertSilence::from_columns(&PgRow(r)))
        .collect()
}

fn name_conflict(name: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| match db_err(e) {
        StoreError::Conflict { .. } => StoreError::Conflict {
            what: format!("an alert rule named {name:?}"),
        },
        other => other,
    }
}

async fn get_rule_on(client: &impl GenericClient, id: AlertRuleId) -> StoreResult<AlertRule> {
    let row = client
        .query_opt(
            &format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("alert rule {id}")))?;
    AlertRule::from_columns(&PgRow(&row))
}

fn one_silence(row: Option<Row>, id: i64) -> StoreResult<AlertSilence> {
    let row = row.ok_or_else(|| not_found(format!("silence {id}")))?;
    AlertSilence::from_columns(&PgRow(&row))
}

#[async_trait]
impl AlertStore for PgStore {
    async fn create_alert_rule(&self, new: NewAlertRule) -> StoreResult<AlertRule> {
        let client = self.client().await?;
        let now = now_ms();
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO alert_rules (name, description, enabled, metric, severity, \
                     condition, threshold, window_minutes, for_minutes, min_requests, \
                     renotify_minutes, scope, group_by, created_by, created_at, updated_at, \
                     channel_ids) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, \
                     $16) \
                     RETURNING {RULE_COLUMNS}"
                ),
                &[
                    &new.name,
                    &new.description,
                    &new.enabled,
                    &new.metric.as_str(),
                    &new.severity.map(Severity::as_str),
                    &new.condition.as_str(),
                    &new.threshold,
                    &new.window_minutes,
                    &new.for_minutes,
                    &new.min_requests,
                    &new.renotify_minutes,
                    &alert_scope_text(&new.scope),
                    &new.group_by.map(GroupBy::as_str),
                    &new.created_by,
                    &now,
                    &channel_ids_text(&new.channel_ids),
                ],
            )
            .await
            .map_err(name_conflict(&new.name))?;
        AlertRule::from_columns(&PgRow(&row))
    }

    async fn list_alert_rules(&self) -> StoreResult<Vec<AlertRule>> {
        let client = self.client().await?;
        rules(
            client
                .query(
                    &format!("SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY id"),
                    &[],
                )
                .await
                .map_err(db_err)?,
        )
    }

    async fn get_alert_rule(&self, id: AlertRuleId) -> StoreResult<AlertRule> {
        get_rule_on(&self.client().await?, id).await
    }

    async fn replace_alert_rule(
        &self,
        id: AlertRuleId,
        rule: NewAlertRule,
    ) -> StoreResult<AlertRule> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE alert_rules SET name = $2, description = $3, enabled = $4, \
                     metric = $5, severity = $6, condition = $7, threshold = $8, \
                     window_minutes = $9, for_minutes = $10, min_requests = $11, \
                     renotify_minutes = $12, scope = $13, group_by = $14, updated_at = $15, \
                     channel_ids = $16 WHERE id = $1 RETURNING {RULE_COLUMNS}"
                ),
                &[
                    &id,
                    &rule.name,
                    &rule.description,
                    &rule.enabled,
                    &rule.metric.as_str(),
                    &rule.severity.map(Severity::as_str),
                    &rule.condition.as_str(),
                    &rule.threshold,
                    &rule.window_minutes,
                    &rule.for_minutes,
                    &rule.min_requests,
                    &rule.renotify_minutes,
                    &alert_scope_text(&rule.scope),
                    &rule.group_by.map(GroupBy::as_str),
                    &now_ms(),
                    &channel_ids_text(&rule.channel_ids),
                ],
            )
            .await
            .map_err(name_conflict(&rule.name))?
            .ok_or_else(|| not_found(format!("alert rule {id}")))?;
        AlertRule::from_columns(&PgRow(&row))
    }

    async fn delete_alert_rule(&self, id: AlertRuleId) -> StoreResult<()> {
        let client = self.client().await?;
        let deleted = client
            .execute("DELETE FROM alert_rules WHERE id = $1", &[&id])
            .await
            .map_err(db_err)?;
        if deleted == 0 {
            return Err(not_found(format!("alert rule {id}")));
        }
        Ok(())
    }

    async fn list_alerts(&self, query: &AlertQuery) -> StoreResult<Vec<Alert>> {
        let client = self.client().await?;
        let states: Vec<&str> = query.states.iter().map(|s| s.as_str()).collect();
        let limit = i64::from(query.limit);
        alerts(
            client
                .query(
                    &format!(
                        "SELECT {ALERT_COLUMNS} FROM alerts \
                         WHERE ($1::BIGINT IS NULL OR rule_id = $1) \
                         AND (cardinality($2::TEXT[]) = 0 OR state = ANY($2)) \
                         AND ($3::BIGINT IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
                    ),
                    &[&query.rule_id, &states, &query.before_id, &limit],
                )
                .await
                .map_err(db_err)?,
        )
    }

    async fn open_alerts(&self) -> StoreResult<Vec<Alert>> {
        let client = self.client().await?;
        alerts(
            client
                .query(
                    &format!(
                        "SELECT {ALERT_COLUMNS} FROM alerts WHERE state <> 'resolved' ORDER BY id"
                    ),
                    &[],
                )
                .await
                .map_err(db_err)?,
        )
    }

    async fn save_alert_changes(
        &self,
        changes: Vec<AlertChange>,
        events: Vec<OutgoingEvent>,
    ) -> StoreResult<()> {
        if changes.is_empty() && events.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let open = tx
            .prepare_cached(
                "INSERT INTO alerts (rule_id, group_key, state, value, threshold, \
                 pending_since, fired_at, resolved_at, notified_at, evaluated_at) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
                 WHERE EXISTS (SELECT 1 FROM alert_rules WHERE id = $1)",
            )
            .await
            .map_err(db_err)?;
        // Every open alert is updated each minute: one statement for all of them, not a
        // round trip each.
        let updates: Vec<&Alert> = changes
            .iter()
            .filter_map(|c| match c {
                AlertChange::Update(a) => Some(a),
                _ => None,
            })
            .collect();
        if !updates.is_empty() {
            let ids: Vec<i64> = updates.iter().map(|a| a.id).collect();
            let states: Vec<&str> = updates.iter().map(|a| a.state.as_str()).collect();
            let values: Vec<Option<f64>> = updates.iter().map(|a| a.value).collect();
            let thresholds: Vec<f64> = updates.iter().map(|a| a.threshold).collect();
            let fired: Vec<Option<i64>> = updates.iter().map(|a| a.fired_at_ms).collect();
            let resolved: Vec<Option<i64>> = updates.iter().map(|a| a.resolved_at_ms).collect();
            let notified: Vec<Option<i64>> = updates.iter().map(|a| a.notified_at_ms).collect();
            let evaluated: Vec<i64> = updates.iter().map(|a| a.evaluated_at_ms).collect();
            tx.execute(
                "UPDATE alerts AS a SET state = u.state, value = u.value, threshold = u.threshold, \
                 fired_at = u.fired_at, resolved_at = u.resolved_at, notified_at = u.notified_at, \
                 evaluated_at = u.evaluated_at \
                 FROM unnest($1::BIGINT[], $2::TEXT[], $3::FLOAT8[], $4::FLOAT8[], $5::BIGINT[], \
                 $6::BIGINT[], $7::BIGINT[], $8::BIGINT[]) \
                 AS u(id, state, value, threshold, fired_at, resolved_at, notified_at, evaluated_at) \
                 WHERE a.id = u.id",
                &[
                    &ids, &states, &values, &thresholds, &fired, &resolved, &notified, &evaluated,
                ],
            )
            .await
            .map_err(db_err)?;
        }
        for change in &changes {
            match change {
                AlertChange::Open(a) => {
                    tx.execute(
                        &open,
                        &[
                            &a.rule_id,
                            &a.group,
                            &a.state.as_str(),
                            &a.value,
                            &a.threshold,
                            &a.pending_since_ms,
                            &a.fired_at_ms,
                            &a.resolved_at_ms,
                            &a.notified_at_ms,
                            &a.evaluated_at_ms,
                        ],
                    )
                    .await
                    .map_err(db_err)?;
                }
                AlertChange::Update(_) => {}
                AlertChange::Drop(id) => {
                    tx.execute("DELETE FROM alerts WHERE id = $1", &[id])
                        .await
                        .map_err(db_err)?;
                }
            }
        }
        crate::webhooks::insert_deliveries(&tx, &events).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn create_alert_silence(&self, new: NewAlertSilence) -> StoreResult<AlertSilence> {
        let client = self.client().await?;
        if let Some(rule) = new.rule_id {
            get_rule_on(&client, rule).await?;
        }
        let row = client
            .query_opt(
                &format!(
                    "INSERT INTO alert_silences (rule_id, group_key, starts_at, ends_at, reason, \
                     created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     RETURNING {SILENCE_COLUMNS}"
                ),
                &[
                    &new.rule_id,
                    &new.group,
                    &new.starts_at_ms,
                    &new.ends_at_ms,
                    &new.reason,
                    &new.created_by,
                    &now_ms(),
                ],
            )
            .await
            .map_err(db_err)?;
        one_silence(row, 0)
    }

    async fn list_alert_silences(&self, at_ms: Option<i64>) -> StoreResult<Vec<AlertSilence>> {
        let client = self.client().await?;
        silences(
            client
                .query(
                    &format!(
                        "SELECT {SILENCE_COLUMNS} FROM alert_silences \
                         WHERE $1::BIGINT IS NULL OR ends_at > $1 ORDER BY id DESC LIMIT 200"
                    ),
                    &[&at_ms],
                )
                .await
                .map_err(db_err)?,
        )
    }

    async fn end_alert_silence(&self, id: i64, at_ms: i64) -> StoreResult<AlertSilence> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE alert_silences SET ends_at = LEAST(ends_at, GREATEST(starts_at, $2)) \
                     WHERE id = $1 RETURNING {SILENCE_COLUMNS}"
                ),
                &[&id, &at_ms],
            )
            .await
            .map_err(db_err)?;
        one_silence(row, id)
    }
}
