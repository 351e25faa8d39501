//! Query-string parsing and validation for the list routes: pagination (API-NOTES §8.3),
//! ordering (§8.4) and the current plus deprecated filter parameters (§8.5).
//!
//! Invalid input is rejected with 400 / 7001 naming the parameter, never clamped or ignored:
//! an importer that sends `per_page=100` must find out, as it would against the live API.

use crate::config::Direction;
use crate::envelope::ApiError;
use crate::filters::{self, Filter, FilterKey, FilterValue, Operator};

/// Default `per_page` of every list route.
pub(crate) const DEFAULT_PER_PAGE: u32 = 20;
/// Largest `per_page` the logs list accepts.
pub(crate) const MAX_LOGS_PER_PAGE: u32 = 50;

/// Decoded query pairs in request order.
#[derive(Clone, Debug, Default)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub(crate) fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The value of `name`; when repeated, the last occurrence wins.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A validated page request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pagination {
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
}

impl Pagination {
    /// Rows to skip before this page.
    pub(crate) fn offset(&self) -> usize {
        let rows = u64::from(self.page - 1) * u64::from(self.per_page);
        usize::try_from(rows).unwrap_or(usize::MAX)
    }

    pub(crate) fn limit(&self) -> usize {
        usize::try_from(self.per_page).unwrap_or(usize::MAX)
    }
}

/// Parses `page` (≥ 1, default 1) and `per_page` (1..=max, default 20).
pub(crate) fn parse_pagination(
    params: &QueryParams,
    max_per_page: u32,
) -> Result<Pagination, ApiError> {
    let page = parse_bounded(params, "page", 1, u32::MAX, 1)?;
    let per_page = parse_bounded(params, "per_page", DEFAULT_PER_PAGE, max_per_page, 1)?;
    Ok(Pagination { page, per_page })
}

fn parse_bounded(
    params: &QueryParams,
    name: &str,
    default: u32,
    max: u32,
    min: u32,
) -> Result<u32, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|value| (min..=max).contains(value))
            .ok_or_else(|| ApiError::validation(&["query", name])),
    }
}

/// `order_by` values of the logs list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrderBy {
    CreatedAt,
    Provider,
    Model,
    ModelType,
    Success,
    Cached,
}

impl OrderBy {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "created_at" => Some(Self::CreatedAt),
            "provider" => Some(Self::Provider),
            "model" => Some(Self::Model),
            "model_type" => Some(Self::ModelType),
            "success" => Some(Self::Success),
            "cached" => Some(Self::Cached),
            _ => None,
        }
    }
}

/// A validated logs-list request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogQuery {
    pub pagination: Pagination,
    pub order_by: OrderBy,
    pub direction: Direction,
    /// ANDed conditions: the JSON `filters` plus the deprecated flat parameters.
    pub filters: Vec<Filter>,
    /// Free-text `search`: case-insensitive substring of id, provider, model, path or
    /// metadata (Cloudflare does not document its semantics).
    pub search: Option<String>,
}

/// Parses every parameter of `GET …/logs`.
pub(crate) fn parse_log_query(
    params: &QueryParams,
    default_direction: Direction,
) -> Result<LogQuery, ApiError> {
    let pagination = parse_pagination(params, MAX_LOGS_PER_PAGE)?;
    let order_by = match params.get("order_by") {
        None => OrderBy::CreatedAt,
        Some(raw) => {
            OrderBy::parse(raw).ok_or_else(|| ApiError::validation(&["query", "order_by"]))?
        }
    };
    // `order_by_direction` wins over its deprecated alias `direction` when both are sent.
    let direction = match (params.get("order_by_direction"), params.get("direction")) {
        (Some(raw), _) => Direction::parse(raw)
            .ok_or_else(|| ApiError::validation(&["query", "order_by_direction"]))?,
        (None, Some(raw)) => {
            Direction::parse(raw).ok_or_else(|| ApiError::validation(&["query", "direction"]))?
        }
        (None, None) => default_direction,
    };

    let mut filters = match params.get("filters") {
        // An empty parameter is treated like an absent one.
        None | Some("") => Vec::new(),
        Some(raw) => filters::parse_filters(raw).map_err(|err| {
            tracing::debug!(reason = %err.0, "rejecting filters");
            ApiError::validation(&["query", "filters"])
        })?,
    };
    filters.extend(deprecated_filters(params)?);

    let search = params
        .get("search")
        .filter(|text| !text.is_empty())
        .map(str::to_owned);

    Ok(LogQuery {
        pagination,
        order_by,
        direction,
        filters,
        search,
    })
}

/// The deprecated flat filters Cloudflare still honours: `start_date`/`end_date` (inclusive),
/// `success`, `cached`, `provider`, `model`.
fn deprecated_filters(params: &QueryParams) -> Result<Vec<Filter>, ApiError> {
    let mut filters = Vec::new();
    for (name, op) in [
        ("start_date", Operator::AtLeast),
        ("end_date", Operator::AtMost),
    ] {
        if let Some(raw) = params.get(name) {
            let instant = filters::parse_instant(raw)
                .ok_or_else(|| ApiError::validation(&["query", name]))?;
            filters.push(Filter::new(
                FilterKey::CreatedAt,
                op,
                FilterValue::Time(instant),
            ));
        }
    }
    for (name, key) in [
        ("success", FilterKey::Success),
        ("cached", FilterKey::Cached),
    ] {
        if let Some(raw) = params.get(name) {
            let flag =
                filters::parse_bool(raw).ok_or_else(|| ApiError::validation(&["query", name]))?;
            filters.push(Filter::new(key, Operator::Eq, FilterValue::Bool(flag)));
        }
    }
    for (name, key) in [
        ("provider", FilterKey::Provider),
        ("model", FilterKey::Model),
    ] {
        if let Some(raw) = params.get(name) {
            filters.push(Filter::new(
                key,
                Operator::Eq,
                FilterValue::Text(raw.to_owned()),
            ));
        }
    }
    Ok(filters)
}

/// A validated gateways-list request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GatewayQuery {
    pub pagination: Pagination,
    /// "Search by id": substring of the gateway id.
    pub search: Option<String>,
}

pub(crate) fn parse_gateway_query(
    params: &QueryParams,
    max_per_page: u32,
) -> Result<GatewayQuery, ApiError> {
    Ok(GatewayQuery {
        pagination: parse_pagination(params, max_per_page)?,
        search: params
            .get("search")
            .filter(|text| !text.is_empty())
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams::new(
            pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }

    fn error_path(error: &ApiError) -> Vec<String> {
        error.errors[0].path.clone().unwrap_or_default()
    }

    #[test]
    fn pagination_defaults_and_bounds() {
        assert_eq!(
            parse_pagination(&params(&[]), 50),
            Ok(Pagination {
                page: 1,
                per_page: 20
            })
        );
        assert_eq!(
            parse_pagination(&params(&[("page", "3"), ("per_page", "50")]), 50),
            Ok(Pagination {
                page: 3,
                per_page: 50
            })
        );
        assert_eq!(
            parse_pagination(&params(&[("per_page", "1")]), 50).map(|p| p.per_page),
            Ok(1)
        );
        for (name, value) in [
            ("per_page", "51"),
            ("per_page", "0"),
            ("per_page", "-1"),
            ("per_page", "2.5"),
            ("per_page", "ten"),
            ("per_page", ""),
            ("page", "0"),
            ("page", "x"),
        ] {
            let error = parse_pagination(&params(&[(name, value)]), 50).expect_err(value);
            assert_eq!(error.code(), 7001);
            assert_eq!(error_path(&error), ["query", name]);
        }
    }

    #[test]
    fn offsets_do_not_overflow() {
        let huge = Pagination {
            page: u32::MAX,
            per_page: 50,
        };
        assert!(huge.offset() > 1_000_000);
        assert_eq!(
            Pagination {
                page: 2,
                per_page: 50
            }
            .offset(),
            50
        );
    }

    #[test]
    fn ordering_defaults_alias_and_validation() {
        let query = parse_log_query(&params(&[]), Direction::Desc).expect("valid");
        assert_eq!(query.order_by, OrderBy::CreatedAt);
        assert_eq!(query.direction, Direction::Desc);

        let query =
            parse_log_query(&params(&[("direction", "asc")]), Direction::Desc).expect("valid");
        assert_eq!(query.direction, Direction::Asc);

        let query = parse_log_query(
            &params(&[("direction", "asc"), ("order_by_direction", "desc")]),
            Direction::Asc,
        )
        .expect("valid");
        assert_eq!(query.direction, Direction::Desc);

        for (name, value) in [
            ("order_by", "cost"),
            ("order_by_direction", "ASC"),
            ("direction", "up"),
        ] {
            let error =
                parse_log_query(&params(&[(name, value)]), Direction::Desc).expect_err(value);
            assert_eq!(error_path(&error), ["query", name]);
        }
    }

    #[test]
    fn dotted_sdk_filters_are_ignored_and_json_filters_parsed() {
        let dotted = parse_log_query(
            &params(&[
                ("filters.key", "provider"),
                ("filters.operator", "eq"),
                ("filters.value", "openai"),
            ]),
            Direction::Desc,
        )
        .expect("valid");
        assert!(dotted.filters.is_empty());

        let json = parse_log_query(
            &params(&[(
                "filters",
                r#"[{"key":"provider","operator":"eq","value":["openai"]}]"#,
            )]),
            Direction::Desc,
        )
        .expect("valid");
        assert_eq!(json.filters.len(), 1);

        let error =
            parse_log_query(&params(&[("filters", "[{]")]), Direction::Desc).expect_err("bad json");
        assert_eq!(error_path(&error), ["query", "filters"]);
    }

    #[test]
    fn deprecated_flat_filters_are_honoured() {
        let query = parse_log_query(
            &params(&[
                ("start_date", "2026-09-26T10:00:00Z"),
                ("end_date", "2026-09-26T11:00:00Z"),
                ("success", "true"),
                ("cached", "false"),
                ("provider", "openai"),
                ("model", "gpt-4o"),
            ]),
            Direction::Desc,
        )
        .expect("valid");
        assert_eq!(query.filters.len(), 6);
        let error = parse_log_query(&params(&[("start_date", "last week")]), Direction::Desc)
            .expect_err("bad date");
        assert_eq!(error_path(&error), ["query", "start_date"]);
        let error =
            parse_log_query(&params(&[("cached", "yes")]), Direction::Desc).expect_err("bad bool");
        assert_eq!(error_path(&error), ["query", "cached"]);
    }

    #[test]
    fn gateway_pages_use_their_own_cap() {
        let query = parse_gateway_query(&params(&[("per_page", "100")]), 100).expect("within cap");
        assert_eq!(query.pagination.per_page, 100);
        assert!(parse_gateway_query(&params(&[("per_page", "101")]), 100).is_err());
    }
}
