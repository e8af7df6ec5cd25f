//! What a converge is asked to do (`ConvergeRequest`, with the environment's `Rollout` and
//! what it is bound to, `Expected`) and what it reports (`ConvergeOutcome`, `DeployReport`,
//! `Failure`): the types `converge.rs` and `run.rs` share.

use super::events::EventSink;
use crate::domain::{Actor, DeployKind, DeployStatus, Name, Step};
use std::collections::BTreeSet;
use std::path::Path;

/// What to converge, and who asked.
pub struct ConvergeRequest<'a> {
    pub env: &'a Name,
    /// How the environment deploys.
    pub rollout: Rollout<'a>,
    /// Where preflight programs are found.
    pub base_dir: &'a Path,
    pub actor: &'a Actor,
    /// Redeploy every service, not only those that differ.
    pub force: bool,
    pub kind: DeployKind,
    pub events: Option<&'a EventSink>,
    /// What this converge is bound to (an approved request, a rollback's revision): when the
    /// head or the plan is no longer that, nothing deploys and the result is `Stale`.
    pub expect: Option<Expected>,
    /// Deploy only these services (a one-service rollback), whatever else differs.
    pub only: Option<BTreeSet<Name>>,
}

/// What the engine needs of an environment's configuration: its deployer, concurrency,
/// waves, soak, verify timeout, auto-rollback and preflight checks. The config layer builds
/// it (`EnvironmentConfig::rollout`), so the engine never reads the config's own types.
#[derive(Debug, Clone, Copy)]
pub struct Rollout<'a> {
    pub deployer: &'a Name,
    pub concurrency: usize,
    /// Patterns of service names, one list per wave.
    pub waves: &'a [Vec<String>],
    pub soak: Option<std::time::Duration>,
    pub verify_timeout: std::time::Duration,
    pub auto_rollback: bool,
    pub preflight: &'a [super::PreflightCheck],
}

/// The revision (and, for approvals, the exact plan) a converge was bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub revision: u64,
    /// `Plan::text` and `Plan::digest` of the approved plan; `None` binds the revision only.
    pub plan: Option<(String, String)>,
}

/// How a converge ended.
#[derive(Debug, Clone)]
pub enum ConvergeOutcome {
    /// Applied state already matches the head: nothing was done.
    UpToDate { revision: u64, orphaned: Vec<Name> },
    /// A deploy ran (successfully or not).
    Deployed(Box<DeployReport>),
}

/// The step that failed a deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub service: Name,
    pub message: String,
    /// The tail of the deployer's output.
    pub output: String,
}

/// What a deploy did.
#[derive(Debug, Clone)]
pub struct DeployReport {
    pub deploy: i64,
    pub env: Name,
    pub revision: u64,
    pub status: DeployStatus,
    pub steps: Vec<Step>,
    pub failure: Option<Failure>,
    /// Services auto-rollback restored to their previous spec.
    pub rolled_back: Vec<Name>,
    /// Services auto-rollback could not restore, and why.
    pub not_restored: Vec<(Name, String)>,
    pub millis: i64,
    pub summary: String,
}
