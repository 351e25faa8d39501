//! `langguard sync [NAME]`: imports in the foreground with progress, then a summary.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use langguard_policy::{PolicyWorker, WorkerConfig};
use langguard_store::{SyncRunStatus, SyncTrigger};
use langguard_sync::bodies::CloudflareBodies;
use langguard_sync::{SyncError, SyncProgress};
use serde_json::json;

use crate::app::App;
use crate::cli::SyncArgs;
use crate::commands::print_json;
use crate::format;
use langguard_ops::views::SyncRunView;

pub async fn run(app: &App, args: SyncArgs) -> anyhow::Result<ExitCode> {
    // The embedded database serves one process: a run still marked running was cut short.
    app.store
        .fail_abandoned_sync_runs("the process running this sync stopped before it finished")
        .await?;
    let integrations = match &args.name {
        Some(name) => vec![app.integration_named(name).await?],
        None => app
            .store
            .list_integrations()
            .await?
            .into_iter()
            .filter(|i| i.enabled)
            .collect(),
    };
    if integrations.is_empty() && !args.json {
        println!("No enabled integrations to sync. Add one with: langguard integrations add --name NAME --account-id ID");
    }
    let engine = app.engine();
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let mut views = Vec::new();
    let mut failed = false;
    for integration in &integrations {
        let name = integration.name.clone();
        let progress = move |p: &SyncProgress| {
            eprint!(
                "\r\x1b[2K{name} · {}: fetched {} · new {} · duplicates {}",
                p.gateway,
                format::count(p.counts.items_fetched),
                format::count(p.counts.items_ingested),
                format::count(p.counts.duplicates_skipped)
            );
            std::io::stderr().flush().ok();
        };
        let run = match engine
            .sync(
                integration.id,
                SyncTrigger::Cli,
                show_progress.then_some(&progress as _),
            )
            .await
        {
            Ok(run) => run,
            Err(SyncError::AlreadyRunning { run_id }) => {
                eprintln!(
                    "{}: {}",
                    integration.name,
                    SyncError::AlreadyRunning { run_id }
                );
                failed = true;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if show_progress {
            eprint!("\r\x1b[2K");
        }
        failed |= run.status == SyncRunStatus::Failed;
        views.push((integration.name.clone(), SyncRunView::from(&run)));
    }
    // Policies evaluate what was imported (the server's policy worker does this on its own).
    langguard_ops::policies::install_builtins(app.store.as_ref()).await?;
    let policies = PolicyWorker::new(
        app.store.clone(),
        WorkerConfig::default(),
        app.policy_sandbox(),
    )
    .with_bodies(std::sync::Arc::new(CloudflareBodies::new(
        app.sealer.clone(),
        app.client_config.clone(),
    )))
    .catch_up()
    .await?;
    if args.json {
        let runs: Vec<_> = views
            .iter()
            .map(|(name, run)| json!({"integration": name, "run": run}))
            .collect();
        print_json(&json!({
            "runs": runs,
            "policies": {
                "interactions_evaluated": policies.interactions,
                "evaluations": policies.evaluations,
                "new_violations": policies.new_violations.len(),
            },
        }))?;
    } else if !views.is_empty() {
        print_summary(&views);
        if policies.interactions > 0 {
            println!(
                "\nPolicies evaluated {} interactions: {} new violations.",
                format::count(policies.interactions as i64),
                format::count(policies.new_violations.len() as i64)
            );
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_summary(views: &[(String, SyncRunView)]) {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|(name, r)| {
            vec![
                name.clone(),
                r.status.to_owned(),
                r.gateways.to_string(),
                format::count(r.items_fetched),
                format::count(r.items_ingested),
                format::count(r.duplicates_skipped),
                format::count(r.api_calls),
                r.rate_limit_waits.to_string(),
                format::millis(r.duration_ms.map(|d| d as f64)),
            ]
        })
        .collect();
    println!(
        "{}",
        format::table(
            &[
                "INTEGRATION",
                "STATUS",
                "GATEWAYS",
                "FETCHED",
                "NEW",
                "DUPLICATES",
                "API CALLS",
                "429 WAITS",
                "TOOK"
            ],
            &rows
        )
    );
    for (name, r) in views {
        if let Some(error) = &r.error {
            println!("\n{name}: {error}");
            if let Some(hint) = &r.hint {
                println!("What to do: {hint}");
            }
        }
    }
}
