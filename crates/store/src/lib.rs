//! LangGuard's storage: one trait of domain operations ([`Store`]) that every backend implements,
//! the records it deals in, and the mergeable latency sketch the per-minute rollups carry.
//!
//! Callers (the sync engine, the policy worker, the operations in `langguard-ops`, the server)
//! only ever see this trait, so a backend is chosen by the database URL without touching them.

mod areas;
pub mod clean;
pub mod fold;
pub mod lease;
mod model;
#[macro_use]
mod policy_model;
mod alert_model;
mod anomaly_model;
mod budget_model;
mod people_model;
mod rollup;
pub mod rows;
mod saved_view_model;
pub mod search;
mod sketch;
mod trace_filter;

/// Every area trait, for calling the store's methods on a concrete backend (`SqliteStore`,
/// `PgStore`); through `dyn Store` they need no import.
pub mod prelude {
    pub use crate::areas::{
        AccessStore, AlertStore, AnomalyStore, BudgetStore, GovernanceStore, IngestStore,
        IntegrationStore, LeaseStore, MetricsStore, PeopleStore, SavedViewStore, Store, TraceStore,
        WebhookStore,
    };
}

pub use alert_model::*;
pub use anomaly_model::*;
pub use areas::{
    AccessStore, AlertStore, AnomalyStore, BucketStore, BudgetStore, GovernanceStore, IngestStore,
    IntegrationStore, LeaseStore, MetricsStore, PeopleStore, SavedViewStore, Store, TraceStore,
    WebhookStore,
};
pub use budget_model::*;
pub use model::*;
pub use people_model::*;
pub use policy_model::*;
pub use rollup::{minute_of, RollupDelta, RollupKey, RollupTotals};
pub use saved_view_model::*;
pub use sketch::{LatencySketch, SketchDecodeError, RELATIVE_ACCURACY};
pub use trace_filter::{metadata_filter, parse_search, FilterError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The lease an instance holds while it syncs an integration.
pub fn sync_lease_name(id: IntegrationId) -> String {
    format!("sync:{id}")
}

/// The error on a run whose instance stopped before it finished (found by the next claim).
pub const SYNC_ABANDONED: &str = "the instance running this sync stopped before it finished; the next sync carries on from the last stored log";

/// What [`IntegrationStore::claim_sync`] got.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncClaim {
    /// The lease is `holder`'s and this run was created.
    Claimed(SyncRun),
    /// Another holder's sync of the integration is live (its run, when it recorded one).
    Busy {
        run_id: Option<SyncRunId>,
        holder: String,
    },
}

/// Rows per batch of [`TraceStore::export_traces`].
pub const EXPORT_BATCH: usize = 1_000;
