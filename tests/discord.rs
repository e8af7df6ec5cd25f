//! The Discord transport end to end: ferry's serenity client against the protocol-faithful fake
//! Discord (REST + gateway): a message goes in, the store changes and the reply lands as a reply;
//! a converge's progress edits arrive in order; a redelivered message runs nothing twice; a
//! dropped gateway resumes and the next message works; a refused command is refused in chat
//! and audited with the Discord identity; `/ferry` works; long output is split, never cut.

#![cfg(feature = "discord")]

#[path = "support/fake_discord.rs"]
mod fake_discord;
#[path = "chat/fixture.rs"]
mod fixture;

use fake_discord::{FakeDiscord, FollowupKind};
use ferry::chat::Transport;
use ferry::chat::discord::DiscordTransport;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const GUILD: u64 = 800_000_000_000_000_001;
const CHANNEL: u64 = 800_000_000_000_000_002;
const ALERTS: u64 = 800_000_000_000_000_003;
const ALICE: u64 = 800_000_000_000_000_010;
const CAROL: u64 = 800_000_000_000_000_011;

struct Running {
    fake: FakeDiscord,
    app: Arc<ferry::app::App>,
    stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn start(test: &str, many: bool) -> Running {
    let fake = FakeDiscord::start().await;
    fake.add_channel(CHANNEL, Some(GUILD));
    fake.add_channel(ALERTS, Some(GUILD));
    let dir = tempfile::tempdir().unwrap();
    let var = format!("FERRY_TEST_DISCORD_TOKEN_{test}");
    // SAFETY: each test sets its own variable, read only by the transport it starts.
    unsafe { std::env::set_var(&var, fake.token()) };
    let table = format!(
        "[discord]\ntoken_env = \"{var}\"\napi_url = \"{}\"",
        fake.base_url()
    );
    fixture::write(
        dir.path(),
        &table,
        &format!("discord:{ALERTS}"),
        &format!("\"discord:{ALICE}\" = [\"deployer\"]"),
        many,
    );
    let app = fixture::app(dir.path()).await;
    let transport = DiscordTransport::from_config(app.config.discord.as_ref().unwrap()).unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = app.clone();
    tokio::spawn(async move { transport.run(running, shutdown).await });
    fake.wait_ready(WAIT).await;
    Running {
        fake,
        app,
        stop,
        _dir: dir,
    }
}

fn replies_to(fake: &FakeDiscord, message: u64) -> Vec<fake_discord::Posted> {
    fake.posted()
        .into_iter()
        .filter(|p| p.reference_message_id == Some(message))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_changes_the_store_and_the_reply_is_a_reply() {
    let r = start("mention", false).await;
    let before = fixture::head(&r.app, "staging").await;
    let text = format!(
        "{} env staging.svc-01.version 2.0.0 -- from discord",
        r.fake.bot_mention()
    );
    let id = r
        .fake
        .message(ALICE, "alice", CHANNEL, Some(GUILD), &text, true);
    r.fake
        .wait_for(|f| !replies_to(f, id).is_empty(), WAIT)
        .await;
    let reply = &replies_to(&r.fake, id)[0];
    assert_eq!(reply.channel_id, CHANNEL);
    assert!(
        reply.content.starts_with(&format!(
            "**staging@{}: svc-01.version 1.0.1 → 2.0.0**",
            before + 1
        )),
        "{}",
        reply.content
    );
    assert_eq!(fixture::head(&r.app, "staging").await, before + 1);
    // The prefix works too, and a message for someone else is ignored.
    let id = r.fake.message(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "!env staging.svc-01.version",
        false,
    );
    r.fake
        .wait_for(|f| !replies_to(f, id).is_empty(), WAIT)
        .await;
    assert!(
        replies_to(&r.fake, id)[0]
            .content
            .contains("svc-01.version = 2.0.0")
    );
    let ignored = r
        .fake
        .message(ALICE, "alice", CHANNEL, Some(GUILD), "lunch anyone?", false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(replies_to(&r.fake, ignored).is_empty());
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converge_progress_edits_one_message_in_order_and_ends_with_the_outcome() {
    let r = start("progress", false).await;
    let id = r.fake.message(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "ferry converge staging",
        false,
    );
    r.fake
        .wait_for(
            |f| {
                f.edits().iter().any(|e| {
                    e.content
                        .as_deref()
                        .is_some_and(|c| c.contains("deployed (deploy #"))
                })
            },
            Duration::from_secs(30),
        )
        .await;
    let replies = replies_to(&r.fake, id);
    assert_eq!(
        replies.len(),
        1,
        "one message, edited in place: {replies:?}"
    );
    let progress = replies[0].id;
    assert!(
        replies[0]
            .content
            .contains("deploy #1: staging@1, 3 services"),
        "{}",
        replies[0].content
    );
    let edits: Vec<String> = r
        .fake
        .edits()
        .into_iter()
        .filter(|e| e.message_id == progress)
        .filter_map(|e| e.content)
        .collect();
    assert!(
        edits.len() >= 2,
        "progress edits then the outcome: {edits:?}"
    );
    let (outcome, steps) = edits.split_last().unwrap();
    assert!(
        outcome.starts_with("**staging@1 deployed (deploy #1)"),
        "{outcome}"
    );
    let mut seen = 0;
    for edit in steps {
        let lines = edit.lines().count();
        assert!(lines >= seen, "progress only grows: {edits:?}");
        seen = lines;
    }
    let healthy =
        |text: &str, svc: &str| text.contains(&format!("{svc} 1.0.")) && text.contains("healthy");
    assert!(steps.iter().any(|e| healthy(e, "svc-00")), "{edits:?}");
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_runs_nothing_twice() {
    let r = start("redeliver", false).await;
    let before = fixture::head(&r.app, "staging").await;
    let id = r.fake.message(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "!env staging.svc-02.version 9.9.9",
        false,
    );
    r.fake
        .wait_for(|f| !replies_to(f, id).is_empty(), WAIT)
        .await;
    r.fake.redeliver_message(id);
    r.fake.redeliver_message(id);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(replies_to(&r.fake, id).len(), 1, "{}", r.fake.dump());
    assert_eq!(fixture::head(&r.app, "staging").await, before + 1);
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_gateway_resumes_and_the_next_message_works() {
    let r = start("resume", false).await;
    r.fake.drop_gateway();
    r.fake
        .wait_for(|f| f.resumes().iter().any(|x| x.accepted), WAIT)
        .await;
    let id = r.fake.message(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "!env staging.svc-00.version",
        false,
    );
    r.fake
        .wait_for(|f| !replies_to(f, id).is_empty(), WAIT)
        .await;
    assert!(
        replies_to(&r.fake, id)[0]
            .content
            .contains("svc-00.version = 1.0.0")
    );
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_is_refused_in_chat_and_audited_with_the_discord_identity() {
    let r = start("refused", false).await;
    let before = fixture::head(&r.app, "staging").await;
    let id = r.fake.message(
        CAROL,
        "carol",
        CHANNEL,
        Some(GUILD),
        "!env staging.svc-00.version 6.6.6",
        false,
    );
    r.fake
        .wait_for(|f| !replies_to(f, id).is_empty(), WAIT)
        .await;
    let reply = &replies_to(&r.fake, id)[0].content;
    assert!(
        reply.contains("not allowed")
            && reply.contains("write:staging")
            && reply.contains("Nothing changed."),
        "{reply}"
    );
    assert_eq!(fixture::head(&r.app, "staging").await, before);
    let filter = ferry::domain::AuditFilter {
        env: None,
        user: Some(format!("discord:{CAROL}")),
        limit: 5,
    };
    let audit = r.app.store.audit(&filter).await.unwrap();
    assert_eq!(audit.len(), 1);
    let entry = &audit[0].entry;
    assert_eq!(entry.actor.identity(), format!("discord:{CAROL}"));
    assert_eq!(entry.actor.display, "carol");
    assert_eq!(entry.outcome, ferry::domain::Outcome::Refused);
    assert_eq!(entry.platform, "discord");
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slash_command_defers_then_answers_and_a_failed_deploy_alerts() {
    let r = start("slash", false).await;
    r.fake.wait_for(|f| !f.commands().is_empty(), WAIT).await;
    let interaction = r.fake.interaction(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "env staging.svc-00.version",
    );
    r.fake
        .wait_for(
            |f| {
                f.followups().iter().any(|x| {
                    x.interaction_id == interaction && x.kind == FollowupKind::EditOriginal
                })
            },
            WAIT,
        )
        .await;
    let responses = r.fake.interaction_responses();
    assert_eq!(
        responses
            .iter()
            .find(|x| x.interaction_id == interaction)
            .map(|x| x.kind),
        Some(5),
        "deferred first"
    );
    let answer = r
        .fake
        .followups()
        .into_iter()
        .find(|x| x.interaction_id == interaction)
        .unwrap();
    assert!(
        answer
            .content
            .unwrap_or_default()
            .contains("svc-00.version = 1.0.0")
    );
    // A failing deploy goes to the alert channel too.
    let id = r.fake.message(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "!env staging.svc-01.version 2.0.0-broken",
        false,
    );
    r.fake
        .wait_for(|f| !replies_to(f, id).is_empty(), WAIT)
        .await;
    r.fake.message(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "!converge staging",
        false,
    );
    r.fake
        .wait_for(
            |f| f.posted().iter().any(|p| p.channel_id == ALERTS),
            Duration::from_secs(30),
        )
        .await;
    let alert = r
        .fake
        .posted()
        .into_iter()
        .find(|p| p.channel_id == ALERTS)
        .unwrap();
    assert!(
        alert.content.contains("Deploy failure in staging") && alert.content.contains("svc-01"),
        "{}",
        alert.content
    );
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_output_is_split_under_the_limit_and_nothing_is_cut() {
    let r = start("long", true).await;
    let id = r
        .fake
        .message(ALICE, "alice", CHANNEL, Some(GUILD), "!env staging", false);
    r.fake
        .wait_for(|f| replies_to(f, id).len() >= 2, WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replies = replies_to(&r.fake, id);
    for reply in &replies {
        assert!(
            reply.content.chars().count() <= 2000,
            "{}",
            reply.content.len()
        );
    }
    let all: String = replies
        .iter()
        .map(|p| p.content.clone())
        .collect::<Vec<_>>()
        .join("\n");
    for i in 0..80 {
        assert!(all.contains(&format!("svc-{i:02}")), "svc-{i:02} missing");
        assert!(
            all.contains(&format!("1.0.{i}")),
            "version of svc-{i:02} missing"
        );
    }
    let _ = r.stop.send(true);
}
