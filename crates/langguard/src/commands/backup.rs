//! `langguard backup --to FILE`: a consistent copy of the SQLite database, taken while
//! LangGuard keeps running, and the encryption key beside it (`FILE.key`, mode 0600) — a backup
//! without its key can't open the stored Cloudflare tokens.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use langguard_secrets::KEY_FILE_NAME;
use langguard_store_sqlite::SqliteStore;

use crate::cli::GlobalArgs;

pub async fn run(global: &GlobalArgs, to: &Path) -> anyhow::Result<ExitCode> {
    let url = crate::app::database_url(&global.data_dir, global.database_url.as_deref());
    if !url.starts_with("sqlite:") {
        bail!("backup copies the embedded SQLite database; back up PostgreSQL with pg_dump");
    }
    let store = SqliteStore::open(&url)
        .await
        .with_context(|| format!("cannot open the database {url}"))?;
    store
        .backup_to(to)
        .await
        .with_context(|| format!("cannot write the backup to {}", to.display()))?;
    let key = global.data_dir.join(KEY_FILE_NAME);
    let key_copy = to.with_extension(match to.extension() {
        Some(ext) => format!("{}.key", ext.to_string_lossy()),
        None => "key".into(),
    });
    if key.exists() {
        std::fs::copy(&key, &key_copy)
            .with_context(|| format!("cannot copy the encryption key to {}", key_copy.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_copy, std::fs::Permissions::from_mode(0o600))?;
        }
        println!(
            "Backed up the database to {} and its encryption key to {}.",
            to.display(),
            key_copy.display()
        );
    } else {
        println!(
            "Backed up the database to {}. The encryption key comes from LANGGUARD_ENCRYPTION_KEY: keep it with the backup.",
            to.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
