//! One module per top-level command.

pub mod bench;
pub mod demo;
pub mod integrations;
pub mod metrics;
pub mod sync;
pub mod traces;

/// Prints exactly one JSON document on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
