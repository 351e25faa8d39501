//! Reading interactions: one, a page, an export, the policy worker's feed, their bodies.

use async_trait::async_trait;
use langguard_store::*;

use crate::{queries, traces, PgStore};

#[async_trait]
impl TraceStore for PgStore {
    async fn get_interaction(&self, id: i64) -> StoreResult<Interaction> {
        queries::get_interaction(&self.client().await?, id).await
    }

    async fn traces(&self, query: &TraceQuery) -> StoreResult<TracePage> {
        traces::traces(&self.client().await?, query).await
    }

    fn export_traces(
        &self,
        filter: TraceFilter,
        sort: TraceSort,
        order: SortOrder,
    ) -> tokio::sync::mpsc::Receiver<StoreResult<Vec<Interaction>>> {
        // A few batches in flight, as in the SQLite backend.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let store = self.clone();
        tokio::spawn(async move {
            let result = async {
                let mut client = store.client().await?;
                traces::export(&mut client, &filter, sort, order, &tx).await
            }
            .await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }

    async fn count_interactions(&self, scope: &Scope) -> StoreResult<u64> {
        queries::count_interactions(&self.client().await?, scope).await
    }

    async fn bodies(
        &self,
        interaction_ids: Vec<i64>,
    ) -> StoreResult<std::collections::HashMap<i64, Bodies>> {
        crate::bodies::bodies(&mut self.client().await?, &interaction_ids).await
    }

    async fn interactions_after(&self, after_id: i64, limit: u32) -> StoreResult<Vec<Interaction>> {
        crate::queries::interactions_after(&mut self.client().await?, after_id, limit).await
    }
}
