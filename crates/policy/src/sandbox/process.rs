//! One sandbox process: started from this binary with its environment cleared and its address
//! space capped, spoken to one line at a time, killed when dropped.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::protocol::{Reply, READY};
use super::*;

/// Why a process stopped answering.
pub(super) enum Stop {
    Timeout,
    Died,
    /// A reply longer than [`MAX_REPLY_BYTES`].
    TooLarge,
}

pub(super) struct Process {
    /// Held for `kill_on_drop`: dropping the process kills the child.
    _child: Child,
    pub(super) stdin: ChildStdin,
    pub(super) stdout: BufReader<ChildStdout>,
    pub(super) line: String,
    pub(super) loaded: HashMap<String, Compiled>,
}

impl Process {
    pub(super) async fn start(config: &SandboxConfig) -> Result<Self, SandboxUnavailable> {
        let mut command = Command::new(&config.program);
        command
            .args(&config.args)
            // Nothing of the server's environment (database URL, keys) reaches a policy.
            .env_clear()
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        limit(&mut command, config.memory_limit_bytes);
        let mut child = command.spawn().map_err(|e| {
            SandboxUnavailable(format!("could not start {}: {e}", config.program.display()))
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(SandboxUnavailable("no pipes to the sandbox process".into()));
        };
        let mut process = Self {
            _child: child,
            stdin,
            stdout: BufReader::new(stdout),
            line: String::new(),
            loaded: HashMap::new(),
        };
        match process.read_line(LOAD_DEADLINE).await {
            Ok(()) if process.line.trim_end() == READY => Ok(process),
            Ok(()) => Err(SandboxUnavailable(format!(
                "{} did not start as a policy sandbox (it said {:?}); it must call \
                 langguard_policy::serve_if_child() first thing",
                config.program.display(),
                process.line.chars().take(80).collect::<String>()
            ))),
            Err(_) => Err(SandboxUnavailable(format!(
                "{} exited before it was ready (is LANGGUARD_POLICY_MEMORY_MB too small to start in?)",
                config.program.display()
            ))),
        }
    }

    pub(super) async fn send(&mut self, line: &str) -> std::io::Result<()> {
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.write_all(b"\n").await?;
        self.stdin.flush().await
    }

    pub(super) async fn ask(&mut self, line: &str, deadline: Duration) -> Result<Reply, Stop> {
        self.send(line).await.map_err(|_| Stop::Died)?;
        self.receive(deadline).await
    }

    pub(super) async fn receive(&mut self, deadline: Duration) -> Result<Reply, Stop> {
        self.read_line(deadline).await?;
        // A whole line that doesn't read as a reply (nested deeper than JSON readers go) is
        // that evaluation's failure; the process is still in step.
        Ok(
            serde_json::from_str(self.line.trim_end()).unwrap_or_else(|e| {
                Reply::Failed(PolicyError::Evaluation(format!(
                    "the policy's findings could not be read ({e})"
                )))
            }),
        )
    }

    /// Reads one line into `self.line`, at most [`MAX_REPLY_BYTES`] of it.
    pub(super) async fn read_line(&mut self, deadline: Duration) -> Result<(), Stop> {
        self.line.clear();
        let mut limited = (&mut self.stdout).take(MAX_REPLY_BYTES);
        match tokio::time::timeout(deadline, limited.read_line(&mut self.line)).await {
            Err(_) => Err(Stop::Timeout),
            Ok(Ok(0)) | Ok(Err(_)) => Err(Stop::Died),
            Ok(Ok(_)) if !self.line.ends_with('\n') => Err(Stop::TooLarge),
            Ok(Ok(_)) => Ok(()),
        }
    }
}

/// Caps the child's address space and has it die with this process.
#[cfg(target_os = "linux")]
fn limit(command: &mut Command, memory: u64) {
    // SAFETY: between fork and exec only async-signal-safe system calls run: setrlimit and
    // prctl, on values copied in before the fork.
    unsafe {
        command.pre_exec(move || {
            let cap = libc::rlimit {
                rlim_cur: memory as libc::rlim_t,
                rlim_max: memory as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &cap) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn limit(_command: &mut Command, _memory: u64) {}
