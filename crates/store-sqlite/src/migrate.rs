//! Schema migrations, applied in order at open, each in its own transaction. Applied
//! migrations are never edited; changes come as new files.

use langguard_store::{StoreError, StoreResult};
use rusqlite::{params, Connection};

use crate::{db_err, now_ms};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "users", include_str!("../migrations/0002_users.sql")),
    (
        3,
        "policies",
        include_str!("../migrations/0003_policies.sql"),
    ),
    (
        4,
        "webhooks",
        include_str!("../migrations/0004_webhooks.sql"),
    ),
    (5, "bodies", include_str!("../migrations/0005_bodies.sql")),
    (6, "prices", include_str!("../migrations/0006_prices.sql")),
    (7, "leases", include_str!("../migrations/0007_leases.sql")),
    (
        8,
        "login_attempts",
        include_str!("../migrations/0008_login_attempts.sql"),
    ),
    (
        9,
        "policy_quarantine",
        include_str!("../migrations/0009_policy_quarantine.sql"),
    ),
    (10, "push", include_str!("../migrations/0010_push.sql")),
    (
        11,
        "buckets",
        include_str!("../migrations/0011_buckets.sql"),
    ),
    (
        12,
        "push_history",
        include_str!("../migrations/0012_push_history.sql"),
    ),
    (
        13,
        "trailing_window",
        include_str!("../migrations/0013_trailing_window.sql"),
    ),
    (
        14,
        "coverage",
        include_str!("../migrations/0014_coverage.sql"),
    ),
    (
        15,
        "log_details",
        include_str!("../migrations/0015_log_details.sql"),
    ),
    (16, "alerts", include_str!("../migrations/0016_alerts.sql")),
    (
        17,
        "channels",
        include_str!("../migrations/0017_channels.sql"),
    ),
    (
        18,
        "budgets",
        include_str!("../migrations/0018_budgets.sql"),
    ),
    (
        19,
        "saved views",
        include_str!("../migrations/0019_saved_views.sql"),
    ),
    (20, "people", include_str!("../migrations/0020_people.sql")),
    (
        21,
        "spend anomalies",
        include_str!("../migrations/0021_spend_anomalies.sql"),
    ),
    (
        22,
        "alert rule channels",
        include_str!("../migrations/0022_alert_rule_channels.sql"),
    ),
];

pub(crate) fn apply(conn: &mut Connection) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT    NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(db_err)?;
    let current: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let latest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > latest {
        return Err(StoreError::Invalid(format!(
            "this database has schema version {current}, newer than this LangGuard knows ({latest}); run a newer LangGuard"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_err)?;
        tx.execute_batch(sql).map_err(db_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, now_ms()],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        tracing::info!(version, name, "applied database migration");
    }
    Ok(())
}
