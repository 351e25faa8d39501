//! Compiling a policy's Rego and evaluating it on one input document.

use std::num::NonZeroU32;
use std::time::Duration;

use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

/// Longest a single evaluation may run before it counts as an evaluation error: a policy that
/// loops must not stall the worker.
pub const EVALUATION_LIMIT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum PolicyError {
    #[error(
        "policy names are lowercase letters, digits and underscores, starting with a letter \
         (e.g. pii_detection), at most 64 characters"
    )]
    InvalidName,
    /// The Rego doesn't parse or compile; `message` names the line and column.
    #[error("{message}")]
    Compile {
        message: String,
        line: Option<u32>,
        column: Option<u32>,
    },
    #[error("the Rego declares package {found}, but a policy named {name} must declare `package langguard.{name}`")]
    PackageMismatch { name: String, found: String },
    #[error("the Rego has no `violation` rule: declare `violation contains result if {{ … }}`")]
    NoViolationRule,
    #[error("config must be a JSON object")]
    InvalidConfig,
    /// The policy compiled but evaluating it failed (a runtime error, a timeout, or a result
    /// that isn't a set of findings).
    #[error("{0}")]
    Evaluation(String),
    /// The evaluation was stopped for using more time or memory than a policy may: the policy
    /// (not the interaction) is at fault, so repeated limit failures quarantine it.
    #[error("{message}")]
    Limit { kind: LimitKind, message: String },
}

/// Which bound an evaluation crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Longer than the evaluation time limit (a loop, or one long built-in call).
    Time,
    /// More memory than the evaluation budget (the sandbox process died allocating).
    Memory,
}

impl PolicyError {
    /// Whether the policy crossed a time or memory bound (what quarantine counts).
    pub fn is_limit(&self) -> bool {
        matches!(self, PolicyError::Limit { .. })
    }
}

/// Checks a policy name: the Rego package is `langguard.<name>`.
pub fn validate_name(name: &str) -> Result<(), PolicyError> {
    let mut chars = name.chars();
    let ok = name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(PolicyError::InvalidName)
    }
}

/// The policy name a Rego text declares (`package langguard.<name>`), if it declares one.
pub fn declared_name(rego: &str) -> Option<String> {
    rego.lines().find_map(|l| {
        l.trim()
            .strip_prefix("package ")
            .and_then(|p| p.trim().strip_prefix("langguard."))
            .map(|n| n.trim().to_string())
    })
}

/// One violation a policy reported.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    /// The result's `type`.
    pub kind: String,
    pub message: String,
    /// The whole result object (type, message and evidence keys).
    pub result: serde_json::Value,
}

/// How a compiled policy runs: regorus's bytecode VM (measured 3–5× faster than its tree-walking
/// interpreter on the built-ins) or the interpreter. The VM quietly makes some runtime errors
/// undefined (a rule with two values, say) where the interpreter raises them, and an error must
/// never read as "no violation" — so the VM runs only the built-ins we ship, whose results on
/// both engines are checked equal by tests, and every other policy runs on the interpreter.
enum Runner {
    Vm(Box<RegoVM>),
    Interpreter(Box<Engine>),
}

/// A policy ready to evaluate. Each holds its own engine, so one policy can never see another's
/// rules; clone it per thread (a clone rebuilds its VM from the shared program).
pub struct CompiledPolicy {
    name: String,
    rule: String,
    uses_windows: bool,
    /// What the VM is built from (kept for clones).
    program: Option<(regorus::CompiledPolicy, Arc<Program>)>,
    engine: Engine,
    runner: Runner,
}

impl Clone for CompiledPolicy {
    fn clone(&self) -> Self {
        let runner = match &self.program {
            Some((compiled, program)) => vm_for(compiled, program)
                .map(|vm| Runner::Vm(Box::new(vm)))
                .unwrap_or_else(|_| Runner::Interpreter(Box::new(self.engine.clone()))),
            None => Runner::Interpreter(Box::new(self.engine.clone())),
        };
        Self {
            name: self.name.clone(),
            rule: self.rule.clone(),
            uses_windows: self.uses_windows,
            program: self.program.clone(),
            engine: self.engine.clone(),
            runner,
        }
    }
}

fn vm_for(compiled: &regorus::CompiledPolicy, program: &Arc<Program>) -> anyhow::Result<RegoVM> {
    let mut vm = RegoVM::new_with_policy(compiled.clone());
    vm.load_program(program.clone());
    vm.set_data(Value::new_object())?;
    vm.set_execution_timer_config(Some(timer()));
    // A failing built-in (divide by zero, a bad regex) is an evaluation error, never a quiet
    // "undefined" that would read as "no violation".
    vm.set_strict_builtin_errors(true);
    Ok(vm)
}

fn timer() -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit: EVALUATION_LIMIT,
        check_interval: NonZeroU32::MIN.saturating_add(255),
    }
}

impl std::fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPolicy")
            .field("name", &self.name)
            .field("vm", &matches!(self.runner, Runner::Vm(_)))
            .finish_non_exhaustive()
    }
}

/// regorus reports `--> file:line:col`, a source excerpt, then `error: …`.
fn compile_error(text: &str) -> PolicyError {
    let location = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .and_then(|loc| {
            let mut parts = loc.rsplitn(3, ':');
            let column = parts.next()?.trim().parse::<u32>().ok()?;
            let line = parts.next()?.trim().parse::<u32>().ok()?;
            Some((line, column))
        });
    let reason = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text))
        .trim()
        .to_string();
    match location {
        Some((line, column)) => PolicyError::Compile {
            message: format!("line {line}, column {column}: {reason}"),
            line: Some(line),
            column: Some(column),
        },
        None => PolicyError::Compile {
            message: reason,
            line: None,
            column: None,
        },
    }
}

impl CompiledPolicy {
    /// Compiles `rego` as the policy `name`, on the VM when it is a shipped built-in's text.
    pub fn compile(name: &str, rego: &str) -> Result<Self, PolicyError> {
        let shipped = crate::BUILTINS.iter().any(|b| b.rego == rego);
        Self::compile_for(name, rego, shipped)
    }

    /// Compiles `rego` as the policy `name`; `vm` asks for the bytecode VM. Rego v1 (`import rego.v1`, `contains`/`if`) is the
    /// norm; a policy in the legacy v0 syntax is accepted when only v0 parses it.
    pub fn compile_for(name: &str, rego: &str, vm: bool) -> Result<Self, PolicyError> {
        validate_name(name)?;
        let file = format!("{name}.rego");
        let mut engine = Engine::new();
        let package = match engine.add_policy(file.clone(), rego.to_string()) {
            Ok(package) => package,
            Err(v1_error) => {
                let mut legacy = Engine::new();
                legacy.set_rego_v0(true);
                match legacy.add_policy(file, rego.to_string()) {
                    Ok(package) => {
                        engine = legacy;
                        package
                    }
                    Err(_) => return Err(compile_error(&v1_error.to_string())),
                }
            }
        };
        let expected = format!("data.langguard.{name}");
        if package != expected {
            return Err(PolicyError::PackageMismatch {
                name: name.to_string(),
                found: package.trim_start_matches("data.").to_string(),
            });
        }
        engine.set_execution_timer_config(timer());
        engine.set_strict_builtin_errors(true);
        let rule = format!("{expected}.violation");
        // Evaluating once on an empty input compiles the rules and surfaces what only the
        // compiler sees (unknown functions, a missing `violation` rule); runtime errors from
        // the empty input itself are not the author's fault and are left for real inputs.
        engine.set_input(Value::new_object());
        if let Err(e) = engine.eval_rule(rule.clone()) {
            let text = e.to_string();
            if text.contains("not a valid rule path") {
                return Err(PolicyError::NoViolationRule);
            }
            if text.contains("unknown function") || text.contains("undefined function") {
                return Err(compile_error(&text));
            }
            // A policy that can't finish even on an empty input will not on a real one.
            if let err @ PolicyError::Limit { .. } = evaluation_error(&text) {
                return Err(err);
            }
        }
        let program = vm
            .then(|| engine.compile_with_entrypoint(&rule.as_str().into()).ok())
            .flatten()
            .and_then(|compiled| {
                let program = Compiler::compile_from_policy(&compiled, &[rule.as_str()]).ok()?;
                Some((compiled, program))
            });
        let runner = match &program {
            Some((compiled, program)) => match vm_for(compiled, program) {
                Ok(vm) => Runner::Vm(Box::new(vm)),
                Err(_) => Runner::Interpreter(Box::new(engine.clone())),
            },
            None => Runner::Interpreter(Box::new(engine.clone())),
        };
        Ok(Self {
            name: name.to_string(),
            rule,
            uses_windows: rego.contains("input.traces"),
            program,
            engine,
            runner,
        })
    }

    /// Whether the policy runs on the bytecode VM (the interpreter otherwise).
    pub fn on_vm(&self) -> bool {
        matches!(self.runner, Runner::Vm(_))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the Rego reads `input.traces` (rolling spend windows are computed only then).
    pub fn uses_windows(&self) -> bool {
        self.uses_windows
    }

    /// Evaluates the policy on a whole input document.
    pub fn evaluate(&mut self, input: Value) -> Result<Vec<Finding>, PolicyError> {
        let value = match &mut self.runner {
            Runner::Vm(vm) => {
                vm.set_input(input);
                vm.execute_entry_point_by_name(&self.rule)
                    .map_err(|e| evaluation_error(&e.to_string()))?
            }
            Runner::Interpreter(engine) => {
                engine.set_input(input);
                engine
                    .eval_rule(self.rule.clone())
                    .map_err(|e| evaluation_error(&e.to_string()))?
            }
        };
        let items: Vec<Value> = match &value {
            Value::Set(set) => set.iter().cloned().collect(),
            Value::Array(items) => items.iter().cloned().collect(),
            // A `violation` that is an object keyed by id (legacy partial objects).
            Value::Object(map) => map.values().cloned().collect(),
            Value::Undefined => {
                return Err(PolicyError::Evaluation(
                    "the violation rule is undefined for this input".into(),
                ))
            }
            other => {
                return Err(PolicyError::Evaluation(format!(
                    "violation must be a set of results, not {}",
                    kind_of(other)
                )))
            }
        };
        items.into_iter().map(|v| self.finding(v)).collect()
    }

    /// Evaluates the policy on an input given as JSON (the API's Test button).
    pub fn evaluate_json(&mut self, input: serde_json::Value) -> Result<Vec<Finding>, PolicyError> {
        self.evaluate(Value::from(input))
    }

    fn finding(&self, value: Value) -> Result<Finding, PolicyError> {
        let result = serde_json::to_value(&value)
            .map_err(|e| PolicyError::Evaluation(format!("a result isn't JSON: {e}")))?;
        let text = |key: &str| result.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let kind = text("type").unwrap_or_else(|| "violation".to_string());
        let message = text("message")
            .or_else(|| text("msg"))
            .or_else(|| result.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{} flagged this interaction", self.name));
        let result = match result {
            serde_json::Value::Object(_) => result,
            other => serde_json::json!({"type": kind, "message": message, "value": other}),
        };
        Ok(Finding {
            kind,
            message,
            result,
        })
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        _ => "another value",
    }
}

/// An evaluation failure as a `PolicyError`: regorus's own timer is a time limit, anything
/// else an evaluation error.
fn evaluation_error(text: &str) -> PolicyError {
    if text.contains("exceeded time limit") {
        return PolicyError::Limit {
            kind: LimitKind::Time,
            message: format!(
                "the evaluation ran longer than its limit of {} ms and was stopped",
                EVALUATION_LIMIT.as_millis()
            ),
        };
    }
    PolicyError::Evaluation(evaluation_message(text))
}

/// regorus errors carry a source excerpt; the first `error:` line is what a person needs.
fn evaluation_message(text: &str) -> String {
    let location = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .map(|l| l.trim().to_string());
    let reason = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text))
        .trim();
    match location {
        Some(at) => format!("{reason} (at {at})"),
        None => reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW: &str = r#"package langguard.slow
import rego.v1
violation contains result if {
    input.latency > object.get(input.config, "max", 100)
    result := {"type": "slow", "message": sprintf("took %v", [input.latency]), "latency": input.latency}
}
"#;

    fn input(json: &str) -> Value {
        Value::from_json_str(json).expect("json")
    }

    #[test]
    fn the_package_names_the_policy() {
        assert_eq!(
            declared_name("# x\npackage langguard.pii_check\nimport rego.v1\n"),
            Some("pii_check".into())
        );
        assert_eq!(declared_name("package other.thing\n"), None);
    }

    #[test]
    fn a_policy_compiles_and_reports_its_findings() {
        let mut p = CompiledPolicy::compile("slow", SLOW).expect("compiles");
        let found = p
            .evaluate(input(r#"{"latency": 500, "config": {}}"#))
            .expect("evaluates");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, "slow");
        assert_eq!(found[0].message, "took 500");
        assert_eq!(found[0].result["latency"], 500);
        assert!(p
            .evaluate(input(r#"{"latency": 500, "config": {"max": 1000}}"#))
            .expect("evaluates")
            .is_empty());
    }

    #[test]
    fn broken_rego_is_refused_with_line_and_column() {
        let err = CompiledPolicy::compile(
            "broken",
            "package langguard.broken\nimport rego.v1\nviolation contains r if {\n  r := 1 +\n}\n",
        )
        .expect_err("broken");
        match err {
            PolicyError::Compile {
                line,
                column,
                message,
            } => {
                // The parser stops on line 4 or 5 of the broken rule, depending on its reading.
                assert!(matches!(line, Some(4 | 5)), "{message}");
                assert!(column.is_some());
                assert!(
                    message.starts_with(&format!("line {}, column", line.unwrap_or(0))),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_package_must_match_the_name() {
        let err = CompiledPolicy::compile("other", SLOW).expect_err("mismatch");
        assert_eq!(
            err,
            PolicyError::PackageMismatch {
                name: "other".into(),
                found: "langguard.slow".into()
            }
        );
        assert_eq!(
            CompiledPolicy::compile("Bad-Name", SLOW).expect_err("name"),
            PolicyError::InvalidName
        );
        assert_eq!(
            CompiledPolicy::compile(
                "quiet",
                "package langguard.quiet\nimport rego.v1\nallow := true\n"
            )
            .expect_err("no rule"),
            PolicyError::NoViolationRule
        );
    }

    #[test]
    fn legacy_v0_policies_still_run() {
        let mut p = CompiledPolicy::compile(
            "legacy",
            "package langguard.legacy\nviolation[result] {\n  input.x > 1\n  result := {\"policy\": \"legacy\", \"severity\": \"low\", \"message\": \"x too big\"}\n}\n",
        )
        .expect("v0 compiles");
        let found = p.evaluate(input(r#"{"x": 2}"#)).expect("evaluates");
        assert_eq!(found[0].message, "x too big");
        assert_eq!(found[0].kind, "violation");
    }

    #[test]
    fn runtime_errors_are_errors_not_silence() {
        // Two values for one complete rule is an error in Rego, whatever the engine.
        let mut p = CompiledPolicy::compile(
            "conflict",
            "package langguard.conflict\nimport rego.v1\nlevel := \"a\" if input.n > 0\nlevel := \"b\" if input.n > 1\nviolation contains r if {\n  r := {\"type\": level, \"message\": \"m\"}\n}\n",
        )
        .expect("compiles");
        assert_eq!(
            p.evaluate(input(r#"{"n": 1}"#)).expect("one value").len(),
            1
        );
        let err = p.evaluate(input(r#"{"n": 2}"#)).expect_err("conflict");
        assert!(matches!(err, PolicyError::Evaluation(_)), "{err}");
    }

    #[test]
    fn the_builtins_run_on_the_vm() {
        for b in crate::BUILTINS {
            let p = CompiledPolicy::compile(&b.name(), b.rego).expect("compiles");
            assert!(p.on_vm(), "{} fell back to the interpreter", b.id);
        }
    }
}
