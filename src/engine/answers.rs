//! The questions commands ask of an environment, answered by the engine: what converging
//! would deploy (`plan`), what is deploying now (`running`, `activity`), the recent deploys
//! (`deploys`) and what runs live (`live`).
//!
//! Each answer that involves deploys marks a dead one interrupted first, so no caller has to
//! remember to reap, and a crashed deploy never shows as running to anyone who asks. `plan` is
//! computed by the same function `converge` uses, so what a user is shown (and approves) is
//! what a converge would deploy.

use super::{Engine, EngineError};
use crate::deploy::{Deployer, Live};
use crate::domain::{AppliedService, Deploy, DeployStatus, Name, Plan, StepStatus, plan_with};
use crate::store::StoreError;
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// How long observing one service may take before it is reported as not observable: a hung
/// deployer must not hang the command that asked.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many services are observed at once, so that a large environment does not start a
/// program (or a request) per service all at the same moment.
const OBSERVE_CONCURRENCY: usize = 32;

/// What is deploying an environment now, and the deploy that was found dead on the way.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    /// The deploy holding the environment's lease, alive as far as can be told.
    pub running: Option<Deploy>,
    /// The deploy this very question found dead and marked interrupted, if any: reported
    /// once, by whoever happened to look first.
    pub interrupted: Option<Deploy>,
}

/// A plan with what it was computed from, for `converge` to deploy and record against.
pub(super) struct Planned {
    pub revision: u64,
    pub plan: Plan,
    /// What each service last ran successfully, before this plan.
    pub applied: Vec<AppliedService>,
}

impl Engine {
    /// What converging `env` would do now.
    pub async fn plan(&self, env: &Name, force: bool) -> Result<(u64, Plan), EngineError> {
        let planned = self.planned(env, force).await?;
        Ok((planned.revision, planned.plan))
    }

    /// The one computation of a plan: desired (the head) against applied, plus whatever the
    /// last deploy left unsettled. `plan` shows it and `converge` deploys it.
    pub(super) async fn planned(&self, env: &Name, force: bool) -> Result<Planned, EngineError> {
        let head = self
            .store
            .head(env)
            .await?
            .ok_or_else(|| EngineError::NoRevision(env.clone()))?;
        let applied = self.store.applied(env).await?;
        let unsettled = self.unsettled(env).await?;
        Ok(Planned {
            revision: head.meta.number,
            plan: plan_with(&head.document, &applied, force, &unsettled),
            applied,
        })
    }

    /// Services the last deploy of `env` left in an unknown state: a failed step not restored
    /// by auto-rollback, or (for an interrupted deploy) any planned service that did not finish.
    async fn unsettled(&self, env: &Name) -> Result<BTreeSet<Name>, EngineError> {
        let Some(last) = self.deploys(env, 1).await?.into_iter().next() else {
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

    /// The deploy of `env` running now; a dead one is marked interrupted first and so is
    /// never the answer.
    pub async fn running(&self, env: &Name) -> Result<Option<Deploy>, StoreError> {
        Ok(self.activity(env).await?.running)
    }

    /// What is deploying `env` now, and which deploy (if any) this look found dead: for
    /// answers that report the crash as well as what runs.
    pub async fn activity(&self, env: &Name) -> Result<Activity, StoreError> {
        let interrupted = self.reap(env).await?;
        let running = self.store.running_deploy(env).await?;
        Ok(Activity {
            running,
            interrupted,
        })
    }

    /// The last `limit` deploys of `env`, newest first, with a dead running one already
    /// marked interrupted (so it reads as what it is, and says how far it got).
    pub async fn deploys(&self, env: &Name, limit: u32) -> Result<Vec<Deploy>, StoreError> {
        self.reap(env).await?;
        self.store.deploys(env, limit).await
    }

    /// What `deployer` observes running in `env` for each of `services`, in their order,
    /// concurrently, each observation bounded by a timeout. An error says why a service could
    /// not be observed; it never fails the whole answer, since the rest is still worth showing.
    pub async fn live<'a>(
        &self,
        env: &Name,
        deployer: &Name,
        services: impl IntoIterator<Item = &'a Name>,
    ) -> Vec<Result<Live, String>> {
        let deployer = self.deployers.get(deployer);
        // Built before they are streamed, so that no closure is held across an await (which
        // would keep the command's future from being `Send` for every lifetime).
        let observations: Vec<_> = services
            .into_iter()
            .map(|service| observe(deployer.clone(), env, service))
            .collect();
        futures_util::stream::iter(observations)
            .buffered(OBSERVE_CONCURRENCY)
            .collect()
            .await
    }
}

/// What `deployer` observes of `service`, bounded by `OBSERVE_TIMEOUT`.
async fn observe(
    deployer: Option<Arc<dyn Deployer>>,
    env: &Name,
    service: &Name,
) -> Result<Live, String> {
    let Some(deployer) = deployer else {
        return Err("no deployer".to_string());
    };
    match tokio::time::timeout(OBSERVE_TIMEOUT, deployer.observe(env, service)).await {
        Ok(Ok(live)) => Ok(live),
        Ok(Err(e)) => Err(e.message),
        Err(_) => Err("observing timed out".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::deploy::Deployers;
    use crate::domain::{Actor, DeployKind, NewDeploy};
    use crate::store::{DeployStart, Store};

    const NOW: i64 = 1_795_168_800_000;

    fn staging() -> Name {
        Name::parse("staging").unwrap()
    }

    /// This process's owner string with the PID of a process that has exited (and was
    /// waited for): on this host, boot and PID namespace, so provably gone at once, long
    /// before its heartbeat would go stale.
    fn dead_owner() -> String {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let own = crate::engine::owner_id();
        let mut parts: Vec<&str> = own.split('/').collect();
        let pid = pid.to_string();
        parts[1] = &pid;
        parts.join("/")
    }

    /// An engine over a fresh SQLite store in which a deploy of staging owned by `owner`
    /// holds the lease, heartbeating just now.
    async fn with_running(owner: String) -> (Engine, Arc<dyn Store>, i64, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open("sqlite://ferry.db", dir.path())
            .await
            .unwrap();
        let started = store
            .start_deploy(&NewDeploy {
                env: staging(),
                revision: 1,
                kind: DeployKind::Converge,
                actor: Actor::new("shell", "bob", "bob"),
                started: NOW,
                owner,
                planned: vec![Name::parse("api").unwrap()],
            })
            .await
            .unwrap();
        let DeployStart::Started(id) = started else {
            panic!("{started:?}")
        };
        let engine = Engine::new(
            store.clone(),
            Deployers::default(),
            Arc::new(FixedClock::at(NOW)),
        );
        (engine, store, id, dir)
    }

    #[tokio::test]
    async fn running_reaps_a_deploy_whose_process_died() {
        let (engine, store, id, _dir) = with_running(dead_owner()).await;
        let activity = engine.activity(&staging()).await.unwrap();
        assert!(activity.running.is_none(), "{activity:?}");
        assert_eq!(activity.interrupted.map(|d| d.id), Some(id));
        let recorded = store.deploys(&staging(), 1).await.unwrap().remove(0);
        assert_eq!(recorded.status, DeployStatus::Interrupted);
        // Reported once: the next look finds nothing running and nothing newly dead.
        let again = engine.activity(&staging()).await.unwrap();
        assert!(again.running.is_none() && again.interrupted.is_none());
        assert!(engine.running(&staging()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn deploys_reaps_a_deploy_whose_process_died_before_listing() {
        let (engine, _store, id, _dir) = with_running(dead_owner()).await;
        let deploys = engine.deploys(&staging(), 10).await.unwrap();
        assert_eq!(deploys.len(), 1);
        assert_eq!(
            (deploys[0].id, deploys[0].status),
            (id, DeployStatus::Interrupted)
        );
        assert!(
            deploys[0].summary.starts_with("interrupted"),
            "{}",
            deploys[0].summary
        );
    }

    #[tokio::test]
    async fn a_live_deploy_is_running_and_never_reaped() {
        let (engine, _store, id, _dir) = with_running(crate::engine::owner_id()).await;
        assert_eq!(
            engine.running(&staging()).await.unwrap().map(|d| d.id),
            Some(id)
        );
        let deploys = engine.deploys(&staging(), 10).await.unwrap();
        assert_eq!(deploys[0].status, DeployStatus::Running);
    }

    /// Observes a service by its name: `slow-*` answer late, `bad-*` fail.
    struct ByName;

    #[async_trait::async_trait]
    impl Deployer for ByName {
        async fn apply(
            &self,
            _: &crate::deploy::DeployRequest,
        ) -> Result<String, crate::deploy::DeployError> {
            unreachable!("only observed")
        }

        async fn verify(
            &self,
            _: &crate::deploy::DeployRequest,
            _: Duration,
        ) -> Result<(), crate::deploy::DeployError> {
            unreachable!("only observed")
        }

        async fn observe(
            &self,
            _: &Name,
            service: &Name,
        ) -> Result<Live, crate::deploy::DeployError> {
            if service.as_str().starts_with("slow") {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if service.as_str().starts_with("bad") {
                return Err(crate::deploy::DeployError::new("unreachable"));
            }
            Ok(Live::Running {
                version: service.to_string(),
            })
        }
    }

    #[tokio::test]
    async fn live_answers_each_service_in_order_and_never_fails_as_a_whole() {
        let (mut engine, _store, _id, _dir) = with_running(crate::engine::owner_id()).await;
        let by_name = Name::parse("by-name").unwrap();
        let mut deployers = Deployers::default();
        deployers.insert(by_name.clone(), Arc::new(ByName));
        engine.deployers = deployers;
        let services: Vec<Name> = ["slow-a", "b", "bad-c", "slow-d"]
            .iter()
            .map(|s| Name::parse(s).unwrap())
            .collect();
        let lives = engine.live(&staging(), &by_name, &services).await;
        let running = |v: &str| {
            Ok(Live::Running {
                version: v.to_string(),
            })
        };
        assert_eq!(
            lives,
            vec![
                running("slow-a"),
                running("b"),
                Err("unreachable".to_string()),
                running("slow-d"),
            ]
        );
        let missing = Name::parse("missing").unwrap();
        let lives = engine.live(&staging(), &missing, &services[..2]).await;
        assert_eq!(lives, vec![Err("no deployer".to_string()); 2]);
    }
}
