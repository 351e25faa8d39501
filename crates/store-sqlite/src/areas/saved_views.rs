//! Saved Trace Explorer views.

use async_trait::async_trait;
use langguard_store::rows::SAVED_VIEW_COLUMNS;
use langguard_store::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::records::SqliteRow;
use crate::{db_err, not_found, now_ms, SqliteStore};

fn from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<SavedView>> {
    Ok(SavedView::from_columns(&SqliteRow(row)))
}

fn get_on(conn: &Connection, id: SavedViewId) -> StoreResult<SavedView> {
    conn.query_row(
        &format!(
            "SELECT {SAVED_VIEW_COLUMNS} FROM saved_views v JOIN users u ON u.id = v.owner_id \
             WHERE v.id = ?1"
        ),
        [id],
        from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| not_found(format!("saved view {id}")))
}

fn name_conflict(name: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| match db_err(e) {
        StoreError::Conflict { .. } => StoreError::Conflict {
            what: format!("a view of yours named {name:?}"),
        },
        other => other,
    }
}

#[async_trait]
impl SavedViewStore for SqliteStore {
    async fn create_saved_view(&self, new: NewSavedView) -> StoreResult<SavedView> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO saved_views (name, query, owner_id, shared, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![new.name, new.query, new.owner_id, new.shared, now_ms()],
            )
            .map_err(name_conflict(&new.name))?;
            get_on(conn, conn.last_insert_rowid())
        })
        .await
    }

    async fn list_saved_views(&self, user_id: i64) -> StoreResult<Vec<SavedView>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SAVED_VIEW_COLUMNS} FROM saved_views v JOIN users u ON u.id = v.owner_id \
                     WHERE v.owner_id = ?1 OR v.shared = 1 ORDER BY v.name COLLATE NOCASE, v.id"
                ))
                .map_err(db_err)?;
            let rows = stmt.query_map([user_id], from_row).map_err(db_err)?;
            rows.map(|r| r.map_err(db_err)?).collect()
        })
        .await
    }

    async fn get_saved_view(&self, id: SavedViewId) -> StoreResult<SavedView> {
        self.read(move |conn| get_on(conn, id)).await
    }

    async fn replace_saved_view(
        &self,
        id: SavedViewId,
        view: NewSavedView,
    ) -> StoreResult<SavedView> {
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE saved_views SET name = ?2, query = ?3, shared = ?4, updated_at = ?5 \
                     WHERE id = ?1",
                    params![id, view.name, view.query, view.shared, now_ms()],
                )
                .map_err(name_conflict(&view.name))?;
            if changed == 0 {
                return Err(not_found(format!("saved view {id}")));
            }
            get_on(conn, id)
        })
        .await
    }

    async fn delete_saved_view(&self, id: SavedViewId) -> StoreResult<()> {
        self.write(move |conn| {
            let deleted = conn
                .execute("DELETE FROM saved_views WHERE id = ?1", [id])
                .map_err(db_err)?;
            if deleted == 0 {
                return Err(not_found(format!("saved view {id}")));
            }
            Ok(())
        })
        .await
    }
}
