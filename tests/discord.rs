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
    dir: tempfile::TempDir,
}

async fn start(test: &str, many: bool) -> Running {
    start_with(test, many, |_, _| {}, |t| t).await
}

/// `prepare` sees the fake and the config folder before ferry starts.
async fn start_with(
    test: &str,
    many: bool,
    prepare: impl FnOnce(&FakeDiscord, &std::path::Path),
    configure: impl FnOnce(DiscordTransport) -> DiscordTransport,
) -> Running {
    let fake = FakeDiscord::start().await;
    fake.add_named_channel(CHANNEL, GUILD, "deploys");
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
    prepare(&fake, dir.path());
    let app = fixture::app(dir.path()).await;
    let transport =
        configure(DiscordTransport::from_config(app.config.discord.as_ref().unwrap()).unwrap());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = app.clone();
    tokio::spawn(async move { transport.run(running, shutdown).await });
    fake.wait_ready(WAIT).await;
    Running {
        fake,
        app,
        stop,
        dir,
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

/// Deploys recorded by the fixture's script.
fn deployed(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("deploy.log"))
        .map(|log| log.lines().count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_progress_edit_does_not_stall_the_converge_and_the_outcome_is_posted() {
    // A long call timeout: everything below must happen while the hung edits still hang.
    let r = start_with(
        "hung",
        false,
        |_, _| {},
        |t| t.with_call_timeout(Duration::from_secs(60)),
    )
    .await;
    r.fake.hang_edits(true);
    let id = r.fake.message(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "!converge staging",
        false,
    );
    r.fake
        .wait_for(
            |f| {
                replies_to(f, id)
                    .iter()
                    .any(|p| p.content.starts_with("**staging@1 deployed (deploy #1)"))
            },
            Duration::from_secs(40),
        )
        .await;
    assert_eq!(deployed(r.dir.path()), 3, "every service was deployed");
    assert!(
        r.fake
            .requests()
            .iter()
            .any(|q| q.method == "PATCH" && q.status == 0),
        "an edit hung: {}",
        r.fake.dump()
    );
    let replies = replies_to(&r.fake, id);
    assert!(
        replies[0]
            .content
            .contains("deploy #1: staging@1, 3 services"),
        "the progress message came first: {replies:?}"
    );
    let _ = r.stop.send(true);
}

/// Everything a user can put into a message that Discord would turn into a ping or a link.
const PAYLOAD: &str = "@everyone <!channel> <@U123> [x](https://evil) <https://evil|click>";
/// In prose: mentions, masked links and markdown escaped, `@everyone` broken.
const PROSE: &str =
    "@\u{200B}everyone \\<!channel> \\<@U123> \\[x\\](https://evil) \\<https://evil\\|click>";
/// In a code block Discord renders no mention or link; only `@everyone` is broken.
const CODE: &str = "@\u{200B}everyone <!channel> <@U123> [x](https://evil) <https://evil|click>";

fn mentions_nothing(body: &serde_json::Value) -> bool {
    let mentions = &body["allowed_mentions"];
    mentions["parse"] == serde_json::json!([])
        && mentions["users"].as_array().is_none_or(Vec::is_empty)
        && mentions["roles"].as_array().is_none_or(Vec::is_empty)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_users_typed_is_escaped_and_no_reply_mentions_anyone() {
    let r = start("escape", false).await;
    let mut replies = Vec::new();
    for command in [
        format!("!env staging.svc-00.note \"{PAYLOAD}\" -- {PAYLOAD}"),
        "!env staging".to_string(),
        "!history staging".to_string(),
        "!diff staging".to_string(),
        "!audit --limit 5".to_string(),
    ] {
        let id = r
            .fake
            .message(ALICE, "alice", CHANNEL, Some(GUILD), &command, false);
        r.fake
            .wait_for(|f| !replies_to(f, id).is_empty(), WAIT)
            .await;
        replies.push((command, replies_to(&r.fake, id).remove(0)));
    }
    let set = &replies[0].1.content;
    assert!(
        set.starts_with(&format!(
            "**staging@2: svc-00.note (none) → {PROSE}**\nReason: {PROSE}"
        )),
        "{set}"
    );
    for (command, reply) in &replies[1..] {
        assert!(reply.content.contains(CODE), "{command}: {}", reply.content);
    }
    assert!(
        replies[1]
            .1
            .content
            .contains(&format!("  note     {CODE}\n")),
        "a table cell: {}",
        replies[1].1.content
    );
    for (command, reply) in &replies {
        assert!(
            !reply.content.contains("@everyone"),
            "{command}: {}",
            reply.content
        );
        assert!(mentions_nothing(&reply.body), "{command}: {}", reply.body);
    }
    // Edits and interaction answers too.
    let id = r.fake.message(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "!converge staging",
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
    assert!(!replies_to(&r.fake, id).is_empty());
    for edit in r.fake.edits() {
        assert!(mentions_nothing(&edit.body), "{}", edit.body);
    }
    r.fake.wait_for(|f| !f.commands().is_empty(), WAIT).await;
    let interaction = r.fake.interaction(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "env staging.svc-00.note",
    );
    r.fake
        .wait_for(
            |f| {
                f.followups()
                    .iter()
                    .any(|x| x.interaction_id == interaction)
            },
            WAIT,
        )
        .await;
    let answer = r
        .fake
        .followups()
        .into_iter()
        .find(|x| x.interaction_id == interaction)
        .unwrap();
    assert!(mentions_nothing(&answer.body), "{}", answer.body);
    assert!(
        answer
            .content
            .unwrap_or_default()
            .contains(&format!("svc-00.note = {PROSE}")),
        "{}",
        answer.body
    );
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_reply_is_cut_to_five_messages_and_says_how_to_narrow_it() {
    let r = start("huge", false).await;
    let actor = ferry::domain::Actor::new("discord", &CAROL.to_string(), "carol");
    let origin = ferry::domain::Origin {
        platform: "discord".into(),
        channel: Some("#deploys".into()),
        channel_ids: vec![CHANNEL.to_string()],
    };
    let long = "x".repeat(900);
    for i in 0..150 {
        r.app
            .handle(&actor, &origin, &format!("env staging.svc-00.k{i} {long}"))
            .await;
    }
    let id = r.fake.message(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "!audit --limit 1000",
        false,
    );
    r.fake
        .wait_for(|f| !replies_to(f, id).is_empty(), WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let replies = replies_to(&r.fake, id);
    assert_eq!(replies.len(), 5, "{replies:#?}");
    let last = &replies[4].content;
    assert!(last.starts_with("(5/5) "), "{last}");
    let note = last.lines().last().unwrap_or_default();
    assert!(
        note.starts_with("… ")
            && note.ends_with(
                " more lines not shown; narrow it with `audit --limit 20`, `audit <env>` or `audit --user <user>`"
            ),
        "{note}"
    );
    let hidden: usize = note["… ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(hidden > 100, "{note}");
    for reply in &replies {
        assert!(reply.content.chars().count() <= 2000);
        assert_eq!(
            reply.content.matches("```").count() % 2,
            0,
            "{}",
            reply.content
        );
    }
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_binding_means_one_servers_channel_not_every_deploys() {
    const OTHER_GUILD: u64 = 800_000_000_000_000_101;
    const OTHER_DEPLOYS: u64 = 800_000_000_000_000_102;
    let r = start_with(
        "binding",
        false,
        |fake, dir| {
            fake.add_named_channel(OTHER_DEPLOYS, OTHER_GUILD, "deploys");
            fixture::add_protected_production(dir, &format!("discord:{GUILD}/#deploys"));
        },
        |t| t,
    )
    .await;
    let elsewhere = r.fake.message(
        ALICE,
        "alice",
        OTHER_DEPLOYS,
        Some(OTHER_GUILD),
        "!env production.svc-00.version",
        false,
    );
    r.fake
        .wait_for(|f| !replies_to(f, elsewhere).is_empty(), WAIT)
        .await;
    let refusal = &replies_to(&r.fake, elsewhere)[0].content;
    assert!(
        refusal.contains(&format!(
            "production commands are accepted only in discord:{GUILD}/#deploys; this was typed in discord:#deploys"
        )),
        "{refusal}"
    );
    let here = r.fake.message(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "!env production.svc-00.version",
        false,
    );
    r.fake
        .wait_for(|f| !replies_to(f, here).is_empty(), WAIT)
        .await;
    let answer = &replies_to(&r.fake, here)[0].content;
    assert!(answer.contains("svc-00.version = 1.0.0"), "{answer}");
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_rest_call_times_out_and_the_rest_of_the_reply_follows() {
    let r = start_with(
        "timeout",
        true,
        |_, _| {},
        |t| t.with_call_timeout(Duration::from_secs(1)),
    )
    .await;
    r.fake.hang_next_posts(1);
    let id = r
        .fake
        .message(ALICE, "alice", CHANNEL, Some(GUILD), "!env staging", false);
    r.fake
        .wait_for(
            |f| {
                replies_to(f, id)
                    .iter()
                    .any(|p| p.content.starts_with("(2/"))
            },
            WAIT,
        )
        .await;
    let replies = replies_to(&r.fake, id);
    assert!(
        !replies.iter().any(|p| p.content.starts_with("**staging@")),
        "the first piece hung and was given up: {replies:?}"
    );
    assert!(
        r.fake
            .requests()
            .iter()
            .any(|q| q.method == "POST" && q.status == 0),
        "{}",
        r.fake.dump()
    );
    let _ = r.stop.send(true);
}
