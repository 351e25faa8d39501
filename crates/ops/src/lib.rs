//! LangGuard's operations, each written once: adding an integration, saving a policy, running a
//! backtest, loading a trace, changing a violation's status, … with typed inputs, outputs and
//! errors. The REST API, the web UI and the CLI are thin adapters over them: they parse a
//! request, call an operation, and render what it returns. Role checks stay in the adapters
//! (the server's shared extractor); everything else — validation, sealing secrets, the audit
//! entry — happens here, so no caller can skip it.

pub mod alerts;
pub mod anomalies;
pub mod audit;
pub mod backtests;
pub mod buckets;
pub mod budgets;
pub mod coverage;
pub mod credentials;
pub mod defaults;
mod error;
pub mod export;
pub mod format;
pub mod ingest;
pub mod integrations;
pub mod keys;
pub mod lists;
pub mod metrics;
pub mod monitoring;
pub mod people;
pub mod policies;
pub mod prices;
pub mod push_setup;
pub mod retention;
pub mod saved_views;
pub mod traces;
pub mod users;
pub mod views;
pub mod violations;
pub mod webhook_target;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use langguard_cloudflare::ClientConfig;
use langguard_policy::{Sandbox, SandboxConfig};
use langguard_secrets::Sealer;
use langguard_store::{NewAuditEntry, Store, User};
use langguard_sync::SyncEngine;

pub use error::{OpsError, OpsResult};

/// Who asked for an operation, for the audit log.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A signed-in user or the owner of an API key.
    User(&'a User),
    /// Whoever runs the `langguard` command on the server (they hold the data directory).
    Cli,
    /// Nobody signed in (a failed sign-in).
    Nobody,
}

/// The limits operations run under (from the server's settings).
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// The address-space cap of each policy sandbox process, in MiB.
    pub policy_memory_limit_mib: u64,
    /// Backtests and re-evaluations running at once (one per user besides).
    pub max_backtests: usize,
    /// Longest a backtest runs; it reports what it evaluated by then.
    pub backtest_time_limit: Duration,
    /// Which non-public addresses webhooks may be sent to.
    pub webhook_targets: webhook_target::TargetPolicy,
    /// Pushes decoded and written at once (see [`ingest::DEFAULT_MAX_IN_FLIGHT`]).
    pub push_max_in_flight: usize,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            policy_memory_limit_mib: langguard_policy::DEFAULT_MEMORY_LIMIT_MIB,
            max_backtests: 2,
            backtest_time_limit: Duration::from_secs(60),
            webhook_targets: webhook_target::TargetPolicy::default(),
            push_max_in_flight: ingest::DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// What every operation can reach; cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub sealer: Sealer,
    pub client_config: ClientConfig,
    pub engine: Arc<SyncEngine>,
    /// Where requests compile and evaluate policies (Save, Test, Backtest).
    pub sandbox: Sandbox,
    pub config: Arc<ServicesConfig>,
    backtests: Arc<backtests::Backtests>,
    ingest: Arc<ingest::Ingest>,
}

impl Services {
    pub fn new(
        store: Arc<dyn Store>,
        sealer: Sealer,
        client_config: ClientConfig,
        engine: Arc<SyncEngine>,
        config: ServicesConfig,
    ) -> Self {
        let sandbox = Sandbox::new(
            SandboxConfig::current_exe(config.policy_memory_limit_mib)
                .max_processes(config.max_backtests + 1),
        );
        Self {
            store,
            sealer,
            client_config,
            engine,
            sandbox,
            backtests: backtests::Backtests::new(config.max_backtests),
            ingest: Arc::new(ingest::Ingest::new(config.push_max_in_flight)),
            config: Arc::new(config),
        }
    }

    /// Records an admin action or a security event. A failure to record is logged, not
    /// raised: the action itself already happened.
    pub async fn audit(
        &self,
        actor: Actor<'_>,
        action: &str,
        resource: Option<String>,
        mut details: serde_json::Value,
        address: Option<String>,
    ) {
        let user = match actor {
            Actor::User(user) => Some(user),
            Actor::Cli => {
                if let Some(map) = details.as_object_mut() {
                    map.insert("via".into(), "cli".into());
                }
                None
            }
            Actor::Nobody => None,
        };
        let entry = NewAuditEntry {
            user_id: user.map(|u| u.id),
            user_email: user.map(|u| u.email.clone()),
            action: action.to_owned(),
            resource,
            details,
            address,
        };
        if let Err(e) = self.store.record_audit(entry).await {
            tracing::error!(error = %e, action, "could not write the audit log");
        }
    }
}
