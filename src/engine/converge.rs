//! Converging an environment: plan (computed in `answers.rs`, as `plan` shows it), hold it to
//! an approved revision and plan where asked, preflight, take the deploy lease, hand the waves
//! to a `Run` (`run.rs`) while the heartbeat keeps the lease (`heartbeat.rs`), and record how
//! the deploy ended.

use super::answers::Planned;
use super::events::{DeployEvent, publish};
use super::heartbeat::AbortOnDrop;
use super::request::{ConvergeOutcome, ConvergeRequest, Expected};
use super::run::Run;
use super::{Engine, EngineError};
use crate::domain::{AppliedService, DeployStatus, Name, NewDeploy, Plan};
use crate::store::{DeployStart, StoreError};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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
