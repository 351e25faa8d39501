//! `langguard bench policies`: evaluations per second on one core with every built-in policy
//! enabled, on synthetic interactions (the emulator's traffic, normalised as the importer does)
//! with request and response bodies, some carrying PII or a credential.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use langguard_cf_emulator::{synthetic_log_pages, SeedSpec};
use langguard_cloudflare::types::{Envelope, GatewayLog};
use langguard_policy::{
    config_value, input_document, trace_document, CompiledPolicy, EvalInput, RegoValue, Sandbox,
    SandboxConfig, SandboxPolicy, SpendWindow, BUILTINS,
};
use langguard_pricing::Pricer;
use langguard_store::Interaction;
use langguard_sync::normalize;

use crate::format;

const PROMPTS: [&str; 6] = [
    "Summarise this support ticket in two sentences: the export button does nothing since Tuesday.",
    "Write a SQL query that returns the ten most active customers last month.",
    "Translate 'Where is the train station?' into German and French.",
    "Customer jane.doe@example.com asks why her invoice doubled; draft a reply.",
    "Refund card 4111 1111 1111 1111 for order 1182, then confirm by phone +1 415-555-0134.",
    "Debug this: client = OpenAI(api_key='sk-proj-abcdefghijklmnopqrstuvwx1234')",
];

/// Every built-in, enabled, with the config a customer would give it (as JSON text).
fn builtin_configs() -> anyhow::Result<Vec<(&'static langguard_policy::Builtin, String)>> {
    BUILTINS
        .iter()
        .map(|b| {
            let mut config: serde_json::Value = serde_json::from_str(b.config)?;
            if let Some(c) = config.as_object_mut() {
                match b.id {
                    "budget-overrun" => {
                        c.insert("budget_usd".into(), 500.into());
                    }
                    "approved-model-version" => {
                        c.insert(
                            "approved_models".into(),
                            serde_json::json!(["gpt-4o*", "claude-*"]),
                        );
                    }
                    "latency-health-threshold" => {
                        c.insert("max_context_tokens".into(), 8_000.into());
                    }
                    _ => {}
                }
            }
            Ok((b, config.to_string()))
        })
        .collect()
}

/// The built-ins compiled in this process (what the sandbox runs inside its own).
fn enabled_builtins() -> anyhow::Result<Vec<(CompiledPolicy, RegoValue)>> {
    builtin_configs()?
        .into_iter()
        .map(|(b, config)| {
            let policy = CompiledPolicy::compile(&b.name(), b.rego)
                .with_context(|| format!("compiling {}", b.id))?;
            Ok((policy, config_value(&config)))
        })
        .collect()
}

pub async fn run(count: usize) -> anyhow::Result<ExitCode> {
    let interactions = synthetic(count)?;
    let bodies: Vec<(String, String)> = (0..count)
        .map(|n| {
            let prompt = PROMPTS[n % PROMPTS.len()];
            (
                serde_json::json!({"model": "gpt-4o", "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": prompt}]})
                .to_string(),
                serde_json::json!({"choices": [{"message": {"role": "assistant",
                    "content": "Here is a concise answer to your request."}}]})
                .to_string(),
            )
        })
        .collect();
    let mut policies = enabled_builtins()?;
    let windows = [
        SpendWindow {
            minutes: 60,
            cost_usd: 12.5,
            requests: 900,
            tokens: 400_000,
        },
        SpendWindow {
            minutes: 1440,
            cost_usd: 310.0,
            requests: 21_000,
            tokens: 9_000_000,
        },
    ];
    println!(
        "bench policies: {} interactions × {} built-in policies, one thread",
        format::count(count as i64),
        policies.len()
    );
    let mut per_policy = vec![Duration::ZERO; policies.len()];
    let mut found = vec![0usize; policies.len()];
    let started = Instant::now();
    for (i, (request, response)) in interactions.iter().zip(&bodies) {
        let trace = trace_document(i, Some((request, response)));
        for (k, (policy, config)) in policies.iter_mut().enumerate() {
            let t = Instant::now();
            let spend = policy.uses_windows().then_some(&windows[..]);
            let findings = policy
                .evaluate(input_document(&trace, config, spend))
                .with_context(|| format!("evaluating {}", policy.name()))?;
            per_policy[k] += t.elapsed();
            found[k] += findings.len();
        }
    }
    let took = started.elapsed();
    let evaluations = count * policies.len();
    println!(
        "{:>12} evaluations/s on one core ({} evaluations in {:.2} s, input documents included)",
        format::count((evaluations as f64 / took.as_secs_f64()) as i64),
        format::count(evaluations as i64),
        took.as_secs_f64()
    );
    for (k, (policy, _)) in policies.iter().enumerate() {
        println!(
            "{:>10.1} µs  {:<30} {:>8} violations",
            per_policy[k].as_secs_f64() * 1e6 / count as f64,
            policy.name(),
            format::count(found[k] as i64)
        );
    }
    sandboxed(&interactions, &bodies, &windows, &found).await?;
    Ok(ExitCode::SUCCESS)
}

/// The same evaluations as the policy worker runs them: in a sandbox process (the input
/// documents travel as JSON, each result comes back as a line), to set beside the in-process
/// figure above.
async fn sandboxed(
    interactions: &[Interaction],
    bodies: &[(String, String)],
    windows: &[SpendWindow],
    expected: &[usize],
) -> anyhow::Result<()> {
    let sandbox = Sandbox::new(
        SandboxConfig::current_exe(langguard_policy::DEFAULT_MEMORY_LIMIT_MIB).max_processes(1),
    );
    let policies: Vec<SandboxPolicy> = builtin_configs()?
        .into_iter()
        .map(|(b, config)| SandboxPolicy::new(&b.name(), b.rego, &config))
        .collect();
    let mut session = sandbox.session().await?;
    // The process starts and compiles every policy once, as the worker's does.
    let warm = session
        .evaluate(
            &policies,
            EvalInput::Trace {
                trace: trace_document(&interactions[0], None),
                windows: None,
                budgets: None,
                spend_anomaly: None,
            },
        )
        .await?;
    anyhow::ensure!(
        warm.iter().all(Result::is_ok),
        "the sandbox could not evaluate: {warm:?}"
    );
    let mut found = vec![0usize; policies.len()];
    let started = Instant::now();
    for (i, (request, response)) in interactions.iter().zip(bodies) {
        let results = session
            .evaluate(
                &policies,
                EvalInput::Trace {
                    trace: trace_document(i, Some((request, response))),
                    windows: Some(windows.to_vec()),
                    budgets: None,
                    spend_anomaly: None,
                },
            )
            .await?;
        for (k, result) in results.into_iter().enumerate() {
            found[k] += result
                .map_err(|e| anyhow::anyhow!("{}: {e}", policies[k].name()))?
                .len();
        }
    }
    let took = started.elapsed();
    session.finish();
    anyhow::ensure!(
        found == expected,
        "the sandbox found {found:?} where in-process evaluation found {expected:?}"
    );
    let evaluations = interactions.len() * policies.len();
    println!(
        "{:>12} evaluations/s in the policy sandbox, as the worker runs them ({} evaluations in {:.2} s; the same findings)",
        format::count((evaluations as f64 / took.as_secs_f64()) as i64),
        format::count(evaluations as i64),
        took.as_secs_f64()
    );
    Ok(())
}

/// The emulator's synthetic logs, normalised as the importer does.
fn synthetic(count: usize) -> anyhow::Result<Vec<Interaction>> {
    let now = time::OffsetDateTime::now_utc();
    let spec = SeedSpec {
        count,
        from: now - time::Duration::hours(24),
        to: now,
        seed: 11,
    };
    let pricer = Pricer::shared();
    let mut out = Vec::with_capacity(count);
    for page in synthetic_log_pages(&spec, 50) {
        let page: Envelope<Vec<GatewayLog>> = serde_json::from_slice(&page)?;
        for row in page.result.unwrap_or_default() {
            out.push(Interaction {
                id: out.len() as i64 + 1,
                integration_id: 1,
                gateway: "bench".into(),
                log: normalize(row, pricer)?,
            });
        }
    }
    Ok(out)
}
