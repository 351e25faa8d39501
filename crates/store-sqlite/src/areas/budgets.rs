//! Budgets and the evaluator's record of their groups.

use async_trait::async_trait;
use langguard_store::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

use langguard_store::rows::{
    alert_scope_text, thresholds_text, BUDGET_COLUMNS, BUDGET_GROUP_COLUMNS,
};

use crate::records::SqliteRow;
use crate::{db_err, not_found, now_ms, SqliteStore};

fn budget_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<Budget>> {
    Ok(Budget::from_columns(&SqliteRow(row)))
}

fn group_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<BudgetGroup>> {
    Ok(BudgetGroup::from_columns(&SqliteRow(row)))
}

fn get_on(conn: &Connection, id: BudgetId) -> StoreResult<Budget> {
    conn.query_row(
        &format!("SELECT {BUDGET_COLUMNS} FROM budgets WHERE id = ?1"),
        [id],
        budget_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| not_found(format!("budget {id}")))
}

fn name_conflict(name: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| match db_err(e) {
        StoreError::Conflict { .. } => StoreError::Conflict {
            what: format!("a budget named {name:?}"),
        },
        other => other,
    }
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<StoreResult<T>>>) -> StoreResult<Vec<T>> {
    rows.map(|r| r.map_err(db_err)?).collect()
}

#[async_trait]
impl BudgetStore for SqliteStore {
    async fn create_budget(&self, new: NewBudget) -> StoreResult<Budget> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO budgets (name, amount_usd, period, time_zone, scope, group_by, \
                 thresholds, enabled, created_by, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                params![
                    new.name,
                    new.amount_usd,
                    new.period.as_str(),
                    new.time_zone,
                    alert_scope_text(&new.scope),
                    new.group_by.map(GroupBy::as_str),
                    thresholds_text(&new.thresholds),
                    new.enabled,
                    new.created_by,
                    now_ms()
                ],
            )
            .map_err(name_conflict(&new.name))?;
            get_on(conn, conn.last_insert_rowid())
        })
        .await
    }

    async fn list_budgets(&self) -> StoreResult<Vec<Budget>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {BUDGET_COLUMNS} FROM budgets ORDER BY id"))
                .map_err(db_err)?;
            let rows = stmt.query_map([], budget_from_row).map_err(db_err)?;
            collect(rows)
        })
        .await
    }

    async fn get_budget(&self, id: BudgetId) -> StoreResult<Budget> {
        self.read(move |conn| get_on(conn, id)).await
    }

    async fn replace_budget(&self, id: BudgetId, budget: NewBudget) -> StoreResult<Budget> {
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE budgets SET name = ?2, amount_usd = ?3, period = ?4, time_zone = ?5, \
                     scope = ?6, group_by = ?7, thresholds = ?8, enabled = ?9, updated_at = ?10 \
                     WHERE id = ?1",
                    params![
                        id,
                        budget.name,
                        budget.amount_usd,
                        budget.period.as_str(),
                        budget.time_zone,
                        alert_scope_text(&budget.scope),
                        budget.group_by.map(GroupBy::as_str),
                        thresholds_text(&budget.thresholds),
                        budget.enabled,
                        now_ms()
                    ],
                )
                .map_err(name_conflict(&budget.name))?;
            if changed == 0 {
                return Err(not_found(format!("budget {id}")));
            }
            get_on(conn, id)
        })
        .await
    }

    async fn delete_budget(&self, id: BudgetId) -> StoreResult<()> {
        self.write(move |conn| {
            let deleted = conn
                .execute("DELETE FROM budgets WHERE id = ?1", [id])
                .map_err(db_err)?;
            if deleted == 0 {
                return Err(not_found(format!("budget {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn budget_groups(&self) -> StoreResult<Vec<BudgetGroup>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {BUDGET_GROUP_COLUMNS} FROM budget_groups ORDER BY budget_id, group_key"
                ))
                .map_err(db_err)?;
            let rows = stmt.query_map([], group_from_row).map_err(db_err)?;
            collect(rows)
        })
        .await
    }

    async fn save_budget_groups(
        &self,
        groups: Vec<BudgetGroup>,
        events: Vec<OutgoingEvent>,
    ) -> StoreResult<()> {
        if groups.is_empty() && events.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            {
                let mut save = tx
                    .prepare_cached(
                        "INSERT INTO budget_groups (budget_id, group_key, period_start, spent_usd, \
                         forecast_usd, notified_percent, evaluated_at) \
                         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
                         WHERE EXISTS (SELECT 1 FROM budgets WHERE id = ?1) \
                         ON CONFLICT (budget_id, group_key) DO UPDATE SET \
                         period_start = excluded.period_start, spent_usd = excluded.spent_usd, \
                         forecast_usd = excluded.forecast_usd, \
                         notified_percent = excluded.notified_percent, \
                         evaluated_at = excluded.evaluated_at",
                    )
                    .map_err(db_err)?;
                for g in &groups {
                    save.execute(params![
                        g.budget_id,
                        g.group,
                        g.period_start_ms,
                        g.spent_usd,
                        g.forecast_usd,
                        g.notified_percent,
                        g.evaluated_at_ms
                    ])
                    .map_err(db_err)?;
                }
            }
            crate::webhooks::insert_deliveries(&tx, &events, now_ms())?;
            tx.commit().map_err(db_err)
        })
        .await
    }
}
