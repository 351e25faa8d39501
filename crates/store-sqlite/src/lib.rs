//! The embedded SQLite backend of [`Store`], on rusqlite: WAL mode, migrations applied at open,
//! one writer connection (SQLite has one writer anyway; one connection turns lock contention
//! into an orderly queue) and a small pool of read-only connections for queries. Blocking
//! SQLite calls run on tokio's blocking pool.
//!
//! Why rusqlite rather than sqlx here: on this schema, prepared single-row statements through
//! rusqlite inserted ~375k rows/s against ~180k rows/s for sqlx's multi-row inserts (see
//! docs/BENCHMARKS.md); the ingest path is what this backend is for.

mod access;
mod areas;
mod bodies;
mod conditions;
mod connection;
mod functions;
mod governance;
mod ingest;
mod leases;
mod migrate;
mod queries;
mod records;
mod traces;
mod users;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use langguard_store::*;
use rusqlite::{params, Connection, OptionalExtension};

use records::{integration_from_row, sync_run_from_row, INTEGRATION_COLUMNS};

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

/// Readers kept open between queries.
const MAX_IDLE_READERS: usize = 4;

pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            StoreError::Conflict {
                what: e.to_string(),
            }
        }
        _ => StoreError::Database(Box::new(e)),
    }
}

pub(crate) use langguard_clock::now_ms;

/// `sqlite://path`, `sqlite:path` or a plain path; a query string (`?mode=rwc`) is ignored.
fn path_of(url_or_path: &str) -> PathBuf {
    let rest = url_or_path
        .strip_prefix("sqlite://")
        .or_else(|| url_or_path.strip_prefix("sqlite:"))
        .unwrap_or(url_or_path);
    let rest = rest.split('?').next().unwrap_or(rest);
    PathBuf::from(rest)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at a `sqlite://path` URL or a plain path, and
    /// applies pending migrations.
    pub async fn open(url_or_path: &str) -> StoreResult<Self> {
        let path = path_of(url_or_path);
        if path.as_os_str().is_empty() {
            return Err(StoreError::Invalid(format!(
                "the SQLite URL {url_or_path:?} names no file"
            )));
        }
        let open_path = path.clone();
        let writer = tokio::task::spawn_blocking(move || -> StoreResult<Connection> {
            if let Some(dir) = open_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Invalid(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mut conn = connection::open_writer(&open_path)?;
            migrate::apply(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(join_err)??;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Writes a consistent copy of the database to `dest` while LangGuard keeps running
    /// (SQLite's online backup, a few thousand pages at a time so writers keep their turn).
    pub async fn backup_to(&self, dest: &Path) -> StoreResult<()> {
        let inner = self.inner.clone();
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || -> StoreResult<()> {
            if dest.exists() {
                return Err(StoreError::Invalid(format!(
                    "{} exists already; choose a new file for the backup",
                    dest.display()
                )));
            }
            let source = connection::open_reader(&inner.path)?;
            connection::private_file(&dest)?;
            let mut target = Connection::open(&dest).map_err(db_err)?;
            let backup = rusqlite::backup::Backup::new(&source, &mut target).map_err(db_err)?;
            backup
                .run_to_completion(4_096, std::time::Duration::from_millis(5), None)
                .map_err(db_err)
        })
        .await
        .map_err(join_err)?
    }

    /// Nothing to flush: every write commits. Kept so callers can end cleanly.
    pub async fn close(&self) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || {
            inner
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        })
        .await;
    }

    /// Runs `f` on the writer connection on the blocking pool.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(join_err)?
    }

    /// Runs `f` on a read-only connection from the pool.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop();
            let conn = match pooled {
                Some(c) => c,
                None => connection::open_reader(&inner.path)?,
            };
            let result = f(&conn);
            let mut readers = inner.readers.lock().unwrap_or_else(|e| e.into_inner());
            if readers.len() < MAX_IDLE_READERS {
                readers.push(conn);
            }
            result
        })
        .await
        .map_err(join_err)?
    }
}

impl SqliteStore {
    /// Folds the rollups of `scope` into cells. A range of more than a day is folded as two
    /// halves on two connections at once — a dashboard's wait is one user's, and the machine
    /// has more than one core; the halves' cells merge exactly.
    async fn fold(
        &self,
        scope: &Scope,
        group_by: Option<GroupBy>,
        bucket: Option<Bucket>,
    ) -> StoreResult<fold::Cells> {
        let Some((early, late)) = fold::fold_split(scope) else {
            let scope = scope.clone();
            return self
                .read(move |conn| queries::fold(conn, &scope, group_by, bucket))
                .await;
        };
        let (mut cells, late) = tokio::try_join!(
            self.read(move |conn| queries::fold(conn, &early, group_by, bucket)),
            self.read(move |conn| queries::fold(conn, &late, group_by, bucket)),
        )?;
        fold::merge_cells(&mut cells, late);
        Ok(cells)
    }
}

fn join_err(e: tokio::task::JoinError) -> StoreError {
    StoreError::Database(format!("a database task failed: {e}").into())
}

fn not_found(what: String) -> StoreError {
    StoreError::NotFound { what }
}

pub(crate) fn get_integration_on(conn: &Connection, id: IntegrationId) -> StoreResult<Integration> {
    conn.query_row(
        &format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = ?1"),
        [id],
        integration_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| not_found(format!("integration {id}")))
}

pub(crate) fn get_sync_run_on(conn: &Connection, run: SyncRunId) -> StoreResult<SyncRun> {
    conn.query_row(
        "SELECT * FROM sync_runs WHERE id = ?1",
        [run],
        sync_run_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()?
    .ok_or_else(|| not_found(format!("sync run {run}")))
}

fn save_counts(conn: &Connection, run: SyncRunId, c: &SyncCounts) -> StoreResult<usize> {
    conn.execute(
        "UPDATE sync_runs SET gateways = ?1, api_calls = ?2, items_fetched = ?3, \
         items_ingested = ?4, duplicates_skipped = ?5, rate_limit_waits = ?6, retries = ?7 \
         WHERE id = ?8",
        params![
            c.gateways,
            c.api_calls,
            c.items_fetched,
            c.items_ingested,
            c.duplicates_skipped,
            c.rate_limit_waits,
            c.retries,
            run
        ],
    )
    .map_err(db_err)
}
