//! `langguard traces`: interactions, newest first (or by duration, cost, tokens), with search
//! and keyset pagination.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use langguard_store::search;
use langguard_store::{SortOrder, TraceFilter, TraceQuery, TraceSort, TraceStatus};
use serde_json::json;

use crate::app::{now_ms, App};
use crate::cli::{SortArg, StatusArg, TracesArgs};
use crate::commands::print_json;
use crate::format;
use langguard_ops::views::{decode_cursor, encode_cursor, TraceItem};

pub async fn run(app: &App, args: TracesArgs) -> anyhow::Result<ExitCode> {
    let scope = app.scope(&args.scope, now_ms(), None).await?;
    let sort = match args.sort {
        SortArg::Time => TraceSort::Time,
        SortArg::Duration => TraceSort::Duration,
        SortArg::Cost => TraceSort::Cost,
        SortArg::Tokens => TraceSort::Tokens,
    };
    let order = if args.asc {
        SortOrder::Asc
    } else {
        SortOrder::Desc
    };
    let after = match &args.cursor {
        Some(c) => match decode_cursor(c) {
            Some(c) if c.sort == sort && c.order == order => Some(c),
            Some(_) => bail!("--cursor {c:?} is from a listing with another --sort or --asc"),
            None => bail!("--cursor {c:?} is not a cursor from a previous page"),
        },
        None => None,
    };
    let search = match args.search.as_deref() {
        Some(q) => search::parse(q).map_err(|e| anyhow!("--search didn't parse: {e}"))?,
        None => None,
    };
    let page = app
        .store
        .traces(&TraceQuery {
            filter: TraceFilter {
                scope,
                status: args.status.map(|s| match s {
                    StatusArg::Success => TraceStatus::Success,
                    StatusArg::Error => TraceStatus::Error,
                }),
                cached: args.cached,
                search,
                ..TraceFilter::default()
            },
            sort,
            order,
            limit: args.limit,
            after,
        })
        .await?;
    let items: Vec<TraceItem> = page.items.iter().map(TraceItem::from).collect();
    let next_cursor = page.next_cursor.as_ref().map(encode_cursor);
    if args.json {
        print_json(&json!({ "items": items, "next_cursor": next_cursor }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if items.is_empty() {
        println!("No interactions match.");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|t| {
            vec![
                t.created_at.clone(),
                match t.status_code {
                    Some(code) => format!("{} {code}", t.status),
                    None => t.status.to_owned(),
                },
                t.model.clone(),
                t.provider.clone(),
                t.gateway.clone(),
                format::millis(Some(t.duration_ms as f64)),
                format!(
                    "{} / {}",
                    t.tokens_in.map(format::count).unwrap_or_else(|| "–".into()),
                    t.tokens_out
                        .map(format::count)
                        .unwrap_or_else(|| "–".into())
                ),
                t.cost_usd
                    .map(format::usd)
                    .unwrap_or_else(|| "unpriced".into()),
                if t.cached { "hit" } else { "" }.to_owned(),
            ]
        })
        .collect();
    println!(
        "{}",
        format::table(
            &[
                "TIME",
                "STATUS",
                "MODEL",
                "PROVIDER",
                "GATEWAY",
                "DURATION",
                "TOKENS IN/OUT",
                "COST",
                "CACHE"
            ],
            &rows
        )
    );
    if let Some(c) = next_cursor {
        println!("More: --cursor {c}");
    }
    Ok(ExitCode::SUCCESS)
}
