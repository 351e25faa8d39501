//! A background worker's lease: of several instances on one database, one runs each worker
//! (the policy worker, the webhook dispatcher, retention) at a time; when it dies another
//! takes over once the lease expires. Their progress lives in the database, so the one that
//! takes over carries on where the last one stopped.

use std::time::{Duration, Instant};

use crate::Store;

pub struct WorkerLease {
    name: String,
    holder: String,
    ttl: Duration,
    /// When the lease was last taken or renewed, while this process holds it.
    renewed: Option<Instant>,
}

impl WorkerLease {
    pub fn new(name: &str, holder: &str, ttl: Duration) -> Self {
        Self {
            name: name.to_owned(),
            holder: holder.to_owned(),
            ttl,
            renewed: None,
        }
    }

    /// Whether this process may work now: takes the lease when it is free, renews it when a
    /// third of its time has passed, and answers from memory in between (one query per third
    /// of the lease, not per round). A database error means "not now".
    pub async fn hold(&mut self, store: &dyn Store) -> bool {
        if self.renewed.is_some_and(|at| at.elapsed() < self.ttl / 3) {
            return true;
        }
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let started = Instant::now();
        let held = match self.renewed {
            Some(_) => store.renew_lease(&self.name, &self.holder, ttl_ms).await,
            None => store.acquire_lease(&self.name, &self.holder, ttl_ms).await,
        };
        match held {
            Ok(true) => {
                if self.renewed.is_none() {
                    tracing::info!(lease = %self.name, "this instance now runs the worker");
                }
                self.renewed = Some(started);
                true
            }
            Ok(false) => {
                if self.renewed.take().is_some() {
                    tracing::warn!(lease = %self.name, "another instance took over the worker");
                }
                false
            }
            Err(e) => {
                tracing::warn!(lease = %self.name, error = %e, "could not take or renew a lease");
                self.renewed = None;
                false
            }
        }
    }

    /// Lets another instance take over at once (a clean stop).
    pub async fn release(&mut self, store: &dyn Store) {
        if self.renewed.take().is_some() {
            if let Err(e) = store.release_lease(&self.name, &self.holder).await {
                tracing::warn!(lease = %self.name, error = %e, "could not release a lease");
            }
        }
    }

    /// How long to wait before asking again when another instance holds it.
    pub fn retry_after(&self) -> Duration {
        self.ttl / 3
    }
}
