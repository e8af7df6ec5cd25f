//! The `noop` deployer: records and reports, touches nothing (dry runs, demos).

use super::{BuildError, DeployError, DeployRequest, Deployer, DeployerKind, Live};
use crate::domain::Name;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// `[deployers.<name>] kind = "noop"`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopConfig {}

impl DeployerKind for NoopConfig {
    const KIND: &'static str = "noop";

    fn build(&self, _: &Path) -> Result<Arc<dyn Deployer>, BuildError> {
        Ok(Arc::new(NoopDeployer))
    }
}

/// Succeeds without doing anything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopDeployer;

#[async_trait::async_trait]
impl Deployer for NoopDeployer {
    async fn apply(&self, request: &DeployRequest) -> Result<String, DeployError> {
        Ok(format!(
            "noop: {}.{} at {} recorded; nothing was deployed",
            request.env,
            request.service,
            request.version().unwrap_or("(no version)")
        ))
    }

    async fn verify(&self, _: &DeployRequest, _: Duration) -> Result<(), DeployError> {
        Ok(())
    }

    async fn observe(&self, _: &Name, _: &Name) -> Result<Live, DeployError> {
        Ok(Live::Unknown)
    }
}
