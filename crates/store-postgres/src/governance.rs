//! Policies, their versions, violations, the policy worker's cursor, stored bodies and data
//! retention.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::{Client, GenericClient};
use langguard_store::rows::{POLICY_COLUMNS, VIOLATION_SELECT};
use langguard_store::*;

use crate::records::PgRow;
use tokio_postgres::Row;

use crate::conditions::Conditions;
use crate::records::RowExt;
use crate::{db_err, locks, not_found, now_ms};

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

fn policy_from_row(row: &Row) -> StoreResult<Policy> {
    Policy::from_columns(&PgRow(row))
}

async fn fetch_policy(c: &impl GenericClient, id: PolicyId, lock: bool) -> StoreResult<Policy> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    c.query_opt(
        &format!("SELECT {POLICY_COLUMNS} FROM policies WHERE id = $1{lock}"),
        &[&id],
    )
    .await
    .map_err(db_err)?
    .map(|r| policy_from_row(&r))
    .transpose()?
    .ok_or_else(|| not_found(format!("policy {id}")))
}

pub(crate) async fn get_policy(c: &mut Client, id: PolicyId) -> StoreResult<Policy> {
    fetch_policy(&*c, id, false).await
}

pub(crate) async fn list_policies(c: &mut Client) -> StoreResult<Vec<Policy>> {
    // Byte order, as SQLite's BINARY collation, whatever the database's locale.
    c.query(
        &format!("SELECT {POLICY_COLUMNS} FROM policies ORDER BY name COLLATE \"C\""),
        &[],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(policy_from_row)
    .collect()
}

pub(crate) async fn create_policy(c: &mut Client, new: &NewPolicy) -> StoreResult<Policy> {
    let tx = c.transaction().await.map_err(db_err)?;
    let policy = insert_policy(&tx, new).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(policy)
}

/// Inserts the policy with its first version; returns it as stored.
async fn insert_policy(c: &impl GenericClient, new: &NewPolicy) -> StoreResult<Policy> {
    let now = now_ms();
    let row = c
        .query_one(
            &format!(
                "INSERT INTO policies (name, display_name, description, category, severity, \
                 mode, config, rego, builtin_id, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10) \
                 RETURNING {POLICY_COLUMNS}"
            ),
            &[
                &new.name,
                &new.display_name,
                &new.description,
                &new.category.as_str(),
                &new.severity.as_str(),
                &new.mode.as_str(),
                &new.config,
                &new.rego,
                &new.builtin_id,
                &now,
            ],
        )
        .await
        .map_err(|e| match db_err(e) {
            StoreError::Conflict { .. } => StoreError::Conflict {
                what: format!("a policy named {:?}", new.name),
            },
            other => other,
        })?;
    let policy = policy_from_row(&row)?;
    c.execute(
        "INSERT INTO policy_versions (policy_id, version, rego, config, created_at) \
         VALUES ($1, 1, $2, $3, $4)",
        &[&policy.id, &new.rego, &new.config, &now],
    )
    .await
    .map_err(db_err)?;
    Ok(policy)
}

pub(crate) async fn update_policy(
    c: &mut Client,
    id: PolicyId,
    patch: &PolicyPatch,
) -> StoreResult<Policy> {
    let tx = c.transaction().await.map_err(db_err)?;
    // Locked: two instances updating at once must not both take the same next version.
    let current = fetch_policy(&tx, id, true).await?;
    let rego = patch.rego.clone().unwrap_or_else(|| current.rego.clone());
    let config = patch
        .config
        .clone()
        .unwrap_or_else(|| current.config.clone());
    let new_text = rego != current.rego || config != current.config;
    let version = current.version + i64::from(new_text);
    let now = now_ms();
    let keep_quarantine = !patch.lifts_quarantine(&current);
    let row = tx
        .query_one(
            &format!(
                "UPDATE policies SET display_name = $2, description = $3, category = $4, \
                 severity = $5, mode = $6, config = $7, rego = $8, version = $9, \
                 updated_at = $10, \
                 quarantine_reason = CASE WHEN $11 THEN quarantine_reason END, \
                 quarantined_at = CASE WHEN $11 THEN quarantined_at END \
                 WHERE id = $1 RETURNING {POLICY_COLUMNS}"
            ),
            &[
                &id,
                patch.display_name.as_ref().unwrap_or(&current.display_name),
                patch.description.as_ref().unwrap_or(&current.description),
                &patch.category.unwrap_or(current.category).as_str(),
                &patch.severity.unwrap_or(current.severity).as_str(),
                &patch.mode.unwrap_or(current.mode).as_str(),
                &config,
                &rego,
                &version,
                &now,
                &keep_quarantine,
            ],
        )
        .await
        .map_err(db_err)?;
    let policy = policy_from_row(&row)?;
    if new_text {
        tx.execute(
            "INSERT INTO policy_versions (policy_id, version, rego, config, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&id, &version, &rego, &config, &now],
        )
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(policy)
}

pub(crate) async fn quarantine_policy(
    c: &mut Client,
    id: PolicyId,
    version: i64,
    reason: &str,
    event: &OutgoingEvent,
) -> StoreResult<Option<Policy>> {
    let tx = c.transaction().await.map_err(db_err)?;
    let now = now_ms();
    let row = tx
        .query_opt(
            &format!(
                "UPDATE policies SET mode = 'disabled', quarantine_reason = $2, \
                 quarantined_at = $3, updated_at = $3 WHERE id = $1 AND version = $4 \
                 AND mode <> 'disabled' RETURNING {POLICY_COLUMNS}"
            ),
            &[&id, &reason, &now, &version],
        )
        .await
        .map_err(db_err)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let policy = policy_from_row(&row)?;
    crate::webhooks::insert_deliveries(&tx, std::slice::from_ref(event)).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(Some(policy))
}

pub(crate) async fn delete_policy(c: &mut Client, id: PolicyId) -> StoreResult<()> {
    let tx = c.transaction().await.map_err(db_err)?;
    tx.execute("DELETE FROM violations WHERE policy_id = $1", &[&id])
        .await
        .map_err(db_err)?;
    tx.execute("DELETE FROM policy_versions WHERE policy_id = $1", &[&id])
        .await
        .map_err(db_err)?;
    let deleted = tx
        .execute("DELETE FROM policies WHERE id = $1", &[&id])
        .await
        .map_err(db_err)?;
    if deleted == 0 {
        return Err(not_found(format!("policy {id}")));
    }
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn policy_versions(
    c: &mut Client,
    id: PolicyId,
) -> StoreResult<Vec<PolicyVersion>> {
    fetch_policy(&*c, id, false).await?;
    c.query(
        "SELECT version, rego, config, created_at FROM policy_versions \
         WHERE policy_id = $1 ORDER BY version DESC",
        &[&id],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(|r| {
        Ok(PolicyVersion {
            version: r.at(0)?,
            rego: r.at(1)?,
            config: r.at(2)?,
            created_at_ms: r.at(3)?,
        })
    })
    .collect()
}

pub(crate) async fn install_builtins(
    c: &mut Client,
    builtins: &[NewPolicy],
) -> StoreResult<Vec<Policy>> {
    let tx = c.transaction().await.map_err(db_err)?;
    let mut created = Vec::new();
    for policy in builtins {
        let Some(builtin_id) = &policy.builtin_id else {
            continue;
        };
        // Instances starting at once: the second waits on the first's row, then skips it.
        let fresh = tx
            .execute(
                "INSERT INTO installed_builtins (builtin_id, installed_at) VALUES ($1, $2) \
                 ON CONFLICT (builtin_id) DO NOTHING",
                &[builtin_id, &now_ms()],
            )
            .await
            .map_err(db_err)?;
        let name_taken: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM policies WHERE name = $1)",
                &[&policy.name],
            )
            .await
            .map_err(db_err)?
            .at(0)?;
        // A policy of the user's that already has the name wins; the built-in is not forced in.
        if fresh == 1 && !name_taken {
            created.push(insert_policy(&tx, policy).await?);
        }
    }
    tx.commit().await.map_err(db_err)?;
    Ok(created)
}

/// Identifies a finding within (policy, interaction): the same result found again is skipped.
pub(crate) async fn record_evaluations(
    c: &mut Client,
    violations: &[NewViolation],
    cursor: Option<i64>,
) -> StoreResult<Vec<i64>> {
    let tx = c.transaction().await.map_err(db_err)?;
    let now = now_ms();
    let mut inserted = Vec::new();
    if !violations.is_empty() {
        // Webhook event detection follows violation ids: hold the lock until commit so ids
        // become visible in order. Retention takes it too (see `delete_interactions_before`).
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&locks::VIOLATIONS])
            .await
            .map_err(db_err)?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO violations (policy_id, interaction_id, integration_id, severity, \
                 kind, message, evidence, fingerprint, status, occurred_at, detected_at, \
                 updated_at) \
                 SELECT $1::bigint, i.id, i.integration_id, $3::text, $4::text, $5::text, $6::text, $7::bytea, 'new', i.created_at, \
                 $8::bigint, $8::bigint FROM interactions i WHERE i.id = $2 \
                 ON CONFLICT (policy_id, interaction_id, fingerprint) DO NOTHING RETURNING id",
            )
            .await
            .map_err(db_err)?;
        for v in violations {
            let row = tx
                .query_opt(
                    &insert,
                    &[
                        &v.policy_id,
                        &v.interaction_id,
                        &v.severity.as_str(),
                        &v.kind,
                        &v.message,
                        &v.evidence,
                        &v.fingerprint(),
                        &now,
                    ],
                )
                .await
                .map_err(db_err)?;
            if let Some(row) = row {
                inserted.push(row.at(0)?);
            }
        }
    }
    if let Some(cursor) = cursor {
        tx.execute(
            "UPDATE policy_progress SET cursor = GREATEST(cursor, $1), evaluated_at = $2 \
             WHERE id = 1",
            &[&cursor, &now],
        )
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(inserted)
}

pub(crate) async fn policy_progress(c: &mut Client) -> StoreResult<PolicyProgress> {
    let row = c
        .query_one(
            "SELECT cursor, evaluated_at, (SELECT COALESCE(MAX(id), 0) FROM interactions) \
             FROM policy_progress WHERE id = 1",
            &[],
        )
        .await
        .map_err(db_err)?;
    Ok(PolicyProgress {
        cursor: row.at(0)?,
        evaluated_at_ms: row.at(1)?,
        latest_interaction_id: row.at(2)?,
    })
}

fn violation_from_row(row: &Row) -> StoreResult<Violation> {
    Violation::from_columns(&PgRow(row))
}

pub(crate) async fn get_violation(c: &mut Client, id: i64) -> StoreResult<Violation> {
    c.query_opt(&format!("{VIOLATION_SELECT} WHERE v.id = $1"), &[&id])
        .await
        .map_err(db_err)?
        .map(|r| violation_from_row(&r))
        .transpose()?
        .ok_or_else(|| not_found(format!("violation {id}")))
}

pub(crate) async fn violations(c: &mut Client, q: &ViolationQuery) -> StoreResult<ViolationPage> {
    let mut w = Conditions::default();
    if let Some(id) = q.policy_id {
        let p = w.bind(id);
        w.and(&format!("v.policy_id = {p}"));
    }
    if let Some(severity) = q.severity {
        let p = w.bind(severity.as_str());
        w.and(&format!("v.severity = {p}"));
    }
    if let Some(status) = q.status {
        let p = w.bind(status.as_str());
        w.and(&format!("v.status = {p}"));
    }
    if let Some(id) = q.interaction_id {
        let p = w.bind(id);
        w.and(&format!("v.interaction_id = {p}"));
    }
    if let Some(from) = q.from_ms {
        let p = w.bind(from);
        w.and(&format!("v.occurred_at >= {p}"));
    }
    if let Some(to) = q.to_ms {
        let p = w.bind(to);
        w.and(&format!("v.occurred_at < {p}"));
    }
    if let Some(text) = &q.text {
        // ASCII-only case folding (`lg_fold`), as the SQLite backend's `lg_contains`, whatever
        // the database's locale.
        let p = w.bind(text.clone());
        let needle = format!("lg_fold({p}::text)");
        let any = ["v.message", "v.kind", "p.name", "p.display_name"]
            .iter()
            .map(|col| format!("strpos(lg_fold({col}), {needle}) > 0"))
            .collect::<Vec<_>>()
            .join(" OR ");
        w.and(&format!("COALESCE({any}, false)"));
    }
    let total: i64 = c
        .query_one(
            &format!(
                "SELECT COUNT(*) FROM violations v JOIN policies p ON p.id = v.policy_id \
                 WHERE 1 = 1{}",
                w.sql
            ),
            &w.refs(),
        )
        .await
        .map_err(db_err)?
        .at(0)?;
    let limit = q.limit.clamp(1, 1_000);
    if let Some((occurred_at, id)) = q.before {
        let (a, b) = (w.bind(occurred_at), w.bind(id));
        w.and(&format!("(v.occurred_at, v.id) < ({a}, {b})"));
    }
    let p = w.bind(i64::from(limit) + 1);
    let mut items = c
        .query(
            &format!(
                "{VIOLATION_SELECT} WHERE 1 = 1{} ORDER BY v.occurred_at DESC, v.id DESC \
                 LIMIT {p}",
                w.sql
            ),
            &w.refs(),
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(violation_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|v| (v.occurred_at_ms, v.id))
    } else {
        None
    };
    Ok(ViolationPage {
        items,
        total: total.max(0) as u64,
        next_cursor,
    })
}

pub(crate) async fn update_violations(
    c: &mut Client,
    ids: &[i64],
    status: ViolationStatus,
    notes: Option<&str>,
) -> StoreResult<Vec<Violation>> {
    let tx = c.transaction().await.map_err(db_err)?;
    let now = now_ms();
    let updated: HashSet<i64> = tx
        .query(
            "UPDATE violations SET status = $2, notes = COALESCE($3, notes), updated_at = $4 \
             WHERE id = ANY($1) RETURNING id",
            &[&ids, &status.as_str(), &notes, &now],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| r.at(0))
        .collect::<StoreResult<_>>()?;
    // All or none: one unknown id (the first, as the SQLite backend names it) leaves every
    // violation as it was — the transaction rolls back when dropped.
    if let Some(id) = ids.iter().find(|id| !updated.contains(id)) {
        return Err(not_found(format!("violation {id}")));
    }
    let found: HashMap<i64, Violation> = tx
        .query(&format!("{VIOLATION_SELECT} WHERE v.id = ANY($1)"), &[&ids])
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| violation_from_row(r).map(|v| (v.id, v)))
        .collect::<StoreResult<_>>()?;
    tx.commit().await.map_err(db_err)?;
    // In the order asked (an id given twice comes back twice).
    ids.iter()
        .map(|id| {
            found
                .get(id)
                .cloned()
                .ok_or_else(|| not_found(format!("violation {id}")))
        })
        .collect()
}

pub(crate) async fn violation_counts(
    c: &mut Client,
    scope: &Scope,
) -> StoreResult<Vec<(Severity, ViolationStatus, u64)>> {
    // Violations carry no gateway/provider/model: only time and integration narrow them.
    let mut w = Conditions::default();
    if let Some(from) = scope.from_ms {
        let p = w.bind(from);
        w.and(&format!("occurred_at >= {p}"));
    }
    if let Some(to) = scope.to_ms {
        let p = w.bind(to);
        w.and(&format!("occurred_at < {p}"));
    }
    if let Some(id) = scope.integration_id {
        let p = w.bind(id);
        w.and(&format!("integration_id = {p}"));
    }
    // Ordered as SQLite's GROUP BY returns the groups.
    let rows = c
        .query(
            &format!(
                "SELECT severity, status, COUNT(*) FROM violations WHERE 1 = 1{} \
                 GROUP BY severity, status ORDER BY severity, status",
                w.sql
            ),
            &w.refs(),
        )
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            let severity: String = r.at(0)?;
            let status: String = r.at(1)?;
            let n: i64 = r.at(2)?;
            match (Severity::parse(&severity), ViolationStatus::parse(&status)) {
                (Some(severity), Some(status)) => Ok((severity, status, n.max(0) as u64)),
                _ => Err(corrupt(
                    "violation severity/status",
                    &format!("{severity}/{status}"),
                )),
            }
        })
        .collect()
}

pub(crate) async fn violations_after(
    c: &mut Client,
    after_id: i64,
    limit: u32,
) -> StoreResult<Vec<Violation>> {
    c.query(
        &format!("{VIOLATION_SELECT} WHERE v.id > $1 ORDER BY v.id LIMIT $2"),
        &[&after_id, &i64::from(limit)],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(violation_from_row)
    .collect()
}
