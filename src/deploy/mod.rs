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
pub use command::{CommandConfig, CommandDeployer};
pub use noop::{NoopConfig, NoopDeployer};
pub use template::{Template, TemplateError};
pub use url::redact_url;
pub use webhook::{WebhookConfig, WebhookDeployer, read_body};

use crate::domain::{Actor, Name, ServiceSpec};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// One `[deployers.<name>]` table: the registry of deployer kinds.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DeployerConfig {
    Command(CommandConfig),
    Webhook(WebhookConfig),
    Noop(NoopConfig),
}

impl DeployerConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            DeployerConfig::Command(_) => "command",
            DeployerConfig::Webhook(_) => "webhook",
            DeployerConfig::Noop(_) => "noop",
        }
    }

    /// Builds the running deployer. Relative paths resolve against `base_dir`; the error says
    /// what in the config is wrong.
    pub fn build(&self, base_dir: &Path) -> Result<Arc<dyn Deployer>, String> {
        Ok(match self {
            DeployerConfig::Command(c) => Arc::new(CommandDeployer::new(c, base_dir)?),
            DeployerConfig::Webhook(c) => Arc::new(WebhookDeployer::new(c)?),
            DeployerConfig::Noop(_) => Arc::new(NoopDeployer),
        })
    }
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
    ) -> Result<Deployers, String> {
        let mut built = BTreeMap::new();
        for (name, config) in configs {
            let deployer = config
                .build(base_dir)
                .map_err(|e| format!("deployer {name}: {e}"))?;
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
