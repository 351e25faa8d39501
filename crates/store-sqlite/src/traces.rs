//! Trace Explorer queries over the interaction rows: filters, search, sort, keyset pages and
//! streaming export.
//!
//! Every listing walks an order that is total (`sort key, id`), so a cursor names one exact
//! place in it. Newest-first by time follows the `(created_at, id)` index and stops after one
//! page of matches; other sorts need the matching rows sorted, which a time range keeps cheap.

use langguard_store::search::{SearchExpr, Term, TextField};
use langguard_store::{
    Interaction, SortKey, SortOrder, StoreError, StoreResult, TraceCursor, TraceFilter, TracePage,
    TraceQuery, TraceSort, TraceStatus, EXPORT_BATCH,
};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};
use tokio::sync::mpsc;

use crate::conditions::Conditions;
use crate::db_err;
use crate::records::{interaction_from_row, INTERACTION_COLUMNS};

/// The SQL value a sort orders by. Unpriced rows sort as −1 by cost, rows without token counts
/// as 0 by tokens — so no sort key is ever NULL, which keyset comparisons need.
fn sort_expression(sort: TraceSort) -> &'static str {
    match sort {
        TraceSort::Time => "created_at",
        TraceSort::Duration => "duration_ms",
        TraceSort::Cost => "IFNULL(cost_usd, -1.0)",
        TraceSort::Tokens => "(IFNULL(tokens_in, 0) + IFNULL(tokens_out, 0))",
    }
}

fn order_by(sort: TraceSort, order: SortOrder) -> String {
    let direction = order.sql();
    format!("{} {direction}, id {direction}", sort_expression(sort))
}

/// JSON path of a top-level metadata or details key; keys were checked to need no quoting
/// inside it.
fn metadata_path(key: &str) -> Value {
    Value::Text(format!("$.\"{key}\""))
}

/// `column`'s value at `key` equals `value` as a person typed it: `->` gives the value's JSON
/// text (`"pro"` for a string, `42`, `true`), compared with both the quoted and the raw form
/// whatever its JSON type.
fn json_value_equals(c: &mut Conditions, column: &str, key: &str, value: &str) {
    c.sql
        .push_str(&format!(" AND ({column} -> ?) IN (json_quote(?), ?)"));
    c.params.push(metadata_path(key));
    c.params.push(Value::Text(value.to_owned()));
    c.params.push(Value::Text(value.to_owned()));
}

/// Whether any bodies are stored: searches look in them only then (a lookup per candidate row
/// costs a search over millions of rows a good part of its time).
fn bodies_stored(conn: &Connection) -> StoreResult<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM interaction_bodies)",
        [],
        |r| r.get(0),
    )
    .map_err(db_err)
}

pub(crate) fn filter_conditions(filter: &TraceFilter, search_bodies: bool) -> Conditions {
    let scope = &filter.scope;
    let mut c = Conditions::scope(scope, "created_at", scope.from_ms, scope.to_ms);
    if let Some(status) = filter.status {
        c.push(
            "success = ?",
            Value::Integer(i64::from(status == TraceStatus::Success)),
        );
    }
    if let Some(cached) = filter.cached {
        c.push("cached = ?", Value::Integer(i64::from(cached)));
    }
    let tokens = sort_expression(TraceSort::Tokens);
    for (column, range) in [("duration_ms", filter.duration_ms), (tokens, filter.tokens)] {
        if let Some(min) = range.min {
            c.push(&format!("{column} >= ?"), Value::Integer(min));
        }
        if let Some(max) = range.max {
            c.push(&format!("{column} <= ?"), Value::Integer(max));
        }
    }
    if let Some(min) = filter.cost_usd.min {
        c.push("cost_usd >= ?", Value::Real(min));
    }
    if let Some(max) = filter.cost_usd.max {
        c.push("cost_usd <= ?", Value::Real(max));
    }
    for (key, value) in &filter.metadata {
        json_value_equals(&mut c, "metadata", key, value);
    }
    for (field, value) in &filter.details {
        json_value_equals(&mut c, "details", field.key(), value);
    }
    if let Some(model) = &filter.requested_model {
        c.push("requested_model = ?", Value::Text(model.clone()));
    }
    if let Some(has) = filter.has_violations {
        c.sql.push_str(if has {
            " AND EXISTS (SELECT 1 FROM violations v WHERE v.interaction_id = interactions.id)"
        } else {
            " AND NOT EXISTS (SELECT 1 FROM violations v WHERE v.interaction_id = interactions.id)"
        });
    }
    if let Some(search) = &filter.search {
        c.sql.push_str(" AND ");
        compile_search(search, &mut c, search_bodies);
    }
    c
}

/// Appends `search` as one parenthesised boolean SQL expression. Every leaf is 0 or 1, never
/// NULL (`lg_contains` is 0 for NULL), so `NOT` means "doesn't match" also for rows without a
/// path or metadata.
fn compile_search(expr: &SearchExpr, c: &mut Conditions, bodies: bool) {
    match expr {
        SearchExpr::Term(term) => compile_term(term, c, bodies),
        SearchExpr::Not(inner) => {
            c.sql.push_str("(NOT ");
            compile_search(inner, c, bodies);
            c.sql.push(')');
        }
        SearchExpr::And(parts) | SearchExpr::Or(parts) => {
            let joiner = if matches!(expr, SearchExpr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            c.sql.push('(');
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    c.sql.push_str(joiner);
                }
                compile_search(part, c, bodies);
            }
            c.sql.push(')');
        }
    }
}

fn compile_term(term: &Term, c: &mut Conditions, bodies: bool) {
    match term {
        Term::Anywhere(text) => {
            let needle = Value::Text(text.clone());
            let columns: Vec<&str> = TextField::ALL.iter().map(|f| f.column()).collect();
            c.sql
                .push_str(&format!("(lg_contains(?, {}) OR ", columns.join(", ")));
            c.params.push(needle.clone());
            if bodies {
                c.sql.push_str(
                    "EXISTS (SELECT 1 FROM interaction_bodies b WHERE b.interaction_id = \
                     interactions.id AND lg_contains(?, b.request, b.response)) OR ",
                );
                c.params.push(needle.clone());
            }
            // Metadata values (not its keys or JSON punctuation): any top-level value. Text
            // that JSON writes as itself is first looked for in the raw JSON, which is much
            // cheaper than taking the object apart, and rules out most rows.
            c.sql.push_str("(metadata IS NOT NULL");
            if !text
                .chars()
                .any(|ch| ch == '"' || ch == '\\' || ch.is_control())
            {
                c.sql.push_str(" AND lg_contains(?, metadata)");
                c.params.push(needle.clone());
            }
            c.sql.push_str(
                " AND EXISTS (SELECT 1 FROM json_each(metadata) \
                 WHERE lg_contains(?, CAST(json_each.value AS TEXT)))))",
            );
            c.params.push(needle);
        }
        Term::Field(field, text) => {
            c.sql
                .push_str(&format!("lg_contains(?, {})", field.column()));
            c.params.push(Value::Text(text.clone()));
        }
        Term::Detail(field, text) if field.matches_exactly() => {
            // Never NULL (an absent field doesn't match), so NOT means "doesn't match".
            c.sql
                .push_str("IFNULL((details -> ?) IN (json_quote(?), ?), 0)");
            c.params.push(metadata_path(field.key()));
            c.params.push(Value::Text(text.clone()));
            c.params.push(Value::Text(text.clone()));
        }
        Term::Detail(field, text) => {
            c.sql
                .push_str("lg_contains(?, CAST(details ->> ? AS TEXT))");
            c.params.push(Value::Text(text.clone()));
            c.params.push(metadata_path(field.key()));
        }
        Term::Metadata { key, text } => {
            c.sql
                .push_str("lg_contains(?, CAST(metadata ->> ? AS TEXT))");
            c.params.push(Value::Text(text.clone()));
            c.params.push(metadata_path(key));
        }
        Term::Status(status) => {
            c.sql.push_str("(success = ?)");
            c.params
                .push(Value::Integer(i64::from(*status == TraceStatus::Success)));
        }
        Term::Cached(cached) => {
            c.sql.push_str("(cached = ?)");
            c.params.push(Value::Integer(i64::from(*cached)));
        }
        Term::StatusCode(code) => {
            c.sql.push_str("(IFNULL(status_code, 0) = ?)");
            c.params.push(Value::Integer(*code));
        }
    }
}

fn sort_key_value(key: SortKey) -> Value {
    match key {
        SortKey::Int(v) => Value::Integer(v),
        SortKey::Real(v) => Value::Real(v),
    }
}

pub(crate) fn traces(conn: &Connection, query: &TraceQuery) -> StoreResult<TracePage> {
    let limit = query.limit.clamp(1, 1_000);
    let mut c = filter_conditions(&query.filter, bodies_stored(conn)?);
    let snapshot_id = match query.after {
        Some(cursor) => {
            if cursor.sort != query.sort || cursor.order != query.order {
                return Err(StoreError::Invalid(
                    "the cursor belongs to a listing with another sort order".into(),
                ));
            }
            let comparison = match query.order {
                SortOrder::Desc => "<",
                SortOrder::Asc => ">",
            };
            c.sql.push_str(&format!(
                " AND ({}, id) {comparison} (?, ?) AND id <= ?",
                sort_expression(query.sort)
            ));
            c.params.push(sort_key_value(cursor.key));
            c.params.push(Value::Integer(cursor.id));
            c.params.push(Value::Integer(cursor.snapshot_id));
            cursor.snapshot_id
        }
        None => {
            // The first page fixes the snapshot: later pages never see rows stored after it.
            let max: Option<i64> = conn
                .query_row("SELECT MAX(id) FROM interactions", [], |r| r.get(0))
                .map_err(db_err)?;
            let max = max.unwrap_or(0);
            c.sql.push_str(" AND id <= ?");
            c.params.push(Value::Integer(max));
            max
        }
    };
    c.params.push(Value::Integer(i64::from(limit) + 1));
    let sql = format!(
        "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE 1 = 1{} ORDER BY {} LIMIT ?",
        c.sql,
        order_by(query.sort, query.order)
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let mut items = stmt
        .query_map(params_from_iter(c.params), interaction_from_row)
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?
        .into_iter()
        .collect::<StoreResult<Vec<_>>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|last| TraceCursor {
            sort: query.sort,
            order: query.order,
            key: query.sort.key_of(last),
            id: last.id,
            snapshot_id,
        })
    } else {
        None
    };
    Ok(TracePage { items, next_cursor })
}

/// Sends every matching row, in order, in batches of [`EXPORT_BATCH`]; returns when done, on
/// the first error (which it sends), or when the receiver is gone.
pub(crate) fn export(
    conn: &Connection,
    filter: &TraceFilter,
    sort: TraceSort,
    order: SortOrder,
    tx: &mpsc::Sender<StoreResult<Vec<Interaction>>>,
) {
    let result = (|| -> StoreResult<()> {
        let c = filter_conditions(filter, bodies_stored(conn)?);
        let sql = format!(
            "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE 1 = 1{} ORDER BY {}",
            c.sql,
            order_by(sort, order)
        );
        let mut stmt = conn.prepare(&sql).map_err(db_err)?;
        let mut rows = stmt.query(params_from_iter(c.params)).map_err(db_err)?;
        let mut batch = Vec::with_capacity(EXPORT_BATCH);
        while let Some(row) = rows.next().map_err(db_err)? {
            batch.push(interaction_from_row(row).map_err(db_err)??);
            if batch.len() == EXPORT_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(EXPORT_BATCH));
                if tx.blocking_send(Ok(full)).is_err() {
                    return Ok(()); // the client went away
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(batch));
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = tx.blocking_send(Err(e));
    }
}
