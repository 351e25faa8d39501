//! Trace Explorer queries over the interaction rows: filters, search, sort, keyset pages and
//! streaming export — the SQLite backend's queries in PostgreSQL's dialect, with the same
//! meaning (the store's test suite checks both against one reading of the rows).

use deadpool_postgres::Client;
use langguard_store::search::{SearchExpr, Term, TextField};
use langguard_store::{
    Interaction, SortKey, SortOrder, StoreError, StoreResult, TraceCursor, TraceFilter, TracePage,
    TraceQuery, TraceSort, TraceStatus, EXPORT_BATCH,
};
use tokio::sync::mpsc;

use crate::conditions::Conditions;
use crate::db_err;
use crate::records::{interaction_from_row, RowExt, INTERACTION_COLUMNS};

/// The SQL value a sort orders by; never NULL, which keyset comparisons need.
fn sort_expression(sort: TraceSort) -> &'static str {
    match sort {
        TraceSort::Time => "created_at",
        TraceSort::Duration => "duration_ms",
        TraceSort::Cost => "COALESCE(cost_usd, -1.0::float8)",
        TraceSort::Tokens => "(COALESCE(tokens_in, 0) + COALESCE(tokens_out, 0))",
    }
}

fn order_by(sort: TraceSort, order: SortOrder) -> String {
    let direction = order.sql();
    format!("{} {direction}, id {direction}", sort_expression(sort))
}

/// Whether any bodies are stored: searches look in them only then.
async fn bodies_stored(c: &Client) -> StoreResult<bool> {
    c.query_one("SELECT EXISTS (SELECT 1 FROM interaction_bodies)", &[])
        .await
        .map_err(db_err)?
        .at(0)
}

/// `needle` contained, ignoring ASCII case, in any of `columns`; FALSE (never NULL) when all
/// are NULL, so `NOT` means "doesn't match".
fn contains_any(c: &mut Conditions, needle: &str, columns: &[&str]) -> String {
    let p = c.bind(needle.to_ascii_lowercase());
    let tests: Vec<String> = columns
        .iter()
        .map(|col| format!("strpos(lg_fold({col}), {p}) > 0"))
        .collect();
    format!("COALESCE({}, FALSE)", tests.join(" OR "))
}

pub(crate) fn filter_conditions(filter: &TraceFilter, search_bodies: bool) -> Conditions {
    let scope = &filter.scope;
    let mut c = Conditions::scope(scope, "", "created_at", scope.from_ms, scope.to_ms);
    if let Some(status) = filter.status {
        let p = c.bind(status == TraceStatus::Success);
        c.and(&format!("success = {p}"));
    }
    if let Some(cached) = filter.cached {
        let p = c.bind(cached);
        c.and(&format!("cached = {p}"));
    }
    let tokens = sort_expression(TraceSort::Tokens);
    for (column, range) in [("duration_ms", filter.duration_ms), (tokens, filter.tokens)] {
        if let Some(min) = range.min {
            let p = c.bind(min);
            c.and(&format!("{column} >= {p}"));
        }
        if let Some(max) = range.max {
            let p = c.bind(max);
            c.and(&format!("{column} <= {p}"));
        }
    }
    if let Some(min) = filter.cost_usd.min {
        let p = c.bind(min);
        c.and(&format!("cost_usd >= {p}"));
    }
    if let Some(max) = filter.cost_usd.max {
        let p = c.bind(max);
        c.and(&format!("cost_usd <= {p}"));
    }
    let details = filter
        .details
        .iter()
        .map(|(field, value)| ("details", field.key().to_owned(), value));
    let metadata = filter
        .metadata
        .iter()
        .map(|(key, value)| ("metadata", key.clone(), value));
    for (column, key, value) in metadata.chain(details) {
        // The value's JSON text (`"pro"`, `42`, `true`) compared with both the quoted and the
        // raw form matches what a person typed whatever its JSON type, as in SQLite.
        let k = c.bind(key);
        let v = c.bind(value.clone());
        c.and(&format!(
            "({column}::jsonb -> {k})::text IN (to_jsonb({v}::text)::text, {v})"
        ));
    }
    if let Some(model) = &filter.requested_model {
        let p = c.bind(model.clone());
        c.and(&format!("requested_model = {p}"));
    }
    if let Some(has) = filter.has_violations {
        c.and(if has {
            "EXISTS (SELECT 1 FROM violations v WHERE v.interaction_id = interactions.id)"
        } else {
            "NOT EXISTS (SELECT 1 FROM violations v WHERE v.interaction_id = interactions.id)"
        });
    }
    if let Some(search) = &filter.search {
        let mut sql = String::new();
        compile_search(search, &mut c, &mut sql, search_bodies);
        c.and(&sql);
    }
    c
}

/// Appends `search` to `sql` as one parenthesised boolean expression whose leaves are never
/// NULL.
fn compile_search(expr: &SearchExpr, c: &mut Conditions, sql: &mut String, bodies: bool) {
    match expr {
        SearchExpr::Term(term) => sql.push_str(&compile_term(term, c, bodies)),
        SearchExpr::Not(inner) => {
            sql.push_str("(NOT ");
            compile_search(inner, c, sql, bodies);
            sql.push(')');
        }
        SearchExpr::And(parts) | SearchExpr::Or(parts) => {
            let joiner = if matches!(expr, SearchExpr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push('(');
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    sql.push_str(joiner);
                }
                compile_search(part, c, sql, bodies);
            }
            sql.push(')');
        }
    }
}

/// Metadata as a JSON object, or NULL when it is none (a JSON array or scalar has no values
/// to search).
const METADATA_OBJECT: &str =
    "(CASE WHEN jsonb_typeof(metadata::jsonb) = 'object' THEN metadata::jsonb END)";

fn compile_term(term: &Term, c: &mut Conditions, bodies: bool) -> String {
    match term {
        Term::Anywhere(text) => {
            let columns: Vec<&str> = TextField::ALL.iter().map(|f| f.column()).collect();
            let mut alternatives = vec![contains_any(c, text, &columns)];
            if bodies {
                let inner = contains_any(c, text, &["b.request", "b.response"]);
                alternatives.push(format!(
                    "EXISTS (SELECT 1 FROM interaction_bodies b WHERE b.interaction_id = \
                     interactions.id AND {inner})"
                ));
            }
            // Metadata values (not keys or JSON punctuation). Text JSON writes as itself is
            // first looked for in the raw JSON, which rules out most rows cheaply.
            let mut metadata = String::from("(metadata IS NOT NULL");
            if !text
                .chars()
                .any(|ch| ch == '"' || ch == '\\' || ch.is_control())
            {
                metadata.push_str(" AND ");
                metadata.push_str(&contains_any(c, text, &["metadata"]));
            }
            let value = contains_any(c, text, &["lg_json_text(e.value)"]);
            metadata.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM jsonb_each({METADATA_OBJECT}) e WHERE {value}))"
            ));
            alternatives.push(metadata);
            format!("({})", alternatives.join(" OR "))
        }
        Term::Field(field, text) => contains_any(c, text, &[field.column()]),
        Term::Detail(field, text) if field.matches_exactly() => {
            let k = c.bind(field.key().to_owned());
            let v = c.bind(text.clone());
            format!(
                "COALESCE((details::jsonb -> {k})::text IN (to_jsonb({v}::text)::text, {v}), FALSE)"
            )
        }
        Term::Detail(field, text) => {
            let k = c.bind(field.key().to_owned());
            let column = format!("lg_json_text(details::jsonb -> {k})");
            contains_any(c, text, &[&column])
        }
        Term::Metadata { key, text } => {
            let k = c.bind(key.clone());
            let column = format!("lg_json_text(metadata::jsonb -> {k})");
            contains_any(c, text, &[&column])
        }
        Term::Status(status) => {
            let p = c.bind(*status == TraceStatus::Success);
            format!("(success = {p})")
        }
        Term::Cached(cached) => {
            let p = c.bind(*cached);
            format!("(cached = {p})")
        }
        Term::StatusCode(code) => {
            let p = c.bind(*code);
            format!("(COALESCE(status_code, 0) = {p})")
        }
    }
}

/// Binds a cursor's sort key in the type its sort expression has.
fn bind_sort_key(c: &mut Conditions, sort: TraceSort, key: SortKey) -> StoreResult<String> {
    match (sort, key) {
        (TraceSort::Cost, SortKey::Real(v)) => Ok(c.bind(v)),
        (TraceSort::Cost, SortKey::Int(v)) => Ok(c.bind(v as f64)),
        (_, SortKey::Int(v)) => Ok(c.bind(v)),
        (_, SortKey::Real(_)) => Err(StoreError::Invalid(
            "the cursor belongs to a listing with another sort order".into(),
        )),
    }
}

pub(crate) async fn traces(c: &Client, query: &TraceQuery) -> StoreResult<TracePage> {
    let limit = query.limit.clamp(1, 1_000);
    let mut cond = filter_conditions(&query.filter, bodies_stored(c).await?);
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
            let key = bind_sort_key(&mut cond, query.sort, cursor.key)?;
            let id = cond.bind(cursor.id);
            let snapshot = cond.bind(cursor.snapshot_id);
            cond.and(&format!(
                "({}, id) {comparison} ({key}, {id}) AND id <= {snapshot}",
                sort_expression(query.sort)
            ));
            cursor.snapshot_id
        }
        None => {
            // The first page fixes the snapshot: later pages never see rows stored after it.
            let max: Option<i64> = c
                .query_one("SELECT MAX(id) FROM interactions", &[])
                .await
                .map_err(db_err)?
                .at(0)?;
            let max = max.unwrap_or(0);
            let p = cond.bind(max);
            cond.and(&format!("id <= {p}"));
            max
        }
    };
    let limit_param = cond.bind(i64::from(limit) + 1);
    let sql = format!(
        "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE TRUE{} ORDER BY {} LIMIT {limit_param}",
        cond.sql,
        order_by(query.sort, query.order)
    );
    let rows = c.query(&sql, &cond.refs()).await.map_err(db_err)?;
    let mut items = rows
        .iter()
        .map(interaction_from_row)
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

/// Sends every matching row, in order, in batches of [`EXPORT_BATCH`] read through a portal
/// (a server-side cursor) in one read-only snapshot; returns when done, on the first error, or
/// when the receiver is gone.
pub(crate) async fn export(
    client: &mut Client,
    filter: &TraceFilter,
    sort: TraceSort,
    order: SortOrder,
    tx: &mpsc::Sender<StoreResult<Vec<Interaction>>>,
) -> StoreResult<()> {
    let search_bodies = bodies_stored(client).await?;
    let cond = filter_conditions(filter, search_bodies);
    let sql = format!(
        "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE TRUE{} ORDER BY {}",
        cond.sql,
        order_by(sort, order)
    );
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db_err)?;
    let statement = transaction.prepare(&sql).await.map_err(db_err)?;
    let portal = transaction
        .bind(&statement, &cond.refs())
        .await
        .map_err(db_err)?;
    loop {
        let rows = transaction
            .query_portal(&portal, EXPORT_BATCH as i32)
            .await
            .map_err(db_err)?;
        let done = rows.len() < EXPORT_BATCH;
        let batch = rows
            .iter()
            .map(interaction_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if !batch.is_empty() && tx.send(Ok(batch)).await.is_err() {
            return Ok(()); // the client went away
        }
        if done {
            return Ok(());
        }
    }
}
