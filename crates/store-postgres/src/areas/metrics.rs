//! Figures from the per-minute rollups, per-minute spend, and the admin's model prices.

use async_trait::async_trait;
use langguard_store::*;

use crate::records::RowExt;
use crate::{db_err, not_found, now_ms, PgStore};

#[async_trait]
impl MetricsStore for PgStore {
    async fn metrics(&self, scope: &Scope) -> StoreResult<Metrics> {
        Ok(fold::metrics(&self.fold(scope, None, None).await?))
    }

    async fn metrics_by(&self, scope: &Scope, group_by: GroupBy) -> StoreResult<Vec<GroupMetrics>> {
        Ok(fold::metrics_by(
            self.fold(scope, Some(group_by), None).await?,
        ))
    }

    async fn metrics_series(
        &self,
        scope: &Scope,
        bucket: Bucket,
        group_by: Option<GroupBy>,
    ) -> StoreResult<Vec<Series>> {
        let cells = self.fold(scope, group_by, Some(bucket)).await?;
        Ok(fold::metrics_series(cells, group_by))
    }

    async fn rollup_cells(
        &self,
        scope: &Scope,
        group_by: Option<GroupBy>,
        bucket: Bucket,
    ) -> StoreResult<fold::Cells> {
        self.fold(scope, group_by, Some(bucket)).await
    }

    async fn minute_spend(
        &self,
        integration_id: IntegrationId,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<MinuteSpend>> {
        crate::queries::minute_spend(&mut self.client().await?, integration_id, from_ms, to_ms)
            .await
    }

    async fn list_model_prices(&self) -> StoreResult<Vec<ModelPrice>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT model, input_per_1k, output_per_1k, updated_at FROM model_prices \
                 ORDER BY model COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(ModelPrice {
                    model: r.at(0)?,
                    input_per_1k: r.at(1)?,
                    output_per_1k: r.at(2)?,
                    updated_at_ms: r.at(3)?,
                })
            })
            .collect()
    }

    async fn set_model_price(
        &self,
        model: &str,
        input_per_1k: f64,
        output_per_1k: f64,
    ) -> StoreResult<ModelPrice> {
        let now = now_ms();
        self.client()
            .await?
            .execute(
                "INSERT INTO model_prices (model, input_per_1k, output_per_1k, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (model) DO UPDATE SET \
                 input_per_1k = excluded.input_per_1k, output_per_1k = excluded.output_per_1k, \
                 updated_at = excluded.updated_at",
                &[&model, &input_per_1k, &output_per_1k, &now],
            )
            .await
            .map_err(db_err)?;
        Ok(ModelPrice {
            model: model.to_owned(),
            input_per_1k,
            output_per_1k,
            updated_at_ms: now,
        })
    }

    async fn delete_model_price(&self, model: &str) -> StoreResult<()> {
        let deleted = self
            .client()
            .await?
            .execute("DELETE FROM model_prices WHERE model = $1", &[&model])
            .await
            .map_err(db_err)?;
        if deleted == 0 {
            return Err(not_found(format!("a price for {model:?}")));
        }
        Ok(())
    }
}
