//! `langguard demo`: the product on one machine with no Cloudflare account. An emulated
//! Cloudflare AI Gateway with history and live traffic, a temporary data dir, an integration
//! added through the same path an admin takes, the server with an admin login, and a sync
//! loop that prints what it imports. Two gateways side by side: `prod-chat` is pulled from the
//! Logs API; `support-bot` is switched to push with "Set up push" (Logpush counted,
//! OpenTelemetry alongside), so its live requests arrive as the emulator pushes them.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use langguard_cf_emulator::{Emulator, EmulatorConfig, SeedSpec, TokenSpec};
use langguard_ops::push_setup::{self, PushSetupRequest};
use langguard_server::{bootstrap_admin, serve, AppState, ServerConfig};
use langguard_store::{NewIntegration, Scope, SyncTrigger};
use langguard_sync::test_connection;
use rand::Rng;

use crate::app::{now_ms, App};
use crate::cli::DemoArgs;
use crate::format;

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const GATEWAYS: [&str; 2] = ["prod-chat", "support-bot"];
/// The gateway the demo switches to push.
const PUSHED: &str = "support-bot";

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let data_dir = tempfile::Builder::new()
        .prefix("langguard-demo-")
        .tempdir()
        .context("cannot create a temporary data directory")?;

    // The emulated gateway pushes to this machine over plain HTTP (Cloudflare itself only
    // pushes over HTTPS).
    let emulator = Emulator::new(EmulatorConfig {
        allow_http_push: true,
        ..EmulatorConfig::default()
    });
    let token: String = {
        let mut rng = rand::thread_rng();
        (0..40)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)]))
            .collect()
    };
    emulator.add_account(ACCOUNT);
    // May edit gateways and Logpush jobs, so the demo can set up push through the API.
    emulator.add_token(&token, TokenSpec::editor(&[ACCOUNT]));
    let now = time::OffsetDateTime::now_utc();
    for (i, gateway) in GATEWAYS.iter().enumerate() {
        emulator.add_gateway(ACCOUNT, gateway);
        emulator.seed_logs(
            ACCOUNT,
            gateway,
            SeedSpec {
                count: args.history,
                from: now - time::Duration::hours(24),
                to: now,
                seed: 7 + i as u64,
            },
        );
    }
    let _live: Vec<_> = GATEWAYS
        .iter()
        .map(|g| emulator.start_live_traffic(ACCOUNT, g, args.rate))
        .collect();
    let running = emulator.spawn().await?;

    let app = App::open_at(data_dir.path(), None, &running.base_url()).await?;
    println!("LangGuard demo");
    println!(
        "  data dir:           {} (deleted on exit)",
        data_dir.path().display()
    );
    println!(
        "  Cloudflare emulator: {} (account {ACCOUNT})",
        running.base_url()
    );
    println!(
        "  traffic:            {} logs of history and {} logs/s live on each of {}",
        format::count(args.history as i64),
        args.rate,
        GATEWAYS.join(", ")
    );

    let check = test_connection(&app.client_config, ACCOUNT, &token)
        .await
        .context("the demo could not reach its own emulator")?;
    let integration = app
        .store
        .create_integration(NewIntegration {
            name: "Demo Cloudflare".into(),
            account_id: ACCOUNT.into(),
            api_token: langguard_store::SealFor::new(
                app.sealer
                    .sealing(token.clone(), langguard_secrets::Binding::IntegrationToken),
            ),
            enabled: true,
            sync_interval_minutes: 15,
            lookback_days: Some(langguard_ops::defaults::LOOKBACK_DAYS),
            trailing_window_minutes: langguard_store::DEFAULT_TRAILING_WINDOW_MINUTES,
        })
        .await?;
    println!(
        "Added integration {:?}: connection tested, gateways {}",
        integration.name,
        check.gateways.join(", ")
    );
    let engine = Arc::new(app.engine());
    let admin_password: String = {
        let mut rng = rand::thread_rng();
        (0..20)
            .map(|_| char::from(b"abcdefghijkmnopqrstuvwxyz23456789"[rng.gen_range(0..33)]))
            .collect()
    };
    const ADMIN_EMAIL: &str = "admin@langguard.local";
    bootstrap_admin(app.store.as_ref(), Some(ADMIN_EMAIL), Some(&admin_password)).await?;
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            println!("  ({} is not free: {e}; using another port)", args.listen);
            tokio::net::TcpListener::bind((args.listen.ip(), 0)).await?
        }
    };
    let address = listener.local_addr()?;
    let public_url = url::Url::parse(&format!("http://{address}"))?;
    let state = AppState::new(
        app.store.clone(),
        app.sealer.clone(),
        app.client_config.clone(),
        engine.clone(),
        // The loop below syncs and reports; the server's scheduler would only race it.
        ServerConfig {
            scheduler: false,
            public_url: Some(public_url.clone()),
            ..ServerConfig::default()
        },
    );
    let ops = state.ops.clone();
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(state, listener, async move {
        let _ = server_stopped.await;
    }));
    println!("Open http://{address}/ in a browser");
    println!("API: http://{address}/api/v1 (OpenAPI at /api/v1/openapi.json)");
    println!("Sign in as {ADMIN_EMAIL} with password {admin_password}");

    // "Set up push" for one gateway, as an admin would press it.
    let admin = app
        .store
        .find_user_by_email(ADMIN_EMAIL)
        .await?
        .context("the demo admin is missing")?;
    let pushed = push_setup::set_up(
        &ops,
        &admin,
        integration.id,
        PushSetupRequest {
            gateway: PUSHED.into(),
            otlp: true,
            logpush: true,
            count: Some("logpush".into()),
            content_type: None,
        },
        Some(&public_url),
    )
    .await
    .context("setting up push for the demo gateway")?;
    println!(
        "Gateways: {} pulled from the Logs API; {PUSHED} pushes (Logpush counted from {}, OpenTelemetry alongside), set up through Cloudflare's API",
        GATEWAYS[0],
        pushed.gateway.source_since.as_deref().unwrap_or("now"),
    );
    println!("Syncing every {} s; Ctrl-C stops.\n", args.sync_every);

    let mut syncs = 0u64;
    // One listener for the whole loop: a Ctrl-C pressed during a sync is not lost.
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let run = match engine
            .sync(integration.id, SyncTrigger::Schedule, None)
            .await
        {
            Ok(run) => run,
            // Someone pressed Sync Now through the API: that run does the work.
            Err(langguard_sync::SyncError::AlreadyRunning { run_id }) => {
                println!(
                    "a sync started through the API is running (run {})",
                    run_id.unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_secs(args.sync_every.max(1))).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        syncs += 1;
        let m = app
            .store
            .metrics(&Scope {
                from_ms: Some(now_ms() - 24 * 3_600_000),
                ..Scope::default()
            })
            .await?;
        let mut per_gateway = Vec::new();
        for gateway in GATEWAYS {
            let g = app
                .store
                .metrics(&Scope {
                    from_ms: Some(now_ms() - 24 * 3_600_000),
                    gateway: Some(gateway.into()),
                    ..Scope::default()
                })
                .await?;
            let how = if gateway == PUSHED {
                "pushed"
            } else {
                "pulled"
            };
            per_gateway.push(format!("{gateway} ({how}) {}", format::count(g.requests)));
        }
        println!(
            "sync #{syncs}: {} · {} new, {} fetched in {} API calls · last 24 h: {} requests ({}), {} errors, {} cache hits, p95 {}, cost {}",
            run.status.as_str(),
            format::count(run.counts.items_ingested),
            format::count(run.counts.items_fetched),
            run.counts.api_calls,
            format::count(m.requests),
            per_gateway.join(", "),
            format::percent(m.error_rate),
            format::percent(m.cache_hit_rate),
            format::millis(m.latency_ms.p95),
            format::usd(m.cost_usd),
        );
        if let Some(error) = &run.error {
            println!("  {error}");
        }
        if args.syncs.is_some_and(|n| syncs >= n) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.sync_every.max(1))) => {}
            _ = &mut ctrl_c => {
                println!("\nStopping the demo.");
                break;
            }
        }
    }
    let _ = stop_server.send(());
    server.await??;
    Ok(ExitCode::SUCCESS)
}
