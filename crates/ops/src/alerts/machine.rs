//! How an alert's state moves, as one pure function of the rule's timing, the open alert (if
//! any) and whether the condition holds now: the live evaluator and the backtest both step
//! through it, so "would it have fired?" answers with the same rules that page people.
//!
//! ```text
//!   ok ──breach──► pending ──held for `for`──► firing ──clear──► resolved
//!                    │                            │
//!                    └──clear──► (dropped)        └──still breached──► re-notify every `renotify`
//! ```

use langguard_store::{Alert, AlertState};

/// The parts of a rule the state machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub for_ms: i64,
    pub renotify_ms: Option<i64>,
}

/// The metric's value over the window and whether it is on the wrong side of the threshold;
/// `breached: None` when there was too little traffic to judge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub value: Option<f64>,
    pub breached: Option<bool>,
}

/// What one evaluation makes of one rule's group.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing open, nothing breached.
    Quiet,
    /// A new alert: pending, or firing straight away when the rule has no `for` (then it is
    /// announced at once).
    Open(Alert),
    /// The open alert with its new state; `notify` says whether to announce it (firing for
    /// the first time or again, or resolved after people were told it fired).
    Update { alert: Alert, notify: bool },
    /// A pending alert whose condition cleared before it fired: forgotten, nobody told.
    Drop(i64),
}

/// One evaluation at `now_ms` of the rule's `group`. Too little traffic to judge counts as
/// not breached: a quiet hour neither starts nor keeps an alert going.
pub fn step(
    (rule_id, group): (i64, &str),
    timing: Timing,
    threshold: f64,
    open: Option<&Alert>,
    reading: Reading,
    now_ms: i64,
) -> Step {
    let (breached, value) = (reading.breached.unwrap_or(false), reading.value);
    match open {
        None if !breached => Step::Quiet,
        None => {
            let firing = timing.for_ms <= 0;
            Step::Open(Alert {
                id: 0,
                rule_id,
                group: group.to_owned(),
                state: if firing {
                    AlertState::Firing
                } else {
                    AlertState::Pending
                },
                value,
                threshold,
                pending_since_ms: now_ms,
                fired_at_ms: firing.then_some(now_ms),
                resolved_at_ms: None,
                notified_at_ms: None,
                evaluated_at_ms: now_ms,
            })
        }
        Some(alert) => {
            let mut next = alert.clone();
            next.value = value;
            next.threshold = threshold;
            next.evaluated_at_ms = now_ms;
            match (alert.state, breached) {
                (AlertState::Pending, false) => Step::Drop(alert.id),
                (AlertState::Pending, true) => {
                    let fires = now_ms - alert.pending_since_ms >= timing.for_ms;
                    if fires {
                        next.state = AlertState::Firing;
                        next.fired_at_ms = Some(now_ms);
                    }
                    Step::Update {
                        alert: next,
                        notify: fires,
                    }
                }
                (AlertState::Firing, true) => {
                    // Nobody told yet (a silence held it back), or time to remind them.
                    let notify = match (alert.notified_at_ms, timing.renotify_ms) {
                        (None, _) => true,
                        (Some(at), Some(every)) => now_ms - at >= every,
                        (Some(_), None) => false,
                    };
                    Step::Update {
                        alert: next,
                        notify,
                    }
                }
                (AlertState::Firing, false) => {
                    next.state = AlertState::Resolved;
                    next.resolved_at_ms = Some(now_ms);
                    Step::Update {
                        alert: next,
                        notify: alert.notified_at_ms.is_some(),
                    }
                }
                // Resolved alerts are history: never open, never stepped.
                (AlertState::Resolved, _) => Step::Quiet,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn run(timing: Timing, breaches: &[bool]) -> Vec<(AlertState, bool)> {
        let mut open: Option<Alert> = None;
        let mut out = Vec::new();
        for (minute, &b) in breaches.iter().enumerate() {
            let now = minute as i64 * MIN;
            let reading = Reading {
                value: Some(1.0),
                breached: Some(b),
            };
            match step((7, ""), timing, 0.5, open.as_ref(), reading, now) {
                Step::Quiet => out.push((AlertState::Resolved, false)),
                Step::Open(mut a) => {
                    let notify = a.state == AlertState::Firing;
                    if notify {
                        a.notified_at_ms = Some(now);
                    }
                    out.push((a.state, notify));
                    open = Some(Alert { id: 1, ..a });
                }
                Step::Update { mut alert, notify } => {
                    out.push((alert.state, notify));
                    if notify {
                        alert.notified_at_ms = Some(now);
                    }
                    open = (alert.state != AlertState::Resolved).then_some(alert);
                }
                Step::Drop(_) => {
                    out.push((AlertState::Resolved, false));
                    open = None;
                }
            }
        }
        out
    }

    #[test]
    fn an_alert_fires_only_after_holding_for_its_duration() {
        use AlertState::*;
        let timing = Timing {
            for_ms: 3 * MIN,
            renotify_ms: None,
        };
        // A two-minute blip never fires; three minutes of trouble do.
        let got = run(timing, &[true, true, false, true, true, true, true, false]);
        assert_eq!(
            got,
            vec![
                (Pending, false),
                (Pending, false),
                (Resolved, false), // dropped, nobody told
                (Pending, false),
                (Pending, false),
                (Pending, false),
                (Firing, true),
                (Resolved, true),
            ]
        );
    }

    #[test]
    fn without_a_duration_it_fires_at_once_and_reminds_on_schedule() {
        use AlertState::*;
        let timing = Timing {
            for_ms: 0,
            renotify_ms: Some(2 * MIN),
        };
        let got = run(timing, &[true, true, true, true, true, false, false]);
        assert_eq!(
            got,
            vec![
                (Firing, true), // fires and is announced at once
                (Firing, false),
                (Firing, true), // reminded two minutes on
                (Firing, false),
                (Firing, true),
                (Resolved, true),
                (Resolved, false), // quiet
            ]
        );
    }

    #[test]
    fn too_little_traffic_counts_as_clear() {
        let timing = Timing {
            for_ms: 0,
            renotify_ms: None,
        };
        let reading = Reading {
            value: None,
            breached: None,
        };
        assert_eq!(step((1, ""), timing, 1.0, None, reading, 0), Step::Quiet);
    }
}
