//! `langguard serve`: the REST API and the scheduler, until Ctrl-C or SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use langguard_server::{bootstrap_admin, serve, AppState, ServerConfig};

use crate::app::App;
use crate::cli::ServeArgs;

pub async fn run(
    app: App,
    args: ServeArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    // Held until the server stops: no key rotation may run under it.
    let Some(_lock) = crate::app::try_lock_data_dir(data_dir)? else {
        anyhow::bail!(
            "another LangGuard server (or a key rotation) is using {}",
            data_dir.display()
        );
    };
    // A run still marked running that no instance's live lease covers was cut short.
    app.store
        .fail_abandoned_sync_runs("the server stopped before this sync finished")
        .await?;
    let admin_email = std::env::var("LANGGUARD_ADMIN_EMAIL").ok();
    let admin_password = std::env::var("LANGGUARD_ADMIN_PASSWORD").ok();
    if bootstrap_admin(
        app.store.as_ref(),
        admin_email.as_deref(),
        admin_password.as_deref(),
    )
    .await?
    {
        tracing::info!(
            user.email = admin_email.as_deref().unwrap_or_default(),
            "created the first admin"
        );
    } else if app.store.count_users().await? == 0 {
        tracing::warn!("no user exists yet: set LANGGUARD_ADMIN_EMAIL and LANGGUARD_ADMIN_PASSWORD, or run `langguard users create --email … --role admin`");
    }
    let engine = Arc::new(app.engine());
    let state = AppState::new(
        app.store.clone(),
        app.sealer.clone(),
        app.client_config.clone(),
        engine,
        ServerConfig {
            session_ttl: Duration::from_secs(args.session_hours * 3600),
            secure_cookies: args.secure_cookies
                || args
                    .public_url
                    .as_ref()
                    .is_some_and(|u| u.scheme() == "https"),
            public_url: args.public_url.clone(),
            trusted_proxies: args.trusted_proxies.clone(),
            client_ip_header: args.client_ip_header,
            metrics_token: args.metrics_token.clone().filter(|t| !t.is_empty()),
            webhooks: Some(langguard_server::webhooks::WebhookSettings {
                targets: args.webhook_allow_private.clone(),
                ..Default::default()
            }),
            scheduler: !args.no_scheduler,
            retention_days: args.retention_days,
            lease_ttl: crate::app::lease_ttl(),
            policy_memory_limit_mib: app.policy_memory_mib,
            push_max_in_flight: args.push_max_in_flight as usize,
            bucket_poll: Duration::from_secs(args.bucket_poll_seconds),
            ..ServerConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "LangGuard is serving");
    eprintln!("LangGuard is serving on http://{address} (API under /api/v1)");
    serve(state, listener, shutdown_signal()).await?;
    eprintln!("LangGuard stopped.");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM (what systemd and container runtimes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
