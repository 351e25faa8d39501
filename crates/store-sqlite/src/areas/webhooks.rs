//! Webhooks, event detection progress, and the delivery queue.

use async_trait::async_trait;
use langguard_store::*;

use crate::{webhooks, SqliteStore};

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, new: NewWebhook) -> StoreResult<Webhook> {
        self.write(move |conn| webhooks::create_webhook(conn, &new))
            .await
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.read(webhooks::list_webhooks).await
    }

    async fn get_webhook(&self, id: WebhookId) -> StoreResult<Webhook> {
        self.read(move |conn| webhooks::get_webhook(conn, id)).await
    }

    async fn update_webhook(&self, id: WebhookId, patch: WebhookPatch) -> StoreResult<Webhook> {
        self.write(move |conn| webhooks::update_webhook(conn, id, &patch))
            .await
    }

    async fn delete_webhook(&self, id: WebhookId) -> StoreResult<()> {
        self.write(move |conn| webhooks::delete_webhook(conn, id))
            .await
    }

    async fn event_progress(&self) -> StoreResult<EventProgress> {
        self.read(webhooks::event_progress).await
    }

    async fn sync_runs_finished_after(
        &self,
        after: (i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<SyncRun>> {
        self.read(move |conn| webhooks::sync_runs_finished_after(conn, after, limit))
            .await
    }

    async fn enqueue_events(
        &self,
        events: Vec<OutgoingEvent>,
        from: EventProgress,
        progress: EventProgress,
    ) -> StoreResult<u64> {
        self.write(move |conn| webhooks::enqueue_events(conn, &events, &from, &progress))
            .await
    }

    async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
        claim_until_ms: i64,
    ) -> StoreResult<Vec<(Delivery, Webhook)>> {
        self.write(move |conn| webhooks::due_deliveries(conn, now_ms, limit, claim_until_ms))
            .await
    }

    async fn queue_delivery(&self, id: WebhookId, event: OutgoingEvent) -> StoreResult<i64> {
        self.write(move |conn| webhooks::queue_delivery(conn, id, &event))
            .await
    }

    async fn record_delivery(
        &self,
        id: i64,
        attempt: DeliveryAttempt,
        disable_after: i64,
    ) -> StoreResult<()> {
        self.write(move |conn| webhooks::record_delivery(conn, id, &attempt, disable_after))
            .await
    }

    async fn list_deliveries(
        &self,
        webhook_id: WebhookId,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        self.read(move |conn| webhooks::list_deliveries(conn, webhook_id, limit))
            .await
    }
}
