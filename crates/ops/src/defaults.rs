//! The defaults a new integration gets, named once for the API, the web UI and the CLI.

/// How often an integration syncs, in minutes (DESIGN: every 15 minutes).
pub const SYNC_INTERVAL_MINUTES: i64 = 15;
/// Days of history the first sync imports.
pub const LOOKBACK_DAYS: i64 = 7;
/// Most trace violations a trace's detail lists.
pub const TRACE_VIOLATIONS: u32 = 1_000;
