//! Webhooks, their delivery outbox, and event-detection progress.

use langguard_store::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::records::sync_run_from_row;
use crate::{db_err, now_ms};

const WEBHOOK_COLUMNS: &str = "id, url, secret_sealed, events, min_severity, enabled, \
     consecutive_failures, disabled_reason, created_at, updated_at, kind, name, settings";

fn events_text(events: &[WebhookEvent]) -> String {
    serde_json::to_string(&events.iter().map(|e| e.as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

fn webhook_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<Webhook>> {
    let events: String = row.get(3)?;
    let severity: String = row.get(4)?;
    let names: Vec<String> = match serde_json::from_str(&events) {
        Ok(names) => names,
        Err(_) => {
            return Ok(Err(StoreError::Corrupt(format!(
                "webhook events {events:?}"
            ))))
        }
    };
    let Some(events) = names
        .iter()
        .map(|n| WebhookEvent::parse(n))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(Err(StoreError::Corrupt(format!(
            "webhook events {names:?}"
        ))));
    };
    let Some(min_severity) = Severity::parse(&severity) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "webhook severity {severity:?}"
        ))));
    };
    let kind: String = row.get(10)?;
    let Some(kind) = ChannelKind::parse(&kind) else {
        return Ok(Err(StoreError::Corrupt(format!("channel kind {kind:?}"))));
    };
    Ok(Ok(Webhook {
        id: row.get(0)?,
        url: row.get(1)?,
        sealed_secret: row.get(2)?,
        kind,
        name: row.get(11)?,
        settings: row.get(12)?,
        events,
        min_severity,
        enabled: row.get(5)?,
        consecutive_failures: row.get(6)?,
        disabled_reason: row.get(7)?,
        created_at_ms: row.get(8)?,
        updated_at_ms: row.get(9)?,
    }))
}

pub(crate) fn get_webhook(conn: &Connection, id: WebhookId) -> StoreResult<Webhook> {
    conn.query_row(
        &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1"),
        [id],
        webhook_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| StoreError::NotFound {
        what: format!("webhook {id}"),
    })
}

pub(crate) fn list_webhooks(conn: &Connection) -> StoreResult<Vec<Webhook>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY id"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], webhook_from_row)
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    rows.into_iter().collect()
}

pub(crate) fn create_webhook(conn: &mut Connection, new: &NewWebhook) -> StoreResult<Webhook> {
    let now = now_ms();
    let tx = conn.transaction().map_err(db_err)?;
    tx.execute(
        "INSERT INTO webhooks (url, secret_sealed, events, min_severity, enabled, created_at, \
         updated_at, kind, name, settings) VALUES (?1, X'', ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8)",
        params![
            new.url,
            events_text(&new.events),
            new.min_severity.as_str(),
            new.enabled,
            now,
            new.kind.as_str(),
            new.name,
            new.settings
        ],
    )
    .map_err(db_err)?;
    // The secret is sealed for this row's id, in the transaction that made it.
    let id = tx.last_insert_rowid();
    tx.execute(
        "UPDATE webhooks SET secret_sealed = ?2 WHERE id = ?1",
        params![id, new.secret.seal(id)],
    )
    .map_err(db_err)?;
    tx.commit().map_err(db_err)?;
    get_webhook(conn, id)
}

pub(crate) fn update_webhook(
    conn: &Connection,
    id: WebhookId,
    patch: &WebhookPatch,
) -> StoreResult<Webhook> {
    let current = get_webhook(conn, id)?;
    let enabled = patch.enabled.unwrap_or(current.enabled);
    let re_enabled = enabled && !current.enabled;
    conn.execute(
        "UPDATE webhooks SET url = ?2, secret_sealed = ?3, events = ?4, min_severity = ?5, \
         enabled = ?6, consecutive_failures = ?7, disabled_reason = ?8, updated_at = ?9, \
         name = ?10, settings = ?11 WHERE id = ?1",
        params![
            id,
            patch.url.as_ref().unwrap_or(&current.url),
            patch
                .sealed_secret
                .as_ref()
                .unwrap_or(&current.sealed_secret),
            events_text(patch.events.as_ref().unwrap_or(&current.events)),
            patch.min_severity.unwrap_or(current.min_severity).as_str(),
            enabled,
            if re_enabled {
                0
            } else {
                current.consecutive_failures
            },
            if enabled {
                None
            } else {
                current.disabled_reason.clone()
            },
            now_ms(),
            patch.name.as_ref().unwrap_or(&current.name),
            patch.settings.as_ref().unwrap_or(&current.settings)
        ],
    )
    .map_err(db_err)?;
    get_webhook(conn, id)
}

pub(crate) fn delete_webhook(conn: &mut Connection, id: WebhookId) -> StoreResult<()> {
    let tx = conn.transaction().map_err(db_err)?;
    tx.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?1", [id])
        .map_err(db_err)?;
    if tx
        .execute("DELETE FROM webhooks WHERE id = ?1", [id])
        .map_err(db_err)?
        == 0
    {
        return Err(StoreError::NotFound {
            what: format!("webhook {id}"),
        });
    }
    tx.commit().map_err(db_err)
}

/// Inside the caller's transaction (key rotation re-seals tokens and secrets together).
pub(crate) fn replace_secrets(conn: &Connection, secrets: &[SealedSwap]) -> StoreResult<()> {
    for swap in secrets {
        let changed = conn
            .execute(
                "UPDATE webhooks SET secret_sealed = ?2 WHERE id = ?1 AND secret_sealed = ?3",
                params![swap.id, swap.new, swap.old],
            )
            .map_err(db_err)?;
        if changed == 0 {
            return Err(swap.changed("webhook"));
        }
    }
    Ok(())
}

pub(crate) fn event_progress(conn: &Connection) -> StoreResult<EventProgress> {
    let (violation_id, finished_at, run_id) = conn
        .query_row(
            "SELECT violation_id, sync_finished_at, sync_run_id FROM event_progress WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(db_err)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT integration_id, status FROM event_seen_status ORDER BY integration_id",
        )
        .map_err(db_err)?;
    let statuses = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    Ok(EventProgress {
        violation_id,
        sync_finished: (finished_at, run_id),
        statuses,
    })
}

pub(crate) fn sync_runs_finished_after(
    conn: &Connection,
    (finished_at, id): (i64, i64),
    limit: u32,
) -> StoreResult<Vec<SyncRun>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT * FROM sync_runs WHERE finished_at IS NOT NULL AND (finished_at, id) > (?1, ?2) \
             ORDER BY finished_at, id LIMIT ?3",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(
            params![finished_at, id, i64::from(limit)],
            sync_run_from_row,
        )
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    rows.into_iter().collect()
}

/// Queues a delivery of each event to every enabled webhook subscribed to it (and, for
/// violations, to its severity).
pub(crate) fn insert_deliveries(
    conn: &Connection,
    events: &[OutgoingEvent],
    now: i64,
) -> StoreResult<u64> {
    let webhooks: Vec<Webhook> = list_webhooks(conn)?
        .into_iter()
        .filter(|w| w.enabled)
        .collect();
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO webhook_deliveries (webhook_id, event, body, status, created_at, \
             next_attempt_at) VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
        )
        .map_err(db_err)?;
    let mut queued = 0u64;
    for event in events {
        for w in &webhooks {
            if event.is_for(w) {
                insert
                    .execute(params![w.id, event.event.as_str(), event.body, now])
                    .map_err(db_err)?;
                queued += 1;
            }
        }
    }
    Ok(queued)
}

/// One delivery of `event` to webhook `id`, enabled or not (Send test); its id.
pub(crate) fn queue_delivery(
    conn: &Connection,
    id: WebhookId,
    event: &OutgoingEvent,
) -> StoreResult<i64> {
    get_webhook(conn, id)?;
    conn.execute(
        "INSERT INTO webhook_deliveries (webhook_id, event, body, status, created_at, \
         next_attempt_at) VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
        params![id, event.event.as_str(), event.body, now_ms()],
    )
    .map_err(db_err)?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn enqueue_events(
    conn: &mut Connection,
    events: &[OutgoingEvent],
    from: &EventProgress,
    progress: &EventProgress,
) -> StoreResult<u64> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db_err)?;
    if !event_progress(&tx)?.same_as(from) {
        return Ok(0); // another process's detection got there first
    }
    let queued = insert_deliveries(&tx, events, now_ms())?;
    tx.execute(
        "UPDATE event_progress SET violation_id = ?1, sync_finished_at = ?2, sync_run_id = ?3 \
         WHERE id = 1",
        params![
            progress.violation_id,
            progress.sync_finished.0,
            progress.sync_finished.1
        ],
    )
    .map_err(db_err)?;
    tx.execute("DELETE FROM event_seen_status", [])
        .map_err(db_err)?;
    for (id, status) in &progress.statuses {
        tx.execute(
            "INSERT INTO event_seen_status (integration_id, status) VALUES (?1, ?2)",
            params![id, status],
        )
        .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)?;
    Ok(queued)
}

const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.event, d.body, d.status, d.attempts, \
     d.response_code, d.error, d.created_at, d.next_attempt_at, d.delivered_at";

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<Delivery>> {
    let event: String = row.get(2)?;
    let status: String = row.get(4)?;
    let (Some(event), Some(status)) = (WebhookEvent::parse(&event), DeliveryStatus::parse(&status))
    else {
        return Ok(Err(StoreError::Corrupt(format!(
            "delivery event/status {event:?}/{status:?}"
        ))));
    };
    Ok(Ok(Delivery {
        id: row.get(0)?,
        webhook_id: row.get(1)?,
        event,
        body: row.get(3)?,
        status,
        attempts: row.get(5)?,
        response_code: row.get(6)?,
        error: row.get(7)?,
        created_at_ms: row.get(8)?,
        next_attempt_at_ms: row.get(9)?,
        delivered_at_ms: row.get(10)?,
    }))
}

pub(crate) fn due_deliveries(
    conn: &mut Connection,
    now: i64,
    limit: u32,
    claim_until: i64,
) -> StoreResult<Vec<(Delivery, Webhook)>> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let claimed = due_on(&tx, now, limit)?;
    for (delivery, _) in &claimed {
        tx.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = ?1 WHERE id = ?2",
            params![claim_until, delivery.id],
        )
        .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)?;
    Ok(claimed)
}

fn due_on(conn: &Connection, now: i64, limit: u32) -> StoreResult<Vec<(Delivery, Webhook)>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhooks w \
             ON w.id = d.webhook_id WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 \
             AND w.enabled = 1 ORDER BY d.next_attempt_at, d.id LIMIT ?2"
        ))
        .map_err(db_err)?;
    let deliveries = stmt
        .query_map(params![now, i64::from(limit)], delivery_from_row)
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?
        .into_iter()
        .collect::<StoreResult<Vec<_>>>()?;
    deliveries
        .into_iter()
        .map(|d| {
            let w = get_webhook(conn, d.webhook_id)?;
            Ok((d, w))
        })
        .collect()
}

pub(crate) fn record_delivery(
    conn: &mut Connection,
    id: i64,
    attempt: &DeliveryAttempt,
    disable_after: i64,
) -> StoreResult<()> {
    let tx = conn.transaction().map_err(db_err)?;
    let now = now_ms();
    let status = if attempt.succeeded {
        DeliveryStatus::Succeeded
    } else if attempt.retry_at_ms.is_some() {
        DeliveryStatus::Pending
    } else {
        DeliveryStatus::Failed
    };
    let webhook_id: i64 = tx
        .query_row(
            "UPDATE webhook_deliveries SET status = ?2, attempts = attempts + 1, \
             response_code = ?3, error = ?4, next_attempt_at = ?5, \
             delivered_at = CASE WHEN ?6 THEN ?7 ELSE delivered_at END \
             WHERE id = ?1 RETURNING webhook_id",
            params![
                id,
                status.as_str(),
                attempt.response_code,
                attempt.error,
                attempt.retry_at_ms,
                attempt.succeeded,
                now
            ],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("delivery {id}"),
        })?;
    match status {
        DeliveryStatus::Succeeded => {
            tx.execute(
                "UPDATE webhooks SET consecutive_failures = 0 WHERE id = ?1",
                [webhook_id],
            )
            .map_err(db_err)?;
        }
        DeliveryStatus::Failed => {
            tx.execute(
                "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, \
                 enabled = CASE WHEN consecutive_failures + 1 >= ?2 THEN 0 ELSE enabled END, \
                 disabled_reason = CASE WHEN consecutive_failures + 1 >= ?2 \
                   THEN 'disabled after ' || (consecutive_failures + 1) || ' failed deliveries in a row' \
                   ELSE disabled_reason END, updated_at = ?3 WHERE id = ?1",
                params![webhook_id, disable_after, now],
            )
            .map_err(db_err)?;
        }
        DeliveryStatus::Pending => {}
    }
    tx.commit().map_err(db_err)
}

pub(crate) fn list_deliveries(
    conn: &Connection,
    webhook_id: WebhookId,
    limit: u32,
) -> StoreResult<Vec<Delivery>> {
    get_webhook(conn, webhook_id)?;
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = ?1 \
             ORDER BY d.id DESC LIMIT ?2"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![webhook_id, i64::from(limit)], delivery_from_row)
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    rows.into_iter().collect()
}
