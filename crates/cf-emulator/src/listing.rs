//! Selecting one page of logs for a validated [`LogQuery`]: range narrowing by binary search,
//! filtering, ordering with the id tie-break, and `total_count`.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::config::Direction;
use crate::filters::{contains_ignore_case, Filter, Operator};
use crate::log_record::{LogRecord, UnixMillis};
use crate::query::{LogQuery, OrderBy};

/// One page of matching logs.
#[derive(Debug)]
pub(crate) struct LogPage {
    pub items: Vec<Arc<LogRecord>>,
    /// All visible logs matching the query, across pages.
    pub total_count: usize,
}

/// Picks the page `query` asks for from `logs` (sorted by `(created_at, id)`), considering only
/// logs visible at `now`.
/// With `sub_millisecond`, each log's real time is a fraction of a millisecond after the one it
/// shows, so a `gt` bound on a whole millisecond admits the logs shown at it.
#[cfg(test)]
pub(crate) fn select_page(
    logs: &[Arc<LogRecord>],
    query: &LogQuery,
    now: UnixMillis,
    sub_millisecond: bool,
) -> LogPage {
    select_page_with_ties(logs, query, now, sub_millisecond, None)
}

/// [`select_page`], with logs sharing a `created_at` in an order drawn from `tie_seed` when
/// one is given (an API that promises no tie-break).
pub(crate) fn select_page_with_ties(
    logs: &[Arc<LogRecord>],
    query: &LogQuery,
    now: UnixMillis,
    sub_millisecond: bool,
    tie_seed: Option<u64>,
) -> LogPage {
    let candidates = narrow_by_created_at(logs, &query.filters, sub_millisecond);
    // Range conditions on `created_at` are exactly what the narrowing enforced (any-of values
    // reduce to their loosest bound), so only the other filters are checked per record: an
    // importer's page walk then costs a visibility check per record, not a filter evaluation.
    let remaining: Vec<&Filter> = query
        .filters
        .iter()
        .filter(|filter| filter.created_at_bounds().is_none())
        .collect();
    let keep = |record: &&Arc<LogRecord>| {
        record.is_visible_at(now)
            && remaining.iter().all(|filter| filter.matches(record))
            && query
                .search
                .as_deref()
                .is_none_or(|needle| search_matches(record, needle))
    };
    let offset = query.pagination.offset();
    let limit = query.pagination.limit();

    if let (OrderBy::CreatedAt, Some(seed)) = (query.order_by, tie_seed) {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut matched: Vec<&Arc<LogRecord>> = candidates.iter().filter(keep).collect();
        if query.direction == Direction::Desc {
            matched.reverse();
        }
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        for group in matched.chunk_by_mut(|a, b| a.created_at == b.created_at) {
            group.shuffle(&mut rng);
        }
        return LogPage {
            total_count: matched.len(),
            items: matched
                .into_iter()
                .skip(offset)
                .take(limit)
                .cloned()
                .collect(),
        };
    }

    if query.order_by == OrderBy::CreatedAt {
        // The storage order already is (created_at, id): walk it, counting every match but
        // keeping only this page's rows.
        let mut items = Vec::with_capacity(limit.min(64));
        let mut total_count = 0;
        let mut visit = |record: &Arc<LogRecord>| {
            if total_count >= offset && items.len() < limit {
                items.push(Arc::clone(record));
            }
            total_count += 1;
        };
        match query.direction {
            Direction::Asc => candidates.iter().filter(keep).for_each(&mut visit),
            Direction::Desc => candidates.iter().rev().filter(keep).for_each(&mut visit),
        }
        return LogPage { items, total_count };
    }

    let mut matched: Vec<&Arc<LogRecord>> = candidates.iter().filter(keep).collect();
    matched.sort_unstable_by(|a, b| {
        let ordering = compare_by(query.order_by, a, b);
        match query.direction {
            Direction::Asc => ordering,
            Direction::Desc => ordering.reverse(),
        }
    });
    LogPage {
        total_count: matched.len(),
        items: matched
            .into_iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect(),
    }
}

/// The sub-slice whose `created_at` satisfies every range condition on `created_at`.
fn narrow_by_created_at<'a>(
    logs: &'a [Arc<LogRecord>],
    filters: &[Filter],
    sub_millisecond: bool,
) -> &'a [Arc<LogRecord>] {
    let (low, high) = filters
        .iter()
        .filter_map(|filter| {
            let (low, high) = filter.created_at_bounds()?;
            let hidden_fraction = sub_millisecond && filter.op == Operator::Gt;
            Some((
                if hidden_fraction {
                    low.saturating_sub(1)
                } else {
                    low
                },
                high,
            ))
        })
        .fold((UnixMillis::MIN, UnixMillis::MAX), |(low, high), (l, h)| {
            (low.max(l), high.min(h))
        });
    let start = logs.partition_point(|record| record.created_at < low);
    let end = logs.partition_point(|record| record.created_at <= high);
    logs.get(start..end).unwrap_or_default()
}

/// The `order_by` key with the id as tie-break, so pages never overlap or skip rows.
fn compare_by(order_by: OrderBy, a: &LogRecord, b: &LogRecord) -> Ordering {
    let primary = match order_by {
        OrderBy::CreatedAt => a.created_at.cmp(&b.created_at),
        OrderBy::Provider => a.provider.cmp(b.provider),
        OrderBy::Model => a.model.cmp(b.model),
        OrderBy::ModelType => a.model_type.cmp(&b.model_type),
        OrderBy::Success => a.success.cmp(&b.success),
        OrderBy::Cached => a.cached.cmp(&b.cached),
    };
    primary.then_with(|| a.id.cmp(&b.id))
}

fn search_matches(record: &LogRecord, needle: &str) -> bool {
    [
        record.id.as_str(),
        record.provider,
        record.model,
        record.path,
    ]
    .into_iter()
    .chain(
        record
            .metadata
            .as_ref()
            .map(|metadata| metadata.json.as_str()),
    )
    .any(|haystack| contains_ignore_case(haystack, needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::parse_filters;
    use crate::log_record::test_support::sample_record;
    use crate::query::Pagination;

    fn logs() -> Vec<Arc<LogRecord>> {
        // Two logs per millisecond; ids make the tie-break visible.
        let mut records: Vec<LogRecord> = (0..20)
            .map(|i| {
                let mut record = sample_record(&format!("id{i:02}"), 1_000 + i / 2);
                if i % 3 == 0 {
                    record.provider = "anthropic";
                }
                record
            })
            .collect();
        records.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        records.into_iter().map(Arc::new).collect()
    }

    fn query(page: u32, per_page: u32, order_by: OrderBy, direction: Direction) -> LogQuery {
        LogQuery {
            pagination: Pagination { page, per_page },
            order_by,
            direction,
            filters: Vec::new(),
            search: None,
        }
    }

    fn ids(page: &LogPage) -> Vec<&str> {
        page.items.iter().map(|record| record.id.as_str()).collect()
    }

    #[test]
    fn pages_walk_created_at_in_both_directions() {
        let logs = logs();
        let asc = select_page(
            &logs,
            &query(2, 3, OrderBy::CreatedAt, Direction::Asc),
            0,
            false,
        );
        assert_eq!(ids(&asc), ["id03", "id04", "id05"]);
        assert_eq!(asc.total_count, 20);
        let desc = select_page(
            &logs,
            &query(1, 3, OrderBy::CreatedAt, Direction::Desc),
            0,
            false,
        );
        assert_eq!(ids(&desc), ["id19", "id18", "id17"]);
        let past_end = select_page(
            &logs,
            &query(8, 3, OrderBy::CreatedAt, Direction::Asc),
            0,
            false,
        );
        assert!(past_end.items.is_empty());
        assert_eq!(past_end.total_count, 20);
    }

    #[test]
    fn other_orders_break_ties_on_id_in_the_same_direction() {
        let logs = logs();
        let asc = select_page(
            &logs,
            &query(1, 8, OrderBy::Provider, Direction::Asc),
            0,
            false,
        );
        assert_eq!(
            ids(&asc),
            ["id00", "id03", "id06", "id09", "id12", "id15", "id18", "id01"]
        );
        let desc = select_page(
            &logs,
            &query(1, 2, OrderBy::Provider, Direction::Desc),
            0,
            false,
        );
        assert_eq!(ids(&desc), ["id19", "id17"]);
    }

    #[test]
    fn invisible_logs_are_neither_listed_nor_counted() {
        let mut records: Vec<LogRecord> = logs().iter().map(|r| (**r).clone()).collect();
        records[19].visible_at = 500;
        let logs: Vec<_> = records.into_iter().map(Arc::new).collect();
        let q = query(1, 50, OrderBy::CreatedAt, Direction::Desc);
        assert_eq!(select_page(&logs, &q, 499, false).total_count, 19);
        assert_eq!(select_page(&logs, &q, 500, false).total_count, 20);
    }

    #[test]
    fn range_narrowing_gives_the_same_rows_as_a_scan() {
        let logs = logs();
        let mut q = query(1, 50, OrderBy::CreatedAt, Direction::Asc);
        q.filters = parse_filters(
            r#"[{"key":"created_at","operator":"gt","value":["1970-01-01T00:00:01.003Z"]},
                {"key":"created_at","operator":"lt","value":["1970-01-01T00:00:01.008Z"]},
                {"key":"provider","operator":"eq","value":["openai"]}]"#,
        )
        .expect("filters");
        let page = select_page(&logs, &q, 0, false);
        let expected: Vec<&str> = logs
            .iter()
            .filter(|r| q.filters.iter().all(|f| f.matches(r)))
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids(&page), expected);
        assert_eq!(ids(&page), ["id08", "id10", "id11", "id13", "id14"]);
    }

    #[test]
    fn search_looks_at_ids_models_and_metadata() {
        let logs = logs();
        let mut q = query(1, 50, OrderBy::CreatedAt, Direction::Asc);
        q.search = Some("U_4821".to_owned());
        assert_eq!(select_page(&logs, &q, 0, false).total_count, 20);
        q.search = Some("id07".to_owned());
        assert_eq!(select_page(&logs, &q, 0, false).total_count, 1);
    }
}
