//! `[environments.<name>]`: one environment's deployer and rules.

use super::HumanDuration;
use crate::domain::{KeyPath, Name};
use crate::engine::PreflightCheck;
use crate::policy::Freeze;
use toml::Spanned;

/// How one environment is deployed and guarded.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// Name of a `[deployers.<name>]` table.
    pub deployer: Spanned<Name>,
    /// Services deployed at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Environments this one may be promoted into; empty means none.
    #[serde(default)]
    pub promote_to: Vec<Spanned<Name>>,
    /// Keys `promote` copies from this environment (artifacts, not environment config).
    #[serde(default = "default_promote_keys")]
    pub promote_keys: Vec<KeyPath>,
    /// Marks a production-like environment: shown in `envs`; destructive commands ask for
    /// confirmation there.
    #[serde(default)]
    pub protected: bool,
    /// Other users who must approve a converge.
    #[serde(default)]
    pub approvals: u32,
    /// How long an approval request stays open.
    #[serde(default = "default_approval_ttl")]
    pub approval_ttl: HumanDuration,
    /// Where commands touching this environment are accepted (`slack:#deploys`); empty: anywhere.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Windows in which converges are refused.
    #[serde(default)]
    pub freeze: Vec<Freeze>,
    /// Re-apply the last good spec of what a failed deploy touched.
    #[serde(default)]
    pub auto_rollback: bool,
    /// Deploy order: groups of service patterns (`[["db-migrate"], ["*"]]`).
    #[serde(default)]
    pub waves: Vec<Vec<String>>,
    /// Wait between waves, and how long a version must run before it may be promoted onward.
    pub soak: Option<HumanDuration>,
    /// How long a service may take to become healthy after it was applied.
    #[serde(default = "default_verify_timeout")]
    pub verify_timeout: HumanDuration,
    /// Where failures and forced deploys are announced (`slack:#alerts`).
    pub alert_channel: Option<String>,
    /// Checks that must pass before a converge starts.
    #[serde(default)]
    pub preflight: Vec<PreflightCheck>,
}

fn default_concurrency() -> usize {
    4
}

fn default_promote_keys() -> Vec<KeyPath> {
    vec![KeyPath::version()]
}

fn default_approval_ttl() -> HumanDuration {
    HumanDuration::from_secs(3600)
}

fn default_verify_timeout() -> HumanDuration {
    HumanDuration::from_secs(300)
}

impl EnvironmentConfig {
    /// What the engine needs to converge this environment.
    pub fn rollout(&self) -> crate::engine::Rollout<'_> {
        crate::engine::Rollout {
            deployer: self.deployer.get_ref(),
            concurrency: self.concurrency,
            waves: &self.waves,
            soak: self.soak.map(|s| s.0),
            verify_timeout: self.verify_timeout.0,
            auto_rollback: self.auto_rollback,
            preflight: &self.preflight,
        }
    }
}
