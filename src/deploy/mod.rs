//! Deployers (deployment adapters): how a service's desired spec reaches the real environment.
//! One module per kind; `[deployers.<name>] kind = "…"` deserializes into the config type that
//! lives beside the deployer it builds. Deployers know nothing of chat platforms or the store.

mod command;
mod noop;
mod template;
mod url;
mod webhook;

/// The type of `DeployRequest::on_spawn`, re-exported for those who build requests.
pub use crate::process::SpawnHook;
pub use command::{CommandConfig, CommandDeployer, HostError};
pub use noop::{NoopConfig, NoopDeployer};
pub use template::{Template, TemplateError};
pub use url::redact_url;
pub use webhook::{BodyError, WebhookConfig, WebhookDeployer, read_body};

use crate::domain::{Actor, Name, ServiceSpec};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A kind of deployer, implemented by its config type (the `[deployers.<name>]` table) in the
/// kind's own file, so that the registry below needs nothing from a kind but its name.
pub trait DeployerKind {
    /// The `kind = "…"` that selects it: the registry's variant name in lower case, which is
    /// what serde reads (a test holds the two together).
    const KIND: &'static str;

    /// Builds the running deployer. Relative paths resolve against `base_dir`; the error says
    /// what in the config is wrong.
    fn build(&self, base_dir: &Path) -> Result<Arc<dyn Deployer>, BuildError>;
}

/// Generates `DeployerConfig`, one `[deployers.<name>]` table tagged by `kind`, with its
/// `kind()` and `build()`, from the list of kinds. To add a deployer kind, write
/// src/deploy/<kind>.rs with its config type implementing `DeployerKind`, and add one line
/// here (`Variant(ConfigType)`, the variant named after the kind).
macro_rules! deployer_kinds {
    ($($variant:ident($config:ty)),+ $(,)?) => {
        /// One `[deployers.<name>]` table: `kind` picks the config type, whose own fields
        /// follow (unknown ones are refused).
        #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
        #[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
        pub enum DeployerConfig {
            $($variant($config),)+
        }

        impl DeployerConfig {
            pub fn kind(&self) -> &'static str {
                match self {
                    $(DeployerConfig::$variant(_) => <$config as DeployerKind>::KIND,)+
                }
            }

            /// Builds the running deployer. Relative paths resolve against `base_dir`; the
            /// error says what in the config is wrong.
            pub fn build(&self, base_dir: &Path) -> Result<Arc<dyn Deployer>, BuildError> {
                match self {
                    $(DeployerConfig::$variant(c) => DeployerKind::build(c, base_dir),)+
                }
            }
        }

        /// Each variant's name, as serde lower-cases it, beside the `KIND` its config declares.
        #[cfg(test)]
        const REGISTERED: &[(&str, &str)] =
            &[$((stringify!($variant), <$config as DeployerKind>::KIND),)+];
    };
}

deployer_kinds! {
    Command(CommandConfig),
    Webhook(WebhookConfig),
    Noop(NoopConfig),
}

/// Why a deployer cannot be built from its config; shown after `deployer <name>: ` at start-up
/// and by `check-config`, so each message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("batch_size must be at least 1")]
    ZeroBatchSize,
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("pass_env: {0}")]
    PassEnv(#[from] crate::process::EnvNameError),
    /// An argument template that does not parse.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// `shown` is the URL without credentials or query, as every message shows it.
    #[error("url `{shown}` must start with http:// or https://")]
    UrlScheme { shown: String },
    #[error("url `{shown}` is not a valid URL: {reason}")]
    BadUrl { shown: String, reason: String },
    #[error(
        "status_origins: `{shown}` is not an origin: write scheme and host (and port), like `https://status.example.com`"
    )]
    NotAnOrigin { shown: String },
    #[error("cannot build an HTTP client: {0}")]
    HttpClient(String),
    /// A `status_url` template that does not parse; the template error's text with the URL
    /// redacted in it, which is why it is kept as text.
    #[error("{0}")]
    StatusUrlTemplate(String),
    #[error(
        "status_url `{shown}` must start with a fixed http:// or https:// origin; placeholders may appear only after it, like `https://status.example.com/{{service}}`"
    )]
    StatusUrlOrigin { shown: String },
}

/// A deployer of the config that cannot be built, by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("deployer {name}: {source}")]
pub struct DeployersError {
    pub name: Name,
    pub source: BuildError,
}

/// What to deploy: one service of one environment at one spec.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub env: Name,
    pub service: Name,
    pub spec: ServiceSpec,
    /// The revision of the environment this spec comes from.
    pub revision: u64,
    /// The deploy this is part of.
    pub deploy_id: i64,
    pub actor: Actor,
    /// Told the process group of every program a deployer starts for this request, so that
    /// the caller can record it and kill what a crash left running.
    pub on_spawn: SpawnHook,
}

impl DeployRequest {
    /// The artifact tag, if the spec has one.
    pub fn version(&self) -> Option<&str> {
        self.spec
            .get(&crate::domain::KeyPath::version())
            .map(String::as_str)
    }
}

/// What a deployer observes running right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    /// This deployer cannot observe (noop, a webhook without a status endpoint).
    Unknown,
    /// Nothing is running.
    NotRunning,
    Running {
        version: String,
    },
}

/// A failed step: what went wrong and the tail of the deployer's output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeployError {
    pub message: String,
    /// The last lines the deployer printed, for the reply.
    pub output: String,
}

/// A program that could not be run to its end fails the step with what it printed.
impl From<crate::process::ProcessError> for DeployError {
    fn from(e: crate::process::ProcessError) -> DeployError {
        DeployError {
            message: e.message,
            output: e.output,
        }
    }
}

impl DeployError {
    pub fn new(message: impl Into<String>) -> DeployError {
        DeployError {
            message: message.into(),
            output: String::new(),
        }
    }
}

/// A deployment adapter.
#[async_trait::async_trait]
pub trait Deployer: Send + Sync {
    /// Makes the service run `request.spec`; returns the tail of its output.
    async fn apply(&self, request: &DeployRequest) -> Result<String, DeployError>;

    /// Waits until the service is healthy at `request.spec`, for at most `timeout`.
    async fn verify(&self, request: &DeployRequest, timeout: Duration) -> Result<(), DeployError>;

    /// What runs now.
    async fn observe(&self, env: &Name, service: &Name) -> Result<Live, DeployError>;
}

/// The running deployers, by the name `[environments.*] deployer = "…"` refers to.
#[derive(Clone, Default)]
pub struct Deployers(BTreeMap<Name, Arc<dyn Deployer>>);

impl Deployers {
    /// Builds every configured deployer; the error names the deployer and what is wrong.
    pub fn build(
        configs: &BTreeMap<Name, DeployerConfig>,
        base_dir: &Path,
    ) -> Result<Deployers, DeployersError> {
        let mut built = BTreeMap::new();
        for (name, config) in configs {
            let deployer = config.build(base_dir).map_err(|source| DeployersError {
                name: name.clone(),
                source,
            })?;
            built.insert(name.clone(), deployer);
        }
        Ok(Deployers(built))
    }

    /// Adds or replaces one (tests plug in their own).
    pub fn insert(&mut self, name: Name, deployer: Arc<dyn Deployer>) {
        self.0.insert(name, deployer);
    }

    pub fn get(&self, name: &Name) -> Option<Arc<dyn Deployer>> {
        self.0.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde reads `kind` as the variant's name in lower case; `kind()` answers with `KIND`.
    #[test]
    fn every_kind_is_named_as_serde_reads_it() {
        for (variant, kind) in REGISTERED {
            assert_eq!(variant.to_lowercase(), *kind);
        }
        let noop: DeployerConfig = toml::from_str("kind = \"noop\"").unwrap();
        assert_eq!(noop.kind(), NoopConfig::KIND);
    }
}
