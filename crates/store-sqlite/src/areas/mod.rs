//! The store's areas, one `impl` each (the `langguard_store` traits of the same names);
//! the SQL of each area's statements is here or in the helper module it calls.

mod access;
mod alerts;
pub(crate) mod anomalies;
pub(crate) mod buckets;
mod budgets;
mod governance;
mod ingest;
mod integrations;
mod leases;
mod metrics;
pub(crate) mod people;
mod saved_views;
mod traces;
mod webhooks;
