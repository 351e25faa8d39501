//! One module per top-level command.

pub mod backup;
pub mod bench;
pub mod bench_alerts;
pub mod bench_people;
pub mod bench_policies;
pub mod bench_push;
pub mod bench_queries;
pub mod bench_sync;
pub mod demo;
pub mod dev;
pub mod integrations;
pub mod metrics;
pub mod secrets;
pub mod serve;
pub mod sync;
pub mod synthetic;
pub mod traces;
pub mod users;

/// Prints exactly one JSON document on stdout. A closed stdout (`… --json | head`) is an
/// error to report, not a panic.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}
