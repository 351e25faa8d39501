//! `langguard users create|list`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::Context;
use langguard_ops::views::UserView;
use langguard_ops::{users, Actor};
use langguard_store::Role;
use serde_json::json;

use crate::app::App;
use crate::cli::{RoleArg, UsersCommand};
use crate::commands::print_json;
use crate::format;

pub async fn run(app: &App, command: UsersCommand) -> anyhow::Result<ExitCode> {
    match command {
        UsersCommand::Create { email, role } => {
            let password = read_password()?;
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Member => Role::Member,
                RoleArg::Viewer => Role::Viewer,
            };
            let user = users::add(&app.services(), Actor::Cli, &email, password, role).await?;
            println!("Created {} ({}).", user.email, user.role.as_str());
        }
        UsersCommand::List { json } => {
            let users = app.store.list_users().await?;
            let views: Vec<UserView> = users.iter().map(UserView::from).collect();
            if json {
                print_json(&json!({ "items": views }))?;
            } else {
                let rows: Vec<Vec<String>> = views
                    .iter()
                    .map(|u| {
                        vec![
                            u.email.clone(),
                            u.role.to_owned(),
                            u.last_active_at.clone().unwrap_or_else(|| "never".into()),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    format::table(&["EMAIL", "ROLE", "LAST ACTIVE"], &rows)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// From `LANGGUARD_USER_PASSWORD`, a hidden prompt on a terminal, or a line of stdin.
fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("LANGGUARD_USER_PASSWORD") {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return rpassword::prompt_password("Password: ").context("cannot read the password");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
