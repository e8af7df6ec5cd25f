//! What only Slack has, through the transcript harness (`tests/chat/`) and the fake Slack: the
//! `message` twin of a mention runs nothing twice; the header of `/ferry` names who asked; a
//! refresh-requested socket reconnects and DMs work; a hung `users.info` holds up only its user
//! and cached names expire; a bad token is a clear start-up error. The scenarios both platforms
//! share are in `tests/transcripts.rs`.

#![cfg(feature = "slack")]

#[path = "support/fake_slack.rs"]
mod fake_slack;
#[path = "chat/fixture.rs"]
mod fixture;
#[path = "chat/on_slack.rs"]
mod on_slack;
#[path = "chat/transcript.rs"]
mod transcript;

use fake_slack::FakeSlack;
use ferry::chat::slack::SlackTransport;
use on_slack::OnSlack;
use std::time::Duration;
use transcript::{Asked, CONVERGE, Chat, Platform, Setup, WAIT};

const CHANNEL: &str = "C0DEPLOYS";
const ALICE: &str = "U0ALICE";
const CAROL: &str = "U0CAROL";

/// Pushes a mention of the bot by `user` in `#deploys`, as the harness's `say` does but
/// without waiting for its ack.
async fn mention(chat: &Chat<OnSlack>, user: &str, command: &str) -> Asked {
    let ts = chat.p.fake.fresh_ts().await;
    chat.p
        .fake
        .mention(user, CHANNEL, &format!("<@UBOT> {command}"), &ts)
        .await;
    Asked { id: ts }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_and_its_message_twin_run_once() {
    let chat = Chat::<OnSlack>::start("twin", Setup::default()).await;
    let before = chat.head("staging").await;
    let ts = chat.p.fake.fresh_ts().await;
    let (mention, twin) = chat
        .p
        .fake
        .mention_both(
            ALICE,
            CHANNEL,
            "<@UBOT> env staging.svc-02.version 3.0.0",
            &ts,
        )
        .await;
    let asked = Asked { id: ts };
    chat.reply(&asked).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(chat.replies(&asked).await.len(), 1);
    assert_eq!(chat.head("staging").await, before + 1);
    let acks = chat.p.fake.acks().await;
    for event in [&mention, &twin] {
        assert!(
            acks.iter().any(|a| a.envelope_id == event.envelope_id),
            "the envelope is acked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slash_command_header_names_who_asked() {
    let chat = Chat::<OnSlack>::start("slash_header", Setup::default()).await;
    let asked = chat
        .slash("alice", "#deploys", "env staging.svc-00.version")
        .await;
    let header = chat
        .p
        .fake
        .posts()
        .await
        .into_iter()
        .find(|p| p.ts == asked.id)
        .unwrap();
    let text = header.text.unwrap_or_default();
    assert!(
        text.starts_with(&format!("<@{ALICE}>")) && text.contains("ran `/ferry env staging"),
        "{text}"
    );
    assert!(
        chat.reply(&asked)
            .await
            .text
            .contains("svc-00.version = 1.0.0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_requested_socket_reconnects_and_a_dm_works() {
    let chat = Chat::<OnSlack>::start("refresh", Setup::default()).await;
    chat.p.fake.request_refresh().await;
    chat.p.fake.wait_for_connections(2, WAIT).await;
    let ts = chat.p.fake.fresh_ts().await;
    chat.p
        .fake
        .dm(ALICE, "D0ALICE", "env staging.svc-00.version", &ts)
        .await;
    let reply = chat.reply(&Asked { id: ts }).await;
    assert!(
        reply.text.contains("svc-00.version = 1.0.0"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn a_refused_token_is_a_clear_start_up_error() {
    let fake = FakeSlack::start().await;
    let (app_var, bot_var) = ("FERRY_TEST_SLACK_APP_bad", "FERRY_TEST_SLACK_BOT_bad");
    // SAFETY: only this test reads these variables.
    unsafe {
        std::env::set_var(app_var, fake.app_token());
        std::env::set_var(bot_var, "xoxb-wrong");
    }
    let config = ferry::config::SlackConfig {
        app_token_env: app_var.into(),
        bot_token_env: bot_var.into(),
        api_url: Some(fake.api_url()),
    };
    let err = SlackTransport::connect(&config)
        .await
        .err()
        .expect("a wrong token is refused")
        .to_string();
    assert!(err.contains(bot_var) && err.contains("refused"), "{err}");
    let missing = ferry::config::SlackConfig {
        app_token_env: "FERRY_TEST_SLACK_UNSET".into(),
        ..config
    };
    let err = SlackTransport::connect(&missing)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("FERRY_TEST_SLACK_UNSET is not set"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_name_lookup_holds_up_only_its_user_and_names_expire() {
    let setup = Setup {
        call_timeout: Some(Duration::from_secs(8)),
        name_ttl: Some(Duration::from_millis(700)),
        ..Setup::default()
    };
    let chat = Chat::<OnSlack>::start("names", setup).await;
    chat.p.fake.hang_when("users.info", "user", CAROL).await;
    let carol = mention(&chat, CAROL, "env staging.svc-00.version").await;
    chat.p
        .fake
        .wait_for(
            |rec| {
                rec.calls.iter().any(|c| {
                    c.method == "users.info"
                        && c.params["user"] == CAROL
                        && c.error.as_deref() == Some("hung")
                })
            },
            WAIT,
        )
        .await;
    // Alice is answered while Carol's lookup still hangs.
    let alice = mention(&chat, ALICE, "env staging.svc-01.version").await;
    chat.reply_within(&alice, Duration::from_secs(6)).await;
    assert!(
        chat.replies(&carol).await.is_empty(),
        "Carol waits for her own lookup only"
    );
    // Carol's lookup times out: the command runs under her id, and the failure is not cached.
    chat.p.fake.unhang().await;
    chat.reply_within(&carol, Duration::from_secs(20)).await;
    assert_eq!(chat.audit_of("carol", 1).await[0].actor.display, CAROL);
    let again = mention(&chat, CAROL, "env staging.svc-02.version").await;
    chat.reply(&again).await;
    assert_eq!(chat.audit_of("carol", 1).await[0].actor.display, "carol");
    // A renamed channel is seen once its cached name expired.
    chat.p.fake.add_channel(CHANNEL, "releases").await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let asked = mention(&chat, ALICE, "env staging.svc-00.version").await;
    chat.reply(&asked).await;
    assert_eq!(
        chat.audit_of("alice", 1).await[0].channel.as_deref(),
        Some("#releases")
    );
}

/// The harness's Slack maps people and channels as these tests assume.
#[test]
fn the_harness_names_match() {
    assert_eq!(OnSlack::user_id("alice"), ALICE);
    assert_eq!(OnSlack::channel_ref("#deploys"), CHANNEL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_markup_is_read_as_what_was_typed() {
    let chat = Chat::<OnSlack>::start("markup", Setup::default()).await;
    let stored = |key: &'static str| {
        let key = format!("config.{key}");
        let app = chat.app.clone();
        async move { fixture::value(&app, "staging", "svc-00", &key).await }
    };
    for (key, wire, want) in [
        ("OWNER", fake_slack::user_mention("U024BE7LH"), "U024BE7LH"),
        ("ROOM", "<#C024BE7LR|deploys>".to_string(), "#deploys"),
        ("SITE", "<http://x.io|x.io>".to_string(), "x.io"),
        ("MAIL", "<mailto:a@b.c|a@b.c>".to_string(), "a@b.c"),
        ("PING", "<!here>".to_string(), "@here"),
    ] {
        let ts = chat.p.fake.fresh_ts().await;
        let typed = format!("<@UBOT> env staging.svc-00.config.{key} {wire}");
        let message = fake_slack::FakeMessage::mention(ALICE, CHANNEL, &typed, &ts);
        chat.p
            .fake
            .push_message(message.with_wire_text(&typed))
            .await;
        let reply = chat.reply(&Asked { id: ts }).await;
        assert_eq!(stored(key).await.as_deref(), Some(want), "{}", reply.text);
    }
}

/// How many calls of `method` the fake answered with 429.
async fn rate_limited(chat: &Chat<OnSlack>, method: &str) -> usize {
    let calls = chat.p.fake.calls_to(method).await;
    calls
        .iter()
        .filter(|c| c.error.as_deref() == Some("ratelimited"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_reply_edit_or_button_message_is_delayed_not_lost() {
    let setup = Setup {
        roles: vec![("alice", "deployer"), ("bob", "releaser")],
        production: Some("slack:#deploys".into()),
        ..Setup::default()
    };
    let chat = Chat::<OnSlack>::start("ratelimited", setup).await;

    // A reply: the first attempt is refused with 429, the retry after 1 s lands.
    chat.p
        .fake
        .rate_limit_next_n("chat.postMessage", 1, 1)
        .await;
    let started = std::time::Instant::now();
    let asked = chat
        .say("alice", "#deploys", "env staging.svc-00.version")
        .await;
    let reply = chat.reply(&asked).await;
    assert!(
        reply.text.contains("svc-00.version = 1.0.0"),
        "{}",
        reply.text
    );
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited");
    assert_eq!(rate_limited(&chat, "chat.postMessage").await, 1);

    // A channel throttled for a while (Slack's about one post a second): refused five times in
    // a row, the reply still lands once the channel lets it through.
    chat.p
        .fake
        .rate_limit_next_n("chat.postMessage", 5, 1)
        .await;
    let asked = chat
        .say("alice", "#deploys", "env staging.svc-01.version")
        .await;
    let reply = chat.reply(&asked).await;
    assert!(reply.text.contains("svc-01.version = "), "{}", reply.text);
    assert_eq!(rate_limited(&chat, "chat.postMessage").await, 6);

    // A message with buttons, twice refused.
    chat.p
        .fake
        .rate_limit_next_n("chat.postMessage", 2, 1)
        .await;
    let asked = chat.say("bob", "#deploys", "converge production").await;
    let request = chat.reply(&asked).await;
    assert_eq!(request.buttons[0].value, "approve 1", "{}", request.text);
    assert_eq!(rate_limited(&chat, "chat.postMessage").await, 8);

    // Edits of the progress message: refused, retried, in order, ending with the outcome.
    chat.p.fake.rate_limit_next_n("chat.update", 2, 1).await;
    let asked = chat.say("alice", "#deploys", "converge staging").await;
    let log = chat
        .wait("the outcome", CONVERGE, |log| {
            log.any_edit_contains("deployed (deploy #1)")
        })
        .await;
    let replies = log.replies(&asked);
    assert_eq!(
        replies.len(),
        1,
        "one message, edited in place: {replies:?}"
    );
    let edits = log.edits_of(&replies[0].id);
    assert!(
        edits.last().unwrap().contains("deployed (deploy #1)"),
        "the outcome is the last edit: {edits:?}"
    );
    assert!(rate_limited(&chat, "chat.update").await >= 1);
    // Within each thread, messages are in the order they were posted.
    let ts: Vec<String> = log.replies(&asked).iter().map(|s| s.id.clone()).collect();
    let mut sorted = ts.clone();
    sorted.sort();
    assert_eq!(ts, sorted);
}
