//! Policy evaluation that cannot hurt the host. Rego comes from people (any Member writes
//! policies), and one built-in call can ask for terabytes (`numbers.range(1, 1e12)`) or run for
//! seconds without returning to the engine's timer. Neither can be stopped inside a process
//! — a failed allocation aborts it — so every policy is compiled and evaluated in a sandbox
//! process: this same binary, started with `LANGGUARD_POLICY_SANDBOX=1`, its address space
//! capped (`RLIMIT_AS`), killed when an evaluation outlives its hard deadline. A death or a
//! kill becomes a [`PolicyError::Limit`] for the one evaluation that caused it; the server
//! starts a fresh process and carries on with the rest.
//!
//! Every binary that evaluates policies calls [`serve_if_child`] first thing in `main` (test
//! binaries do it from a constructor), so the sandbox needs no second executable.

mod child;
mod process;
mod protocol;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regorus::Value;
use sha2::{Digest, Sha256};

use crate::compile::{Finding, LimitKind, PolicyError, EVALUATION_LIMIT};
use crate::input::SpendWindow;
use process::{Process, Stop};
use protocol::{Input, Reply, Request};

/// The environment variable that makes a LangGuard binary a sandbox process.
pub const CHILD_ENV: &str = "LANGGUARD_POLICY_SANDBOX";

/// Runs the sandbox and exits when this process was started as one; returns otherwise.
pub fn serve_if_child() {
    if std::env::var_os(CHILD_ENV).is_some_and(|v| v == "1") {
        std::process::exit(child::run());
    }
}

/// How long a sandbox may take to start and compile one policy: parsing is bounded by
/// regorus's length limits and the empty-input check by the evaluation timer.
const LOAD_DEADLINE: Duration = Duration::from_secs(10);

/// A process that has compiled more distinct policies than this is retired after its request
/// (policies edited many times would otherwise pile up in it).
const MAX_LOADED: usize = 256;

/// The longest reply a policy's evaluation may produce; a longer one is a memory limit. Its
/// findings become stored evidence, and the server holds a batch's (2,000 interactions) before
/// storing them: 64 KiB an evaluation bounds that, and is far more evidence than a finding needs.
const MAX_REPLY_BYTES: u64 = 64 * 1024;

/// Where the sandbox's executable is, and its limits.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The address-space cap of each sandbox process.
    pub memory_limit_bytes: u64,
    /// The engine's own timer stops an evaluation after [`EVALUATION_LIMIT`]; a process still
    /// busy this long after it was asked (one long built-in call) is killed.
    pub hard_deadline: Duration,
    /// Processes evaluating at once; callers beyond this wait their turn…
    pub max_processes: usize,
    /// …this long at most, then hear that the sandbox is busy (503), rather than queue
    /// behind someone's backtests without end.
    pub queue_timeout: Duration,
}

impl SandboxConfig {
    /// This executable as the sandbox (it calls [`serve_if_child`] at start).
    pub fn current_exe(memory_limit_mib: u64) -> Self {
        Self {
            program: running_executable(),
            args: Vec::new(),
            memory_limit_bytes: memory_limit_mib.saturating_mul(1024 * 1024),
            hard_deadline: EVALUATION_LIMIT * 2,
            max_processes: 2,
            queue_timeout: Duration::from_secs(15),
        }
    }

    pub fn max_processes(mut self, n: usize) -> Self {
        self.max_processes = n.max(1);
        self
    }
}

/// The executable this process runs. On Linux `/proc/self/exe`, which still opens it after
/// an upgrade replaced the file on disk (the path would then name the new binary, or
/// nothing); elsewhere the path it was started from.
fn running_executable() -> PathBuf {
    let proc_exe = PathBuf::from("/proc/self/exe");
    if cfg!(target_os = "linux") && proc_exe.exists() {
        return proc_exe;
    }
    std::env::current_exe().unwrap_or(proc_exe)
}

/// The default memory budget of one evaluation, in MiB (the whole sandbox process).
pub const DEFAULT_MEMORY_LIMIT_MIB: u64 = 512;

/// The sandbox itself could not be used (it would not start): LangGuard's fault, not the
/// policy's, so nothing is recorded against a policy; try again later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the policy sandbox is unavailable: {0}")]
pub struct SandboxUnavailable(String);

/// A policy as the sandbox runs it: its text and config, identified by their hash.
#[derive(Debug, Clone)]
pub struct SandboxPolicy {
    /// SHA-256 of the name, text and config: the sandbox holds compiled policies by it.
    key: String,
    name: String,
    rego: String,
    config: Value,
}

impl SandboxPolicy {
    /// `config` is the policy's `input.config` (JSON text; anything but an object is `{}`).
    pub fn new(name: &str, rego: &str, config: &str) -> Self {
        let mut h = Sha256::new();
        for part in [name, rego, config] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        Self {
            key: h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            name: name.to_owned(),
            rego: rego.to_owned(),
            config: crate::input::config_value(config),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What compiling a policy told about it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compiled {
    pub on_vm: bool,
    /// Whether it reads `input.traces` (the worker computes spend windows only then).
    pub uses_windows: bool,
}

/// One input to evaluate every policy on.
pub enum EvalInput {
    /// A trace document; each policy gets its own config (and spend windows when it reads them).
    Trace {
        trace: Value,
        windows: Option<Vec<SpendWindow>>,
        /// `input.budgets`, for the policies that read it.
        budgets: Option<Vec<crate::BudgetInput>>,
        /// `input.spend_anomaly`, for the policies that read it.
        spend_anomaly: Option<crate::SpendAnomalyInput>,
    },
    /// A whole input document, as given.
    Document(serde_json::Value),
}

/// Each input's results, one per policy in the order given.
pub type Outcomes = Vec<Vec<Result<Vec<Finding>, PolicyError>>>;

/// A pool of sandbox processes; cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    permits: tokio::sync::Semaphore,
    idle: Mutex<Vec<Process>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                permits: tokio::sync::Semaphore::new(config.max_processes.max(1)),
                config,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Compiles `policy` with the checks a save runs (name, package, a `violation` rule, one
    /// evaluation on an empty input that must stay within the limits).
    pub async fn compile(&self, policy: &SandboxPolicy) -> Result<Compiled, CompileFailure> {
        let mut session = self.session().await.map_err(CompileFailure::Unavailable)?;
        let result = session.load(policy).await;
        session.finish();
        match result {
            Ok(Ok(compiled)) => Ok(compiled),
            Ok(Err(e)) => Err(CompileFailure::Policy(e)),
            Err(e) => Err(CompileFailure::Unavailable(e)),
        }
    }

    /// Evaluates every policy on every input. A policy that doesn't compile, fails, or crosses
    /// a limit gets its error in its place; the others are unaffected.
    pub async fn evaluate(
        &self,
        policies: &[SandboxPolicy],
        inputs: Vec<EvalInput>,
    ) -> Result<Outcomes, SandboxUnavailable> {
        let mut session = self.session().await?;
        let mut out = Vec::with_capacity(inputs.len());
        for input in inputs {
            out.push(session.evaluate(policies, input).await?);
        }
        session.finish();
        Ok(out)
    }

    /// A turn with one sandbox process (waiting for one when all are busy), for callers that
    /// evaluate input by input.
    pub async fn session(&self) -> Result<SandboxSession<'_>, SandboxUnavailable> {
        let timeout = self.inner.config.queue_timeout;
        let permit = tokio::time::timeout(timeout, self.inner.permits.acquire())
            .await
            .map_err(|_| {
                SandboxUnavailable(format!(
                    "every policy sandbox process stayed busy for {} s (backtests or tests of \
                     other users); try again shortly",
                    timeout.as_secs()
                ))
            })?
            .map_err(|_| SandboxUnavailable("the sandbox pool is closed".into()))?;
        let process = self.inner.idle.lock().ok().and_then(|mut idle| idle.pop());
        Ok(SandboxSession {
            inner: &self.inner,
            _permit: permit,
            process,
            failed_loads: HashMap::new(),
        })
    }
}

/// Why a compile check failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CompileFailure {
    #[error(transparent)]
    Policy(PolicyError),
    #[error(transparent)]
    Unavailable(SandboxUnavailable),
}

/// One caller's use of one process at a time (a dead one is replaced as needed).
pub struct SandboxSession<'a> {
    inner: &'a Inner,
    _permit: tokio::sync::SemaphorePermit<'a>,
    process: Option<Process>,
    /// Loads that failed in this session, so a policy that kills its process on load (alone,
    /// in a fresh process) is not loaded again for every input.
    failed_loads: HashMap<String, PolicyError>,
}

impl SandboxSession<'_> {
    /// Hands a healthy process back to the pool.
    pub fn finish(mut self) {
        if let Some(mut process) = self.process.take() {
            if process.loaded.len() <= MAX_LOADED {
                // A large reply's buffer is not kept in the pool.
                process.line = String::new();
                if let Ok(mut idle) = self.inner.idle.lock() {
                    idle.push(process);
                }
            }
        }
    }

    async fn process(&mut self) -> Result<&mut Process, SandboxUnavailable> {
        if self.process.is_none() {
            self.process = Some(Process::start(&self.inner.config).await?);
        }
        self.process
            .as_mut()
            .ok_or_else(|| SandboxUnavailable("no process".into()))
    }

    /// Loads `policy` into the current process: its compile result, or `Err` when a process
    /// can't be had at all. A load that kills a process holding other policies is tried again
    /// alone in a fresh one before it counts against the policy: the others' memory may be
    /// what filled the process.
    async fn load(
        &mut self,
        policy: &SandboxPolicy,
    ) -> Result<Result<Compiled, PolicyError>, SandboxUnavailable> {
        if let Some(e) = self.failed_loads.get(&policy.key) {
            return Ok(Err(e.clone()));
        }
        let mut alone = false;
        loop {
            let process = self.process().await?;
            if let Some(compiled) = process.loaded.get(&policy.key) {
                return Ok(Ok(*compiled));
            }
            let shared = !process.loaded.is_empty();
            let request = Request::Load {
                key: policy.key.clone(),
                name: policy.name.clone(),
                rego: policy.rego.clone(),
                config: policy.config.clone(),
            };
            let line = serde_json::to_string(&request)
                .map_err(|e| SandboxUnavailable(format!("could not write a request: {e}")))?;
            let result = match process.ask(&line, LOAD_DEADLINE).await {
                Ok(Reply::Loaded {
                    on_vm,
                    uses_windows,
                }) => {
                    let compiled = Compiled {
                        on_vm,
                        uses_windows,
                    };
                    process.loaded.insert(policy.key.clone(), compiled);
                    return Ok(Ok(compiled));
                }
                Ok(Reply::Failed(e)) => e,
                Ok(Reply::Rejected(reason)) => PolicyError::Evaluation(reason),
                Ok(Reply::Findings(_)) => {
                    PolicyError::Evaluation("the policy sandbox answered out of turn".into())
                }
                Err(stop) => {
                    let e = self.stopped(stop, LOAD_DEADLINE);
                    if shared && !alone {
                        alone = true;
                        self.process = Some(Process::start(&self.inner.config).await?);
                        continue;
                    }
                    e
                }
            };
            self.failed_loads.insert(policy.key.clone(), result.clone());
            return Ok(Err(result));
        }
    }

    /// Evaluates every policy on `input`, one result per policy in order.
    pub async fn evaluate(
        &mut self,
        policies: &[SandboxPolicy],
        input: EvalInput,
    ) -> Result<Vec<Result<Vec<Finding>, PolicyError>>, SandboxUnavailable> {
        let input = match input {
            EvalInput::Trace {
                trace,
                windows,
                budgets,
                spend_anomaly,
            } => Input::Trace {
                trace,
                windows,
                budgets,
                spend_anomaly,
            },
            EvalInput::Document(document) => Input::Document {
                document: Value::from(document),
            },
        };
        let input = serde_json::to_string(&input)
            .map_err(|e| SandboxUnavailable(format!("could not write a request: {e}")))?;
        let deadline = self.inner.config.hard_deadline;
        let mut results: Vec<Result<Vec<Finding>, PolicyError>> =
            Vec::with_capacity(policies.len());
        // Resumes after a process died or was killed, with the policies not yet evaluated.
        while results.len() < policies.len() {
            let rest = &policies[results.len()..];
            // A load that kills the process takes the earlier loads with it: load until one
            // process holds every policy that compiles. Policies that each load alone but not
            // together would take turns forever, so after as many passes as there are
            // policies, those still not loaded are charged: they can't share a process.
            let mut passes = 0;
            loop {
                for policy in rest {
                    // A failed load is remembered in `failed_loads`; it is answered below.
                    let _compiled = self.load(policy).await?;
                }
                self.process().await?;
                let (failed, process) = (&self.failed_loads, &self.process);
                let ready = |key: &String| {
                    failed.contains_key(key)
                        || process.as_ref().is_some_and(|p| p.loaded.contains_key(key))
                };
                let unready: Vec<String> = rest
                    .iter()
                    .filter(|p| !ready(&p.key))
                    .map(|p| p.key.clone())
                    .collect();
                if unready.is_empty() {
                    break;
                }
                passes += 1;
                if passes > rest.len() {
                    let memory = self.inner.config.memory_limit_bytes / (1024 * 1024);
                    for key in unready {
                        self.failed_loads.insert(
                            key,
                            PolicyError::Limit {
                                kind: LimitKind::Memory,
                                message: format!(
                                    "the policy needs so much of the {memory} MiB memory budget \
                                     to compile that it can't share a process with the others"
                                ),
                            },
                        );
                    }
                    break;
                }
            }
            let keys: Vec<&str> = rest
                .iter()
                .filter(|p| !self.failed_loads.contains_key(&p.key))
                .map(|p| p.key.as_str())
                .collect();
            let line = format!(
                r#"{{"op":"evaluate","keys":{},"input":{input}}}"#,
                serde_json::to_string(&keys).unwrap_or_else(|_| "[]".into())
            );
            let process = self.process().await?;
            let shared = process.loaded.len() > 1;
            let sent = keys.is_empty() || process.send(&line).await.is_ok();
            let mut rejected: Option<String> = None;
            for policy in rest {
                if let Some(e) = self.failed_loads.get(&policy.key) {
                    results.push(Err(e.clone()));
                    continue;
                }
                if let Some(reason) = &rejected {
                    results.push(Err(PolicyError::Evaluation(reason.clone())));
                    continue;
                }
                let reply = match (&mut self.process, sent) {
                    (Some(process), true) => process.receive(deadline).await,
                    _ => Err(Stop::Died),
                };
                match reply {
                    Ok(Reply::Findings(findings)) => results.push(Ok(findings)),
                    Ok(Reply::Failed(e)) => results.push(Err(e)),
                    Ok(Reply::Rejected(reason)) => {
                        results.push(Err(PolicyError::Evaluation(reason.clone())));
                        rejected = Some(reason);
                    }
                    Ok(Reply::Loaded { .. }) => results.push(Err(PolicyError::Evaluation(
                        "the policy sandbox answered out of turn".into(),
                    ))),
                    Err(stop) => {
                        let charged = self.stopped(stop, deadline);
                        // Before it counts against the policy, the evaluation runs again
                        // alone in a fresh process: another policy's memory, or a busy
                        // machine, may be what stopped it.
                        let result = if shared {
                            self.alone(policy, &input, deadline).await?
                        } else {
                            Err(charged)
                        };
                        results.push(result);
                        break;
                    }
                }
            }
        }
        Ok(results)
    }

    /// Evaluates one policy on `input` in a fresh process of its own (which stays the
    /// session's process if it survives).
    async fn alone(
        &mut self,
        policy: &SandboxPolicy,
        input: &str,
        deadline: Duration,
    ) -> Result<Result<Vec<Finding>, PolicyError>, SandboxUnavailable> {
        self.process = Some(Process::start(&self.inner.config).await?);
        if let Err(e) = self.load(policy).await? {
            return Ok(Err(e));
        }
        let line = format!(
            r#"{{"op":"evaluate","keys":{},"input":{input}}}"#,
            serde_json::to_string(&[&policy.key]).unwrap_or_else(|_| "[]".into())
        );
        let reply = match self.process().await?.ask(&line, deadline).await {
            Ok(reply) => reply,
            Err(stop) => return Ok(Err(self.stopped(stop, deadline))),
        };
        Ok(match reply {
            Reply::Findings(findings) => Ok(findings),
            Reply::Failed(e) => Err(e),
            Reply::Rejected(reason) => Err(PolicyError::Evaluation(reason)),
            Reply::Loaded { .. } => Err(PolicyError::Evaluation(
                "the policy sandbox answered out of turn".into(),
            )),
        })
    }

    /// The current process stopped answering: kills it (dropping it does, and reaps it) and
    /// says why in the policy's terms.
    fn stopped(&mut self, stop: Stop, deadline: Duration) -> PolicyError {
        // `kill_on_drop`: the child is killed, and tokio reaps it in the background.
        self.process = None;
        let memory = self.inner.config.memory_limit_bytes;
        match stop {
            Stop::Timeout => PolicyError::Limit {
                kind: LimitKind::Time,
                message: format!(
                    "the evaluation ran longer than {} ms (a single built-in call that never \
                     returned to the engine) and was stopped",
                    deadline.as_millis()
                ),
            },
            Stop::Died => PolicyError::Limit {
                kind: LimitKind::Memory,
                message: format!(
                    "the evaluation needed more than its memory budget of {} MiB and was stopped",
                    memory / (1024 * 1024)
                ),
            },
            Stop::TooLarge => PolicyError::Limit {
                kind: LimitKind::Memory,
                message: format!(
                    "the evaluation's findings were larger than {} KiB and were dropped",
                    MAX_REPLY_BYTES / 1024
                ),
            },
        }
    }
}
