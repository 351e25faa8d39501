//! Trace Explorer queries: filters, sorts and keyset pages.

use serde::{Deserialize, Serialize};

use super::*;
use crate::search::SearchExpr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceStatus {
    Success,
    Error,
}

/// Which interactions a trace listing or export covers. Every filter is ANDed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceFilter {
    pub scope: Scope,
    pub status: Option<TraceStatus>,
    pub cached: Option<bool>,
    pub duration_ms: Range<i64>,
    /// Tokens in plus tokens out (a log without token counts has 0).
    pub tokens: Range<i64>,
    /// Unpriced interactions never match a cost range.
    pub cost_usd: Range<f64>,
    /// Custom metadata `key = value` pairs that must all hold (values compared as written:
    /// `tier=pro`, `user_id=42`, `beta=true`).
    pub metadata: Vec<(String, String)>,
    /// Cloudflare's extra log fields that must equal a value, compared as metadata is
    /// (`dlp_action=BLOCK`, `feedback=-1`, `byok=true`).
    pub details: Vec<(DetailField, String)>,
    /// The model the caller asked for (`cloudflare/auto`), exactly.
    pub requested_model: Option<String>,
    /// Only interactions with (true) or without (false) a recorded violation.
    pub has_violations: Option<bool>,
    pub search: Option<SearchExpr>,
}

/// Inclusive bounds; `None` leaves that side open.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Range<T> {
    pub min: Option<T>,
    pub max: Option<T>,
}

impl<T: PartialOrd + Copy> Range<T> {
    pub fn is_empty(&self) -> bool {
        matches!((self.min, self.max), (Some(a), Some(b)) if a > b)
    }
}

/// What a trace listing is ordered by; ties are broken by id, so the order is total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceSort {
    #[default]
    Time,
    Duration,
    Cost,
    Tokens,
}

impl TraceSort {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceSort::Time => "time",
            TraceSort::Duration => "duration",
            TraceSort::Cost => "cost",
            TraceSort::Tokens => "tokens",
        }
    }

    /// An interaction's key in this sort, as a cursor records it. Unpriced rows sort as −1 by
    /// cost, rows without token counts as 0 by tokens — no key is ever missing, which keyset
    /// comparisons need (each backend's SQL sort expression says the same).
    pub fn key_of(self, i: &Interaction) -> SortKey {
        let log = &i.log;
        match self {
            TraceSort::Time => SortKey::Int(log.created_at_ms),
            TraceSort::Duration => SortKey::Int(log.duration_ms),
            TraceSort::Cost => SortKey::Real(log.cost_usd.unwrap_or(-1.0)),
            TraceSort::Tokens => {
                SortKey::Int(log.tokens_in.unwrap_or(0) + log.tokens_out.unwrap_or(0))
            }
        }
    }
}

impl SortOrder {
    /// The SQL direction keyword.
    pub fn sql(self) -> &'static str {
        match self {
            SortOrder::Desc => "DESC",
            SortOrder::Asc => "ASC",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    #[default]
    Desc,
    Asc,
}

/// A sort key value: whole numbers for time, duration and tokens, USD for cost (an unpriced
/// interaction sorts as −1, below every price).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SortKey {
    Int(i64),
    Real(f64),
}

/// Where the next page starts: after `(key, id)` in the listing's order, among rows with
/// `id <= snapshot_id` — rows stored after the first page never shift later pages, so paging
/// neither skips nor repeats while new data arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceCursor {
    pub sort: TraceSort,
    pub order: SortOrder,
    pub key: SortKey,
    pub id: i64,
    pub snapshot_id: i64,
}

/// A page of a trace listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceQuery {
    pub filter: TraceFilter,
    pub sort: TraceSort,
    pub order: SortOrder,
    pub limit: u32,
    /// From a previous page's `next_cursor`; must have this query's sort and order.
    pub after: Option<TraceCursor>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TracePage {
    pub items: Vec<Interaction>,
    pub next_cursor: Option<TraceCursor>,
}
