//! The sync tests' world: the Cloudflare emulator, a fresh SQLite store and a sync engine
//! with one integration of the emulator's account.
#![allow(dead_code)]
use langguard_store::prelude::*;
use std::sync::Arc;
use std::time::Duration;

use langguard_cf_emulator::{Emulator, EmulatorConfig, RunningEmulator, SeedSpec, TokenSpec};
use langguard_cloudflare::{ClientConfig, RateLimitPolicy, RetryPolicy};
use langguard_secrets::Sealer;
use langguard_store::{NewIntegration, Scope, SyncRun, SyncTrigger};
use langguard_store_sqlite::SqliteStore;
use langguard_sync::{SyncEngine, SyncSettings};
use time::OffsetDateTime;

pub const ACCOUNT: &str = "acct";
pub const TOKEN: &str = "test-token";

pub struct Harness {
    pub emulator: RunningEmulator,
    pub store: Arc<SqliteStore>,
    pub engine: SyncEngine,
    pub integration_id: i64,
    _dir: tempfile::TempDir,
}

pub fn client_config(base: String) -> ClientConfig {
    ClientConfig {
        api_base: base,
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            max_rate_limit_wait: Duration::from_secs(5),
        },
        rate_limit: RateLimitPolicy {
            quota: 100_000,
            window: Duration::from_secs(300),
        },
    }
}

pub async fn harness_with(
    config: EmulatorConfig,
    token: &str,
    spec: TokenSpec,
    gateways: &[&str],
) -> Harness {
    let emulator = Emulator::new(config);
    emulator.add_account(ACCOUNT);
    emulator.add_token(token, spec);
    for g in gateways {
        emulator.add_gateway(ACCOUNT, g);
    }
    let emulator = emulator.spawn().await.expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("lg.db").to_string_lossy())
            .await
            .expect("store"),
    );
    let sealer = Sealer::from_key(&[3; 32]);
    let integration = store
        .create_integration(NewIntegration {
            name: "cf".into(),
            account_id: ACCOUNT.into(),
            api_token: langguard_store::SealFor::new(
                sealer.sealing(token.into(), langguard_secrets::Binding::IntegrationToken),
            ),
            enabled: true,
            sync_interval_minutes: 15,
            lookback_days: Some(7),
            trailing_window_minutes: langguard_store::DEFAULT_TRAILING_WINDOW_MINUTES,
        })
        .await
        .expect("integration");
    let engine = SyncEngine::new(
        store.clone(),
        sealer,
        client_config(emulator.base_url()),
        SyncSettings::default(),
    );
    Harness {
        emulator,
        store,
        engine,
        integration_id: integration.id,
        _dir: dir,
    }
}

pub async fn harness(gateways: &[&str]) -> Harness {
    harness_with(
        EmulatorConfig::default(),
        TOKEN,
        TokenSpec::user(&[ACCOUNT]),
        gateways,
    )
    .await
}

impl Harness {
    /// Another engine on the same store and emulator: a restarted process, or other settings.
    pub fn engine_with(&self, settings: SyncSettings) -> SyncEngine {
        SyncEngine::new(
            self.store.clone(),
            Sealer::from_key(&[3; 32]),
            client_config(self.emulator.base_url()),
            settings,
        )
    }

    /// The integration as the store has it now.
    pub async fn integration(&self) -> langguard_store::Integration {
        self.store
            .get_integration(self.integration_id)
            .await
            .expect("integration")
    }

    pub fn seed(&self, gateway: &str, count: usize, seed: u64) {
        let now = OffsetDateTime::now_utc();
        self.emulator.emulator.seed_logs(
            ACCOUNT,
            gateway,
            SeedSpec {
                count,
                from: now - time::Duration::days(2),
                to: now - time::Duration::minutes(30),
                seed,
            },
        );
    }

    pub async fn sync(&self) -> SyncRun {
        self.engine
            .sync(self.integration_id, SyncTrigger::Manual, None)
            .await
            .expect("sync ran")
    }

    pub async fn stored(&self, gateway: &str) -> usize {
        self.store
            .count_interactions(&Scope {
                gateway: Some(gateway.into()),
                ..Scope::default()
            })
            .await
            .expect("count") as usize
    }

    /// Every log the emulator has is stored exactly once (the unique index rules out
    /// duplicates, so equal counts mean equal sets), and the rollups agree.
    pub async fn assert_exact(&self, gateways: &[&str]) {
        let mut total = 0;
        for g in gateways {
            let expected = self.emulator.emulator.log_ids(ACCOUNT, g).len();
            assert_eq!(
                self.stored(g).await,
                expected,
                "gateway {g}: stored vs Cloudflare"
            );
            total += expected;
        }
        let m = self
            .store
            .metrics(&Scope::default())
            .await
            .expect("metrics");
        assert_eq!(m.requests as usize, total, "rollups vs rows");
    }

    /// The ids of every stored log.
    pub async fn stored_ids(&self) -> std::collections::HashSet<String> {
        let mut ids = std::collections::HashSet::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .traces(&langguard_store::TraceQuery {
                    limit: 1_000,
                    after,
                    ..Default::default()
                })
                .await
                .expect("traces");
            ids.extend(page.items.into_iter().map(|i| i.log.log_id));
            match page.next_cursor {
                Some(c) => after = Some(c),
                None => return ids,
            }
        }
    }

    pub fn list_calls(&self) -> u64 {
        self.emulator.emulator.stats().list_logs_calls
    }
}
