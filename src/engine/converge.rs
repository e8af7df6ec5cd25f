//! Converging an environment: plan (computed in `answers.rs`, as `plan` shows it), hold it to
//! an approved revision and plan where asked, preflight, take the deploy lease, hand the waves
//! to a `Run` (`run.rs`) while the heartbeat keeps the lease (`heartbeat.rs`), and record how
//! the deploy ended.

use super::answers::Planned;
use super::events::{DeployEvent, EventSink, publish};
use super::heartbeat::AbortOnDrop;
use super::run::Run;
use super::{Engine, EngineError};
use crate::domain::{Actor, AppliedService, DeployKind, DeployStatus, Name, NewDeploy, Plan, Step};
use crate::store::{DeployStart, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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

/// How many times starting a deploy goes round when the running one ended or died meanwhile.
const START_ATTEMPTS: usize = 5;

impl Engine {
    /// Converges `req.env` to its head revision.
    pub async fn converge(
        &self,
        req: &ConvergeRequest<'_>,
    ) -> Result<ConvergeOutcome, EngineError> {
        let env = req.env;
        let deployer_name = req.rollout.deployer;
        let deployer = self
            .deployers
            .get(deployer_name)
            .ok_or_else(|| EngineError::NoDeployer(env.clone(), deployer_name.clone()))?;
        let Planned {
            revision,
            mut plan,
            applied,
        } = self.planned(env, req.force).await?;
        if let Some(only) = &req.only {
            plan.steps.retain(|s| only.contains(&s.service));
        }
        if let Some(expected) = &req.expect {
            check_expected(env, expected, revision, &plan)?;
        }
        if plan.steps.is_empty() {
            return Ok(ConvergeOutcome::UpToDate {
                revision,
                orphaned: plan.orphaned,
            });
        }
        for check in req.rollout.preflight {
            check.run(env, revision, &plan.steps, req.base_dir).await?;
        }
        let deploy = self.start(req, revision, &plan).await?;
        let (lost_tx, mut lost) = tokio::sync::watch::channel(false);
        // Aborted when this converge ends or is dropped, so it never outlives its deploy.
        let _heartbeat = AbortOnDrop(self.spawn_heartbeat(deploy, lost_tx));
        let started = Instant::now();
        let run = Run {
            engine: self,
            deployer,
            req,
            deploy,
            revision,
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            steps: Mutex::new(Vec::new()),
            steps_saved: Mutex::new(None),
            unflushed: Mutex::new(Vec::new()),
            flush_needed: tokio::sync::Notify::new(),
            lease_lost: AtomicBool::new(false),
        };
        let before: BTreeMap<Name, AppliedService> = applied
            .into_iter()
            .map(|a| (a.service.clone(), a))
            .collect();
        // When the lease is lost, the deploy future is dropped on the spot: its programs are
        // killed with their process groups and nothing more is recorded.
        let report = tokio::select! {
            report = run.execute(plan.steps, before, started) => report,
            Ok(_) = lost.wait_for(|lost| *lost) => Err(EngineError::LeaseLost(deploy)),
        };
        let report = match report {
            Ok(report) => report,
            Err(EngineError::LeaseLost(_)) | Err(EngineError::Store(StoreError::LeaseLost(_))) => {
                tracing::error!(deploy, env = %env, "stopped a deploy that lost its lease");
                publish(
                    req.events,
                    DeployEvent::Finished {
                        status: DeployStatus::Interrupted,
                        summary: format!(
                            "deploy #{deploy} stopped: another process marked it interrupted"
                        ),
                    },
                );
                return Err(EngineError::LeaseLost(deploy));
            }
            Err(e) => {
                // Never leave the lease held by a deploy that can no longer finish normally.
                let summary = format!("failed: {e}");
                let steps = run.steps.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Err(finish) = self
                    .store
                    .finish_deploy(
                        deploy,
                        DeployStatus::Failed,
                        &steps,
                        &summary,
                        self.clock.now(),
                    )
                    .await
                {
                    tracing::error!(deploy, error = %finish, "could not record the end of a deploy; its lease lapses by itself");
                }
                return Err(e);
            }
        };
        if run.lease_lost.load(Ordering::SeqCst)
            || !self
                .store
                .finish_deploy(
                    deploy,
                    report.status,
                    &report.steps,
                    &report.summary,
                    self.clock.now(),
                )
                .await?
        {
            // Another process reaped it meanwhile; its `interrupted` record stands.
            return Err(EngineError::LeaseLost(deploy));
        }
        publish(
            req.events,
            DeployEvent::Finished {
                status: report.status,
                summary: report.summary.clone(),
            },
        );
        Ok(ConvergeOutcome::Deployed(Box::new(report)))
    }

    /// Takes the environment's deploy lease, reaping a dead holder first.
    async fn start(
        &self,
        req: &ConvergeRequest<'_>,
        revision: u64,
        plan: &Plan,
    ) -> Result<i64, EngineError> {
        let new = NewDeploy {
            env: req.env.clone(),
            revision,
            kind: req.kind,
            actor: req.actor.clone(),
            started: self.clock.now(),
            owner: self.owner.clone(),
            planned: plan.steps.iter().map(|s| s.service.clone()).collect(),
        };
        for _ in 0..START_ATTEMPTS {
            match self.store.start_deploy(&new).await? {
                DeployStart::Started(id) => return Ok(id),
                DeployStart::Busy(running) => {
                    if !self.is_dead(&running, self.clock.now()) {
                        return Err(EngineError::Busy(running));
                    }
                    self.reap(req.env).await?;
                }
                DeployStart::Retry => {}
            }
        }
        match self.store.running_deploy(req.env).await? {
            Some(running) => Err(EngineError::Busy(Box::new(running))),
            None => Err(EngineError::Store(crate::store::StoreError::Unavailable(
                "could not take the deploy lease; try again".into(),
            ))),
        }
    }
}

/// Refuses a bound converge whose head or plan moved.
fn check_expected(
    env: &Name,
    expected: &Expected,
    revision: u64,
    plan: &Plan,
) -> Result<(), EngineError> {
    let stale = |why: String| EngineError::Stale {
        env: env.clone(),
        expected: expected.revision,
        why,
    };
    if revision != expected.revision {
        return Err(stale(format!("its desired state is now {env}@{revision}")));
    }
    if let Some((text, digest)) = &expected.plan
        && (&plan.text() != text || (!digest.is_empty() && &plan.digest() != digest))
    {
        return Err(stale(format!(
            "what {env} runs changed, so the plan is no longer the one approved"
        )));
    }
    Ok(())
}
