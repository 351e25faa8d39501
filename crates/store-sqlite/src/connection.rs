//! Opening connections with the settings LangGuard relies on.

use std::path::Path;
use std::time::Duration;

use langguard_store::StoreResult;
use rusqlite::{Connection, OpenFlags};

use crate::db_err;

const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates the database file readable by its owner only (0600), or takes an existing one's
/// group and other permissions away: it holds every prompt. SQLite gives its `-wal` and
/// `-shm` files the database file's permissions.
pub(crate) fn private_file(path: &Path) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path);
        let file = opened.map_err(|e| {
            langguard_store::StoreError::Invalid(format!("cannot create {}: {e}", path.display()))
        })?;
        let beside = |suffix: &str| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        };
        for p in [path.to_path_buf(), beside("-wal"), beside("-shm")] {
            if let Ok(meta) = std::fs::metadata(&p) {
                if meta.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(
                        |e| {
                            langguard_store::StoreError::Invalid(format!(
                                "cannot make {} private (chmod 600 it): {e}",
                                p.display()
                            ))
                        },
                    )?;
                }
            }
        }
        drop(file);
    }
    Ok(())
}

pub(crate) fn open_writer(path: &Path) -> StoreResult<Connection> {
    private_file(path)?;
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
