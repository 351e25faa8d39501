//! The optional TOML settings file. Its settings become `LANGGUARD_*` environment defaults
//! before the command line is parsed, so the order of precedence is: flags, then environment,
//! then the file, then built-in defaults — one mechanism, no second copy of every setting.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::CommandFactory;

use crate::cli::{Cli, ENVIRONMENT_SETTINGS};

/// Settings the file may hold, as their environment variable names: every flag's variable in
/// the command line's own definitions, and the settings read from the environment only —
/// derived, so a new flag is a new setting without a second list to keep.
fn settings() -> Vec<String> {
    fn collect(command: &clap::Command, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.push(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            collect(sub, out);
        }
    }
    let mut names = Vec::new();
    collect(&Cli::command(), &mut names);
    names.extend(ENVIRONMENT_SETTINGS.iter().map(|s| s.to_string()));
    // The file can't name itself.
    names.retain(|n| n != "LANGGUARD_CONFIG");
    names.sort();
    names.dedup();
    names
}

/// The `--config` path from the arguments, else `LANGGUARD_CONFIG`.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let arg = arg.to_string_lossy();
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("LANGGUARD_CONFIG").map(PathBuf::from)
}

/// Reads the settings file, if one is named, into environment defaults. Call before any
/// thread starts: it sets environment variables.
pub fn apply(args: &[OsString]) -> anyhow::Result<()> {
    let Some(path) = config_path(args) else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the settings file {}", path.display()))?;
    for (var, value) in parse(&text).with_context(|| format!("in {}", path.display()))? {
        if std::env::var_os(&var).is_none() {
            std::env::set_var(var, value);
        }
    }
    Ok(())
}

fn parse(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    // The parser's message quotes the offending line, which may hold a password: say where.
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        match line {
            Some(line) => anyhow::anyhow!("this is not valid TOML (line {line})"),
            None => anyhow::anyhow!("this is not valid TOML"),
        }
    })?;
    let settings = settings();
    let mut out = Vec::new();
    for (key, value) in table {
        let var = format!("LANGGUARD_{}", key.to_uppercase().replace('-', "_"));
        if !settings.contains(&var) {
            bail!("unknown setting `{key}`; known: {}", known(&settings));
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!(
                "`{key}` must be a string, number or boolean, not {}",
                other.type_str()
            ),
        };
        out.push((var, value));
    }
    Ok(out)
}

fn known(settings: &[String]) -> String {
    settings
        .iter()
        .map(|s| s.trim_start_matches("LANGGUARD_").to_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_environment_names() {
        let got = parse("data_dir = \"/var/lib/langguard\"\nlisten = \"0.0.0.0:8080\"\nsession_hours = 8\nsecure_cookies = true\n")
            .expect("parses");
        assert_eq!(
            got,
            [
                ("LANGGUARD_DATA_DIR".into(), "/var/lib/langguard".into()),
                ("LANGGUARD_LISTEN".into(), "0.0.0.0:8080".into()),
                ("LANGGUARD_SECURE_COOKIES".into(), "true".into()),
                ("LANGGUARD_SESSION_HOURS".into(), "8".into()),
            ]
        );
    }

    #[test]
    fn every_setting_the_readme_lists_is_accepted() {
        let file = "retention_days = 30\nlease_ttl_seconds = 60\ndb_pool_size = 10\n\
                    policy_memory_mb = 256\nmetrics_token = \"t\"\npublic_url = \"https://lg\"\n\
                    trusted_proxies = \"10.0.0.0/8\"\nclient_ip_header = \"forwarded\"\n\
                    webhook_allow_private = false\nadmin_email = \"a@b\"\nencryption_key = \"k\"\n";
        let got = parse(file).expect("every documented setting is known");
        assert_eq!(got.len(), 11);
        // Every flag with an environment variable is a setting, and the file can't name itself.
        let settings = settings();
        assert!(settings.contains(&"LANGGUARD_LISTEN".to_string()));
        assert!(!settings.contains(&"LANGGUARD_CONFIG".to_string()));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(parse("colour = \"blue\"").is_err());
        assert!(parse("listen = [1, 2]").is_err());
        assert!(parse("not toml at all [").is_err());
    }

    #[test]
    fn the_path_comes_from_the_flag() {
        let args: Vec<OsString> = ["langguard", "--config", "/etc/lg.toml", "sync"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(config_path(&args), Some(PathBuf::from("/etc/lg.toml")));
        let args: Vec<OsString> = ["langguard", "--config=/x.toml"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(config_path(&args), Some(PathBuf::from("/x.toml")));
    }
}
