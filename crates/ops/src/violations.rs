//! Violation status: New → Acknowledged → Resolved, with notes, one or many at a time.

use langguard_store::{Violation, ViolationStatus};
use serde_json::json;
use tracing::instrument;

use crate::{Actor, OpsError, OpsResult, Services};

/// Most violations one bulk change takes.
pub const MAX_BULK: usize = 1_000;

fn check_notes(notes: Option<String>) -> OpsResult<Option<String>> {
    match notes {
        Some(n) if n.chars().count() > 5_000 => Err(OpsError::invalid(
            "invalid_body",
            "notes are longer than 5,000 characters",
        )),
        other => Ok(other),
    }
}

/// Moves one violation to `status`.
#[instrument(skip_all, fields(violation_id = id))]
pub async fn set_one(
    ops: &Services,
    actor: Actor<'_>,
    id: i64,
    status: ViolationStatus,
    notes: Option<String>,
) -> OpsResult<Violation> {
    let updated = ops
        .store
        .update_violations(vec![id], status, check_notes(notes)?)
        .await?;
    let violation = updated
        .into_iter()
        .next()
        .ok_or_else(|| OpsError::NotFound(format!("violation {id} does not exist")))?;
    ops.audit(
        actor,
        "violation.updated",
        Some(format!("violation:{id}")),
        json!({"status": status.as_str()}),
        None,
    )
    .await;
    Ok(violation)
}

/// Moves violations to `status`: all of them or, when an id is unknown, none.
#[instrument(skip_all, fields(count = ids.len()))]
pub async fn set_status(
    ops: &Services,
    actor: Actor<'_>,
    ids: Vec<i64>,
    status: ViolationStatus,
    notes: Option<String>,
) -> OpsResult<Vec<Violation>> {
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(OpsError::invalid(
            "invalid_body",
            format!("ids must list 1 to {MAX_BULK} violations"),
        ));
    }
    let updated = ops
        .store
        .update_violations(ids, status, check_notes(notes)?)
        .await?;
    ops.audit(
        actor,
        "violation.bulk_updated",
        None,
        json!({"status": status.as_str(), "count": updated.len()}),
        None,
    )
    .await;
    Ok(updated)
}
