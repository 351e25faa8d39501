//! Object-store buckets Logpush files are imported from, and the files imported.

use async_trait::async_trait;
use langguard_store::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{db_err, not_found, now_ms, SqliteStore};

const BUCKET_COLUMNS: &str = "id, integration_id, endpoint, bucket, prefix, region, \
     access_key_id, secret_sealed, enabled, created_at, last_listed_at, last_error, \
     files_imported, records_imported";

fn bucket_from_row(row: &Row<'_>) -> rusqlite::Result<PushBucket> {
    Ok(PushBucket {
        id: row.get(0)?,
        integration_id: row.get(1)?,
        endpoint: row.get(2)?,
        bucket: row.get(3)?,
        prefix: row.get(4)?,
        region: row.get(5)?,
        access_key_id: row.get(6)?,
        sealed_secret: row.get(7)?,
        enabled: row.get(8)?,
        created_at_ms: row.get(9)?,
        last_listed_at_ms: row.get(10)?,
        last_error: row.get(11)?,
        files_imported: row.get(12)?,
        records_imported: row.get(13)?,
    })
}

fn get_bucket_on(conn: &Connection, id: BucketId) -> StoreResult<PushBucket> {
    conn.query_row(
        &format!("SELECT {BUCKET_COLUMNS} FROM push_buckets WHERE id = ?1"),
        [id],
        bucket_from_row,
    )
    .optional()
    .map_err(db_err)?
    .ok_or_else(|| not_found(format!("bucket {id}")))
}

/// Re-seals bucket secrets (key rotation), each only if unchanged since it was read.
pub(crate) fn replace_secrets(
    tx: &rusqlite::Transaction<'_>,
    swaps: &[SealedSwap],
) -> StoreResult<()> {
    for swap in swaps {
        let changed = tx
            .execute(
                "UPDATE push_buckets SET secret_sealed = ?1 WHERE id = ?2 AND secret_sealed = ?3",
                params![swap.new, swap.id, swap.old],
            )
            .map_err(db_err)?;
        if changed == 0 {
            return Err(swap.changed("bucket"));
        }
    }
    Ok(())
}

#[async_trait]
impl BucketStore for SqliteStore {
    async fn create_bucket(&self, new: NewPushBucket) -> StoreResult<PushBucket> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            tx.execute(
                "INSERT INTO push_buckets (integration_id, endpoint, bucket, prefix, region, \
                 access_key_id, secret_sealed, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, X'', ?7)",
                params![
                    new.integration_id,
                    new.endpoint,
                    new.bucket,
                    new.prefix,
                    new.region,
                    new.access_key_id,
                    now_ms()
                ],
            )
            .map_err(db_err)?;
            // Sealed for this row's id, in the transaction that made it.
            let id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE push_buckets SET secret_sealed = ?2 WHERE id = ?1",
                params![id, new.secret_access_key.seal(id)],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            get_bucket_on(conn, id)
        })
        .await
    }

    async fn list_buckets(
        &self,
        integration: Option<IntegrationId>,
    ) -> StoreResult<Vec<PushBucket>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {BUCKET_COLUMNS} FROM push_buckets \
                     WHERE ?1 IS NULL OR integration_id = ?1 ORDER BY id"
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map([integration], bucket_from_row)
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn get_bucket(&self, id: BucketId) -> StoreResult<PushBucket> {
        self.read(move |conn| get_bucket_on(conn, id)).await
    }

    async fn delete_bucket(&self, id: BucketId) -> StoreResult<()> {
        self.write(move |conn| {
            let deleted = conn
                .execute("DELETE FROM push_buckets WHERE id = ?1", [id])
                .map_err(db_err)?;
            if deleted == 0 {
                return Err(not_found(format!("bucket {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn imported_object_keys(&self, id: BucketId) -> StoreResult<Vec<String>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare("SELECT object_key FROM push_bucket_objects WHERE bucket_id = ?1")
                .map_err(db_err)?;
            let rows = stmt.query_map([id], |r| r.get(0)).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn recent_imported_objects(
        &self,
        id: BucketId,
        limit: u32,
    ) -> StoreResult<Vec<ImportedObject>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT object_key, records, error, imported_at FROM push_bucket_objects \
                     WHERE bucket_id = ?1 ORDER BY imported_at DESC, object_key DESC LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![id, limit], |r| {
                    Ok(ImportedObject {
                        key: r.get(0)?,
                        records: r.get(1)?,
                        error: r.get(2)?,
                        imported_at_ms: r.get(3)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn record_imported_object(
        &self,
        id: BucketId,
        object: ImportedObject,
    ) -> StoreResult<bool> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            let added = tx
                .execute(
                    "INSERT INTO push_bucket_objects (bucket_id, object_key, records, error, \
                     imported_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![
                        id,
                        object.key,
                        object.records,
                        object.error,
                        object.imported_at_ms
                    ],
                )
                .map_err(db_err)?;
            if added > 0 {
                tx.execute(
                    "UPDATE push_buckets SET files_imported = files_imported + 1, \
                     records_imported = records_imported + ?2 WHERE id = ?1",
                    params![id, object.records],
                )
                .map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(added > 0)
        })
        .await
    }

    async fn set_bucket_listed(
        &self,
        id: BucketId,
        at_ms: i64,
        error: Option<String>,
    ) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE push_buckets SET last_listed_at = ?2, last_error = ?3 WHERE id = ?1",
                params![id, at_ms, error],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}
