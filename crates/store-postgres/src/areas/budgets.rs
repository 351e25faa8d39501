//! Budgets and the evaluator's record of their groups.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use langguard_store::rows::{
    alert_scope_text, thresholds_text, BUDGET_COLUMNS, BUDGET_GROUP_COLUMNS,
};
use langguard_store::*;

use crate::records::PgRow;
use crate::{db_err, not_found, now_ms, PgStore};

fn name_conflict(name: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| match db_err(e) {
        StoreError::Conflict { .. } => StoreError::Conflict {
            what: format!("a budget named {name:?}"),
        },
        other => other,
    }
}

async fn get_on(client: &impl GenericClient, id: BudgetId) -> StoreResult<Budget> {
    let row = client
        .query_opt(
            &format!("SELECT {BUDGET_COLUMNS} FROM budgets WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("budget {id}")))?;
    Budget::from_columns(&PgRow(&row))
}

#[async_trait]
impl BudgetStore for PgStore {
    async fn create_budget(&self, new: NewBudget) -> StoreResult<Budget> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO budgets (name, amount_usd, period, time_zone, scope, group_by, \
                     thresholds, enabled, created_by, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                     RETURNING {BUDGET_COLUMNS}"
                ),
                &[
                    &new.name,
                    &new.amount_usd,
                    &new.period.as_str(),
                    &new.time_zone,
                    &alert_scope_text(&new.scope),
                    &new.group_by.map(GroupBy::as_str),
                    &thresholds_text(&new.thresholds),
                    &new.enabled,
                    &new.created_by,
                    &now_ms(),
                ],
            )
            .await
            .map_err(name_conflict(&new.name))?;
        Budget::from_columns(&PgRow(&row))
    }

    async fn list_budgets(&self) -> StoreResult<Vec<Budget>> {
        let client = self.client().await?;
        client
            .query(
                &format!("SELECT {BUDGET_COLUMNS} FROM budgets ORDER BY id"),
                &[],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| Budget::from_columns(&PgRow(r)))
            .collect()
    }

    async fn get_budget(&self, id: BudgetId) -> StoreResult<Budget> {
        get_on(&self.client().await?, id).await
    }

    async fn replace_budget(&self, id: BudgetId, budget: NewBudget) -> StoreResult<Budget> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE budgets SET name = $2, amount_usd = $3, period = $4, time_zone = $5, \
                     scope = $6, group_by = $7, thresholds = $8, enabled = $9, updated_at = $10 \
                     WHERE id = $1 RETURNING {BUDGET_COLUMNS}"
                ),
                &[
                    &id,
                    &budget.name,
                    &budget.amount_usd,
                    &budget.period.as_str(),
                    &budget.time_zone,
                    &alert_scope_text(&budget.scope),
                    &budget.group_by.map(GroupBy::as_str),
                    &thresholds_text(&budget.thresholds),
                    &budget.enabled,
                    &now_ms(),
                ],
            )
            .await
            .map_err(name_conflict(&budget.name))?
            .ok_or_else(|| not_found(format!("budget {id}")))?;
        Budget::from_columns(&PgRow(&row))
    }

    async fn delete_budget(&self, id: BudgetId) -> StoreResult<()> {
        let client = self.client().await?;
        let deleted = client
            .execute("DELETE FROM budgets WHERE id = $1", &[&id])
            .await
            .map_err(db_err)?;
        if deleted == 0 {
            return Err(not_found(format!("budget {id}")));
        }
        Ok(())
    }

    async fn budget_groups(&self) -> StoreResult<Vec<BudgetGroup>> {
        let client = self.client().await?;
        client
            .query(
                &format!(
                    "SELECT {BUDGET_GROUP_COLUMNS} FROM budget_groups ORDER BY budget_id, group_key"
                ),
                &[],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| BudgetGroup::from_columns(&PgRow(r)))
            .collect()
    }

    async fn save_budget_groups(
        &self,
        groups: Vec<BudgetGroup>,
        events: Vec<OutgoingEvent>,
    ) -> StoreResult<()> {
        if groups.is_empty() && events.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        // Every group is saved each minute: one statement for all of them.
        let ids: Vec<i64> = groups.iter().map(|g| g.budget_id).collect();
        let keys: Vec<&str> = groups.iter().map(|g| g.group.as_str()).collect();
        let starts: Vec<i64> = groups.iter().map(|g| g.period_start_ms).collect();
        let spent: Vec<f64> = groups.iter().map(|g| g.spent_usd).collect();
        let forecast: Vec<f64> = groups.iter().map(|g| g.forecast_usd).collect();
        let notified: Vec<i64> = groups
            .iter()
            .map(|g| i64::from(g.notified_percent))
            .collect();
        let evaluated: Vec<i64> = groups.iter().map(|g| g.evaluated_at_ms).collect();
        tx.execute(
            "INSERT INTO budget_groups (budget_id, group_key, period_start, spent_usd, \
             forecast_usd, notified_percent, evaluated_at) \
             SELECT u.* FROM unnest($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::FLOAT8[], \
             $5::FLOAT8[], $6::BIGINT[], $7::BIGINT[]) \
             AS u(budget_id, group_key, period_start, spent_usd, forecast_usd, notified_percent, \
             evaluated_at) \
             WHERE EXISTS (SELECT 1 FROM budgets b WHERE b.id = u.budget_id) \
             ON CONFLICT (budget_id, group_key) DO UPDATE SET \
             period_start = excluded.period_start, spent_usd = excluded.spent_usd, \
             forecast_usd = excluded.forecast_usd, notified_percent = excluded.notified_percent, \
             evaluated_at = excluded.evaluated_at",
            &[
                &ids, &keys, &starts, &spent, &forecast, &notified, &evaluated,
            ],
        )
        .await
        .map_err(db_err)?;
        crate::webhooks::insert_deliveries(&tx, &events).await?;
        tx.commit().await.map_err(db_err)
    }
}
