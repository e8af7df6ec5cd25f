//! What only Discord has, through the transcript harness (`tests/chat/`) and the fake Discord:
//! the ways of addressing the bot (a mention, its name) and messages it ignores; `/ferry` is
//! deferred first, then answered; no edit or interaction answer mentions anyone; a channel
//! binding means one server's channel; a hung REST call times out and the rest of the reply
//! follows; a reply or edit refused with 429 is delivered after a wait, in order. The scenarios both platforms share are in `tests/transcripts.rs`.

#![cfg(feature = "discord")]

#[path = "support/fake_discord.rs"]
mod fake_discord;
#[path = "chat/fixture.rs"]
mod fixture;
#[path = "chat/on_discord.rs"]
mod on_discord;
#[path = "chat/transcript.rs"]
mod transcript;

use fake_discord::FollowupKind;
use on_discord::{GUILD, OnDiscord, channel_id, person_id};
use std::time::Duration;
use transcript::{Asked, CONVERGE, Chat, PAYLOAD, Platform, Setup, WAIT};

/// `alice` types `content` in `#deploys` as is (no prefix added).
fn type_in_deploys(chat: &Chat<OnDiscord>, content: &str, mentions_bot: bool) -> Asked {
    let id = chat.p.fake.message(
        person_id("alice"),
        "alice",
        channel_id("#deploys"),
        Some(GUILD),
        content,
        mentions_bot,
    );
    Asked { id: id.to_string() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_or_the_bots_name_addresses_it_and_other_messages_are_ignored() {
    let chat = Chat::<OnDiscord>::start("addressing", Setup::default()).await;
    let before = chat.head("staging").await;
    let text = format!(
        "{} env staging.svc-01.version 2.0.0 -- from discord",
        chat.p.fake.bot_mention()
    );
    let asked = type_in_deploys(&chat, &text, true);
    let reply = chat.reply(&asked).await.text;
    let expected = format!("**staging@{}: svc-01.version 1.0.1 → 2.0.0**", before + 1);
    assert!(reply.starts_with(&expected), "{reply}");
    assert_eq!(chat.head("staging").await, before + 1);
    let asked = type_in_deploys(&chat, "ferry env staging.svc-01.version", false);
    let reply = chat.reply(&asked).await.text;
    assert!(reply.contains("svc-01.version = 2.0.0"), "{reply}");
    let ignored = type_in_deploys(&chat, "lunch anyone?", false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(chat.replies(&ignored).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slash_command_is_deferred_then_answered_by_editing_the_original() {
    let chat = Chat::<OnDiscord>::start("defer", Setup::default()).await;
    let asked = chat
        .slash("alice", "#deploys", "env staging.svc-00.version")
        .await;
    let interaction: u64 = asked.id.parse().unwrap();
    chat.p
        .fake
        .wait_for(
            |f| {
                f.followups().iter().any(|x| {
                    x.interaction_id == interaction && x.kind == FollowupKind::EditOriginal
                })
            },
            WAIT,
        )
        .await;
    let responses = chat.p.fake.interaction_responses();
    assert_eq!(
        responses
            .iter()
            .find(|x| x.interaction_id == interaction)
            .map(|x| x.kind),
        Some(5),
        "deferred first"
    );
    let answer = chat.reply(&asked).await.text;
    assert!(answer.contains("svc-00.version = 1.0.0"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_edit_and_no_interaction_answer_mentions_anyone() {
    let chat = Chat::<OnDiscord>::start("edits_escape", Setup::default()).await;
    let asked = chat
        .say(
            "alice",
            "#deploys",
            &format!("env staging.svc-00.note \"{PAYLOAD}\""),
        )
        .await;
    chat.reply(&asked).await;
    let asked = chat.say("alice", "#deploys", "converge staging").await;
    let log = chat
        .wait("the outcome", CONVERGE, |log| {
            log.any_edit_contains("deployed (deploy #")
        })
        .await;
    assert!(!log.replies(&asked).is_empty());
    for edit in &log.edits {
        assert!(OnDiscord::mentions_nothing(&edit.body), "{}", edit.body);
    }
    let asked = chat
        .slash("alice", "#deploys", "env staging.svc-00.note")
        .await;
    let answer = chat.reply(&asked).await;
    assert!(OnDiscord::mentions_nothing(&answer.body), "{}", answer.body);
    assert!(
        answer
            .text
            .contains(&format!("svc-00.note = {}", OnDiscord::PROSE)),
        "{}",
        answer.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_binding_means_one_servers_channel_not_every_deploys() {
    const OTHER_GUILD: u64 = 800_000_000_000_000_101;
    const OTHER_DEPLOYS: u64 = 800_000_000_000_000_102;
    let setup = Setup {
        production: Some(format!("discord:{GUILD}/#deploys")),
        ..Setup::default()
    };
    let chat = Chat::<OnDiscord>::start("binding", setup).await;
    chat.p
        .fake
        .add_named_channel(OTHER_DEPLOYS, OTHER_GUILD, "deploys");
    let elsewhere = chat.p.fake.message(
        person_id("alice"),
        "alice",
        OTHER_DEPLOYS,
        Some(OTHER_GUILD),
        "!env production.svc-00.version",
        false,
    );
    let refusal = chat
        .reply(&Asked {
            id: elsewhere.to_string(),
        })
        .await
        .text;
    assert!(
        refusal.contains(&format!(
            "production commands are accepted only in discord:{GUILD}/#deploys; this was typed in discord:#deploys"
        )),
        "{refusal}"
    );
    let here = chat
        .say("alice", "#deploys", "env production.svc-00.version")
        .await;
    let answer = chat.reply(&here).await.text;
    assert!(answer.contains("svc-00.version = 1.0.0"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_rest_call_times_out_and_the_rest_of_the_reply_follows() {
    let setup = Setup {
        many: true,
        call_timeout: Some(Duration::from_secs(1)),
        ..Setup::default()
    };
    let chat = Chat::<OnDiscord>::start("timeout", setup).await;
    chat.p.fake.hang_next_posts(1);
    let asked = chat.say("alice", "#deploys", "env staging").await;
    let log = chat
        .wait("the second piece", WAIT, |log| {
            log.replies(&asked)
                .iter()
                .any(|s| s.text.starts_with("(2/"))
        })
        .await;
    let replies = log.replies(&asked);
    assert!(
        !replies.iter().any(|s| s.text.starts_with("**staging@")),
        "the first piece hung and was given up: {replies:?}"
    );
    assert!(
        chat.p
            .fake
            .requests()
            .iter()
            .any(|q| q.method == "POST" && q.status == 0),
        "{}",
        chat.p.fake.dump()
    );
}

/// How many requests the fake refused with 429 Too Many Requests, by method.
fn rate_limited(chat: &Chat<OnDiscord>, method: &str) -> usize {
    chat.p
        .fake
        .requests()
        .iter()
        .filter(|q| q.method == method && q.status == 429)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_reply_or_edit_is_delayed_not_lost_and_stays_in_order() {
    let chat = Chat::<OnDiscord>::start("ratelimited", Setup::default()).await;

    // A reply: the first attempt is refused with 429, the retry a second later lands.
    chat.p.fake.rate_limit_next_posts(1);
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
    assert_eq!(rate_limited(&chat, "POST"), 1, "{}", chat.p.fake.dump());

    // A converge: edits of its progress message are refused and retried; the outcome is
    // still the last edit of the one message.
    chat.p.fake.rate_limit_next_edits(2);
    let started = std::time::Instant::now();
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
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited");
    assert_eq!(rate_limited(&chat, "PATCH"), 2, "{}", chat.p.fake.dump());
}
