//! Webhooks, their delivery outbox, and event-detection progress.

use deadpool_postgres::{Client, GenericClient, Transaction};
use langguard_store::*;
use tokio_postgres::Row;

use crate::records::{sync_run_from_row, RowExt, SYNC_RUN_COLUMNS};
use crate::{db_err, not_found, now_ms};

/// 10 columns, read by position from an offset (deliveries are joined with their webhook).
const WEBHOOK_COLUMNS: &str = "id, url, secret_sealed, events, min_severity, enabled, \
     consecutive_failures, disabled_reason, created_at, updated_at, kind, name, settings";

/// [`WEBHOOK_COLUMNS`] of the webhook aliased `w`.
const W_WEBHOOK_COLUMNS: &str = "w.id, w.url, w.secret_sealed, w.events, w.min_severity, \
     w.enabled, w.consecutive_failures, w.disabled_reason, w.created_at, w.updated_at, w.kind, \
     w.name, w.settings";

fn events_text(events: &[WebhookEvent]) -> String {
    serde_json::to_string(&events.iter().map(|e| e.as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

/// The webhook whose [`WEBHOOK_COLUMNS`] start at column `at`.
fn webhook_from_row(row: &Row, at: usize) -> StoreResult<Webhook> {
    let events: String = row.at(at + 3)?;
    let severity: String = row.at(at + 4)?;
    let names: Vec<String> = serde_json::from_str(&events)
        .map_err(|_| StoreError::Corrupt(format!("webhook events {events:?}")))?;
    let events = names
        .iter()
        .map(|n| WebhookEvent::parse(n))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| StoreError::Corrupt(format!("webhook events {names:?}")))?;
    let min_severity = Severity::parse(&severity)
        .ok_or_else(|| StoreError::Corrupt(format!("webhook severity {severity:?}")))?;
    let kind: String = row.at(at + 10)?;
    let kind = ChannelKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("channel kind {kind:?}")))?;
    Ok(Webhook {
        id: row.at(at)?,
        url: row.at(at + 1)?,
        sealed_secret: row.at(at + 2)?,
        kind,
        name: row.at(at + 11)?,
        settings: row.at(at + 12)?,
        events,
        min_severity,
        enabled: row.at(at + 5)?,
        consecutive_failures: row.at(at + 6)?,
        disabled_reason: row.at(at + 7)?,
        created_at_ms: row.at(at + 8)?,
        updated_at_ms: row.at(at + 9)?,
    })
}

/// `lock` adds `FOR UPDATE`, for read-modify-write inside a transaction.
async fn fetch_webhook(c: &impl GenericClient, id: WebhookId, lock: bool) -> StoreResult<Webhook> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    c.query_opt(
        &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1{lock}"),
        &[&id],
    )
    .await
    .map_err(db_err)?
    .map(|r| webhook_from_row(&r, 0))
    .transpose()?
    .ok_or_else(|| not_found(format!("webhook {id}")))
}

pub(crate) async fn get_webhook(c: &mut Client, id: WebhookId) -> StoreResult<Webhook> {
    fetch_webhook(&*c, id, false).await
}

pub(crate) async fn list_webhooks(c: &mut Client) -> StoreResult<Vec<Webhook>> {
    fetch_webhooks(&*c).await
}

async fn fetch_webhooks(c: &impl GenericClient) -> StoreResult<Vec<Webhook>> {
    c.query(
        &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY id"),
        &[],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(|r| webhook_from_row(r, 0))
    .collect()
}

pub(crate) async fn create_webhook(c: &mut Client, new: &NewWebhook) -> StoreResult<Webhook> {
    let now = now_ms();
    // The id first, so the secret is sealed for its row before the row exists.
    let id: i64 = c
        .query_one(
            "SELECT nextval(pg_get_serial_sequence('webhooks', 'id'))",
            &[],
        )
        .await
        .map_err(db_err)?
        .try_get(0)
        .map_err(db_err)?;
    let row = c
        .query_one(
            &format!(
                "INSERT INTO webhooks (id, url, secret_sealed, events, min_severity, enabled, \
                 created_at, updated_at, kind, name, settings) \
                 VALUES ($7, $1, $2, $3, $4, $5, $6, $6, $8, $9, $10) \
                 RETURNING {WEBHOOK_COLUMNS}"
            ),
            &[
                &new.url,
                &new.secret.seal(id),
                &events_text(&new.events),
                &new.min_severity.as_str(),
                &new.enabled,
                &now,
                &id,
                &new.kind.as_str(),
                &new.name,
                &new.settings,
            ],
        )
        .await
        .map_err(db_err)?;
    webhook_from_row(&row, 0)
}

pub(crate) async fn update_webhook(
    c: &mut Client,
    id: WebhookId,
    patch: &WebhookPatch,
) -> StoreResult<Webhook> {
    let tx = c.transaction().await.map_err(db_err)?;
    // Locked: a delivery failure recorded meanwhile by another instance is not overwritten.
    let current = fetch_webhook(&tx, id, true).await?;
    let enabled = patch.enabled.unwrap_or(current.enabled);
    let re_enabled = enabled && !current.enabled;
    let failures = if re_enabled {
        0
    } else {
        current.consecutive_failures
    };
    let disabled_reason = if enabled {
        None
    } else {
        current.disabled_reason.clone()
    };
    let row = tx
        .query_one(
            &format!(
                "UPDATE webhooks SET url = $2, secret_sealed = $3, events = $4, \
                 min_severity = $5, enabled = $6, consecutive_failures = $7, \
                 disabled_reason = $8, updated_at = $9, name = $10, settings = $11 \
                 WHERE id = $1 RETURNING {WEBHOOK_COLUMNS}"
            ),
            &[
                &id,
                patch.url.as_ref().unwrap_or(&current.url),
                patch
                    .sealed_secret
                    .as_ref()
                    .unwrap_or(&current.sealed_secret),
                &events_text(patch.events.as_ref().unwrap_or(&current.events)),
                &patch.min_severity.unwrap_or(current.min_severity).as_str(),
                &enabled,
                &failures,
                &disabled_reason,
                &now_ms(),
                patch.name.as_ref().unwrap_or(&current.name),
                patch.settings.as_ref().unwrap_or(&current.settings),
            ],
        )
        .await
        .map_err(db_err)?;
    let webhook = webhook_from_row(&row, 0)?;
    tx.commit().await.map_err(db_err)?;
    Ok(webhook)
}

pub(crate) async fn delete_webhook(c: &mut Client, id: WebhookId) -> StoreResult<()> {
    let tx = c.transaction().await.map_err(db_err)?;
    tx.execute(
        "DELETE FROM webhook_deliveries WHERE webhook_id = $1",
        &[&id],
    )
    .await
    .map_err(db_err)?;
    let deleted = tx
        .execute("DELETE FROM webhooks WHERE id = $1", &[&id])
        .await
        .map_err(db_err)?;
    if deleted == 0 {
        return Err(not_found(format!("webhook {id}")));
    }
    tx.commit().await.map_err(db_err)
}

/// Inside the caller's transaction (key rotation re-seals tokens and secrets together).
pub(crate) async fn replace_secrets(
    tx: &Transaction<'_>,
    secrets: &[SealedSwap],
) -> StoreResult<()> {
    for swap in secrets {
        let changed = tx
            .execute(
                "UPDATE webhooks SET secret_sealed = $2 WHERE id = $1 AND secret_sealed = $3",
                &[&swap.id, &swap.new, &swap.old],
            )
            .await
            .map_err(db_err)?;
        if changed == 0 {
            return Err(swap.changed("webhook"));
        }
    }
    Ok(())
}

pub(crate) async fn event_progress(c: &impl GenericClient) -> StoreResult<EventProgress> {
    // One statement, so the progress and the statuses come from one snapshot (they are saved
    // together by `enqueue_events`). No status rows leave one row with NULLs.
    let rows = c
        .query(
            "SELECT p.violation_id, p.sync_finished_at, p.sync_run_id, s.integration_id, \
             s.status FROM event_progress p LEFT JOIN event_seen_status s ON true \
             WHERE p.id = 1 ORDER BY s.integration_id",
            &[],
        )
        .await
        .map_err(db_err)?;
    let first = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("event progress row missing".into()))?;
    let mut statuses = Vec::new();
    for r in &rows {
        if let Some(id) = r.at::<Option<i64>>(3)? {
            statuses.push((id, r.at::<String>(4)?));
        }
    }
    Ok(EventProgress {
        violation_id: first.at(0)?,
        sync_finished: (first.at(1)?, first.at(2)?),
        statuses,
    })
}

pub(crate) async fn sync_runs_finished_after(
    c: &mut Client,
    (finished_at, id): (i64, i64),
    limit: u32,
) -> StoreResult<Vec<SyncRun>> {
    c.query(
        &format!(
            "SELECT {SYNC_RUN_COLUMNS} FROM sync_runs WHERE finished_at IS NOT NULL \
             AND (finished_at, id) > ($1, $2) ORDER BY finished_at, id LIMIT $3"
        ),
        &[&finished_at, &id, &i64::from(limit)],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(sync_run_from_row)
    .collect()
}

/// One delivery of `event` to webhook `id`, enabled or not (Send test); its id.
pub(crate) async fn queue_delivery(
    c: &mut Client,
    id: WebhookId,
    event: &OutgoingEvent,
) -> StoreResult<i64> {
    fetch_webhook(&*c, id, false).await?;
    let row = c
        .query_one(
            "INSERT INTO webhook_deliveries (webhook_id, event, body, status, created_at, \
             next_attempt_at) VALUES ($1, $2, $3, 'pending', $4, $4) RETURNING id",
            &[&id, &event.event.as_str(), &event.body, &now_ms()],
        )
        .await
        .map_err(db_err)?;
    row.try_get(0).map_err(db_err)
}

/// Queues a delivery of each event to every enabled webhook subscribed to it (and, for
/// violations, to its severity).
pub(crate) async fn insert_deliveries(
    tx: &Transaction<'_>,
    events: &[OutgoingEvent],
) -> StoreResult<u64> {
    let webhooks: Vec<Webhook> = fetch_webhooks(tx)
        .await?
        .into_iter()
        .filter(|w| w.enabled)
        .collect();
    // Events in order, each to the webhooks by id: deliveries due at once go out in this order.
    let (mut hook_ids, mut names, mut bodies) = (Vec::new(), Vec::new(), Vec::new());
    for event in events {
        for w in &webhooks {
            if event.is_for(w) {
                hook_ids.push(w.id);
                names.push(event.event.as_str());
                bodies.push(event.body.as_str());
            }
        }
    }
    if hook_ids.is_empty() {
        return Ok(0);
    }
    tx.execute(
        "INSERT INTO webhook_deliveries (webhook_id, event, body, status, created_at, \
         next_attempt_at) \
         SELECT d.webhook_id, d.event, d.body, 'pending', $4, $4 \
         FROM UNNEST($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY \
         AS d(webhook_id, event, body, n) ORDER BY d.n",
        &[&hook_ids, &names, &bodies, &now_ms()],
    )
    .await
    .map_err(db_err)
}

pub(crate) async fn enqueue_events(
    c: &mut Client,
    events: &[OutgoingEvent],
    from: &EventProgress,
    progress: &EventProgress,
) -> StoreResult<u64> {
    let tx = c.transaction().await.map_err(db_err)?;
    // Detections on several instances take turns here; one that finds the progress moved
    // since it started queues nothing (the other already queued these events).
    tx.execute("SELECT 1 FROM event_progress WHERE id = 1 FOR UPDATE", &[])
        .await
        .map_err(db_err)?;
    if !event_progress(&tx).await?.same_as(from) {
        return Ok(0);
    }
    let queued = insert_deliveries(&tx, events).await?;
    tx.execute(
        "UPDATE event_progress SET violation_id = $1, sync_finished_at = $2, sync_run_id = $3 \
         WHERE id = 1",
        &[
            &progress.violation_id,
            &progress.sync_finished.0,
            &progress.sync_finished.1,
        ],
    )
    .await
    .map_err(db_err)?;
    tx.execute("DELETE FROM event_seen_status", &[])
        .await
        .map_err(db_err)?;
    if !progress.statuses.is_empty() {
        let (ids, statuses): (Vec<i64>, Vec<&str>) = progress
            .statuses
            .iter()
            .map(|(id, status)| (*id, status.as_str()))
            .unzip();
        tx.execute(
            "INSERT INTO event_seen_status (integration_id, status) \
             SELECT * FROM UNNEST($1::bigint[], $2::text[])",
            &[&ids, &statuses],
        )
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(queued)
}

/// 11 columns, then (in `due_deliveries`) the webhook's from column 11.
const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.event, d.body, d.status, d.attempts, \
     d.response_code, d.error, d.created_at, d.next_attempt_at, d.delivered_at";

fn delivery_from_row(row: &Row) -> StoreResult<Delivery> {
    let event: String = row.at(2)?;
    let status: String = row.at(4)?;
    let (Some(event), Some(status)) = (WebhookEvent::parse(&event), DeliveryStatus::parse(&status))
    else {
        return Err(StoreError::Corrupt(format!(
            "delivery event/status {event:?}/{status:?}"
        )));
    };
    Ok(Delivery {
        id: row.at(0)?,
        webhook_id: row.at(1)?,
        event,
        body: row.at(3)?,
        status,
        attempts: row.at(5)?,
        response_code: row.at(6)?,
        error: row.at(7)?,
        created_at_ms: row.at(8)?,
        next_attempt_at_ms: row.at(9)?,
        delivered_at_ms: row.at(10)?,
    })
}

pub(crate) async fn due_deliveries(
    c: &mut Client,
    now: i64,
    limit: u32,
    claim_until: i64,
) -> StoreResult<Vec<(Delivery, Webhook)>> {
    let tx = c.transaction().await.map_err(db_err)?;
    // SKIP LOCKED: deliveries another instance is claiming right now are left to it.
    let claimed = tx
        .query(
            &format!(
                "SELECT {DELIVERY_COLUMNS}, {W_WEBHOOK_COLUMNS} FROM webhook_deliveries d \
                 JOIN webhooks w ON w.id = d.webhook_id WHERE d.status = 'pending' \
                 AND d.next_attempt_at <= $1 AND w.enabled ORDER BY d.next_attempt_at, d.id \
                 LIMIT $2 FOR UPDATE OF d SKIP LOCKED"
            ),
            &[&now, &i64::from(limit)],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| Ok((delivery_from_row(r)?, webhook_from_row(r, 11)?)))
        .collect::<StoreResult<Vec<_>>>()?;
    let ids: Vec<i64> = claimed.iter().map(|(d, _)| d.id).collect();
    tx.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = ANY($2)",
        &[&claim_until, &ids],
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(claimed)
}

pub(crate) async fn record_delivery(
    c: &mut Client,
    id: i64,
    attempt: &DeliveryAttempt,
    disable_after: i64,
) -> StoreResult<()> {
    let tx = c.transaction().await.map_err(db_err)?;
    let now = now_ms();
    let status = if attempt.succeeded {
        DeliveryStatus::Succeeded
    } else if attempt.retry_at_ms.is_some() {
        DeliveryStatus::Pending
    } else {
        DeliveryStatus::Failed
    };
    let webhook_id: i64 = tx
        .query_opt(
            "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, \
             response_code = $3, error = $4, next_attempt_at = $5, \
             delivered_at = CASE WHEN $6 THEN $7 ELSE delivered_at END \
             WHERE id = $1 RETURNING webhook_id",
            &[
                &id,
                &status.as_str(),
                &attempt.response_code,
                &attempt.error,
                &attempt.retry_at_ms,
                &attempt.succeeded,
                &now,
            ],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("delivery {id}")))?
        .at(0)?;
    match status {
        DeliveryStatus::Succeeded => {
            tx.execute(
                "UPDATE webhooks SET consecutive_failures = 0 WHERE id = $1",
                &[&webhook_id],
            )
            .await
            .map_err(db_err)?;
        }
        DeliveryStatus::Failed => {
            tx.execute(
                "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, \
                 enabled = CASE WHEN consecutive_failures + 1 >= $2 THEN false ELSE enabled END, \
                 disabled_reason = CASE WHEN consecutive_failures + 1 >= $2 \
                   THEN 'disabled after ' || (consecutive_failures + 1)::text \
                        || ' failed deliveries in a row' \
                   ELSE disabled_reason END, updated_at = $3 WHERE id = $1",
                &[&webhook_id, &disable_after, &now],
            )
            .await
            .map_err(db_err)?;
        }
        DeliveryStatus::Pending => {}
    }
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn list_deliveries(
    c: &mut Client,
    webhook_id: WebhookId,
    limit: u32,
) -> StoreResult<Vec<Delivery>> {
    fetch_webhook(&*c, webhook_id, false).await?;
    c.query(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = $1 \
             ORDER BY d.id DESC LIMIT $2"
        ),
        &[&webhook_id, &i64::from(limit)],
    )
    .await
    .map_err(db_err)?
    .iter()
    .map(delivery_from_row)
    .collect()
}
