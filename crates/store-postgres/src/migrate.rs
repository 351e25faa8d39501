//! Schema migrations, applied in order at open, each in its own transaction. Instances
//! starting at once take turns (an advisory lock), so each migration runs exactly once.
//! Applied migrations are never edited; changes come as new files.

use deadpool_postgres::Client;
use langguard_store::{StoreError, StoreResult};

use crate::{db_err, now_ms};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (
        2,
        "policy_quarantine",
        include_str!("../migrations/0002_policy_quarantine.sql"),
    ),
    (3, "push", include_str!("../migrations/0003_push.sql")),
    (4, "buckets", include_str!("../migrations/0004_buckets.sql")),
    (
        5,
        "push_history",
        include_str!("../migrations/0005_push_history.sql"),
    ),
    (
        6,
        "trailing_window",
        include_str!("../migrations/0006_trailing_window.sql"),
    ),
    (
        7,
        "coverage",
        include_str!("../migrations/0007_coverage.sql"),
    ),
    (
        8,
        "log_details",
        include_str!("../migrations/0008_log_details.sql"),
    ),
    (9, "alerts", include_str!("../migrations/0009_alerts.sql")),
    (
        10,
        "channels",
        include_str!("../migrations/0010_channels.sql"),
    ),
    (
        11,
        "budgets",
        include_str!("../migrations/0011_budgets.sql"),
    ),
    (
        12,
        "saved views",
        include_str!("../migrations/0012_saved_views.sql"),
    ),
    (13, "people", include_str!("../migrations/0013_people.sql")),
    (
        14,
        "spend anomalies",
        include_str!("../migrations/0014_spend_anomalies.sql"),
    ),
    (
        15,
        "alert rule channels",
        include_str!("../migrations/0015_alert_rule_channels.sql"),
    ),
];

/// Key of the advisory lock migrations run under (any constant no other lock uses).
const MIGRATION_LOCK: i64 = 0x4c47_4d49_4752; // "LGMIGR"

pub(crate) async fn apply(client: &mut Client) -> StoreResult<()> {
    let tx = client.transaction().await.map_err(db_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT   NOT NULL,
             applied_at BIGINT NOT NULL
         )",
    )
    .await
    .map_err(db_err)?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(db_err)?
        .try_get(0)
        .map_err(db_err)?;
    let latest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > latest {
        return Err(StoreError::Invalid(format!(
            "this database has schema version {current}, newer than this LangGuard knows ({latest}); run a newer LangGuard"
        )));
    }
    // All pending migrations in the one transaction that holds the lock: a failure leaves the
    // schema as it was (PostgreSQL's DDL is transactional).
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql).await.map_err(db_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[version, name, &now_ms()],
        )
        .await
        .map_err(db_err)?;
        tracing::info!(version, name, "applied database migration");
    }
    tx.commit().await.map_err(db_err)
}
