//! One running deploy: its waves with bounded concurrency, each service applied and verified
//! through the deployer, healthy services recorded in group commits, the step list saved as
//! it goes, and auto-rollback of what was touched. `converge.rs` starts it and records how it
//! ended.

use super::events::{DeployEvent, publish};
use super::request::{ConvergeRequest, DeployReport, Failure};
use super::{Engine, EngineError};
use crate::deploy::{DeployRequest, Deployer};
use crate::domain::{AppliedService, DeployStatus, Name, PlanStep, Step, StepStatus, waves};
use crate::store::StoreError;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Shared by the concurrent steps of one deploy.
pub(super) struct Run<'a> {
    pub(super) engine: &'a Engine,
    pub(super) deployer: Arc<dyn Deployer>,
    pub(super) req: &'a ConvergeRequest<'a>,
    pub(super) deploy: i64,
    pub(super) revision: u64,
    pub(super) failed: AtomicBool,
    pub(super) failure: Mutex<Option<Failure>>,
    pub(super) steps: Mutex<Vec<Step>>,
    /// When the step list was last saved.
    pub(super) steps_saved: Mutex<Option<Instant>>,
    /// Services healthy but not yet recorded as applied: the wave's flusher records them in
    /// one transaction (group commit) instead of one commit per service.
    pub(super) unflushed: Mutex<Vec<AppliedService>>,
    pub(super) flush_needed: tokio::sync::Notify,
    /// The store refused to record applied state because another process reaped the deploy.
    pub(super) lease_lost: AtomicBool,
}

/// Least time between two saves of a running deploy's step list.
const STEPS_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

impl Run<'_> {
    pub(super) async fn execute(
        &self,
        planned: Vec<PlanStep>,
        before: BTreeMap<Name, AppliedService>,
        started: Instant,
    ) -> Result<DeployReport, EngineError> {
        let config = self.req.rollout;
        let waves = waves(planned, config.waves);
        let services: usize = waves.iter().map(Vec::len).sum();
        publish(
            self.req.events,
            DeployEvent::Started {
                deploy: self.deploy,
                env: self.req.env.clone(),
                revision: self.revision,
                services,
                waves: waves.len(),
            },
        );
        let total = waves.len();
        for (i, wave) in waves.into_iter().enumerate() {
            let deploying = futures_util::stream::iter(wave)
                .map(|step| self.deploy_one(step))
                .buffer_unordered(config.concurrency.max(1))
                .collect::<Vec<()>>();
            tokio::pin!(deploying);
            loop {
                tokio::select! {
                    _ = &mut deploying => break,
                    () = self.flush_needed.notified() => self.flush().await,
                }
            }
            self.flush().await;
            if self.failed.load(Ordering::SeqCst) {
                break;
            }
            publish(
                self.req.events,
                DeployEvent::WaveDone {
                    wave: i + 1,
                    waves: total,
                },
            );
            if let Some(soak) = config.soak
                && i + 1 < total
            {
                tokio::time::sleep(soak).await;
            }
        }
        let failure = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (mut rolled_back, mut not_restored) = (Vec::new(), Vec::new());
        if failure.is_some() && config.auto_rollback {
            (rolled_back, not_restored) = self.roll_back(&before).await?;
        }
        let steps = self.steps.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let millis = started.elapsed().as_millis() as i64;
        let (status, summary) = match &failure {
            None => {
                let n = steps
                    .iter()
                    .filter(|s| s.status == StepStatus::Succeeded)
                    .count();
                (
                    DeployStatus::Succeeded,
                    format!(
                        "{n} service{} deployed to {}@{} in {}",
                        if n == 1 { "" } else { "s" },
                        self.req.env,
                        self.revision,
                        took(millis)
                    ),
                )
            }
            Some(f) => {
                let mut summary = format!("{} failed: {}", f.service, f.message);
                if !rolled_back.is_empty() {
                    let names: Vec<&str> = rolled_back.iter().map(Name::as_str).collect();
                    summary.push_str(&format!("; rolled back {}", names.join(", ")));
                }
                (DeployStatus::Failed, summary)
            }
        };
        Ok(DeployReport {
            deploy: self.deploy,
            env: self.req.env.clone(),
            revision: self.revision,
            status,
            steps,
            failure,
            rolled_back,
            not_restored,
            millis,
            summary,
        })
    }

    fn request(
        &self,
        service: &Name,
        spec: &crate::domain::ServiceSpec,
        revision: u64,
    ) -> DeployRequest {
        DeployRequest {
            env: self.req.env.clone(),
            service: service.clone(),
            spec: spec.clone(),
            revision,
            deploy_id: self.deploy,
            actor: self.req.actor.clone(),
            on_spawn: self.spawn_hook(),
        }
    }

    /// Records each process group a deployer starts on the deploy, so that if this process
    /// dies, whoever reaps the deploy ends the group before deploying the service again.
    fn spawn_hook(&self) -> crate::deploy::SpawnHook {
        let store = self.engine.store.clone();
        let deploy = self.deploy;
        crate::deploy::SpawnHook::new(move |pgid| {
            // Read now, while the leader surely runs: its start time tells the group apart
            // from a later one that reuses the id.
            let Some(group) = Engine::process_group(pgid) else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.record_deploy_process(deploy, group).await {
                    tracing::warn!(deploy, pgid, error = %e, "could not record a deploy's process group");
                }
            });
        })
    }

    /// Applies and verifies one service, unless an earlier step already failed.
    async fn deploy_one(&self, step: PlanStep) {
        let version = step.to.get(&crate::domain::KeyPath::version()).cloned();
        if self.failed.load(Ordering::SeqCst) {
            self.record(Step {
                service: step.service,
                version,
                status: StepStatus::Skipped,
                detail: "not started: an earlier step failed".into(),
                millis: 0,
            })
            .await;
            return;
        }
        publish(
            self.req.events,
            DeployEvent::ServiceStarted {
                service: step.service.clone(),
                version: version.clone(),
            },
        );
        let started = Instant::now();
        let request = self.request(&step.service, &step.to, self.revision);
        let result = match self.deployer.apply(&request).await {
            Ok(output) => self
                .deployer
                .verify(&request, self.req.rollout.verify_timeout)
                .await
                .map(|()| output),
            Err(e) => Err(e),
        };
        let millis = started.elapsed().as_millis() as i64;
        if result.is_ok() {
            // Recorded by the wave's flusher, batched with the others that finished meanwhile,
            // so that this slot is free for the next service at once.
            let applied = AppliedService {
                service: step.service.clone(),
                spec: step.to.clone(),
                revision: self.revision,
                deploy_id: self.deploy,
                at: self.engine.clock.now(),
            };
            self.unflushed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(applied);
            self.flush_needed.notify_one();
        }
        match result {
            Ok(output) => {
                publish(
                    self.req.events,
                    DeployEvent::ServiceSucceeded {
                        service: step.service.clone(),
                        version: version.clone(),
                        millis,
                    },
                );
                let detail = output.lines().last().unwrap_or_default().to_string();
                self.record(Step {
                    service: step.service,
                    version,
                    status: StepStatus::Succeeded,
                    detail,
                    millis,
                })
                .await;
            }
            Err(e) => {
                self.failed.store(true, Ordering::SeqCst);
                publish(
                    self.req.events,
                    DeployEvent::ServiceFailed {
                        service: step.service.clone(),
                        message: e.message.clone(),
                    },
                );
                self.failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert_with(|| Failure {
                        service: step.service.clone(),
                        message: e.message.clone(),
                        output: e.output.clone(),
                    });
                self.record(Step {
                    service: step.service,
                    version,
                    status: StepStatus::Failed,
                    detail: e.message,
                    millis,
                })
                .await;
            }
        }
    }

    /// Records the services that became healthy since the last flush, in one transaction. If
    /// that fails, the deploy fails: what runs would no longer be what the store says.
    async fn flush(&self) {
        let batch = std::mem::take(&mut *self.unflushed.lock().unwrap_or_else(|p| p.into_inner()));
        let Some(first) = batch.first() else { return };
        if let Err(e) = self
            .engine
            .store
            .record_applied_many(self.req.env, &batch)
            .await
        {
            self.failed.store(true, Ordering::SeqCst);
            if matches!(e, StoreError::LeaseLost(_)) {
                self.lease_lost.store(true, Ordering::SeqCst);
            }
            let names: Vec<&str> = batch.iter().map(|a| a.service.as_str()).collect();
            let message = format!(
                "deployed {}, but recording it failed: {e}",
                names.join(", ")
            );
            self.failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| Failure {
                    service: first.service.clone(),
                    message,
                    output: String::new(),
                });
        }
    }

    /// Adds a step and saves the steps so far, so a crash leaves a record of them.
    ///
    /// What a crash must not lose, applied state, is recorded per service as it happens; the
    /// step list is only the record of the run, so it is saved at most every
    /// `STEPS_SAVE_INTERVAL` (and in full when the deploy finishes) rather than rewritten after
    /// every service, which would cost a commit per service and grow with the square of them.
    async fn record(&self, step: Step) {
        let steps = {
            let mut steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
            steps.push(step);
            let mut saved = self.steps_saved.lock().unwrap_or_else(|p| p.into_inner());
            if saved.is_some_and(|at| at.elapsed() < STEPS_SAVE_INTERVAL) {
                return;
            }
            *saved = Some(Instant::now());
            steps.clone()
        };
        if let Err(e) = self.engine.store.record_steps(self.deploy, &steps).await {
            tracing::warn!(deploy = self.deploy, error = %e, "could not record deploy steps");
        }
    }

    /// Re-applies the previous spec of every service this deploy touched.
    async fn roll_back(
        &self,
        before: &BTreeMap<Name, AppliedService>,
    ) -> Result<(Vec<Name>, Vec<(Name, String)>), EngineError> {
        let touched: Vec<Name> = self
            .steps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Succeeded | StepStatus::Failed))
            .map(|s| s.service.clone())
            .collect();
        publish(
            self.req.events,
            DeployEvent::RollingBack {
                services: touched.clone(),
            },
        );
        let (mut restored, mut not_restored) = (Vec::new(), Vec::new());
        for service in touched {
            let outcome = match before.get(&service) {
                None => Err("it had no earlier version to restore".to_string()),
                Some(previous) => {
                    let request = self.request(&service, &previous.spec, previous.revision);
                    match self.deployer.apply(&request).await {
                        Ok(_) => self
                            .deployer
                            .verify(&request, self.req.rollout.verify_timeout)
                            .await
                            .map_err(|e| e.message),
                        Err(e) => Err(e.message),
                    }
                    .map(|()| previous)
                }
            };
            let status = match outcome {
                Ok(previous) => {
                    let applied = AppliedService {
                        deploy_id: self.deploy,
                        at: self.engine.clock.now(),
                        ..previous.clone()
                    };
                    self.engine
                        .store
                        .record_applied(self.req.env, &applied)
                        .await?;
                    restored.push(service.clone());
                    StepStatus::RolledBack
                }
                Err(why) => {
                    not_restored.push((service.clone(), why));
                    StepStatus::RollbackFailed
                }
            };
            let mut steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(step) = steps.iter_mut().find(|s| s.service == service) {
                step.status = status;
            }
        }
        Ok((restored, not_restored))
    }
}

/// `350ms`, `1.2s`.
fn took(millis: i64) -> String {
    if millis < 1000 {
        format!("{millis}ms")
    } else {
        format!("{:.1}s", millis as f64 / 1000.0)
    }
}
