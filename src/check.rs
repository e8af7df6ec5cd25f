//! `ferry check-config`: validate the configuration and every seed file it names, and print a
//! summary a person can check at a glance. Opens no store and changes nothing.

use crate::config::Config;
use std::path::Path;
use std::process::ExitCode;

/// Prints the summary and returns 0, or the first error (file, line, nearest valid key) and 2.
pub async fn check_config(path: Option<&Path>) -> ExitCode {
    match summarise(path) {
        Ok(summary) => {
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferry: {e}");
            ExitCode::from(2)
        }
    }
}

/// The summary text, or the first error found.
pub fn summarise(path: Option<&Path>) -> Result<String, crate::config::ConfigError> {
    let config = Config::discover(path)?;
    let mut out = format!("{} is valid\n", config.label());
    out.push_str(&format!(
        "store: {}\n",
        crate::store::redact_url(&config.store.url)
    ));
    out.push_str(&format!("deployers: {}\n", config.deployers.len()));
    for (name, deployer) in &config.deployers {
        // Where a webhook deploys, without the credentials or token its URL may carry.
        let target = match deployer {
            crate::deploy::DeployerConfig::Webhook(w) => {
                format!(" → {}", crate::deploy::redact_url(&w.url))
            }
            _ => String::new(),
        };
        out.push_str(&format!("  {name} ({}){target}\n", deployer.kind()));
    }
    out.push_str(&format!("environments: {}\n", config.environments.len()));
    for (name, env) in &config.environments {
        let seed = match config.seed(name)? {
            Some((label, doc)) => format!("seed {label}: {} services", doc.services.len()),
            None => "no seed".to_string(),
        };
        let mut rules = vec![format!("deployer {}", env.deployer.get_ref())];
        if env.protected {
            rules.push("protected".into());
        }
        if env.approvals > 0 {
            rules.push(format!("{} approvals", env.approvals));
        }
        out.push_str(&format!("  {name}: {}; {seed}\n", rules.join(", ")));
    }
    let commands = crate::command::custom::CustomCommands::for_config(&config)?;
    let names: Vec<&str> = commands.names().collect();
    out.push_str(&format!(
        "user-defined commands: {}{}\n",
        names.len(),
        if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        }
    ));
    let transports: Vec<&str> = [
        config.slack.as_ref().map(|_| "slack"),
        config.discord.as_ref().map(|_| "discord"),
        config.http.as_ref().map(|_| "http"),
    ]
    .into_iter()
    .flatten()
    .collect();
    out.push_str(&format!(
        "transports: shell{}\n",
        transports
            .iter()
            .map(|t| format!(", {t}"))
            .collect::<String>()
    ));
    Ok(out)
}
