//! The policy sandbox against the policies that used to take the server down: each one is
//! stopped with a limit error, the others on the same input are unaffected, and the sandbox
//! goes on working. This test binary is its own sandbox process (see the constructor).

use std::time::{Duration, Instant};

use langguard_policy::{
    CompileFailure, EvalInput, LimitKind, PolicyError, Sandbox, SandboxConfig, SandboxPolicy,
};
use serde_json::json;

#[ctor::ctor(unsafe)]
fn policy_sandbox() {
    langguard_policy::serve_if_child();
}

fn sandbox(memory_mib: u64, hard_deadline: Duration) -> Sandbox {
    let mut config = SandboxConfig::current_exe(memory_mib);
    config.hard_deadline = hard_deadline;
    Sandbox::new(config)
}

fn policy(name: &str, body: &str) -> SandboxPolicy {
    let rego = format!("package langguard.{name}\nimport rego.v1\n{body}\n");
    SandboxPolicy::new(name, &rego, "{}")
}

/// Allocates `input.config.n` numbers at once (a terabyte for n = 1e12).
fn range_bomb() -> SandboxPolicy {
    policy(
        "range_bomb",
        r#"violation contains r if {
    count(numbers.range(1, input.config.n)) > 0
    r := {"type": "never", "message": "unreachable"}
}"#,
    )
}

fn always() -> SandboxPolicy {
    policy(
        "always",
        r#"violation contains r if {
    r := {"type": "seen", "message": sprintf("model %v", [input.model])}
}"#,
    )
}

fn document(n: f64) -> EvalInput {
    EvalInput::Document(json!({"model": "gpt-4o", "config": {"n": n}}))
}

fn limit_kind(result: &Result<Vec<langguard_policy::Finding>, PolicyError>) -> Option<LimitKind> {
    match result {
        Err(PolicyError::Limit { kind, .. }) => Some(*kind),
        _ => None,
    }
}

#[tokio::test]
async fn a_terabyte_allocation_is_a_memory_limit_error_and_the_rest_carry_on() {
    let sandbox = sandbox(256, Duration::from_secs(5));
    // The bomb between two others: the one before it answered before the process died, the
    // one after it runs in a fresh process, on the same input.
    let policies = [always(), range_bomb(), always()];
    let out = sandbox
        .evaluate(&policies, vec![document(1e12), document(3.0)])
        .await
        .expect("the sandbox runs");
    assert_eq!(
        out[0][0].as_ref().expect("before the bomb")[0].message,
        "model gpt-4o"
    );
    assert_eq!(
        limit_kind(&out[0][1]),
        Some(LimitKind::Memory),
        "{:?}",
        out[0][1]
    );
    let message = out[0][1].as_ref().expect_err("limit").to_string();
    assert!(message.contains("256 MiB"), "{message}");
    assert_eq!(
        out[0][2].as_ref().expect("after the bomb")[0].message,
        "model gpt-4o"
    );
    // And the next input is evaluated normally, the bomb included.
    assert_eq!(out[1][1].as_ref().expect("small range").len(), 1);
    assert_eq!(out[1][2].as_ref().expect("runs").len(), 1);
}

#[tokio::test]
async fn one_long_built_in_call_is_killed_at_the_hard_deadline() {
    // Within the memory cap, numbers.range(1, 2e7) runs far longer than 100 ms without
    // returning to the engine's timer.
    let sandbox = sandbox(4096, Duration::from_millis(100));
    let started = Instant::now();
    let out = sandbox
        .evaluate(&[range_bomb(), always()], vec![document(2e7)])
        .await
        .expect("the sandbox runs");
    assert_eq!(
        limit_kind(&out[0][0]),
        Some(LimitKind::Time),
        "{:?}",
        out[0][0]
    );
    assert!(out[0][1].is_ok(), "{:?}", out[0][1]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_loop_is_stopped_by_the_engine_timer() {
    let looping = policy(
        "looping",
        r#"violation contains r if {
    xs := numbers.range(1, 100000)
    count([1 | some x in xs; some y in xs; x == y + 1000000000]) > 0
    r := {"type": "never", "message": "unreachable"}
}"#,
    );
    let sandbox = sandbox(1024, Duration::from_secs(5));
    let out = sandbox
        .evaluate(&[looping], vec![document(1.0)])
        .await
        .expect("the sandbox runs");
    let err = out[0][0].as_ref().expect_err("stopped");
    assert!(err.is_limit(), "{err:?}");
    assert!(err.to_string().contains("500 ms"), "{err}");
}

#[tokio::test]
async fn a_policy_that_explodes_on_an_empty_input_fails_its_compile_check() {
    let bomb = policy(
        "eager_bomb",
        r#"big := numbers.range(1, 1000000000000)
violation contains r if {
    count(big) > 0
    r := {"type": "never", "message": "unreachable"}
}"#,
    );
    let sandbox = sandbox(256, Duration::from_secs(5));
    match sandbox.compile(&bomb).await {
        Err(CompileFailure::Policy(e)) => assert!(e.is_limit(), "{e:?}"),
        other => panic!("expected a limit error, got {other:?}"),
    }
    // Ordinary compile errors still come back as they are.
    let broken = SandboxPolicy::new(
        "broken",
        "package langguard.broken\nviolation contains",
        "{}",
    );
    assert!(matches!(
        sandbox.compile(&broken).await,
        Err(CompileFailure::Policy(PolicyError::Compile { .. }))
    ));
    let good = sandbox.compile(&always()).await.expect("compiles");
    assert!(!good.uses_windows);
}

#[tokio::test]
async fn a_missing_sandbox_program_is_the_servers_problem_not_the_policys() {
    let mut config = SandboxConfig::current_exe(256);
    config.program = "/nonexistent/langguard".into();
    let sandbox = Sandbox::new(config);
    let err = sandbox
        .evaluate(&[always()], vec![document(1.0)])
        .await
        .expect_err("no program");
    assert!(err.to_string().contains("could not start"), "{err}");
}

#[tokio::test]
async fn an_input_too_deep_to_hand_over_is_an_evaluation_error_for_each_policy_not_a_limit() {
    let mut deep = json!("bottom");
    for _ in 0..126 {
        deep = json!([deep]);
    }
    let sandbox = sandbox(256, Duration::from_secs(5));
    let started = Instant::now();
    let policies = [always(), always(), range_bomb()];
    let out = sandbox
        .evaluate(
            &policies,
            vec![EvalInput::Document(json!({"model": "m", "deep": deep}))],
        )
        .await
        .expect("the sandbox runs");
    for result in &out[0] {
        match result {
            Err(PolicyError::Evaluation(message)) => {
                assert!(message.contains("could not be handed"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    // No policy waited out a deadline: the sandbox said at once that it could not read it.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // And it is still in step for the next input.
    let out = sandbox
        .evaluate(&policies, vec![document(3.0)])
        .await
        .expect("runs");
    assert!(out[0].iter().all(Result::is_ok), "{out:?}");
}

#[tokio::test]
async fn findings_larger_than_the_reply_cap_are_a_memory_limit() {
    let chatty = policy(
        "chatty",
        r#"violation contains r if {
    parts := [s | some i in numbers.range(1, 3000); s := "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"]
    r := {"type": "big", "message": concat("", parts)}
}"#,
    );
    let sandbox = sandbox(1024, Duration::from_secs(5));
    let out = sandbox
        .evaluate(&[chatty, always()], vec![document(1.0)])
        .await
        .expect("the sandbox runs");
    assert_eq!(
        limit_kind(&out[0][0]),
        Some(LimitKind::Memory),
        "{:?}",
        out[0][0]
    );
    let message = out[0][0].as_ref().expect_err("limit").to_string();
    assert!(message.contains("larger than 64 KiB"), "{message}");
    assert!(out[0][1].is_ok(), "{:?}", out[0][1]);
}
