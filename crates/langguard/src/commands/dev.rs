//! `langguard dev seed`: fills the configured store with realistic synthetic interactions and
//! their rollups, through the real ingest path, to try LangGuard at scale.

use std::process::ExitCode;
use std::time::Instant;

use langguard_cf_emulator::SeedSpec;
use langguard_store::NewIntegration;

use crate::app::App;
use crate::cli::DevCommand;
use crate::commands::synthetic::ingest_synthetic;
use crate::format;

/// The gateways seeded data is spread over, so group-bys have something to group.
const GATEWAYS: [&str; 3] = ["prod-chat", "support-bot", "batch-jobs"];

pub async fn run(app: &App, command: DevCommand) -> anyhow::Result<ExitCode> {
    let DevCommand::Seed {
        interactions,
        days,
        name,
        seed,
    } = command;
    // Seeded data belongs to its own disabled integration: it is never synced, and
    // `integrations remove` takes it away again.
    let integration = match app.store.find_integration_by_name(&name).await? {
        Some(existing) => existing,
        None => {
            app.store
                .create_integration(NewIntegration {
                    name: name.clone(),
                    account_id: "synthetic".into(),
                    api_token: langguard_store::SealFor::new(app.sealer.sealing(
                        "synthetic-data-has-no-token".into(),
                        langguard_secrets::Binding::IntegrationToken,
                    )),
                    enabled: false,
                    sync_interval_minutes: 15,
                    lookback_days: None,
                    trailing_window_minutes: langguard_store::DEFAULT_TRAILING_WINDOW_MINUTES,
                })
                .await?
        }
    };
    let now = time::OffsetDateTime::now_utc();
    let spec = SeedSpec {
        count: interactions,
        from: now - time::Duration::days(days),
        to: now,
        seed,
    };
    println!(
        "Seeding {} interactions over {days} days into integration {:?}…",
        format::count(interactions as i64),
        integration.name
    );
    let started = Instant::now();
    let tenth = (interactions / 10).max(1);
    let mut next_report = tenth;
    let totals = ingest_synthetic(
        app.store.clone(),
        integration.id,
        &spec,
        5_000,
        &GATEWAYS,
        |t| {
            if t.logs >= next_report {
                println!("  {:>12} stored", format::count(t.logs as i64));
                next_report = (t.logs / tenth + 1) * tenth;
            }
        },
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "Done: {} interactions in {secs:.1} s ({} per second).",
        format::count(totals.logs as i64),
        format::count((totals.logs as f64 / secs.max(1e-9)) as i64)
    );
    Ok(ExitCode::SUCCESS)
}
