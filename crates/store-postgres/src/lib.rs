//! The PostgreSQL backend of [`Store`], for companies that run several LangGuard instances
//! on one database: every piece of state (sessions, cursors, leases, the policy worker's and
//! the webhook dispatcher's progress) lives in the database, so any instance serves any
//! request and background work is shared through leases.
//!
//! Built on tokio-postgres with a deadpool pool. Queries are the SQLite backend's, in
//! PostgreSQL's dialect, and answer identically (the store and API test suites run against
//! both). Where PostgreSQL's concurrency differs from SQLite's single writer, it is said
//! where it matters: rows whose ids feed a cursor are inserted under an advisory lock, so ids
//! become visible in order and no cursor skips a row committed late.

mod access;
mod areas;
mod bodies;
mod conditions;
mod governance;
mod ingest;
mod leases;
mod migrate;
mod queries;
mod records;
mod runs;
pub mod testing;
mod traces;
mod users;
mod webhooks;

use std::time::Duration;

use deadpool_postgres::{Client, Manager, ManagerConfig, Pool, RecyclingMethod};
use langguard_store::*;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

/// Advisory lock keys (`pg_advisory_xact_lock`). Each serialises the inserts whose ids a
/// cursor follows, so an id is never committed after a larger one was read.
pub(crate) mod locks {
    /// Interactions (the policy worker's and trace snapshots' cursor).
    pub const INTERACTIONS: i64 = 0x4c47_0001;
    /// Violations (webhook event detection's cursor).
    pub const VIOLATIONS: i64 = 0x4c47_0002;
    /// Finished sync runs (`(finished_at, id)`, webhook event detection).
    pub const RUN_FINISH: i64 = 0x4c47_0003;
}

/// The database's clock in Unix milliseconds: instances' clocks needn't agree for leases and
/// finish times to order correctly.
pub(crate) const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// A finishing run's time: now by the database's clock, but always after every run finished
/// before it (two in one millisecond, or a clock step back), so the `(finished_at, id)` order
/// webhook detection follows is the order runs finished in. Used under `locks::RUN_FINISH`.
pub(crate) const FINISHED_AT: &str =
    "GREATEST((extract(epoch FROM clock_timestamp()) * 1000)::bigint, \
     (SELECT COALESCE(MAX(finished_at), 0) + 1 FROM sync_runs))";

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// A connection of its own for lease renewals: a busy query pool (dashboards, a long
    /// export) must never make this instance miss a renewal and lose its sync to another.
    lease_pool: Pool,
    /// The URL without its password, for messages.
    display_url: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.display_url)
            .finish()
    }
}

pub(crate) fn db_err(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        return StoreError::Conflict {
            what: e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
        };
    }
    StoreError::Database(Box::new(e))
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Database(format!("no database connection: {e}").into())
}

pub(crate) use langguard_clock::now_ms;

pub(crate) fn not_found(what: String) -> StoreError {
    StoreError::NotFound { what }
}

/// Connections per instance, opened as needed: queries run concurrently (dashboard folds
/// split in two, the policy worker, the dispatcher, request handlers), and PostgreSQL's
/// default of 100 connections leaves room for several instances. `LANGGUARD_DB_POOL_SIZE`
/// changes it.
fn pool_size() -> usize {
    std::env::var("LANGGUARD_DB_POOL_SIZE")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or(16)
}

impl PgStore {
    /// Connects to a `postgres://` URL and applies pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Invalid(format!(
                "LANGGUARD_DATABASE_URL is not a PostgreSQL URL ({e}); expected postgres://user:password@host:5432/database"
            ))
        })?;
        let display_url = redact(url);
        let build = |size: usize| {
            let manager = Manager::from_config(
                config.clone(),
                NoTls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            Pool::builder(manager)
                .max_size(size)
                .wait_timeout(Some(Duration::from_secs(30)))
                .create_timeout(Some(Duration::from_secs(10)))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(|e| StoreError::Invalid(format!("cannot set up the connection pool: {e}")))
        };
        let store = Self {
            pool: build(pool_size())?,
            lease_pool: build(1)?,
            display_url,
        };
        let mut client = store.pool.get().await.map_err(|e| {
            StoreError::Database(
                format!(
                    "cannot connect to {}: {e}; check that PostgreSQL runs there and the URL's user, password and database are right",
                    store.display_url
                )
                .into(),
            )
        })?;
        migrate::apply(&mut client).await?;
        Ok(store)
    }

    /// The URL with its password replaced, fit for logs.
    pub fn display_url(&self) -> &str {
        &self.display_url
    }

    pub(crate) async fn client(&self) -> StoreResult<Client> {
        self.pool.get().await.map_err(pool_err)
    }

    async fn lease_client(&self) -> StoreResult<Client> {
        self.lease_pool.get().await.map_err(pool_err)
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.pool.close();
        self.lease_pool.close();
    }

    /// Folds the rollups of `scope` into cells; a range of more than a day is folded as two
    /// halves on two connections at once (as the SQLite backend does, for the same reason).
    async fn fold(
        &self,
        scope: &Scope,
        group_by: Option<GroupBy>,
        bucket: Option<Bucket>,
    ) -> StoreResult<fold::Cells> {
        let Some((early, late)) = fold::fold_split(scope) else {
            let client = self.client().await?;
            return queries::fold(&client, scope, group_by, bucket).await;
        };
        let a = self.client().await?;
        // A second connection only when the pool has one to spare: requests each holding one
        // while waiting for another could otherwise exhaust the pool between them.
        let status = self.pool.status();
        if status.available == 0 && status.size >= status.max_size {
            let mut cells = queries::fold(&a, &early, group_by, bucket).await?;
            fold::merge_cells(
                &mut cells,
                queries::fold(&a, &late, group_by, bucket).await?,
            );
            return Ok(cells);
        }
        let b = self.client().await?;
        let (mut cells, late) = tokio::try_join!(
            queries::fold(&a, &early, group_by, bucket),
            queries::fold(&b, &late, group_by, bucket),
        )?;
        fold::merge_cells(&mut cells, late);
        Ok(cells)
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "the PostgreSQL database".to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://lg:s3cret@db.internal:5432/langguard"),
            "postgres://lg:***@db.internal:5432/langguard"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(redact("host=db password=x"), "the PostgreSQL database");
    }
}
