//! The guarantees a hostile or unlucky user must not get around, through the real command
//! path with a fixed clock: a rollback restores only what was deployed successfully before
//! (never an unapproved or denied revision, never another service's unapproved change); an
//! approval deploys exactly the revision and plan approved, or nothing; `approve`/`deny` obey
//! the environment's channel bindings and are audited under its name; a rollback refuses
//! before writing while a deploy runs; a deploy that lost its lease stops at once and its
//! finish never overwrites `interrupted`; a dropped converge leaves no heartbeat behind.

#[path = "common/mod.rs"]
mod common;

use common::{request_id, shown};
use ferry::app::App;
use ferry::clock::{FixedClock, SystemClock};
use ferry::command::Reply;
use ferry::config::Config;
use ferry::deploy::{DeployError, DeployRequest, Deployer, Deployers, Live};
use ferry::domain::{
    Actor, AppliedService, ApprovalRequest, ApprovalStatus, AuditEntry, AuditFilter, Deploy,
    DeployKind, DeployStatus, Lock, Millis, Name, NewApproval, NewAuditEntry, NewDeploy,
    NewRevision, Origin, Outcome, Pin, ProcessGroup, Revision, RevisionMeta, Step,
};
use ferry::engine::{ConvergeRequest, Engine};
use ferry::store::{
    AppendError, ApprovalStore, AuditStore, ChatEventStore, DeployStart, DeployStore, LockAttempt,
    LockStore, PinStore, RevisionStore, Store, StoreError,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Friday 2026-11-20 10:00 UTC: no freeze in force.
const NOW: i64 = 1_795_168_800_000;

const CONFIG: &str = r#"
[store]
url = "sqlite://ferry.db"
seed = "seeds"

[deployers.none]
kind = "noop"

[environments.staging]
deployer = "none"

[environments.production]
deployer = "none"
protected = true
approvals = 1
approval_ttl = "1h"
channels = ["slack:#deploys"]

[roles]
viewer = ["read"]
releaser = ["read", "write:*", "converge:*", "promote:*", "approve:*"]
oncall = ["read", "rollback:*"]

[users]
"shell:bob" = ["releaser"]
"shell:dana" = ["releaser"]
"shell:olga" = ["oncall"]
"slack:U1" = ["releaser"]
"slack:U2" = ["releaser"]
default = ["viewer"]
"#;

struct Setup {
    app: App,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

/// An app over a SQLite store, optionally wrapped by `wrap` (to inject races).
async fn setup(wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), CONFIG).unwrap();
    std::fs::create_dir(dir.path().join("seeds")).unwrap();
    let seed = "[services.api]\nversion = \"1.0.0\"\n[services.web]\nversion = \"2.0.0\"\n";
    std::fs::write(dir.path().join("seeds/production.toml"), seed).unwrap();
    std::fs::write(dir.path().join("seeds/staging.toml"), seed).unwrap();
    // A program command whose environment comes only through its permission.
    std::fs::create_dir(dir.path().join("commands")).unwrap();
    std::fs::write(
        dir.path().join("commands/poke.toml"),
        "pattern = \"poke {target}\"\nhelp = \"Poke.\"\npermission = \"converge:{target}\"\nprogram = \"/bin/true\"\n",
    )
    .unwrap();
    let config = Config::load(&dir.path().join("ferry.toml")).unwrap();
    let inner = ferry::store::open(&config.store.url, &config.base_dir)
        .await
        .unwrap();
    let store = wrap(inner);
    let app = App::with_store(config, store.clone(), Arc::new(FixedClock::at(NOW)))
        .await
        .unwrap();
    Setup {
        app,
        store,
        _dir: dir,
    }
}

async fn as_user(s: &Setup, user: &str, text: &str) -> Reply {
    s.app
        .handle(&Actor::new("shell", user, user), &Origin::shell(), text)
        .await
}

fn prod() -> Name {
    Name::parse("production").unwrap()
}

async fn deploys(s: &Setup) -> Vec<Deploy> {
    s.store.deploys(&prod(), 50).await.unwrap()
}

async fn head(s: &Setup) -> u64 {
    s.store.head(&prod()).await.unwrap().unwrap().meta.number
}

async fn applied_version(s: &Setup, service: &str) -> String {
    let applied = s.store.applied(&prod()).await.unwrap();
    let one = applied
        .iter()
        .find(|a| a.service.as_str() == service)
        .unwrap();
    one.spec
        .get(&ferry::domain::KeyPath::version())
        .cloned()
        .unwrap()
}

/// Asks for a converge of production as bob and has dana approve it.
async fn approved_converge(s: &Setup) {
    let id = request_id(&as_user(s, "bob", "converge production").await);
    let approved = as_user(s, "dana", &format!("approve {id}")).await;
    assert_eq!(approved.outcome, Outcome::Ok, "{}", shown(&approved));
}

#[tokio::test]
async fn a_rollback_cannot_deploy_a_revision_that_never_deployed() {
    let s = setup(|s| s).await;
    approved_converge(&s).await; // production@1 deployed
    as_user(&s, "bob", "env production.api.version 6.6.6").await; // @2
    let id = request_id(&as_user(&s, "bob", "converge production").await);
    let denied = as_user(&s, "dana", &format!("deny {id} not this one")).await;
    assert!(denied.headline.contains("denied"), "{}", denied.headline);

    for target in ["2", "production@2"] {
        let refused = as_user(&s, "olga", &format!("rollback production to {target}")).await;
        assert_eq!(refused.outcome, Outcome::Refused, "{}", shown(&refused));
        assert!(
            refused
                .headline
                .contains("production@2 was never deployed successfully")
                && shown(&refused).contains("rollback production to 1")
                && shown(&refused).contains("Nothing changed."),
            "{}",
            shown(&refused)
        );
    }
    assert_eq!(deploys(&s).await.len(), 1, "nothing deployed");
    assert_eq!(head(&s).await, 2, "no revision written");
    assert!(s.store.pin(&prod()).await.unwrap().is_none(), "no pin");
    assert_eq!(applied_version(&s, "api").await, "1.0.0");

    // What was deployed before can be restored, without approval.
    let restored = as_user(&s, "olga", "rollback production to 1").await;
    assert_eq!(restored.outcome, Outcome::Ok, "{}", shown(&restored));
    assert_eq!(applied_version(&s, "api").await, "1.0.0");
    assert!(s.store.pin(&prod()).await.unwrap().is_some());
}

#[tokio::test]
async fn a_one_service_rollback_deploys_that_service_only() {
    let s = setup(|s| s).await;
    approved_converge(&s).await; // @1: api 1.0.0, web 2.0.0
    as_user(&s, "bob", "env production.api.version 1.0.1").await; // @2
    approved_converge(&s).await;
    // An unapproved change of another service waits in desired state.
    as_user(&s, "bob", "env production.web.version 6.6.6").await; // @3
    let rolled = as_user(&s, "olga", "rollback production api to 1").await;
    assert_eq!(rolled.outcome, Outcome::Ok, "{}", shown(&rolled));
    let last = &deploys(&s).await[0];
    assert_eq!(last.kind, DeployKind::ServiceRollback);
    let services: Vec<&str> = last.steps.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(services, ["api"], "{last:?}");
    assert_eq!(applied_version(&s, "api").await, "1.0.0");
    assert_eq!(
        applied_version(&s, "web").await,
        "2.0.0",
        "the unapproved web 6.6.6 was not deployed"
    );
    // Its revision (@4, which carries web 6.6.6) never counts as deployed: neither a rollback
    // to it nor a later "last good" rollback can bring web 6.6.6 in.
    let to_partial = as_user(&s, "olga", "rollback production to 4").await;
    assert_eq!(
        to_partial.outcome,
        Outcome::Refused,
        "{}",
        shown(&to_partial)
    );
    as_user(&s, "bob", "env production.api.version 1.0.2").await; // @5
    let last_good = as_user(&s, "olga", "rollback production").await;
    assert_eq!(last_good.outcome, Outcome::Ok, "{}", shown(&last_good));
    assert!(
        shown(&last_good).contains("production@2"),
        "{}",
        shown(&last_good)
    );
    assert_eq!(applied_version(&s, "web").await, "2.0.0");
    assert_eq!(applied_version(&s, "api").await, "1.0.1");
}

#[tokio::test]
async fn a_rollback_while_a_deploy_runs_writes_nothing() {
    let s = setup(|s| s).await;
    approved_converge(&s).await;
    as_user(&s, "bob", "env production.api.version 1.0.1").await;
    approved_converge(&s).await;
    let before = head(&s).await;
    // A live deploy of this very process holds the lease.
    let started = s
        .store
        .start_deploy(&NewDeploy {
            env: prod(),
            revision: before,
            kind: DeployKind::Converge,
            actor: Actor::new("shell", "bob", "bob"),
            started: NOW,
            owner: ferry::engine::owner_id(),
            planned: vec![],
        })
        .await
        .unwrap();
    let DeployStart::Started(running) = started else {
        panic!("{started:?}")
    };
    let refused = as_user(&s, "olga", "rollback production").await;
    assert_eq!(refused.outcome, Outcome::Refused, "{}", shown(&refused));
    assert!(
        refused.headline.contains(&format!("deploy #{running}"))
            && shown(&refused).contains("Nothing changed."),
        "{}",
        shown(&refused)
    );
    assert_eq!(head(&s).await, before, "no revision written");
    assert!(s.store.pin(&prod()).await.unwrap().is_none(), "no pin");
}

/// A store that forwards every call, except that it can land a write of production (`api`
/// 9.9.9) the first time an approver is added (between `approve`'s own checks and the
/// converge it starts), and can make heartbeats hang.
struct WriteOnApprove {
    inner: Arc<dyn Store>,
    done: AtomicBool,
    hang_heartbeats: bool,
}

#[tokio::test]
async fn an_approval_deploys_the_approved_revision_or_nothing() {
    let s = setup(|inner| {
        Arc::new(WriteOnApprove {
            inner,
            done: AtomicBool::new(false),
            hang_heartbeats: false,
        })
    })
    .await;
    let id = request_id(&as_user(&s, "bob", "converge production").await);
    let approved = as_user(&s, "dana", &format!("approve {id}")).await;
    assert_eq!(approved.outcome, Outcome::Failed, "{}", shown(&approved));
    assert!(
        approved.headline.contains("nothing was deployed")
            && approved.headline.contains("production@1")
            && approved.headline.contains("production@2"),
        "{}",
        shown(&approved)
    );
    assert!(
        deploys(&s).await.is_empty(),
        "the unapproved 9.9.9 never deployed"
    );
    let request = s
        .store
        .approval(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.status, ApprovalStatus::Stale);
}

#[tokio::test]
async fn approve_and_deny_obey_channel_bindings_and_are_audited_under_the_environment() {
    let s = setup(|s| s).await;
    let deploys_channel = Origin {
        platform: "slack".into(),
        channel: Some("#deploys".into()),
        channel_ids: vec![],
    };
    let dm = Origin {
        platform: "slack".into(),
        channel: None,
        channel_ids: vec![],
    };
    let (u1, u2) = (
        Actor::new("slack", "U1", "bob"),
        Actor::new("slack", "U2", "dana"),
    );
    let asked = s
        .app
        .handle(&u1, &deploys_channel, "converge production")
        .await;
    let id = request_id(&asked);
    for text in [format!("approve {id}"), format!("deny {id}")] {
        let refused = s.app.handle(&u2, &dm, &text).await;
        assert_eq!(refused.outcome, Outcome::Refused, "{}", shown(&refused));
        assert!(
            refused.headline.contains("only in slack:#deploys"),
            "{}",
            refused.headline
        );
    }
    assert!(deploys(&s).await.is_empty(), "nothing deployed from a DM");
    let listed = s.app.handle(&u2, &dm, "pending").await;
    assert!(
        shown(&listed).contains("No approval requests"),
        "production's requests are not listed outside its channel: {}",
        shown(&listed)
    );
    let listed = s.app.handle(&u2, &deploys_channel, "pending").await;
    assert!(
        shown(&listed).contains(&format!("#{id}")),
        "{}",
        shown(&listed)
    );
    let poke = s.app.handle(&u2, &dm, "poke production").await;
    assert_eq!(poke.outcome, Outcome::Refused, "{}", shown(&poke));
    assert!(
        poke.headline.contains("only in slack:#deploys"),
        "{}",
        poke.headline
    );
    let approved = s
        .app
        .handle(&u2, &deploys_channel, &format!("approve {id}"))
        .await;
    assert_eq!(approved.outcome, Outcome::Ok, "{}", shown(&approved));
    assert_eq!(deploys(&s).await.len(), 1);
    let audit = s
        .store
        .audit(&AuditFilter {
            env: Some(prod()),
            user: None,
            limit: 20,
        })
        .await
        .unwrap();
    let approvals: Vec<(&str, Outcome)> = audit
        .iter()
        .filter(|a| a.entry.text.starts_with("approve") || a.entry.text.starts_with("deny"))
        .map(|a| (a.entry.text.as_str(), a.entry.outcome))
        .collect();
    assert_eq!(approvals.len(), 3, "{approvals:?}");
    assert!(approvals.contains(&(&format!("approve {id}"), Outcome::Ok)));
}

/// Sleeps in `apply` until told to stop; counts applies.
#[derive(Default)]
struct Slow {
    applies: Mutex<u32>,
}

#[async_trait::async_trait]
impl Deployer for Slow {
    async fn apply(&self, _request: &DeployRequest) -> Result<String, DeployError> {
        *self.applies.lock().unwrap() += 1;
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(String::new())
    }
    async fn verify(&self, _: &DeployRequest, _: Duration) -> Result<(), DeployError> {
        Ok(())
    }
    async fn observe(&self, _: &Name, _: &Name) -> Result<Live, DeployError> {
        Ok(Live::Unknown)
    }
}

fn slow_engine(s: &Setup, lease: Duration) -> Engine {
    let mut deployers = Deployers::default();
    deployers.insert(Name::parse("none").unwrap(), Arc::new(Slow::default()));
    Engine::new(s.store.clone(), deployers, Arc::new(SystemClock)).with_lease(lease)
}

fn staging_request<'a>(s: &'a Setup, env: &'a Name, actor: &'a Actor) -> ConvergeRequest<'a> {
    ConvergeRequest {
        env,
        rollout: s.app.config.environment(env).unwrap().rollout(),
        base_dir: &s.app.config.base_dir,
        actor,
        force: false,
        kind: DeployKind::Converge,
        events: None,
        expect: None,
        only: None,
    }
}

#[tokio::test]
async fn a_deploy_that_lost_its_lease_stops_and_keeps_interrupted() {
    let s = setup(|s| s).await;
    let engine = slow_engine(&s, Duration::from_millis(500));
    let staging = Name::parse("staging").unwrap();
    let actor = Actor::new("shell", "bob", "bob");
    let request = staging_request(&s, &staging, &actor);
    let converge = engine.converge(&request);
    let reaper = async {
        let running = loop {
            if let Some(d) = s.store.running_deploy(&staging).await.unwrap() {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Another process decides this deploy is dead (it was paused past its lease).
        assert!(
            s.store
                .interrupt_deploy(running.id, running.heartbeat, "interrupted: reaped", NOW)
                .await
                .unwrap()
        );
        running.id
    };
    let started = std::time::Instant::now();
    let (result, id) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(10), converge),
        reaper
    );
    let result = result.expect("the deploy stopped instead of running its 30 s apply");
    assert!(
        matches!(result, Err(ferry::engine::EngineError::LeaseLost(lost)) if lost == id),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let deploy = s.store.deploys(&staging, 1).await.unwrap().remove(0);
    assert_eq!(deploy.status, DeployStatus::Interrupted);
    assert_eq!(
        deploy.summary, "interrupted: reaped",
        "the reaper's record stands"
    );
    assert!(s.store.applied(&staging).await.unwrap().is_empty());
    // Writes of a deploy that no longer holds the lease are refused by the store itself.
    assert!(
        !s.store
            .finish_deploy(id, DeployStatus::Succeeded, &[], "late", NOW)
            .await
            .unwrap()
    );
    assert!(!s.store.record_steps(id, &[]).await.unwrap());
    let late = s
        .store
        .record_applied(
            &staging,
            &AppliedService {
                service: Name::parse("api").unwrap(),
                spec: Default::default(),
                revision: 1,
                deploy_id: id,
                at: NOW,
            },
        )
        .await;
    assert!(
        matches!(late, Err(StoreError::LeaseLost(lost)) if lost == id),
        "{late:?}"
    );
    assert_eq!(
        s.store.deploys(&staging, 1).await.unwrap()[0].summary,
        "interrupted: reaped"
    );
}

/// Others may reap a deploy a lease after its last heartbeat; when beats hang, the owner stops
/// before that, whatever the store does.
#[tokio::test]
async fn a_deploy_whose_heartbeats_hang_stops_before_its_lease_runs_out() {
    let s = setup(|inner| {
        Arc::new(WriteOnApprove {
            inner,
            done: AtomicBool::new(true),
            hang_heartbeats: true,
        })
    })
    .await;
    let lease = Duration::from_secs(2);
    let engine = slow_engine(&s, lease);
    let staging = Name::parse("staging").unwrap();
    let actor = Actor::new("shell", "bob", "bob");
    let request = staging_request(&s, &staging, &actor);
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), engine.converge(&request))
        .await
        .expect("the deploy stopped instead of running its 30 s apply");
    let took = started.elapsed();
    assert!(
        matches!(result, Err(ferry::engine::EngineError::LeaseLost(_))),
        "{result:?}"
    );
    assert!(
        took < lease,
        "stopped after {took:?}, when others may already reap it"
    );
}

#[tokio::test]
async fn a_dropped_converge_leaves_no_heartbeat_running() {
    let s = setup(|s| s).await;
    let engine = slow_engine(&s, Duration::from_millis(250));
    let staging = Name::parse("staging").unwrap();
    let actor = Actor::new("shell", "bob", "bob");
    let request = staging_request(&s, &staging, &actor);
    let dropped = tokio::time::timeout(Duration::from_millis(300), engine.converge(&request)).await;
    assert!(dropped.is_err(), "the converge was still deploying");
    let beat = |d: Vec<Deploy>| d[0].heartbeat;
    let first = beat(s.store.deploys(&staging, 1).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = beat(s.store.deploys(&staging, 1).await.unwrap());
    assert_eq!(first, later, "no heartbeat after the converge was dropped");
}

// The wrapper forwards every call and injects the race in `add_approver`.
#[async_trait::async_trait]
impl RevisionStore for WriteOnApprove {
    async fn head(&self, env: &Name) -> Result<Option<Revision>, StoreError> {
        self.inner.head(env).await
    }
    async fn revision(&self, env: &Name, number: u64) -> Result<Option<Revision>, StoreError> {
        self.inner.revision(env, number).await
    }
    async fn append(&self, revision: NewRevision) -> Result<Revision, AppendError> {
        self.inner.append(revision).await
    }
    async fn history(
        &self,
        env: &Name,
        service: Option<&Name>,
        limit: u32,
    ) -> Result<Vec<RevisionMeta>, StoreError> {
        self.inner.history(env, service, limit).await
    }
}

#[async_trait::async_trait]
impl LockStore for WriteOnApprove {
    async fn lock(&self, env: &Name) -> Result<Option<Lock>, StoreError> {
        self.inner.lock(env).await
    }
    async fn acquire_lock(&self, lock: Lock, now: Millis) -> Result<LockAttempt, StoreError> {
        self.inner.acquire_lock(lock, now).await
    }
    async fn release_lock(&self, env: &Name) -> Result<Option<Lock>, StoreError> {
        self.inner.release_lock(env).await
    }
    async fn take_lapsed_locks(
        &self,
        identity: &str,
        now: Millis,
    ) -> Result<Vec<Lock>, StoreError> {
        self.inner.take_lapsed_locks(identity, now).await
    }
}

#[async_trait::async_trait]
impl AuditStore for WriteOnApprove {
    async fn record_audit(&self, entry: NewAuditEntry) -> Result<i64, StoreError> {
        self.inner.record_audit(entry).await
    }
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.audit(filter).await
    }
}

#[async_trait::async_trait]
impl DeployStore for WriteOnApprove {
    async fn applied(&self, env: &Name) -> Result<Vec<AppliedService>, StoreError> {
        self.inner.applied(env).await
    }
    async fn record_applied_many(
        &self,
        env: &Name,
        applied: &[AppliedService],
    ) -> Result<(), StoreError> {
        self.inner.record_applied_many(env, applied).await
    }
    async fn start_deploy(&self, deploy: &NewDeploy) -> Result<DeployStart, StoreError> {
        self.inner.start_deploy(deploy).await
    }
    async fn heartbeat_deploy(&self, id: i64, now: Millis) -> Result<bool, StoreError> {
        if self.hang_heartbeats {
            std::future::pending::<()>().await;
        }
        self.inner.heartbeat_deploy(id, now).await
    }
    async fn record_steps(&self, id: i64, steps: &[Step]) -> Result<bool, StoreError> {
        self.inner.record_steps(id, steps).await
    }
    async fn record_deploy_process(
        &self,
        id: i64,
        group: ProcessGroup,
    ) -> Result<bool, StoreError> {
        self.inner.record_deploy_process(id, group).await
    }
    async fn finish_deploy(
        &self,
        id: i64,
        status: DeployStatus,
        steps: &[Step],
        summary: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.inner
            .finish_deploy(id, status, steps, summary, now)
            .await
    }
    async fn interrupt_deploy(
        &self,
        id: i64,
        heartbeat: Millis,
        summary: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.inner
            .interrupt_deploy(id, heartbeat, summary, now)
            .await
    }
    async fn deploys(&self, env: &Name, limit: u32) -> Result<Vec<Deploy>, StoreError> {
        self.inner.deploys(env, limit).await
    }
    async fn running_deploy(&self, env: &Name) -> Result<Option<Deploy>, StoreError> {
        self.inner.running_deploy(env).await
    }
}

#[async_trait::async_trait]
impl PinStore for WriteOnApprove {
    async fn pin(&self, env: &Name) -> Result<Option<Pin>, StoreError> {
        self.inner.pin(env).await
    }
    async fn set_pin(&self, pin: &Pin) -> Result<(), StoreError> {
        self.inner.set_pin(pin).await
    }
    async fn clear_pin(&self, env: &Name) -> Result<Option<Pin>, StoreError> {
        self.inner.clear_pin(env).await
    }
}

#[async_trait::async_trait]
impl ApprovalStore for WriteOnApprove {
    async fn create_approval(&self, request: &NewApproval) -> Result<i64, StoreError> {
        self.inner.create_approval(request).await
    }
    async fn approval(&self, id: i64) -> Result<Option<ApprovalRequest>, StoreError> {
        self.inner.approval(id).await
    }
    async fn pending_approvals(
        &self,
        env: Option<&Name>,
    ) -> Result<Vec<ApprovalRequest>, StoreError> {
        self.inner.pending_approvals(env).await
    }
    async fn add_approver(
        &self,
        id: i64,
        approver: &Actor,
        at: Millis,
    ) -> Result<bool, StoreError> {
        let added = self.inner.add_approver(id, approver, at).await?;
        if !self.done.swap(true, Ordering::SeqCst) {
            let head = self.inner.head(&prod()).await?.unwrap();
            let mut document = head.document.clone();
            let api = document
                .services
                .get_mut(&Name::parse("api").unwrap())
                .unwrap();
            api.insert(ferry::domain::KeyPath::version(), "9.9.9".into());
            let changes = ferry::domain::diff(&head.document, &document);
            self.inner
                .append(NewRevision {
                    env: prod(),
                    parent: Some(head.meta.number),
                    author: Actor::new("shell", "mallory", "mallory"),
                    at,
                    reason: None,
                    command: "env production.api.version 9.9.9".into(),
                    changes,
                    document,
                })
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        }
        Ok(added)
    }
    async fn close_approval(
        &self,
        id: i64,
        status: ApprovalStatus,
        decided_by: Option<&str>,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.inner
            .close_approval(id, status, decided_by, reason)
            .await
    }
    async fn reclose_approval(
        &self,
        id: i64,
        from: ApprovalStatus,
        status: ApprovalStatus,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.inner.reclose_approval(id, from, status, reason).await
    }
}

#[async_trait::async_trait]
impl ChatEventStore for WriteOnApprove {
    async fn claim_event(
        &self,
        platform: &str,
        event_id: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.inner.claim_event(platform, event_id, now).await
    }
    async fn forget_events(&self, before: Millis) -> Result<u64, StoreError> {
        self.inner.forget_events(before).await
    }
}

/// A rollback that wrote its revision and pin but could not deploy says exactly that, also
/// as a step of a user-defined command: never "Nothing changed."
#[tokio::test]
async fn a_rollback_that_wrote_but_did_not_deploy_never_says_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("closed");
    let gate = dir.path().join("gate.sh");
    std::fs::write(
        &gate,
        format!("#!/bin/sh\ntest ! -e '{}'\n", flag.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gate, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.path().join("ferry.toml"),
        r#"
[store]
url = "sqlite://ferry.db"
seed = "seeds"

[deployers.none]
kind = "noop"

[environments.staging]
deployer = "none"
preflight = [{ name = "gate", program = "gate.sh" }]

[roles]
admin = ["*"]

[users]
default = ["admin"]
"#,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("seeds")).unwrap();
    std::fs::write(
        dir.path().join("seeds/staging.toml"),
        "[services.api]\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("commands")).unwrap();
    std::fs::write(
        dir.path().join("commands/undo.toml"),
        "pattern = \"undo {env}\"\nhelp = \"Roll back.\"\npermission = \"rollback:{env}\"\nsteps = [\"rollback {env}\"]\n",
    )
    .unwrap();
    let config = Config::load(&dir.path().join("ferry.toml")).unwrap();
    let store = ferry::store::open(&config.store.url, &config.base_dir)
        .await
        .unwrap();
    let app = App::with_store(config, store.clone(), Arc::new(FixedClock::at(NOW)))
        .await
        .unwrap();
    let say = |text: &'static str| {
        let app = &app;
        async move {
            let reply = app
                .handle(&Actor::new("shell", "bob", "bob"), &Origin::shell(), text)
                .await;
            shown(&reply)
        }
    };
    assert!(say("converge staging").await.contains("deployed"));
    say("env staging.api.version 1.0.1").await;
    assert!(say("converge staging").await.contains("deployed"));
    std::fs::write(&flag, "").unwrap();
    let staging = Name::parse("staging").unwrap();
    for (text, revision, kept) in [
        (
            "undo staging",
            3,
            "wrote staging@3 (rollback to staging@1) and pinned staging there",
        ),
        (
            "rollback staging to 1",
            3,
            "pinned staging at staging@3, which already wants staging@1",
        ),
    ] {
        let reply = say(text).await;
        assert!(
            reply.contains(kept)
                && reply.contains("did not deploy it")
                && reply.contains("preflight check `gate` failed")
                && !reply.contains("Nothing changed."),
            "{text}: {reply}"
        );
        let head = store.head(&staging).await.unwrap().unwrap();
        assert_eq!(head.meta.number, revision);
        assert!(store.pin(&staging).await.unwrap().is_some());
    }
}
