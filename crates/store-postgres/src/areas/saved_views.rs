//! Saved Trace Explorer views.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use langguard_store::rows::SAVED_VIEW_COLUMNS;
use langguard_store::*;

use crate::records::PgRow;
use crate::{db_err, not_found, now_ms, PgStore};

fn name_conflict(name: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| match db_err(e) {
        StoreError::Conflict { .. } => StoreError::Conflict {
            what: format!("a view of yours named {name:?}"),
        },
        other => other,
    }
}

async fn get_on(client: &impl GenericClient, id: SavedViewId) -> StoreResult<SavedView> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {SAVED_VIEW_COLUMNS} FROM saved_views v JOIN users u ON u.id = v.owner_id \
                 WHERE v.id = $1"
            ),
            &[&id],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("saved view {id}")))?;
    SavedView::from_columns(&PgRow(&row))
}

#[async_trait]
impl SavedViewStore for PgStore {
    async fn create_saved_view(&self, new: NewSavedView) -> StoreResult<SavedView> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO saved_views (name, query, owner_id, shared, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
                &[&new.name, &new.query, &new.owner_id, &new.shared, &now_ms()],
            )
            .await
            .map_err(name_conflict(&new.name))?;
        get_on(&client, row.get(0)).await
    }

    async fn list_saved_views(&self, user_id: i64) -> StoreResult<Vec<SavedView>> {
        let client = self.client().await?;
        client
            .query(
                &format!(
                    "SELECT {SAVED_VIEW_COLUMNS} FROM saved_views v JOIN users u ON u.id = v.owner_id \
                     WHERE v.owner_id = $1 OR v.shared ORDER BY lower(v.name), v.id"
                ),
                &[&user_id],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| SavedView::from_columns(&PgRow(r)))
            .collect()
    }

    async fn get_saved_view(&self, id: SavedViewId) -> StoreResult<SavedView> {
        get_on(&self.client().await?, id).await
    }

    async fn replace_saved_view(
        &self,
        id: SavedViewId,
        view: NewSavedView,
    ) -> StoreResult<SavedView> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE saved_views SET name = $2, query = $3, shared = $4, updated_at = $5 \
                 WHERE id = $1",
                &[&id, &view.name, &view.query, &view.shared, &now_ms()],
            )
            .await
            .map_err(name_conflict(&view.name))?;
        if changed == 0 {
            return Err(not_found(format!("saved view {id}")));
        }
        get_on(&client, id).await
    }

    async fn delete_saved_view(&self, id: SavedViewId) -> StoreResult<()> {
        let client = self.client().await?;
        let deleted = client
            .execute("DELETE FROM saved_views WHERE id = $1", &[&id])
            .await
            .map_err(db_err)?;
        if deleted == 0 {
            return Err(not_found(format!("saved view {id}")));
        }
        Ok(())
    }
}
