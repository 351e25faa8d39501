//! The sandbox process: reads requests on stdin, answers on stdout, holds the compiled
//! policies. It runs nothing but policies, so when one allocates without bound or spins in a
//! built-in, this process dies or is killed and the server carries on.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use regorus::Value;

use super::protocol::{Input, Reply, Request, READY};
use crate::compile::{CompiledPolicy, PolicyError};
use crate::input::input_document_with;

struct Loaded {
    policy: CompiledPolicy,
    config: Value,
}

/// Serves requests until stdin closes; returns the process's exit code.
pub(crate) fn run() -> i32 {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if writeln!(out, "{READY}").and_then(|()| out.flush()).is_err() {
        return 1;
    }
    let mut loaded: HashMap<String, Loaded> = HashMap::new();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { return 1 };
        // Each reply is written and flushed as soon as it exists: the server attributes a
        // crash to the first reply missing, so none may wait for a later evaluation.
        let mut reply = |reply: Reply| {
            serde_json::to_writer(&mut out, &reply)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
        };
        let written = match serde_json::from_str::<Request>(&line) {
            Ok(request) => handle(&mut loaded, request, &mut reply),
            Err(e) => reply(Reply::Rejected(format!(
                "the input could not be handed to the policy ({e})"
            ))),
        };
        if written.is_err() {
            return 1;
        }
    }
    0
}

fn handle(
    loaded: &mut HashMap<String, Loaded>,
    request: Request,
    reply: &mut impl FnMut(Reply) -> std::io::Result<()>,
) -> std::io::Result<()> {
    match request {
        Request::Load {
            key,
            name,
            rego,
            config,
        } => reply(match CompiledPolicy::compile(&name, &rego) {
            Ok(policy) => {
                let answer = Reply::Loaded {
                    on_vm: policy.on_vm(),
                    uses_windows: policy.uses_windows(),
                };
                loaded.insert(key, Loaded { policy, config });
                answer
            }
            Err(e) => Reply::Failed(e),
        }),
        Request::Evaluate { keys, input } => {
            for key in &keys {
                let Some(entry) = loaded.get_mut(key) else {
                    reply(Reply::Failed(PolicyError::Evaluation(
                        "the policy sandbox was asked for a policy it has not loaded".into(),
                    )))?;
                    continue;
                };
                let document = match &input {
                    Input::Trace {
                        trace,
                        windows,
                        budgets,
                        spend_anomaly,
                    } => input_document_with(
                        trace,
                        &entry.config,
                        windows.as_deref().filter(|_| entry.policy.uses_windows()),
                        budgets.as_deref(),
                        spend_anomaly.as_ref(),
                    ),
                    Input::Document { document } => document.clone(),
                };
                reply(match entry.policy.evaluate(document) {
                    Ok(findings) => Reply::Findings(findings),
                    Err(e) => Reply::Failed(e),
                })?;
            }
            Ok(())
        }
    }
}
