//! Webhooks, event detection progress, and the delivery queue.

use async_trait::async_trait;
use langguard_store::*;

use crate::{webhooks, PgStore};

#[async_trait]
impl WebhookStore for PgStore {
    async fn create_webhook(&self, new: NewWebhook) -> StoreResult<Webhook> {
        webhooks::create_webhook(&mut self.client().await?, &new).await
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        webhooks::list_webhooks(&mut self.client().await?).await
    }

    async fn get_webhook(&self, id: WebhookId) -> StoreResult<Webhook> {
        webhooks::get_webhook(&mut self.client().await?, id).await
    }

    async fn update_webhook(&self, id: WebhookId, patch: WebhookPatch) -> StoreResult<Webhook> {
        webhooks::update_webhook(&mut self.client().await?, id, &patch).await
    }

    async fn delete_webhook(&self, id: WebhookId) -> StoreResult<()> {
        webhooks::delete_webhook(&mut self.client().await?, id).await
    }

    async fn event_progress(&self) -> StoreResult<EventProgress> {
        webhooks::event_progress(&self.client().await?).await
    }

    async fn sync_runs_finished_after(
        &self,
        after: (i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<SyncRun>> {
        webhooks::sync_runs_finished_after(&mut self.client().await?, after, limit).await
    }

    async fn enqueue_events(
        &self,
        events: Vec<OutgoingEvent>,
        from: EventProgress,
        progress: EventProgress,
    ) -> StoreResult<u64> {
        webhooks::enqueue_events(&mut self.client().await?, &events, &from, &progress).await
    }

    async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
        claim_until_ms: i64,
    ) -> StoreResult<Vec<(Delivery, Webhook)>> {
        webhooks::due_deliveries(&mut self.client().await?, now_ms, limit, claim_until_ms).await
    }

    async fn queue_delivery(&self, id: WebhookId, event: OutgoingEvent) -> StoreResult<i64> {
        webhooks::queue_delivery(&mut self.client().await?, id, &event).await
    }

    async fn record_delivery(
        &self,
        id: i64,
        attempt: DeliveryAttempt,
        disable_after: i64,
    ) -> StoreResult<()> {
        webhooks::record_delivery(&mut self.client().await?, id, &attempt, disable_after).await
    }

    async fn list_deliveries(
        &self,
        webhook_id: WebhookId,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        webhooks::list_deliveries(&mut self.client().await?, webhook_id, limit).await
    }
}
