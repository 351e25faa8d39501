//! Who may run a policy over history right now: one run per user, a few in all. A place is
//! held by a ticket and given back when the ticket drops — when the run ends, fails, or its
//! client goes away and the request is dropped.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use langguard_store::UserId;

use crate::OpsError;

#[derive(Debug)]
pub struct Backtests {
    max: usize,
    running: Mutex<HashSet<UserId>>,
}

/// A held place; dropping it frees the place.
#[derive(Debug)]
pub struct Ticket {
    owner: Arc<Backtests>,
    user: UserId,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut running) = self.owner.running.lock() {
            running.remove(&self.user);
        }
    }
}

impl Backtests {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            running: Mutex::new(HashSet::new()),
        })
    }

    /// A place for `user`'s run, or [`OpsError::Busy`] with what to do.
    pub fn start(self: &Arc<Self>, user: UserId) -> Result<Ticket, OpsError> {
        let mut running = self
            .running
            .lock()
            .map_err(|_| OpsError::Unavailable("the backtest registry is unusable".into()))?;
        if running.contains(&user) {
            return Err(OpsError::Busy {
                message: "you already have a backtest or re-evaluation running; wait for it to \
                          finish (or cancel it by closing its request) before starting another"
                    .into(),
                retry_after_secs: 5,
            });
        }
        if running.len() >= self.max {
            return Err(OpsError::Busy {
                message: format!(
                    "{} backtests are running, as many as this server runs at once; try again \
                     in a minute",
                    running.len()
                ),
                retry_after_secs: 30,
            });
        }
        running.insert(user);
        Ok(Ticket {
            owner: self.clone(),
            user,
        })
    }

    /// Runs in progress now.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.running.lock().map(|r| r.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_user_and_a_few_in_all_each_freed_on_drop() {
        let backtests = Backtests::new(2);
        let a = backtests.start(1).expect("first");
        assert!(matches!(backtests.start(1), Err(OpsError::Busy { .. })));
        let b = backtests.start(2).expect("another user");
        assert!(matches!(backtests.start(3), Err(OpsError::Busy { .. })));
        drop(a);
        assert_eq!(backtests.running(), 1);
        let _c = backtests.start(3).expect("a place came free");
        drop(b);
        let _again = backtests.start(2).expect("user 2 again");
    }
}
