//! What a logs listing asks for (filters, order, page) and what a page of it holds.

use serde::Serialize;

use crate::client::MAX_LOGS_PER_PAGE;
use crate::types::{GatewayLog, ResultInfo};

/// Sort direction of a log listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOperator {
    Eq,
    Neq,
    Contains,
    Lt,
    Gt,
}

/// One element of the `filters` parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogFilter {
    pub key: String,
    pub operator: FilterOperator,
    pub value: Vec<serde_json::Value>,
}

impl LogFilter {
    /// Logs created strictly after `ms` (Unix milliseconds).
    pub fn created_after(ms: i64) -> Self {
        Self::created(FilterOperator::Gt, ms)
    }

    /// Logs created strictly before `ms` (Unix milliseconds).
    pub fn created_before(ms: i64) -> Self {
        Self::created(FilterOperator::Lt, ms)
    }

    /// Logs someone rated (feedback set after the call with `PATCH …/logs/{id}`): 1, -1, or 0
    /// for a rating taken back.
    pub fn rated() -> Self {
        Self {
            key: "feedback".into(),
            operator: FilterOperator::Eq,
            value: vec![
                serde_json::json!(1),
                serde_json::json!(-1),
                serde_json::json!(0),
            ],
        }
    }

    fn created(operator: FilterOperator, ms: i64) -> Self {
        Self {
            key: "created_at".into(),
            operator,
            value: vec![serde_json::Value::String(langguard_clock::format_ms(ms))],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogQuery {
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
    pub direction: Direction,
    pub filters: Vec<LogFilter>,
}

impl Default for LogQuery {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: MAX_LOGS_PER_PAGE,
            direction: Direction::Asc,
            filters: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogPage {
    pub logs: Vec<GatewayLog>,
    /// Rows of this page that could not be read as a log; the others are still usable.
    pub rejected: Vec<RejectedRow>,
    pub info: Option<ResultInfo>,
}

/// A listed row that is not a log LangGuard can read (e.g. a required field of the wrong type).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log {}: {reason}", id.as_deref().unwrap_or("without an id"))]
pub struct RejectedRow {
    pub id: Option<String>,
    pub reason: String,
}
