//! Reading interactions: one, a page, an export, the policy worker's feed, their bodies.

use async_trait::async_trait;
use langguard_store::*;

use crate::{connection, queries, traces, SqliteStore};

#[async_trait]
impl TraceStore for SqliteStore {
    async fn get_interaction(&self, id: i64) -> StoreResult<Interaction> {
        self.read(move |conn| queries::get_interaction(conn, id))
            .await
    }

    async fn traces(&self, query: &TraceQuery) -> StoreResult<TracePage> {
        let query = query.clone();
        self.read(move |conn| traces::traces(conn, &query)).await
    }

    fn export_traces(
        &self,
        filter: TraceFilter,
        sort: TraceSort,
        order: SortOrder,
    ) -> tokio::sync::mpsc::Receiver<StoreResult<Vec<Interaction>>> {
        // A few batches in flight: the reader stays ahead of the writer without the export
        // ever holding much more than one batch per slot.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let path = self.inner.path.clone();
        // Its own connection, so a long export never holds one the dashboard's queries need.
        tokio::task::spawn_blocking(move || match connection::open_reader(&path) {
            Ok(conn) => traces::export(&conn, &filter, sort, order, &tx),
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
            }
        });
        rx
    }

    async fn count_interactions(&self, scope: &Scope) -> StoreResult<u64> {
        let scope = scope.clone();
        self.read(move |conn| queries::count_interactions(conn, &scope))
            .await
    }

    async fn bodies(
        &self,
        interaction_ids: Vec<i64>,
    ) -> StoreResult<std::collections::HashMap<i64, Bodies>> {
        self.read(move |conn| crate::bodies::bodies(conn, &interaction_ids))
            .await
    }

    async fn interactions_after(&self, after_id: i64, limit: u32) -> StoreResult<Vec<Interaction>> {
        self.read(move |conn| crate::queries::interactions_after(conn, after_id, limit))
            .await
    }
}
