//! The `langguard` binary: parses the command line and runs one command.

mod app;
mod cli;
mod commands;
mod config_file;
mod format;
mod timearg;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    // Started as a policy sandbox process: serve it and exit, before anything else runs.
    langguard_policy::serve_if_child();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Err(e) = config_file::apply(&args) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse_from(args);
    init_logging(&cli.global.log, cli.global.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.command.wants_json();
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            if json {
                // A script asked for JSON: it gets a JSON document on failure too.
                // The code the API and the UI give the same failure, when it is one of theirs.
                let code = e
                    .downcast_ref::<langguard_ops::OpsError>()
                    .map_or("command_failed", langguard_ops::OpsError::code);
                let doc = serde_json::json!({
                    "ok": false,
                    "error": {"code": code, "message": format!("{e:#}")},
                });
                // Best effort: stdout may be closed already.
                let _ = commands::print_json(&doc);
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => commands::demo::run(args).await,
        Command::Backup(args) => commands::backup::run(&cli.global, &args.to).await,
        Command::Bench(command) => commands::bench::run(command, &cli.global).await,
        command => {
            let app = app::App::open(&cli.global).await?;
            match command {
                Command::Integrations(c) => commands::integrations::run(&app, c).await,
                Command::Sync(args) => commands::sync::run(&app, args).await,
                Command::Metrics(args) => commands::metrics::run(&app, args).await,
                Command::Traces(args) => commands::traces::run(&app, args).await,
                Command::Serve(args) => commands::serve::run(app, args, &cli.global.data_dir).await,
                Command::Prune(args) => {
                    let deleted = langguard_ops::retention::prune(
                        app.store.as_ref(),
                        args.older_than_days,
                        app::now_ms(),
                    )
                    .await?;
                    println!(
                        "Deleted {deleted} interactions older than {} days (rollups kept).",
                        args.older_than_days
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Command::Users(c) => commands::users::run(&app, c).await,
                Command::Dev(c) => commands::dev::run(&app, c).await,
                Command::Secrets(cli::SecretsCommand::RotateKey) => {
                    commands::secrets::rotate_key(&app, &cli.global.data_dir).await
                }
                Command::Demo(_) | Command::Bench(_) | Command::Backup(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

fn init_logging(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
