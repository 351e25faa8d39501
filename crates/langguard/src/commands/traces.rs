//! `langguard traces`: recent interactions, newest first, with keyset pagination.

use std::process::ExitCode;

use anyhow::bail;
use langguard_store::{TraceQuery, TraceStatus};
use serde_json::json;

use crate::app::{now_ms, App};
use crate::cli::{StatusArg, TracesArgs};
use crate::commands::print_json;
use crate::format;
use langguard_server::views::{decode_cursor, encode_cursor, TraceItem};

pub async fn run(app: &App, args: TracesArgs) -> anyhow::Result<ExitCode> {
    let scope = app.scope(&args.scope, now_ms(), None).await?;
    let before = match &args.cursor {
        Some(c) => match decode_cursor(c) {
            Some(c) => Some(c),
            None => bail!("--cursor {c:?} is not a cursor from a previous page"),
        },
        None => None,
    };
    let page = app
        .store
        .traces(&TraceQuery {
            scope,
            status: args.status.map(|s| match s {
                StatusArg::Success => TraceStatus::Success,
                StatusArg::Error => TraceStatus::Error,
            }),
            cached: args.cached,
            limit: args.limit,
            before,
        })
        .await?;
    let items: Vec<TraceItem> = page.items.iter().map(TraceItem::from).collect();
    let next_cursor = page.next_cursor.map(encode_cursor);
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
