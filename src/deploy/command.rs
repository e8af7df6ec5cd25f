//! The `command` deployer: runs a configured program with argv templates and `FERRY_*`
//! environment variables. Values are passed as arguments, never through a shell.

use crate::config::HumanDuration;

/// `[deployers.<name>] kind = "command"`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// The program to run; relative paths resolve against the config file's folder.
    pub program: String,
    /// Argument templates: `{env}`, `{service}`, `{version}`, `{revision}`, `{key.NAME}`.
    #[serde(default)]
    pub args: Vec<String>,
    /// How long one run may take before its whole process group is killed.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Exit 0 = healthy.
    pub verify_program: Option<String>,
    #[serde(default)]
    pub verify_args: Vec<String>,
    /// Prints the live version.
    pub observe_program: Option<String>,
    #[serde(default)]
    pub observe_args: Vec<String>,
    /// Fan-out: run once per host (`{host}`, `FERRY_HOST`), in rolling batches, first batch a canary.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Hosts per rolling batch.
    #[serde(default = "one")]
    pub batch_size: usize,
}

fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(600)
}

fn one() -> usize {
    1
}
