//! Safety for protected environments, through the real command path with a fixed clock:
//! approvals (self-approval refused, duplicates counted once, stale and expired requests, the
//! last approval runs the converge), freeze windows in a non-UTC time zone (boundaries, `--force`
//! needing force:<env>, audited and announced; rollbacks pass as break-glass), channel bindings,
//! and the `--yes` confirmation for removing a service of a protected environment.

#[path = "common/mod.rs"]
mod common;

use common::{request_id, shown};
use ferry::app::App;
use ferry::clock::FixedClock;
use ferry::command::Reply;
use ferry::config::Config;
use ferry::domain::{Actor, AuditFilter, Origin, Outcome};
use std::sync::Arc;

/// Friday 2026-11-20 14:00 UTC = 15:00 in Berlin, an hour before the weekend freeze.
const FRIDAY_15H_BERLIN: i64 = 1_795_183_200_000;
const HOUR: i64 = 3_600_000;

struct Setup {
    app: App,
    clock: Arc<FixedClock>,
    _dir: tempfile::TempDir,
}

async fn setup(approvals: u32) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[store]
url = "sqlite://ferry.db"
seed = "seeds"

[deployers.none]
kind = "noop"

[environments.staging]
deployer = "none"
promote_to = ["production"]

[environments.production]
deployer = "none"
protected = true
approvals = {approvals}
approval_ttl = "1h"
channels = ["slack:#deploys"]
alert_channel = "slack:#alerts"
freeze = [{{ from = "Fri 16:00", to = "Mon 08:00", tz = "Europe/Berlin" }}]

[roles]
viewer = ["read"]
releaser = ["read", "write:*", "converge:*", "promote:*", "approve:*", "rollback:*"]
admin = ["*"]

[users]
"shell:bob" = ["releaser"]
"shell:dana" = ["releaser"]
"shell:erin" = ["releaser"]
"shell:root" = ["admin"]
"slack:U1" = ["releaser"]
default = ["viewer"]
"#
    );
    std::fs::write(dir.path().join("ferry.toml"), &text).unwrap();
    std::fs::create_dir(dir.path().join("seeds")).unwrap();
    let seed = "[services.api]\nversion = \"1.0.0\"\n[services.web]\nversion = \"2.0.0\"\n";
    std::fs::write(dir.path().join("seeds/production.toml"), seed).unwrap();
    std::fs::write(dir.path().join("seeds/staging.toml"), seed).unwrap();
    let config = Config::load(&dir.path().join("ferry.toml")).unwrap();
    let store = ferry::store::open(&config.store.url, &config.base_dir)
        .await
        .unwrap();
    let clock = Arc::new(FixedClock::at(FRIDAY_15H_BERLIN));
    let app = App::with_store(config, store, clock.clone()).await.unwrap();
    Setup {
        app,
        clock,
        _dir: dir,
    }
}

async fn as_user(s: &Setup, user: &str, text: &str) -> Reply {
    s.app
        .handle(&Actor::new("shell", user, user), &Origin::shell(), text)
        .await
}

#[tokio::test]
async fn the_requester_cannot_approve_and_the_last_approval_deploys() {
    let s = setup(1).await;
    let asked = as_user(&s, "bob", "converge production").await;
    assert_eq!(asked.outcome, Outcome::Ok, "{}", shown(&asked));
    assert!(
        shown(&asked).contains("needs 1 approval") && shown(&asked).contains("api (new) → 1.0.0"),
        "{}",
        shown(&asked)
    );
    let id = request_id(&asked);
    assert!(
        s.app
            .store
            .deploys(&"production".parse_name(), 5)
            .await
            .unwrap()
            .is_empty(),
        "nothing deployed yet"
    );
    let pending = as_user(&s, "bob", "pending").await;
    assert!(
        shown(&pending).contains(&format!("#{id}")) && shown(&pending).contains("0/1"),
        "{}",
        shown(&pending)
    );
    let own = as_user(&s, "bob", &format!("approve {id}")).await;
    assert_eq!(own.outcome, Outcome::Refused);
    assert!(
        own.headline.contains("yourself") && own.headline.contains("another user"),
        "{}",
        own.headline
    );
    let viewer = as_user(&s, "carol", &format!("approve {id}")).await;
    assert_eq!(viewer.outcome, Outcome::Refused);
    assert!(
        viewer.headline.contains("approve:production"),
        "{}",
        viewer.headline
    );
    let approved = as_user(&s, "dana", &format!("approve {id}")).await;
    assert_eq!(approved.outcome, Outcome::Ok, "{}", shown(&approved));
    assert!(
        approved.headline.contains("approved by dana")
            && approved.headline.contains("as asked by bob"),
        "{}",
        approved.headline
    );
    let deploys = s
        .app
        .store
        .deploys(&"production".parse_name(), 5)
        .await
        .unwrap();
    assert_eq!(deploys.len(), 1);
    assert_eq!(deploys[0].actor.id, "bob", "the deploy is the requester's");
    let again = as_user(&s, "erin", &format!("approve {id}")).await;
    assert!(
        again.headline.contains("already executed"),
        "{}",
        again.headline
    );
    assert!(shown(&as_user(&s, "bob", "pending").await).contains("No approval requests"));
}

#[tokio::test]
async fn approving_twice_counts_once() {
    let s = setup(2).await;
    let id = request_id(&as_user(&s, "bob", "converge production").await);
    let first = as_user(&s, "dana", &format!("approve {id}")).await;
    assert!(first.headline.contains("1 of 2"), "{}", first.headline);
    let twice = as_user(&s, "dana", &format!("approve #{id}")).await;
    assert!(
        twice.headline.contains("already approved") && twice.headline.contains("1 more"),
        "{}",
        twice.headline
    );
    assert!(
        s.app
            .store
            .deploys(&"production".parse_name(), 5)
            .await
            .unwrap()
            .is_empty()
    );
    let second = as_user(&s, "erin", &format!("approve {id}")).await;
    assert!(
        second.headline.contains("approved by erin"),
        "{}",
        shown(&second)
    );
    assert_eq!(
        s.app
            .store
            .deploys(&"production".parse_name(), 5)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_request_goes_stale_when_desired_state_moves() {
    let s = setup(1).await;
    let id = request_id(&as_user(&s, "bob", "converge production").await);
    assert_eq!(
        as_user(&s, "bob", "env production.api.version 1.0.1")
            .await
            .outcome,
        Outcome::Ok
    );
    let stale = as_user(&s, "dana", &format!("approve {id}")).await;
    assert_eq!(stale.outcome, Outcome::Failed);
    assert!(
        stale.headline.contains("stale") && stale.headline.contains("production@1 to production@2"),
        "{}",
        stale.headline
    );
    assert!(
        shown(&stale).contains("converge production"),
        "says how to ask again"
    );
    assert!(
        s.app
            .store
            .deploys(&"production".parse_name(), 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        as_user(&s, "dana", &format!("approve {id}"))
            .await
            .headline
            .contains("already stale")
    );
}

#[tokio::test]
async fn a_request_expires() {
    let s = setup(1).await;
    let id = request_id(&as_user(&s, "bob", "converge production").await);
    s.clock.advance(HOUR + 1);
    let expired = as_user(&s, "dana", &format!("approve {id}")).await;
    assert_eq!(expired.outcome, Outcome::Failed);
    assert!(expired.headline.contains("expired"), "{}", expired.headline);
    assert!(
        s.app
            .store
            .deploys(&"production".parse_name(), 5)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_denied_request_is_closed() {
    let s = setup(1).await;
    let id = request_id(&as_user(&s, "bob", "converge production").await);
    let denied = as_user(&s, "dana", &format!("deny {id} not during the incident")).await;
    assert!(
        denied
            .headline
            .contains("denied by dana: not during the incident"),
        "{}",
        denied.headline
    );
    assert!(
        as_user(&s, "erin", &format!("approve {id}"))
            .await
            .headline
            .contains("already denied")
    );
}

#[tokio::test]
async fn freeze_windows_follow_berlin_time_and_force_is_audited_and_announced() {
    let s = setup(0).await;
    // 15:59 Berlin: still open.
    s.clock.advance(59 * 60_000);
    assert_eq!(
        as_user(&s, "bob", "converge production").await.outcome,
        Outcome::Ok
    );
    assert_eq!(
        as_user(&s, "bob", "env production.api.version 1.0.1")
            .await
            .outcome,
        Outcome::Ok
    );
    // 16:00 Berlin: frozen until Monday 08:00 Berlin.
    s.clock.advance(60_000);
    let frozen = as_user(&s, "bob", "converge production").await;
    assert_eq!(frozen.outcome, Outcome::Refused);
    assert!(
        frozen.headline.contains("frozen") && frozen.headline.contains("Mon 2026-11-23 08:00 CET"),
        "{}",
        frozen.headline
    );
    let not_allowed = as_user(&s, "bob", "converge production --force").await;
    assert_eq!(not_allowed.outcome, Outcome::Refused);
    assert!(
        not_allowed.headline.contains("force:production"),
        "{}",
        not_allowed.headline
    );
    let forced = as_user(&s, "root", "converge production --force").await;
    assert_eq!(forced.outcome, Outcome::Ok, "{}", shown(&forced));
    assert!(
        shown(&forced).contains("Freeze overridden: root overrode the freeze of production"),
        "{}",
        shown(&forced)
    );
    let (env, alert) = forced.alert.clone().expect("announced");
    assert_eq!(env.as_str(), "production");
    assert!(alert.contains("Forced deploy during a freeze"), "{alert}");
    let audit = s
        .app
        .store
        .audit(&AuditFilter {
            env: None,
            user: Some("root".into()),
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(audit[0].entry.text, "converge production --force");
    assert_eq!(audit[0].entry.outcome, Outcome::Ok);
    // A rollback passes the freeze as break-glass, and says so.
    let rolled = as_user(&s, "bob", "rollback production to 1").await;
    assert_eq!(rolled.outcome, Outcome::Ok, "{}", shown(&rolled));
    assert!(
        shown(&rolled).contains("passed as break-glass"),
        "{}",
        shown(&rolled)
    );
    assert!(rolled.alert.is_some());
    // Monday 08:00 Berlin (07:00 UTC): open again.
    s.clock.advance(2 * 24 * HOUR + 16 * HOUR);
    assert_eq!(
        as_user(&s, "bob", "env production.api.version 1.0.2")
            .await
            .outcome,
        Outcome::Ok
    );
    assert_eq!(
        as_user(&s, "bob", "converge production").await.outcome,
        Outcome::Ok
    );
}

#[tokio::test]
async fn bound_channels_are_the_only_place_commands_are_accepted() {
    let s = setup(0).await;
    let user = Actor::new("slack", "U1", "bob");
    let random = Origin {
        platform: "slack".into(),
        channel: Some("#random".into()),
        channel_ids: vec!["C0RANDOM".into()],
    };
    let refused = s
        .app
        .handle(&user, &random, "env production.api.version 1.0.1")
        .await;
    assert_eq!(refused.outcome, Outcome::Refused);
    assert!(
        refused.headline.contains("only in slack:#deploys")
            && refused.headline.contains("slack:#random"),
        "{}",
        refused.headline
    );
    let deploys = Origin {
        platform: "slack".into(),
        channel: Some("#deploys".into()),
        channel_ids: vec!["C0DEPLOYS".into()],
    };
    assert_eq!(
        s.app
            .handle(&user, &deploys, "env production.api.version 1.0.1")
            .await
            .outcome,
        Outcome::Ok
    );
    assert_eq!(
        s.app
            .handle(&user, &random, "env staging.api.version 1.0.1")
            .await
            .outcome,
        Outcome::Ok,
        "staging has no binding"
    );
    assert_eq!(
        as_user(&s, "bob", "env production.api.version 1.0.2")
            .await
            .outcome,
        Outcome::Ok,
        "the shell is always allowed"
    );
}

#[tokio::test]
async fn removing_a_protected_service_asks_for_yes() {
    let s = setup(0).await;
    let asked = as_user(&s, "bob", "unset production.web").await;
    assert_eq!(asked.outcome, Outcome::Failed);
    assert!(
        shown(&asked).contains("unset production.web --yes")
            && shown(&asked).contains("Nothing changed."),
        "{}",
        shown(&asked)
    );
    assert!(shown(&as_user(&s, "bob", "env production").await).contains("web"));
    assert_eq!(
        as_user(&s, "bob", "unset production.web --yes")
            .await
            .outcome,
        Outcome::Ok
    );
    assert!(!shown(&as_user(&s, "bob", "env production").await).contains("web"));
    assert_eq!(
        as_user(&s, "bob", "unset staging.web").await.outcome,
        Outcome::Ok,
        "not protected: no question"
    );
}

trait ParseName {
    fn parse_name(&self) -> ferry::domain::Name;
}

impl ParseName for str {
    fn parse_name(&self) -> ferry::domain::Name {
        ferry::domain::Name::parse(self).unwrap()
    }
}
