//! Deployers (deployment adapters): how a service's desired spec reaches the real environment.
//! One module per kind; `[deployers.<name>] kind = "…"` deserializes into the config type that
//! lives beside the deployer it builds. Deployers know nothing of chat platforms.

mod command;
mod noop;
mod webhook;

pub use command::CommandConfig;
pub use noop::NoopConfig;
pub use webhook::WebhookConfig;

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
}
