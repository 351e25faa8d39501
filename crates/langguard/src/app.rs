//! Everything a command needs, opened once from the global options: the store, the sealer for
//! credentials, and the Cloudflare client settings.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use langguard_cloudflare::ClientConfig;
use langguard_secrets::Sealer;
use langguard_store::{Integration, Scope, Store};
use langguard_store_postgres::PgStore;
use langguard_store_sqlite::SqliteStore;
use langguard_sync::{SyncEngine, SyncSettings};

use crate::cli::{GlobalArgs, ScopeArgs};
use crate::timearg::parse_time;

pub struct App {
    pub store: Arc<dyn Store>,
    pub sealer: Sealer,
    pub client_config: ClientConfig,
    /// The memory cap of each policy sandbox process, in MiB.
    pub policy_memory_mib: u64,
}

impl App {
    pub async fn open(global: &GlobalArgs) -> anyhow::Result<Self> {
        let mut app = Self::open_at(
            &global.data_dir,
            global.database_url.as_deref(),
            &global.cloudflare_api_base,
        )
        .await?;
        app.policy_memory_mib = global.policy_memory_mb;
        Ok(app)
    }

    pub async fn open_at(
        data_dir: &Path,
        database_url: Option<&str>,
        cloudflare_api_base: &str,
    ) -> anyhow::Result<Self> {
        create_private_dir(data_dir)?;
        let store = open_store(data_dir, database_url).await?;
        let env_key = std::env::var("LANGGUARD_ENCRYPTION_KEY").ok();
        let sealer = Sealer::load_or_create(env_key.as_deref(), data_dir)?;
        let sealer =
            crate::commands::secrets::finish_interrupted_rotation(store.as_ref(), sealer, data_dir)
                .await?;
        crate::commands::secrets::reseal_legacy(store.as_ref(), &sealer).await?;
        Ok(Self {
            store,
            sealer,
            client_config: ClientConfig {
                api_base: cloudflare_api_base.to_owned(),
                ..ClientConfig::default()
            },
            policy_memory_mib: langguard_policy::DEFAULT_MEMORY_LIMIT_MIB,
        })
    }

    /// A policy sandbox of one process, for a command's own policy worker.
    pub fn policy_sandbox(&self) -> langguard_policy::Sandbox {
        langguard_policy::Sandbox::new(
            langguard_policy::SandboxConfig::current_exe(self.policy_memory_mib).max_processes(1),
        )
    }

    /// The operations the API and the web UI run, for a command to run the same way (checks,
    /// sealing, audit entries marked `via: cli`).
    pub fn services(&self) -> langguard_ops::Services {
        langguard_ops::Services::new(
            self.store.clone(),
            self.sealer.clone(),
            self.client_config.clone(),
            Arc::new(self.engine()),
            langguard_ops::ServicesConfig {
                policy_memory_limit_mib: self.policy_memory_mib,
                ..langguard_ops::ServicesConfig::default()
            },
        )
    }

    pub fn engine(&self) -> SyncEngine {
        SyncEngine::new(
            self.store.clone(),
            self.sealer.clone(),
            self.client_config.clone(),
            SyncSettings {
                lease_ttl: lease_ttl(),
                ..SyncSettings::default()
            },
        )
    }

    pub async fn integration_named(&self, name: &str) -> anyhow::Result<Integration> {
        match self.store.find_integration_by_name(name).await? {
            Some(i) => Ok(i),
            None => bail!(
                "there is no integration named {name:?}; `langguard integrations list` shows them"
            ),
        }
    }

    /// The scope of a metrics or traces command; `default_from` applies when --from is absent.
    pub async fn scope(
        &self,
        args: &ScopeArgs,
        now_ms: i64,
        default_from: Option<i64>,
    ) -> anyhow::Result<Scope> {
        let from_ms = match &args.from {
            Some(s) => Some(parse_time(s, now_ms).map_err(anyhow::Error::msg)?),
            None => default_from,
        };
        let to_ms = match &args.to {
            Some(s) => Some(parse_time(s, now_ms).map_err(anyhow::Error::msg)?),
            None => None,
        };
        if let (Some(f), Some(t)) = (from_ms, to_ms) {
            if f >= t {
                bail!("--from must be before --to");
            }
        }
        let integration_id = match &args.integration {
            Some(name) => Some(self.integration_named(name).await?.id),
            None => None,
        };
        Ok(Scope {
            from_ms,
            to_ms,
            integration_id,
            gateway: args.gateway.clone(),
            provider: args.provider.clone(),
            model: args.model.clone(),
        })
    }
}

/// How long an instance's claim on a sync or a background worker lasts without renewal:
/// another instance takes over this long after one dies. `LANGGUARD_LEASE_TTL_SECONDS`
/// (default 30; tests shorten it).
pub fn lease_ttl() -> std::time::Duration {
    let seconds = std::env::var("LANGGUARD_LEASE_TTL_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(30);
    std::time::Duration::from_secs(seconds)
}

/// The database URL in use: the configured one, or the SQLite file in the data directory.
pub fn database_url(data_dir: &Path, url: Option<&str>) -> String {
    match url {
        Some(u) if !u.trim().is_empty() => u.trim().to_owned(),
        _ => format!("sqlite://{}", data_dir.join("langguard.db").display()),
    }
}

async fn open_store(data_dir: &Path, url: Option<&str>) -> anyhow::Result<Arc<dyn Store>> {
    let url = database_url(data_dir, url);
    if url.starts_with("sqlite:") {
        let store = SqliteStore::open(&url)
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let store = PgStore::open(&url).await.map_err(|e| {
            // The URL may carry a password: messages name the server without it.
            anyhow::anyhow!("cannot open the PostgreSQL database: {e}")
        })?;
        tracing::info!(database = store.display_url(), "using PostgreSQL");
        return Ok(Arc::new(store));
    }
    bail!("LANGGUARD_DATABASE_URL must start with sqlite:// or postgres:// (got a URL of another kind)")
}

pub use langguard_clock::now_ms;

/// The data dir's lock file: held by `serve` for its lifetime and by a key rotation, so a
/// rotation never runs under a server that still seals with the old key.
pub const LOCK_FILE_NAME: &str = "langguard.lock";

/// Takes the data dir's lock if it is free. `Ok(None)`: another process holds it.
pub fn try_lock_data_dir(data_dir: &Path) -> anyhow::Result<Option<std::fs::File>> {
    let path = data_dir.join(LOCK_FILE_NAME);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("cannot lock {}", path.display())))
        }
    }
}

/// Creates the data directory for its owner only (0700): it holds the database and the
/// encryption key. An existing one is left as it is, with a warning when others may enter it.
fn create_private_dir(data_dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    let existed = data_dir.is_dir();
    builder
        .create(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    #[cfg(unix)]
    if existed {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data_dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "the data directory {} can be entered by other users (mode {mode:o}); `chmod 700` it",
                data_dir.display()
            );
        }
    }
    Ok(())
}
