//! Live traffic: a background task that keeps appending synthetic logs stamped "now", so an
//! importer can be tested against a gateway that is being written while it reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rand::rngs::SmallRng;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::emulator::Shared;

/// Tick bounds: fast enough for high rates without spinning, slow rates still tick each second.
const MIN_TICK: Duration = Duration::from_millis(5);
const MAX_TICK: Duration = Duration::from_secs(1);
/// Upper bound of logs appended in one tick, so a stalled runtime does not cause a huge burst.
const MAX_BURST: u64 = 10_000;

/// Handle of a live-traffic task. Dropping it (or calling [`LiveTraffic::stop`]) stops the
/// traffic; logs already appended stay.
#[derive(Debug)]
pub struct LiveTraffic {
    task: Option<JoinHandle<()>>,
    appended: Arc<AtomicU64>,
}

impl LiveTraffic {
    /// Stops the traffic.
    pub fn stop(self) {
        drop(self);
    }

    /// Logs appended so far.
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }
}

impl Drop for LiveTraffic {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts appending about `per_second` logs per second to the gateway. A rate that is not a
/// positive number starts nothing.
///
/// # Panics
/// When called outside a tokio runtime.
pub(crate) fn start(
    shared: Weak<Shared>,
    account_id: String,
    gateway_id: String,
    per_second: f64,
    mut rng: SmallRng,
) -> LiveTraffic {
    let appended = Arc::new(AtomicU64::new(0));
    if !(per_second.is_finite() && per_second > 0.0) {
        return LiveTraffic {
            task: None,
            appended,
        };
    }
    let counter = Arc::clone(&appended);
    let tick =
        Duration::from_secs_f64((1.0 / per_second).min(MAX_TICK.as_secs_f64())).max(MIN_TICK);
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            // Holding only a weak reference lets the emulator be dropped while traffic runs.
            let Some(shared) = shared.upgrade() else {
                break;
            };
            // The first log is written at once, then one every 1/per_second seconds.
            let due = (started.elapsed().as_secs_f64() * per_second) as u64 + 1;
            let produced = counter.load(Ordering::Relaxed);
            let batch = due.saturating_sub(produced).min(MAX_BURST);
            if batch > 0 {
                shared.append_live_logs(&account_id, &gateway_id, batch, &mut rng);
                counter.fetch_add(batch, Ordering::Relaxed);
            }
        }
    });
    LiveTraffic {
        task: Some(task),
        appended,
    }
}
