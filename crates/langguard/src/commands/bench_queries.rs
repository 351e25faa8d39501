//! `langguard bench queries`: the dashboard's and the Trace Explorer's queries over the
//! configured store (fill it with `dev seed`), the streaming CSV export, and — with `--duckdb` —
//! the same aggregates in DuckDB over that export turned into Parquet.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use langguard_ops::export::{self, ExportFormat};
use langguard_store::search;
use langguard_store::{
    Bucket, GroupBy, Scope, SortOrder, Store, TraceFilter, TraceQuery, TraceSort, TraceStatus,
};

use crate::app::App;
use crate::commands::bench::{memory_mib, rate, time_query};
use crate::format;

const DAY_MS: i64 = 86_400_000;

pub async fn run(app: &App, runs: usize, duckdb: bool) -> anyhow::Result<ExitCode> {
    let store = app.store.clone();
    let stored = store.count_interactions(&Scope::default()).await?;
    if stored == 0 {
        bail!(
            "the store is empty; fill it first with `langguard dev seed --interactions 10000000`"
        );
    }
    let now = crate::app::now_ms();
    let month = Scope {
        from_ms: Some(now - 30 * DAY_MS),
        to_ms: Some(now),
        ..Scope::default()
    };
    let day = Scope {
        from_ms: Some(now - DAY_MS),
        ..month.clone()
    };
    println!(
        "bench queries: {} stored interactions; median of {runs} runs",
        format::count(stored as i64)
    );
    dashboard(store.as_ref(), runs, &month).await?;
    trace_explorer(store.as_ref(), runs, &month, &day).await?;
    let csv = duckdb.then(|| std::env::temp_dir().join(format!("langguard-bench-{now}.csv")));
    export_csv(store.as_ref(), &month, csv.as_deref()).await?;
    if let Some(csv) = csv {
        let result = run_duckdb(&csv, runs, &month);
        let _ = std::fs::remove_file(&csv);
        result?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn dashboard(store: &dyn Store, runs: usize, month: &Scope) -> anyhow::Result<()> {
    let (ms, m) = time_query(runs, || async { Ok(store.metrics(month).await?) }).await?;
    println!(
        "{ms:>9.1} ms  metrics over 30 days ({} requests)",
        format::count(m.requests)
    );
    for (bucket, group_by, label) in [
        (
            Bucket::Hour,
            GroupBy::Model,
            "hourly time series over 30 days, grouped by model",
        ),
        (
            Bucket::Day,
            GroupBy::Gateway,
            "daily time series over 30 days, grouped by gateway",
        ),
    ] {
        let (ms, s) = time_query(runs, || async {
            Ok(store.metrics_series(month, bucket, Some(group_by)).await?)
        })
        .await?;
        let points: usize = s.iter().map(|s| s.points.len()).sum();
        println!(
            "{ms:>9.1} ms  {label} ({} series, {points} points)",
            s.len()
        );
    }
    let (ms, g) = time_query(runs, || async {
        Ok(store.metrics_by(month, GroupBy::Model).await?)
    })
    .await?;
    println!(
        "{ms:>9.1} ms  breakdown by model over 30 days ({} groups)",
        g.len()
    );
    Ok(())
}

async fn trace_explorer(
    store: &dyn Store,
    runs: usize,
    month: &Scope,
    day: &Scope,
) -> anyhow::Result<()> {
    let page = |filter: TraceFilter, sort: TraceSort| TraceQuery {
        filter,
        sort,
        order: SortOrder::Desc,
        limit: 50,
        after: None,
    };
    let searched = |scope: &Scope, q: &str| -> anyhow::Result<TraceFilter> {
        Ok(TraceFilter {
            scope: scope.clone(),
            search: search::parse(q)?,
            ..TraceFilter::default()
        })
    };
    let cases: Vec<(String, TraceQuery)> = vec![
        (
            "first page, no filter".into(),
            page(TraceFilter::default(), TraceSort::Time),
        ),
        (
            "first page over 30 days, 3 filters (gateway, provider, status)".into(),
            page(
                TraceFilter {
                    scope: Scope {
                        gateway: Some("support-bot".into()),
                        provider: Some("anthropic".into()),
                        ..month.clone()
                    },
                    status: Some(TraceStatus::Error),
                    ..TraceFilter::default()
                },
                TraceSort::Time,
            ),
        ),
        (
            "first page over 30 days, metadata team=search, duration ≥ 2 s, cost ≥ $0.01".into(),
            page(
                TraceFilter {
                    scope: month.clone(),
                    metadata: vec![("team".into(), "search".into())],
                    duration_ms: langguard_store::Range {
                        min: Some(2_000),
                        max: None,
                    },
                    cost_usd: langguard_store::Range {
                        min: Some(0.01),
                        max: None,
                    },
                    ..TraceFilter::default()
                },
                TraceSort::Time,
            ),
        ),
        (
            "search over 30 days: u_4242 (one user in ~20,000 rows)".into(),
            page(searched(month, "u_4242")?, TraceSort::Time),
        ),
        (
            "search over 30 days: user:u_4242 NOT status:error".into(),
            page(
                searched(month, "user:u_4242 NOT status:error")?,
                TraceSort::Time,
            ),
        ),
        (
            "search over 30 days: \"gpt-4o\" OR claude NOT cached:true".into(),
            page(
                searched(month, "\"gpt-4o\" OR claude NOT cached:true")?,
                TraceSort::Time,
            ),
        ),
        (
            "search over 24 hours matching nothing (reads every row of the day)".into(),
            page(searched(day, "no-such-term")?, TraceSort::Time),
        ),
        (
            "most expensive first over 24 hours".into(),
            page(
                TraceFilter {
                    scope: day.clone(),
                    ..TraceFilter::default()
                },
                TraceSort::Cost,
            ),
        ),
    ];
    for (label, query) in cases {
        let (ms, p) = time_query(runs, || async { Ok(store.traces(&query).await?) }).await?;
        println!(
            "{ms:>9.1} ms  Trace Explorer {label} ({} rows)",
            p.items.len()
        );
    }
    Ok(())
}

/// Exports the month as CSV through the API's own formatter, counting rows and bytes (and
/// writing them to `file` when given), and reports rows/s and peak memory.
async fn export_csv(
    store: &dyn Store,
    month: &Scope,
    file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = match file {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let (peak_before, _) = memory_mib().unwrap_or_default();
    let started = Instant::now();
    let rows = store.export_traces(
        TraceFilter {
            scope: month.clone(),
            ..TraceFilter::default()
        },
        TraceSort::Time,
        SortOrder::Desc,
    );
    let mut chunks = export::format(rows, ExportFormat::Csv);
    let (mut lines, mut bytes) = (0usize, 0usize);
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk?;
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
        bytes += chunk.len();
        if let Some(out) = out.as_mut() {
            out.write_all(&chunk)?;
        }
    }
    if let Some(mut out) = out {
        out.flush()?;
    }
    let took = started.elapsed();
    let rows = lines.saturating_sub(1); // the header
    let (peak_after, _) = memory_mib().unwrap_or_default();
    println!(
        "{:>9.1} ms  CSV export over 30 days: {} rows, {:.0} MB, {} rows/s, peak RSS {peak_before:.0} → {peak_after:.0} MiB{}",
        took.as_secs_f64() * 1e3,
        format::count(rows as i64),
        bytes as f64 / 1e6,
        rate(rows, took),
        if file.is_some() { " (also written to disk)" } else { "" }
    );
    Ok(())
}

fn run_duckdb(csv: &std::path::Path, runs: usize, month: &Scope) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("duckdb_compare.py");
    std::fs::write(&script, include_str!("duckdb_compare.py"))?;
    let parquet = dir.path().join("traces.parquet");
    let status = std::process::Command::new("python3")
        .arg(&script)
        .arg(csv)
        .arg(&parquet)
        .arg(runs.to_string())
        .arg(month.from_ms.unwrap_or(0).to_string())
        .arg(month.to_ms.unwrap_or(i64::MAX).to_string())
        .status()
        .context("running python3 (DuckDB comparison); is python3 installed?")?;
    if !status.success() {
        bail!("the DuckDB comparison failed (is DuckDB installed? pip install duckdb)");
    }
    Ok(())
}
