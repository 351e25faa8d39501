//! What the server and a sandbox process say to each other: one JSON document a line, each
//! way. Every reply is flushed on its own, so when a process dies or hangs the server knows
//! exactly which evaluation did it.

use regorus::Value;
use serde::{Deserialize, Serialize};

use crate::compile::{Finding, PolicyError};
use crate::input::SpendWindow;

/// The first line a sandbox process writes: it started and can take requests. A process that
/// dies before saying it is broken (a missing binary, a memory limit too small to start in),
/// which is LangGuard's problem, never a policy's.
pub(crate) const READY: &str = "langguard-policy-sandbox ready";

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    /// Compile a policy (with the checks a save runs) and keep it under `key`.
    Load {
        key: String,
        name: String,
        rego: String,
        config: Value,
    },
    /// Evaluate loaded policies, in order, on one input; one reply per key.
    Evaluate { keys: Vec<String>, input: Input },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Input {
    /// `input.trace`; each policy's input document adds its own config (and the spend windows
    /// when it reads them).
    Trace {
        trace: Value,
        windows: Option<Vec<SpendWindow>>,
        #[serde(default)]
        budgets: Option<Vec<crate::BudgetInput>>,
        #[serde(default)]
        spend_anomaly: Option<crate::SpendAnomalyInput>,
    },
    /// A whole input document, used as it is (the editor's Test button).
    Document { document: Value },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Reply {
    Loaded {
        on_vm: bool,
        uses_windows: bool,
    },
    Findings(Vec<Finding>),
    Failed(PolicyError),
    /// The request itself could not be read: the one reply to it, whatever it asked.
    Rejected(String),
}
