//! Loading and validating `ferry.toml` and the seed files it names.
//!
//! Every table is typed with `deny_unknown_fields`, so a typo is an error naming the file, the
//! line and the nearest valid key. Cross-references (an environment's deployer, `promote_to`,
//! the roles users hold) are checked after parsing, with the line they were written on.
//! Secrets never live here: the config names environment variables that hold them.

mod environment;

pub use crate::domain::{ConfigError, HumanDuration, line_of};
pub use environment::EnvironmentConfig;

use crate::deploy::DeployerConfig;
use crate::domain::{Document, Name, nearest};
use crate::policy::{DEFAULT_USER, Grant, Policy};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The demo configuration used when no config file exists: the same as `config/ferry.toml`.
const BUILTIN: &str = include_str!("../../config/ferry.toml");
/// The demo seeds embedded beside it, by environment name.
const BUILTIN_SEEDS: &[(&str, &str)] = &[
    (
        "staging",
        include_str!("../../config/environments/staging.toml"),
    ),
    (
        "production",
        include_str!("../../config/environments/production.toml"),
    ),
];

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, or `None` for the built-in default.
    pub file: Option<PathBuf>,
    /// Relative paths in the config resolve against this folder.
    pub base_dir: PathBuf,
    pub bot: BotConfig,
    pub store: StoreConfig,
    pub slack: Option<SlackConfig>,
    pub discord: Option<DiscordConfig>,
    pub http: Option<HttpConfig>,
    pub deployers: BTreeMap<Name, DeployerConfig>,
    pub environments: BTreeMap<Name, EnvironmentConfig>,
    pub policy: Policy,
    /// The folder of user-defined commands (`*.toml`), if any: a config file's `[bot]
    /// commands` or `commands` beside it; none for the built-in demo. Loaded by the command
    /// layer (`CustomCommands::for_config`).
    pub commands_dir: Option<PathBuf>,
}

/// `[bot]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    #[serde(default = "default_bot_name")]
    pub name: String,
    /// A message starting with one of these is a command.
    #[serde(default = "default_prefixes")]
    pub prefixes: Vec<String>,
    /// Folder of user-defined commands (`*.toml`), relative to this file; default `commands`.
    pub commands: Option<String>,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default = "default_store_url")]
    pub url: String,
    /// Folder of `<env>.toml` desired states loaded when an environment has no revision yet.
    pub seed: Option<String>,
}

/// `[slack]`: the transport is on when the table is present.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Environment variable holding the app-level token (`xapp-…`, for Socket Mode).
    pub app_token_env: String,
    /// Environment variable holding the bot token (`xoxb-…`).
    pub bot_token_env: String,
    /// Web API base URL, for Slack-compatible servers (default `https://slack.com/api`).
    pub api_url: Option<String>,
}

/// `[discord]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// Environment variable holding the bot token.
    pub token_env: String,
    /// REST base URL, for Discord-compatible servers (default `https://discord.com`).
    pub api_url: Option<String>,
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: String,
}

/// The file as written, before cross-references are checked.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default = "default_bot")]
    bot: BotConfig,
    #[serde(default = "default_store")]
    store: StoreConfig,
    slack: Option<SlackConfig>,
    discord: Option<DiscordConfig>,
    http: Option<HttpConfig>,
    #[serde(default)]
    deployers: BTreeMap<Name, DeployerConfig>,
    #[serde(default)]
    environments: BTreeMap<Name, EnvironmentConfig>,
    #[serde(default)]
    roles: BTreeMap<String, Vec<Grant>>,
    #[serde(default)]
    users: BTreeMap<String, Vec<Spanned<String>>>,
}

impl Config {
    /// The config a command line asks for, most explicit first: `--config`, else
    /// `$FERRY_CONFIG`, else `./config/ferry.toml`, else the built-in demo rooted in the
    /// working directory. A file lying in the working directory never overrides what the
    /// operator named; `label()` says which one was used.
    pub fn discover(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(path) = explicit {
            return Config::load(path);
        }
        if let Some(path) = std::env::var_os("FERRY_CONFIG").filter(|p| !p.is_empty()) {
            return Config::load(Path::new(&path));
        }
        let local = Path::new("config/ferry.toml");
        if local.is_file() {
            return Config::load(local);
        }
        let cwd = std::env::current_dir().map_err(|e| {
            ConfigError::new("(built-in)", None, format!("no working directory: {e}"))
        })?;
        let mut config = Config::parse(BUILTIN, "(built-in config)", None, &cwd)?;
        // The demo's deployers run scripts relative to its folder, which without a file is
        // wherever ferry was started: run nothing from there. The built-in demo records and
        // reports, through the `noop` deployer, and checks nothing before a converge.
        for deployer in config.deployers.values_mut() {
            *deployer = DeployerConfig::Noop(crate::deploy::NoopConfig::default());
        }
        for env in config.environments.values_mut() {
            env.preflight.clear();
        }
        Ok(config)
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&label, None, format!("cannot read it: {e}")))?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &label, Some(path), &base_dir)
    }

    /// Parses `text` (shown in errors as `label`) and checks its cross-references.
    pub fn parse(
        text: &str,
        label: &str,
        file: Option<PathBuf>,
        base_dir: &Path,
    ) -> Result<Config, ConfigError> {
        let raw: FileConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(label, text, &e))?;
        let at = |span: std::ops::Range<usize>, msg: String| {
            ConfigError::at(label, text, span.start, msg)
        };

        for (name, env) in &raw.environments {
            let deployer = env.deployer.get_ref();
            if !raw.deployers.contains_key(deployer) {
                let hint = nearest(deployer.as_str(), raw.deployers.keys().map(Name::as_str))
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_else(|| "; define it in a [deployers.<name>] table".into());
                return Err(at(
                    env.deployer.span(),
                    format!(
                        "environment {name} uses deployer `{deployer}`, which is not defined{hint}"
                    ),
                ));
            }
            for target in &env.promote_to {
                if !raw.environments.contains_key(target.get_ref()) {
                    let hint = suggestion(target.get_ref().as_str(), raw.environments.keys());
                    return Err(at(
                        target.span(),
                        format!(
                            "environment {name} promotes to `{}`, which is not defined{hint}",
                            target.get_ref()
                        ),
                    ));
                }
            }
            for check in &env.preflight {
                if check.program.is_some() == check.url.is_some() {
                    return Err(ConfigError::new(
                        label,
                        None,
                        format!(
                            "environment {name}: preflight check `{}` needs exactly one of `program` or `url`",
                            check.name
                        ),
                    ));
                }
            }
            for channel in &env.channels {
                if let Some(problem) = discord_binding_problem(channel) {
                    let line = text
                        .find(&format!("\"{channel}\""))
                        .map(|at| line_of(text, at));
                    return Err(ConfigError::new(
                        label,
                        line,
                        format!("environment {name}: channel `{channel}` {problem}"),
                    ));
                }
            }
            if env.concurrency == 0 {
                return Err(ConfigError::new(
                    label,
                    None,
                    format!("environment {name}: concurrency must be at least 1"),
                ));
            }
        }
        for (user, roles) in &raw.users {
            if user != DEFAULT_USER && !user.contains(':') {
                return Err(ConfigError::new(
                    label,
                    roles.first().map(|r| line_of(text, r.span().start)),
                    format!(
                        "user `{user}` must be written `<platform>:<user id>` (e.g. `shell:{user}` or `slack:U024BE7LH`), `<platform>:*` or `default`"
                    ),
                ));
            }
            for role in roles {
                if !raw.roles.contains_key(role.get_ref()) {
                    let hint = nearest(role.get_ref(), raw.roles.keys().map(String::as_str))
                        .map(|n| format!("; did you mean `{n}`?"))
                        .unwrap_or_else(|| "; define it under [roles]".into());
                    return Err(at(
                        role.span(),
                        format!(
                            "user `{user}` has role `{}`, which is not defined{hint}",
                            role.get_ref()
                        ),
                    ));
                }
            }
        }
        // User-defined commands run programs, so they come only from a folder a config file
        // names (default: `commands` beside it). The built-in demo loads none: otherwise
        // starting ferry in some folder would run whatever `./commands` there defines.
        let commands_dir = match (&file, raw.bot.commands.as_deref()) {
            (Some(_), Some(folder)) => Some(base_dir.join(folder)),
            (Some(_), None) => Some(base_dir.join("commands")),
            (None, _) => None,
        };
        let users = raw
            .users
            .into_iter()
            .map(|(user, roles)| (user, roles.into_iter().map(Spanned::into_inner).collect()))
            .collect();
        Ok(Config {
            file,
            base_dir: base_dir.to_path_buf(),
            bot: raw.bot,
            store: raw.store,
            slack: raw.slack,
            discord: raw.discord,
            http: raw.http,
            deployers: raw.deployers,
            environments: raw.environments,
            policy: Policy::new(raw.roles, users),
            commands_dir,
        })
    }

    /// Where this config came from, for messages.
    pub fn label(&self) -> String {
        match &self.file {
            Some(path) => path.display().to_string(),
            None => "(built-in config)".to_string(),
        }
    }

    /// The environment called `name`, if configured.
    pub fn environment(&self, name: &Name) -> Option<&EnvironmentConfig> {
        self.environments.get(name)
    }

    /// The seed document for `env`, if there is one. The error names the seed file and line.
    pub fn seed(&self, env: &Name) -> Result<Option<(String, Document)>, ConfigError> {
        let (label, text) = match (&self.file, &self.store.seed) {
            (None, _) => match BUILTIN_SEEDS.iter().find(|(n, _)| *n == env.as_str()) {
                Some((name, text)) => (format!("(built-in) {name}.toml"), text.to_string()),
                None => return Ok(None),
            },
            (Some(_), None) => return Ok(None),
            (Some(_), Some(folder)) => {
                let path = self.base_dir.join(folder).join(format!("{env}.toml"));
                match std::fs::read_to_string(&path) {
                    Ok(text) => (format!("{folder}/{env}.toml"), text),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => {
                        return Err(ConfigError::new(
                            &path.display().to_string(),
                            None,
                            format!("cannot read it: {e}"),
                        ));
                    }
                }
            }
        };
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| ConfigError::from_toml(&label, &text, &e))?;
        let doc = Document::from_toml(&table)
            .map_err(|e| ConfigError::new(&label, None, e.to_string()))?;
        Ok(Some((label, doc)))
    }
}

fn suggestion<'a>(word: &str, names: impl Iterator<Item = &'a Name>) -> String {
    nearest(word, names.map(Name::as_str))
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default()
}

fn default_bot_name() -> String {
    "ferry".to_string()
}

fn default_prefixes() -> Vec<String> {
    vec!["!".to_string()]
}

fn default_store_url() -> String {
    "sqlite://ferry.db".to_string()
}

fn default_bot() -> BotConfig {
    BotConfig {
        name: default_bot_name(),
        prefixes: default_prefixes(),
        commands: None,
    }
}

fn default_store() -> StoreConfig {
    StoreConfig {
        url: default_store_url(),
        seed: None,
    }
}

/// Why a `discord:` channel binding cannot be used, if it cannot. Channel names repeat across
/// the servers a bot is in, so a binding names the channel by id or within one server.
fn discord_binding_problem(binding: &str) -> Option<String> {
    let channel = binding.strip_prefix("discord:")?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if digits(channel) {
        return None;
    }
    if let Some((server, name)) = channel.split_once('/')
        && digits(server)
        && name.len() > 1
        && name.starts_with('#')
    {
        return None;
    }
    let name = channel
        .rsplit('/')
        .next()
        .unwrap_or(channel)
        .trim_start_matches('#');
    let name = if name.is_empty() { "deploys" } else { name };
    Some(format!(
        "does not say which server's channel it means (a name like #{name} can exist in every \
         server the bot is in): write the channel's id, `discord:123456789012345678` (in Discord: \
         Developer Mode on, right-click the channel, Copy Channel ID), or the server's id and \
         the name, `discord:<server id>/#{name}`"
    ))
}
