//! `langguard integrations add|list|test|remove`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};
use langguard_cloudflare::CloudflareError;
use langguard_ops::integrations::{self, IntegrationInput};
use langguard_ops::Actor;
use langguard_sync::ConnectionCheck;
use serde_json::json;

use crate::app::App;
use crate::cli::{AddArgs, IntegrationsCommand};
use crate::commands::print_json;
use crate::format;
use langguard_ops::integrations::ConnectionTestView;
use langguard_ops::views::IntegrationView;

pub async fn run(app: &App, command: IntegrationsCommand) -> anyhow::Result<ExitCode> {
    match command {
        IntegrationsCommand::Add(args) => add(app, args).await,
        IntegrationsCommand::List { json } => list(app, json).await,
        IntegrationsCommand::Test { name, json } => test(app, &name, json).await,
        IntegrationsCommand::Remove { name, json } => remove(app, &name, json).await,
    }
}

fn print_failure(e: &CloudflareError) {
    eprintln!("Connection failed: {e}");
    eprintln!("What to do: {}", e.hint());
}

/// The token comes from `LANGGUARD_CF_API_TOKEN` or stdin, never from the command line, where
/// it would end up in shell history and process listings.
fn read_token() -> anyhow::Result<String> {
    if let Ok(token) = std::env::var("LANGGUARD_CF_API_TOKEN") {
        if !token.trim().is_empty() {
            return Ok(token.trim().to_owned());
        }
    }
    let stdin = std::io::stdin();
    let token = if stdin.is_terminal() {
        rpassword::prompt_password("Cloudflare API token (AI Gateway: Read): ")
            .context("cannot read the API token from the terminal")?
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the API token from stdin")?;
        line
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!("no API token given: set LANGGUARD_CF_API_TOKEN or pipe the token on stdin");
    }
    Ok(token)
}

async fn add(app: &App, args: AddArgs) -> anyhow::Result<ExitCode> {
    let name = args.name.trim().to_owned();
    if name.is_empty() {
        bail!("--name must not be empty");
    }
    if app.store.find_integration_by_name(&name).await?.is_some() {
        bail!("an integration named {name:?} already exists; pick another name or remove it first");
    }
    let token = read_token()?;
    let ops = app.services();
    let tested = integrations::test(&ops, &args.account_id, &token).await?;
    let view = ConnectionTestView::from(&tested);
    let check = match tested {
        Ok(check) => check,
        Err(e) => {
            if args.json {
                print_json(&view)?;
            } else {
                print_failure(&e);
                eprintln!("Nothing was saved.");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let input = IntegrationInput {
        enabled: !args.disabled,
        sync_interval_minutes: args.sync_interval_minutes,
        lookback_days: args.lookback_days.0,
        ..IntegrationInput::new(&name, &args.account_id, &token)
    };
    let integration = integrations::add(&ops, Actor::Cli, input).await?;
    if args.json {
        print_json(&json!({
            "ok": true,
            "integration": IntegrationView::from(&integration),
            "gateways": check.gateways,
        }))?;
    } else {
        print_check(&check);
        println!(
            "Saved integration {:?} (id {}). Import now with: langguard sync {:?}",
            integration.name, integration.id, integration.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_check(check: &ConnectionCheck) {
    let kind = match check.token_kind {
        langguard_cloudflare::TokenKind::User => "user token",
        langguard_cloudflare::TokenKind::Account => "account-owned token",
    };
    println!(
        "Connected ({kind}); {} gateway{} found{}{}",
        check.gateways.len(),
        if check.gateways.len() == 1 { "" } else { "s" },
        if check.gateways.is_empty() { "" } else { ": " },
        check.gateways.join(", ")
    );
}

async fn list(app: &App, json: bool) -> anyhow::Result<ExitCode> {
    let integrations = app.store.list_integrations().await?;
    let views: Vec<IntegrationView> = integrations.iter().map(IntegrationView::from).collect();
    if json {
        print_json(&json!({ "items": views }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if views.is_empty() {
        println!("No integrations yet. Add one with: langguard integrations add --name NAME --account-id ID");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                v.status_label.to_owned(),
                v.last_sync_at.clone().unwrap_or_else(|| "never".into()),
                format::count(v.interactions_synced),
                format!("{} min", v.sync_interval_minutes),
                v.account_id.clone(),
            ]
        })
        .collect();
    println!(
        "{}",
        format::table(
            &[
                "NAME",
                "STATUS",
                "LAST SYNC",
                "INTERACTIONS",
                "INTERVAL",
                "ACCOUNT"
            ],
            &rows
        )
    );
    for v in views.iter().filter(|v| v.status_message.is_some()) {
        println!(
            "{}: {}",
            v.name,
            v.status_message.as_deref().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn test(app: &App, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let integration = app.integration_named(name).await?;
    let tested = integrations::test_saved(&app.services(), &integration).await?;
    if json {
        print_json(&ConnectionTestView::from(&tested))?;
    }
    match tested {
        Ok(check) => {
            if !json {
                print_check(&check);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if !json {
                print_failure(&e);
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn remove(app: &App, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let integration = app.integration_named(name).await?;
    let integration = integrations::remove(&app.services(), Actor::Cli, integration.id).await?;
    if json {
        print_json(
            &json!({"ok": true, "removed": integration.name, "interactions_deleted": integration.interactions_synced}),
        )?;
    } else {
        println!(
            "Removed integration {:?} and the {} interactions imported through it.",
            integration.name,
            format::count(integration.interactions_synced)
        );
    }
    std::io::stdout().flush().ok();
    Ok(ExitCode::SUCCESS)
}
