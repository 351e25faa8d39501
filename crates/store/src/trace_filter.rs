//! The checks every trace filter passes before it reaches a query, whoever built it (the API's
//! query parameters, the Trace Explorer's form, the CLI's flags): a range whose minimum is above
//! its maximum matches nothing and is refused, costs are numbers, metadata filters name a
//! metadata key, and a search parses.

use crate::search::SearchExpr;
use crate::search::{self, is_metadata_key};
use crate::TraceFilter;

/// Why a filter can't be used; `code` is the API's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    pub code: &'static str,
    pub message: String,
}

impl FilterError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl TraceFilter {
    /// Refuses a filter that could never match or that names something that doesn't exist.
    pub fn validate(&self) -> Result<(), FilterError> {
        let empty = |name: &str| {
            FilterError::new(
                "invalid_range",
                format!("min_{name} is larger than max_{name}, so nothing could match"),
            )
        };
        if self.duration_ms.is_empty() {
            return Err(empty("duration_ms"));
        }
        if self.tokens.is_empty() {
            return Err(empty("tokens"));
        }
        if self.cost_usd.is_empty() {
            return Err(empty("cost"));
        }
        if [self.cost_usd.min, self.cost_usd.max]
            .into_iter()
            .flatten()
            .any(|v| !v.is_finite())
        {
            return Err(FilterError::new(
                "invalid_range",
                "min_cost and max_cost must be numbers",
            ));
        }
        if self.metadata.iter().any(|(k, _)| !is_metadata_key(k)) {
            return Err(metadata_error());
        }
        Ok(())
    }
}

/// Says what a metadata filter looks like, never echoing the one given (a query string may
/// carry what its sender would not want in a log).
fn metadata_error() -> FilterError {
    FilterError::new(
        "invalid_metadata_filter",
        "metadata filters are key=value, with a key of letters, digits, _ - or . \
         (e.g. metadata=tier=pro)",
    )
}

/// A metadata filter as written: `key=value`.
pub fn metadata_filter(pair: &str) -> Result<(String, String), FilterError> {
    match pair.split_once('=') {
        Some((key, value)) if is_metadata_key(key) => Ok((key.to_string(), value.to_string())),
        _ => Err(metadata_error()),
    }
}

/// A search as written in the search box (`None` for an empty one).
pub fn parse_search(q: &str) -> Result<Option<SearchExpr>, FilterError> {
    search::parse(q)
        .map_err(|e| FilterError::new("invalid_search", format!("the search didn't parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Range;

    #[test]
    fn empty_ranges_bad_costs_and_bad_metadata_are_refused() {
        assert!(TraceFilter::default().validate().is_ok());
        let f = TraceFilter {
            tokens: Range {
                min: Some(10),
                max: Some(5),
            },
            ..TraceFilter::default()
        };
        assert_eq!(f.validate().map_err(|e| e.code), Err("invalid_range"));
        let f = TraceFilter {
            cost_usd: Range {
                min: Some(f64::NAN),
                max: None,
            },
            ..TraceFilter::default()
        };
        assert_eq!(f.validate().map_err(|e| e.code), Err("invalid_range"));
        let f = TraceFilter {
            metadata: vec![("no spaces".into(), "x".into())],
            ..TraceFilter::default()
        };
        assert_eq!(
            f.validate().map_err(|e| e.code),
            Err("invalid_metadata_filter")
        );
        assert_eq!(
            metadata_filter("tier=pro"),
            Ok(("tier".into(), "pro".into()))
        );
        assert!(metadata_filter("tier").is_err());
        assert_eq!(
            parse_search("\"open").map_err(|e| e.code),
            Err("invalid_search")
        );
    }
}
