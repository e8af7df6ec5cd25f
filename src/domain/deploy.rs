//! Deploys and applied state: what converge did, and what each service last ran successfully.

use super::{Actor, Millis, Name, ServiceSpec};
use std::fmt;

/// What a service last ran successfully, and where that came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedService {
    pub service: Name,
    pub spec: ServiceSpec,
    /// The revision of the environment the spec came from.
    pub revision: u64,
    pub deploy_id: i64,
    pub at: Millis,
}

/// How a deploy ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployStatus {
    Running,
    Succeeded,
    /// A step failed; what was touched may have been rolled back (see the steps).
    Failed,
    /// The process running it died; found by the next ferry process that looked.
    Interrupted,
}

impl DeployStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployStatus::Running => "running",
            DeployStatus::Succeeded => "succeeded",
            DeployStatus::Failed => "failed",
            DeployStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<DeployStatus> {
        [
            DeployStatus::Running,
            DeployStatus::Succeeded,
            DeployStatus::Failed,
            DeployStatus::Interrupted,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for DeployStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a deploy ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployKind {
    Converge,
    /// A whole environment restored to a revision deployed before.
    Rollback,
    /// One service restored. Its revision also carries the other services' desired state,
    /// which this deploy did not apply: such a deploy never makes its revision "deployed".
    ServiceRollback,
}

impl DeployKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployKind::Converge => "converge",
            DeployKind::Rollback => "rollback",
            DeployKind::ServiceRollback => "service-rollback",
        }
    }

    /// Whether a successful deploy of this kind left every service at its revision.
    pub fn is_whole(self) -> bool {
        !matches!(self, DeployKind::ServiceRollback)
    }

    pub fn parse(text: &str) -> Option<DeployKind> {
        match text {
            "converge" => Some(DeployKind::Converge),
            "rollback" => Some(DeployKind::Rollback),
            "service-rollback" => Some(DeployKind::ServiceRollback),
            _ => None,
        }
    }
}

/// How one service's step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Succeeded,
    Failed,
    /// Not started because an earlier step failed.
    Skipped,
    /// Succeeded or failed, then restored to its previous spec by auto-rollback.
    RolledBack,
    /// Auto-rollback could not restore it.
    RollbackFailed,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::RolledBack => "rolled back",
            StepStatus::RollbackFailed => "rollback failed",
        }
    }
}

/// One service's part of a deploy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    pub service: Name,
    /// The version deployed (or attempted).
    pub version: Option<String>,
    pub status: StepStatus,
    /// Why it failed, or what the deployer said.
    pub detail: String,
    pub millis: i64,
}

/// A deploy about to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeploy {
    pub env: Name,
    pub revision: u64,
    pub kind: DeployKind,
    pub actor: Actor,
    pub started: Millis,
    /// The process running it (host, boot, PID namespace, PID and start time), to tell a
    /// crashed deploy from a slow one.
    pub owner: String,
    /// Services in the plan.
    pub planned: Vec<Name>,
}

/// A recorded deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    pub id: i64,
    pub env: Name,
    pub revision: u64,
    pub kind: DeployKind,
    pub actor: Actor,
    pub status: DeployStatus,
    pub started: Millis,
    pub finished: Option<Millis>,
    pub owner: String,
    /// Last sign of life of the process running it.
    pub heartbeat: Millis,
    pub planned: Vec<Name>,
    pub steps: Vec<Step>,
    /// One line: how it ended.
    pub summary: String,
    /// Process groups the deploy started (deploy, verify and observe programs), so that the
    /// process that reaps a crashed deploy can end what it left running before anything
    /// deploys the same services again.
    pub processes: Vec<ProcessGroup>,
}

/// A process group a deploy started on its owner's host: its id and the start time of its
/// leader (clock ticks since boot), which tells it from a later group that reused the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessGroup {
    pub pgid: u32,
    pub started: u64,
}

/// A pin left by a rollback: promotions into the environment are refused until `unpin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub env: Name,
    pub revision: u64,
    pub by: Actor,
    pub at: Millis,
    pub reason: String,
}
