//! Object-store buckets Logpush files are imported from, and the files imported.

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use langguard_store::*;
use tokio_postgres::Row;

use crate::records::RowExt;
use crate::{db_err, not_found, now_ms, PgStore};

const BUCKET_COLUMNS: &str = "id, integration_id, endpoint, bucket, prefix, region, \
     access_key_id, secret_sealed, enabled, created_at, last_listed_at, last_error, \
     files_imported, records_imported";

fn bucket_from_row(row: &Row) -> StoreResult<PushBucket> {
    Ok(PushBucket {
        id: row.at(0)?,
        integration_id: row.at(1)?,
        endpoint: row.at(2)?,
        bucket: row.at(3)?,
        prefix: row.at(4)?,
        region: row.at(5)?,
        access_key_id: row.at(6)?,
        sealed_secret: row.at(7)?,
        enabled: row.at(8)?,
        created_at_ms: row.at(9)?,
        last_listed_at_ms: row.at(10)?,
        last_error: row.at(11)?,
        files_imported: row.at(12)?,
        records_imported: row.at(13)?,
    })
}

/// Re-seals bucket secrets (key rotation), each only if unchanged since it was read.
pub(crate) async fn replace_secrets(tx: &Transaction<'_>, swaps: &[SealedSwap]) -> StoreResult<()> {
    for swap in swaps {
        let changed = tx
            .execute(
                "UPDATE push_buckets SET secret_sealed = $1 WHERE id = $2 AND secret_sealed = $3",
                &[&swap.new, &swap.id, &swap.old],
            )
            .await
            .map_err(db_err)?;
        if changed == 0 {
            return Err(swap.changed("bucket"));
        }
    }
    Ok(())
}

#[async_trait]
impl BucketStore for PgStore {
    async fn create_bucket(&self, new: NewPushBucket) -> StoreResult<PushBucket> {
        let client = self.client().await?;
        // The id first, so the secret is sealed for its row before the row exists.
        let id: i64 = client
            .query_one(
                "SELECT nextval(pg_get_serial_sequence('push_buckets', 'id'))",
                &[],
            )
            .await
            .map_err(db_err)?
            .try_get(0)
            .map_err(db_err)?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO push_buckets (id, integration_id, endpoint, bucket, prefix, \
                     region, access_key_id, secret_sealed, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {BUCKET_COLUMNS}"
                ),
                &[
                    &id,
                    &new.integration_id,
                    &new.endpoint,
                    &new.bucket,
                    &new.prefix,
                    &new.region,
                    &new.access_key_id,
                    &new.secret_access_key.seal(id),
                    &now_ms(),
                ],
            )
            .await
            .map_err(db_err)?;
        bucket_from_row(&row)
    }

    async fn list_buckets(
        &self,
        integration: Option<IntegrationId>,
    ) -> StoreResult<Vec<PushBucket>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {BUCKET_COLUMNS} FROM push_buckets \
                     WHERE $1::BIGINT IS NULL OR integration_id = $1 ORDER BY id"
                ),
                &[&integration],
            )
            .await
            .map_err(db_err)?;
        rows.iter().map(bucket_from_row).collect()
    }

    async fn get_bucket(&self, id: BucketId) -> StoreResult<PushBucket> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {BUCKET_COLUMNS} FROM push_buckets WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(db_err)?
            .ok_or_else(|| not_found(format!("bucket {id}")))?;
        bucket_from_row(&row)
    }

    async fn delete_bucket(&self, id: BucketId) -> StoreResult<()> {
        let deleted = self
            .client()
            .await?
            .execute("DELETE FROM push_buckets WHERE id = $1", &[&id])
            .await
            .map_err(db_err)?;
        if deleted == 0 {
            return Err(not_found(format!("bucket {id}")));
        }
        Ok(())
    }

    async fn imported_object_keys(&self, id: BucketId) -> StoreResult<Vec<String>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT object_key FROM push_bucket_objects WHERE bucket_id = $1",
                &[&id],
            )
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| r.at(0)).collect()
    }

    async fn recent_imported_objects(
        &self,
        id: BucketId,
        limit: u32,
    ) -> StoreResult<Vec<ImportedObject>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT object_key, records, error, imported_at FROM push_bucket_objects \
                 WHERE bucket_id = $1 ORDER BY imported_at DESC, object_key DESC LIMIT $2",
                &[&id, &i64::from(limit)],
            )
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(ImportedObject {
                    key: r.at(0)?,
                    records: r.at(1)?,
                    error: r.at(2)?,
                    imported_at_ms: r.at(3)?,
                })
            })
            .collect()
    }

    async fn record_imported_object(
        &self,
        id: BucketId,
        object: ImportedObject,
    ) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let added = tx
            .execute(
                "INSERT INTO push_bucket_objects (bucket_id, object_key, records, error, \
                 imported_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    &id,
                    &object.key,
                    &object.records,
                    &object.error,
                    &object.imported_at_ms,
                ],
            )
            .await
            .map_err(db_err)?;
        if added > 0 {
            tx.execute(
                "UPDATE push_buckets SET files_imported = files_imported + 1, \
                 records_imported = records_imported + $2 WHERE id = $1",
                &[&id, &object.records],
            )
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(added > 0)
    }

    async fn set_bucket_listed(
        &self,
        id: BucketId,
        at_ms: i64,
        error: Option<String>,
    ) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "UPDATE push_buckets SET last_listed_at = $2, last_error = $3 WHERE id = $1",
                &[&id, &at_ms, &error],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
