//! One converge run: plan, preflight, take the deploy lease, deploy wave by wave with bounded
//! concurrency (verify each service, record what now runs), stop at the first failure, roll
//! back what was touched when the environment asks for it, and record the outcome.

use super::events::{DeployEvent, EventSink, publish};
use super::{Engine, EngineError};
use crate::deploy::{DeployRequest, Deployer};
use crate::domain::{
    Actor, AppliedService, DeployKind, DeployStatus, Name, NewDeploy, Plan, PlanStep, Step,
    StepStatus, plan_with, waves,
};
use crate::store::{DeployStart, StoreError};
use futures_util::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// Shared by the concurrent steps of one deploy.
struct Run<'a> {
    engine: &'a Engine,
    deployer: Arc<dyn Deployer>,
    req: &'a ConvergeRequest<'a>,
    deploy: i64,
    revision: u64,
    failed: AtomicBool,
    failure: Mutex<Option<Failure>>,
    steps: Mutex<Vec<Step>>,
    /// When the step list was last saved.
    steps_saved: Mutex<Option<Instant>>,
    /// Services healthy but not yet recorded as applied: the wave's flusher records them in
    /// one transaction (group commit) instead of one commit per service.
    unflushed: Mutex<Vec<AppliedService>>,
    flush_needed: tokio::sync::Notify,
    /// The store refused to record applied state because another process reaped the deploy.
    lease_lost: AtomicBool,
}

/// Least time between two saves of a running deploy's step list.
const STEPS_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// How many times starting a deploy goes round when the running one ended or died meanwhile.
const START_ATTEMPTS: usize = 5;

impl Engine {
    /// What converging `env` would do now.
    pub async fn plan(&self, env: &Name, force: bool) -> Result<(u64, Plan), EngineError> {
        let head = self
            .store
            .head(env)
            .await?
            .ok_or_else(|| EngineError::NoRevision(env.clone()))?;
        let applied = self.store.applied(env).await?;
        let unsettled = self.unsettled(env).await?;
        Ok((
            head.meta.number,
            plan_with(&head.document, &applied, force, &unsettled),
        ))
    }

    /// Services the last deploy of `env` left in an unknown state: a failed step not restored
    /// by auto-rollback, or (for an interrupted deploy) any planned service that did not finish.
    async fn unsettled(&self, env: &Name) -> Result<BTreeSet<Name>, EngineError> {
        self.reap(env).await?;
        let Some(last) = self.store.deploys(env, 1).await?.into_iter().next() else {
            return Ok(BTreeSet::new());
        };
        Ok(match last.status {
            DeployStatus::Failed => last
                .steps
                .iter()
                .filter(|s| matches!(s.status, StepStatus::Failed | StepStatus::RollbackFailed))
                .map(|s| s.service.clone())
                .collect(),
            DeployStatus::Interrupted => {
                let done: BTreeSet<&Name> = last
                    .steps
                    .iter()
                    .filter(|s| s.status == StepStatus::Succeeded)
                    .map(|s| &s.service)
                    .collect();
                last.planned
                    .iter()
                    .filter(|s| !done.contains(s))
                    .cloned()
                    .collect()
            }
            DeployStatus::Succeeded | DeployStatus::Running => BTreeSet::new(),
        })
    }

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
        let head = self
            .store
            .head(env)
            .await?
            .ok_or_else(|| EngineError::NoRevision(env.clone()))?;
        let revision = head.meta.number;
        let applied = self.store.applied(env).await?;
        let unsettled = self.unsettled(env).await?;
        let mut plan = plan_with(&head.document, &applied, req.force, &unsettled);
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

    /// Keeps the lease alive while the deploy runs, and says (through `lost`) when it is gone:
    /// another process marked the deploy interrupted, or no beat was confirmed for nearly a
    /// whole lease. Others may reap a deploy whose last stamped beat is a lease old, so the
    /// owner stops one beat interval before that, measured from when its last confirmed beat
    /// was sent (not answered), on a timer of its own that a hanging store cannot delay.
    fn spawn_heartbeat(
        &self,
        deploy: i64,
        lost: tokio::sync::watch::Sender<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let clock = self.clock.clone();
        let lease = self.lease;
        let every = lease / 5;
        tokio::spawn(async move {
            let mut confirmed = tokio::time::Instant::now();
            loop {
                let deadline = confirmed + lease.saturating_sub(every);
                let stop = |why: &str| {
                    tracing::error!(deploy, "{why}; stopping the deploy");
                    let _ = lost.send(true);
                };
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {
                        return stop("no heartbeat was confirmed for nearly a whole lease");
                    }
                    () = tokio::time::sleep(every) => {}
                }
                let stamped = tokio::time::Instant::now();
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {
                        return stop("no heartbeat was confirmed for nearly a whole lease");
                    }
                    beat = store.heartbeat_deploy(deploy, clock.now()) => match beat {
                        Ok(true) => confirmed = stamped,
                        Ok(false) => {
                            return stop("this deploy was marked interrupted by another process");
                        }
                        Err(e) => tracing::warn!(deploy, error = %e, "heartbeat failed"),
                    },
                }
            }
        })
    }
}

impl Run<'_> {
    async fn execute(
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

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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
