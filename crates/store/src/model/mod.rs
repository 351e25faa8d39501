//! Domain records the store keeps. Times are Unix milliseconds (UTC) throughout: they sort,
//! compare and bucket cheaply, and every caller converts at its edge.

mod access;
mod details;
mod integrations;
mod interactions;
mod metrics;
mod traces;

pub use access::*;
pub use details::*;
pub use integrations::*;
pub use interactions::*;
pub use metrics::*;
pub use traces::*;
