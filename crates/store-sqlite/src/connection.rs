//! Opening connections with the settings LangGuard relies on.

use std::path::Path;
use std::time::Duration;

use langguard_store::StoreResult;
use rusqlite::{Connection, OpenFlags};

use crate::db_err;

const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn open_writer(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    conn.execute_batch(
        // WAL: readers never block the writer. NORMAL is durable across process crashes in WAL
        // mode (only an OS crash can lose the last commits, which the importer re-reads).
        // Checkpoint every ~40 MB of WAL rather than 4 MB: each checkpoint costs fsyncs.
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -65536;
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = 10000;",
    )
    .map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    crate::functions::register(&conn).map_err(db_err)?;
    Ok(conn)
}

pub(crate) fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;")
        .map_err(db_err)?;
    crate::functions::register(&conn).map_err(db_err)?;
    Ok(conn)
}
