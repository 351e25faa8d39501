//! Policies, their versions, violations and the policy worker's cursor.

use langguard_store::rows::{POLICY_COLUMNS, VIOLATION_SELECT};
use langguard_store::*;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::records::SqliteRow;

use crate::{db_err, now_ms};

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

fn policy_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<Policy>> {
    Ok(Policy::from_columns(&SqliteRow(row)))
}

pub(crate) fn get_policy(conn: &Connection, id: PolicyId) -> StoreResult<Policy> {
    conn.query_row(
        &format!("SELECT {POLICY_COLUMNS} FROM policies WHERE id = ?1"),
        [id],
        policy_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| StoreError::NotFound {
        what: format!("policy {id}"),
    })
}

pub(crate) fn list_policies(conn: &Connection) -> StoreResult<Vec<Policy>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {POLICY_COLUMNS} FROM policies ORDER BY name"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], policy_from_row)
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    rows.into_iter().collect()
}

pub(crate) fn create_policy(conn: &mut Connection, new: &NewPolicy) -> StoreResult<Policy> {
    let tx = conn.transaction().map_err(db_err)?;
    let id = insert_policy(&tx, new)?;
    tx.commit().map_err(db_err)?;
    get_policy(conn, id)
}

fn insert_policy(conn: &Connection, new: &NewPolicy) -> StoreResult<PolicyId> {
    let now = now_ms();
    conn.execute(
        "INSERT INTO policies (name, display_name, description, category, severity, mode, \
         config, rego, builtin_id, version, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?10)",
        params![
            new.name,
            new.display_name,
            new.description,
            new.category.as_str(),
            new.severity.as_str(),
            new.mode.as_str(),
            new.config,
            new.rego,
            new.builtin_id,
            now
        ],
    )
    .map_err(|e| match db_err(e) {
        StoreError::Conflict { .. } => StoreError::Conflict {
            what: format!("a policy named {:?}", new.name),
        },
        other => other,
    })?;
    let id = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO policy_versions (policy_id, version, rego, config, created_at) \
         VALUES (?1, 1, ?2, ?3, ?4)",
        params![id, new.rego, new.config, now],
    )
    .map_err(db_err)?;
    Ok(id)
}

pub(crate) fn update_policy(
    conn: &mut Connection,
    id: PolicyId,
    patch: &PolicyPatch,
) -> StoreResult<Policy> {
    let tx = conn.transaction().map_err(db_err)?;
    let current = get_policy(&tx, id)?;
    let rego = patch.rego.clone().unwrap_or_else(|| current.rego.clone());
    let config = patch
        .config
        .clone()
        .unwrap_or_else(|| current.config.clone());
    let new_text = rego != current.rego || config != current.config;
    let version = current.version + i64::from(new_text);
    let now = now_ms();
    let keep_quarantine = !patch.lifts_quarantine(&current);
    tx.execute(
        "UPDATE policies SET display_name = ?2, description = ?3, category = ?4, severity = ?5, \
         mode = ?6, config = ?7, rego = ?8, version = ?9, updated_at = ?10, \
         quarantine_reason = CASE WHEN ?11 THEN quarantine_reason END, \
         quarantined_at = CASE WHEN ?11 THEN quarantined_at END WHERE id = ?1",
        params![
            id,
            patch.display_name.as_ref().unwrap_or(&current.display_name),
            patch.description.as_ref().unwrap_or(&current.description),
            patch.category.unwrap_or(current.category).as_str(),
            patch.severity.unwrap_or(current.severity).as_str(),
            patch.mode.unwrap_or(current.mode).as_str(),
            config,
            rego,
            version,
            now,
            keep_quarantine
        ],
    )
    .map_err(db_err)?;
    if new_text {
        tx.execute(
            "INSERT INTO policy_versions (policy_id, version, rego, config, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, version, rego, config, now],
        )
        .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)?;
    get_policy(conn, id)
}

pub(crate) fn quarantine_policy(
    conn: &mut Connection,
    id: PolicyId,
    version: i64,
    reason: &str,
    event: &OutgoingEvent,
) -> StoreResult<Option<Policy>> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let now = now_ms();
    let changed = tx
        .execute(
            "UPDATE policies SET mode = 'disabled', quarantine_reason = ?2, quarantined_at = ?3, \
             updated_at = ?3 WHERE id = ?1 AND version = ?4 AND mode != 'disabled'",
            params![id, reason, now, version],
        )
        .map_err(db_err)?;
    if changed == 0 {
        return Ok(None);
    }
    crate::webhooks::insert_deliveries(&tx, std::slice::from_ref(event), now)?;
    tx.commit().map_err(db_err)?;
    get_policy(conn, id).map(Some)
}

pub(crate) fn delete_policy(conn: &mut Connection, id: PolicyId) -> StoreResult<()> {
    let tx = conn.transaction().map_err(db_err)?;
    tx.execute("DELETE FROM violations WHERE policy_id = ?1", [id])
        .map_err(db_err)?;
    tx.execute("DELETE FROM policy_versions WHERE policy_id = ?1", [id])
        .map_err(db_err)?;
    let deleted = tx
        .execute("DELETE FROM policies WHERE id = ?1", [id])
        .map_err(db_err)?;
    if deleted == 0 {
        return Err(StoreError::NotFound {
            what: format!("policy {id}"),
        });
    }
    tx.commit().map_err(db_err)
}

pub(crate) fn policy_versions(conn: &Connection, id: PolicyId) -> StoreResult<Vec<PolicyVersion>> {
    get_policy(conn, id)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT version, rego, config, created_at FROM policy_versions \
             WHERE policy_id = ?1 ORDER BY version DESC",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map([id], |r| {
            Ok(PolicyVersion {
                version: r.get(0)?,
                rego: r.get(1)?,
                config: r.get(2)?,
                created_at_ms: r.get(3)?,
            })
        })
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    Ok(rows)
}

pub(crate) fn install_builtins(
    conn: &mut Connection,
    builtins: &[NewPolicy],
) -> StoreResult<Vec<Policy>> {
    let tx = conn.transaction().map_err(db_err)?;
    let mut created = Vec::new();
    for policy in builtins {
        let Some(builtin_id) = &policy.builtin_id else {
            continue;
        };
        let fresh = tx
            .execute(
                "INSERT OR IGNORE INTO installed_builtins (builtin_id, installed_at) VALUES (?1, ?2)",
                params![builtin_id, now_ms()],
            )
            .map_err(db_err)?;
        let name_taken: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM policies WHERE name = ?1)",
                [&policy.name],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        // A policy of the user's that already has the name wins; the built-in is not forced in.
        if fresh == 1 && !name_taken {
            created.push(insert_policy(&tx, policy)?);
        }
    }
    tx.commit().map_err(db_err)?;
    created.into_iter().map(|id| get_policy(conn, id)).collect()
}

pub(crate) fn record_evaluations(
    conn: &mut Connection,
    violations: &[NewViolation],
    cursor: Option<i64>,
) -> StoreResult<Vec<i64>> {
    let tx = conn.transaction().map_err(db_err)?;
    let now = now_ms();
    let mut inserted = Vec::new();
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO violations (policy_id, interaction_id, integration_id, severity, kind, \
                 message, evidence, fingerprint, status, occurred_at, detected_at, updated_at) \
                 SELECT ?1, i.id, i.integration_id, ?3, ?4, ?5, ?6, ?7, 'new', i.created_at, ?8, ?8 \
                 FROM interactions i WHERE i.id = ?2 \
                 ON CONFLICT (policy_id, interaction_id, fingerprint) DO NOTHING",
            )
            .map_err(db_err)?;
        for v in violations {
            let changed = stmt
                .execute(params![
                    v.policy_id,
                    v.interaction_id,
                    v.severity.as_str(),
                    v.kind,
                    v.message,
                    v.evidence,
                    v.fingerprint(),
                    now
                ])
                .map_err(db_err)?;
            if changed == 1 {
                inserted.push(tx.last_insert_rowid());
            }
        }
    }
    if let Some(cursor) = cursor {
        tx.execute(
            "UPDATE policy_progress SET cursor = MAX(cursor, ?1), evaluated_at = ?2 WHERE id = 1",
            params![cursor, now],
        )
        .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)?;
    Ok(inserted)
}

pub(crate) fn policy_progress(conn: &Connection) -> StoreResult<PolicyProgress> {
    conn.query_row(
        "SELECT cursor, evaluated_at, (SELECT IFNULL(MAX(id), 0) FROM interactions) \
         FROM policy_progress WHERE id = 1",
        [],
        |r| {
            Ok(PolicyProgress {
                cursor: r.get(0)?,
                evaluated_at_ms: r.get(1)?,
                latest_interaction_id: r.get(2)?,
            })
        },
    )
    .map_err(db_err)
}

fn violation_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<Violation>> {
    Ok(Violation::from_columns(&SqliteRow(row)))
}

pub(crate) fn get_violation(conn: &Connection, id: i64) -> StoreResult<Violation> {
    conn.query_row(
        &format!("{VIOLATION_SELECT} WHERE v.id = ?1"),
        [id],
        violation_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| StoreError::NotFound {
        what: format!("violation {id}"),
    })
}

pub(crate) fn violations(conn: &Connection, q: &ViolationQuery) -> StoreResult<ViolationPage> {
    let mut sql = String::new();
    let mut params: Vec<Value> = Vec::new();
    let mut push = |condition: &str, value: Value| {
        sql.push_str(" AND ");
        sql.push_str(condition);
        params.push(value);
    };
    if let Some(id) = q.policy_id {
        push("v.policy_id = ?", Value::Integer(id));
    }
    if let Some(severity) = q.severity {
        push("v.severity = ?", Value::Text(severity.as_str().into()));
    }
    if let Some(status) = q.status {
        push("v.status = ?", Value::Text(status.as_str().into()));
    }
    if let Some(id) = q.interaction_id {
        push("v.interaction_id = ?", Value::Integer(id));
    }
    if let Some(from) = q.from_ms {
        push("v.occurred_at >= ?", Value::Integer(from));
    }
    if let Some(to) = q.to_ms {
        push("v.occurred_at < ?", Value::Integer(to));
    }
    if let Some(text) = &q.text {
        push(
            "lg_contains(?, v.message, v.kind, p.name, p.display_name)",
            Value::Text(text.clone()),
        );
    }
    let total: i64 = conn
        .query_row(
            &format!(
                "SELECT COUNT(*) FROM violations v JOIN policies p ON p.id = v.policy_id \
                 WHERE 1 = 1{sql}"
            ),
            params_from_iter(params.iter()),
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let limit = q.limit.clamp(1, 1_000);
    if let Some((occurred_at, id)) = q.before {
        sql.push_str(" AND (v.occurred_at, v.id) < (?, ?)");
        params.push(Value::Integer(occurred_at));
        params.push(Value::Integer(id));
    }
    params.push(Value::Integer(i64::from(limit) + 1));
    let mut stmt = conn
        .prepare_cached(&format!(
            "{VIOLATION_SELECT} WHERE 1 = 1{sql} ORDER BY v.occurred_at DESC, v.id DESC LIMIT ?"
        ))
        .map_err(db_err)?;
    let mut items = stmt
        .query_map(params_from_iter(params), violation_from_row)
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?
        .into_iter()
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

pub(crate) fn update_violations(
    conn: &mut Connection,
    ids: &[i64],
    status: ViolationStatus,
    notes: Option<&str>,
) -> StoreResult<Vec<Violation>> {
    let tx = conn.transaction().map_err(db_err)?;
    let now = now_ms();
    for &id in ids {
        let changed = tx
            .execute(
                "UPDATE violations SET status = ?2, notes = COALESCE(?3, notes), updated_at = ?4 \
                 WHERE id = ?1",
                params![id, status.as_str(), notes, now],
            )
            .map_err(db_err)?;
        if changed == 0 {
            // All or none: one unknown id leaves every violation as it was.
            return Err(StoreError::NotFound {
                what: format!("violation {id}"),
            });
        }
    }
    tx.commit().map_err(db_err)?;
    ids.iter().map(|&id| get_violation(conn, id)).collect()
}

pub(crate) fn violation_counts(
    conn: &Connection,
    scope: &Scope,
) -> StoreResult<Vec<(Severity, ViolationStatus, u64)>> {
    let mut sql = String::from("SELECT severity, status, COUNT(*) FROM violations WHERE 1 = 1");
    let mut params: Vec<Value> = Vec::new();
    if let Some(from) = scope.from_ms {
        sql.push_str(" AND occurred_at >= ?");
        params.push(Value::Integer(from));
    }
    if let Some(to) = scope.to_ms {
        sql.push_str(" AND occurred_at < ?");
        params.push(Value::Integer(to));
    }
    if let Some(id) = scope.integration_id {
        sql.push_str(" AND integration_id = ?");
        params.push(Value::Integer(id));
    }
    sql.push_str(" GROUP BY severity, status");
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let rows = stmt
        .query_map(params_from_iter(params), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    rows.into_iter()
        .map(|(severity, status, n)| {
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

pub(crate) fn violations_after(
    conn: &Connection,
    after_id: i64,
    limit: u32,
) -> StoreResult<Vec<Violation>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "{VIOLATION_SELECT} WHERE v.id > ?1 ORDER BY v.id LIMIT ?2"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![after_id, i64::from(limit)], violation_from_row)
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    rows.into_iter().collect()
}
