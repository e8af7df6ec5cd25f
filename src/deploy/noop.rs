//! The `noop` deployer: records and reports, touches nothing (dry runs, demos).

/// `[deployers.<name>] kind = "noop"`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopConfig {}
