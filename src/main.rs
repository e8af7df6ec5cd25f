//! The `ferry` command line: `shell`, `run`, `check-config`.

use clap::{Parser, Subcommand};
use ferry::app::{App, StartError};
use ferry::chat::addressing::shell_command;
use ferry::chat::shell::{handle_with_progress, run_shell};
use ferry::chat::text::render;
use ferry::config::Config;
use ferry::domain::{Actor, Origin, Outcome};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// ferry: a ChatOps deploy bot.
#[derive(Parser)]
#[command(name = "ferry", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Type commands locally, one per line (piped input works too).
    Shell {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Who you are: identity `shell:<NAME>` (default: $USER).
        #[arg(long)]
        user: Option<String>,
    },
    /// Run one command and exit: 0 on success, 1 if it failed or was refused, 2 on usage or
    /// configuration errors.
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        user: Option<String>,
        /// The command, e.g. "env staging.ms-users.version 3.5.7".
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Serve every configured transport (Slack, Discord) and the HTTP listener.
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate the configuration and its seed files, and summarise them.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Usage or configuration error.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    // One TLS provider for every client (reqwest, slack-morphism, serenity, sqlx): should a
    // dependency ever enable a second one, rustls would otherwise refuse to pick.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        // Every line redacted: dependencies log URLs and requests that can hold secrets.
        .with_writer(ferry::logging::RedactedStderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Cmd::Shell { config, user } => shell(config, user).await,
            Cmd::Run {
                config,
                user,
                command,
            } => run(config, user, command.join(" ")).await,
            Cmd::Serve { config } => serve(config).await,
            Cmd::CheckConfig { config } => ferry::check::check_config(config.as_deref()).await,
        }
    })
}

/// Finds the config (`--config`, `$FERRY_CONFIG`, `./config/ferry.toml`, built-in) and says
/// which one it is: on stderr where a person starts ferry (`announce`), in the log otherwise.
fn discover(config: Option<PathBuf>, announce: bool) -> Result<Config, ExitCode> {
    let config = Config::discover(config.as_deref()).map_err(|e| {
        eprintln!("ferry: {e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    let used = match &config.file {
        Some(_) => format!("ferry: using {}", config.label()),
        None => "ferry: using the built-in demo config (no --config, $FERRY_CONFIG or ./config/ferry.toml)".to_string(),
    };
    if announce {
        eprintln!("{used}");
    } else {
        tracing::info!("{used}");
    }
    Ok(config)
}

async fn start(config: Option<PathBuf>, announce: bool) -> Result<App, ExitCode> {
    let config = discover(config, announce)?;
    App::start(config).await.map_err(|e| {
        eprintln!("ferry: {e}");
        match e {
            StartError::Config(_) | StartError::Store(ferry::store::StoreError::BadUrl(_)) => {
                ExitCode::from(EXIT_USAGE)
            }
            StartError::Store(_) => ExitCode::FAILURE,
        }
    })
}

fn shell_actor(user: Option<String>) -> Result<Actor, ExitCode> {
    let name = user
        .or_else(|| std::env::var("USER").ok())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "you".to_string());
    let valid = name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        eprintln!(
            "ferry: `--user {name}` is not a user name: use letters, digits, `.`, `_` and `-` (at most 64)"
        );
        return Err(ExitCode::from(EXIT_USAGE));
    }
    Ok(Actor::new("shell", &name, &name))
}

async fn shell(config: Option<PathBuf>, user: Option<String>) -> ExitCode {
    let actor = match shell_actor(user) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let app = match start(config, true).await {
        Ok(app) => app,
        Err(code) => return code,
    };
    let prompt = std::io::stdin().is_terminal();
    let input = tokio::io::BufReader::new(tokio::io::stdin());
    match run_shell(&app, &actor, input, tokio::io::stdout(), prompt).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Option<PathBuf>, user: Option<String>, text: String) -> ExitCode {
    let actor = match shell_actor(user) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let app = match start(config, false).await {
        Ok(app) => app,
        Err(code) => return code,
    };
    let command = shell_command(&text, &app.config.bot.name, &app.config.bot.prefixes);
    let reply =
        match handle_with_progress(&app, &actor, &Origin::shell(), command, tokio::io::stderr())
            .await
        {
            Ok(reply) => reply,
            Err(e) => {
                eprintln!("ferry: {e}");
                return ExitCode::FAILURE;
            }
        };
    print!("{}", render(&reply));
    match reply.outcome {
        Outcome::Ok => ExitCode::SUCCESS,
        Outcome::Refused | Outcome::Failed => ExitCode::FAILURE,
    }
}

async fn serve(config: Option<PathBuf>) -> ExitCode {
    let config = match discover(config, true) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match ferry::serve::serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A transport's error can quote what its platform said, URLs included.
            eprintln!("ferry: {}", ferry::logging::redact(&e.to_string()));
            match e {
                ferry::serve::ServeError::Config(_)
                | ferry::serve::ServeError::Start(StartError::Config(_)) => {
                    ExitCode::from(EXIT_USAGE)
                }
                _ => ExitCode::FAILURE,
            }
        }
    }
}
