//! ferry in chat, each scenario written once as the conversation people see and run against
//! both the fake Slack and the fake Discord with the real clients (`slack::<scenario>` and
//! `discord::<scenario>`): a command changes the store and the answer lands in its thread; a
//! converge edits one progress message in order; redeliveries run nothing twice, even after a
//! restart; a dropped connection comes back; refusals are refused in chat and audited; `/ferry`
//! works and a failed deploy alerts; a hung edit stalls nothing; what users typed is escaped;
//! long answers are split, huge ones capped; approvals go through buttons in the bound channel.
//! Platform-only details are in `tests/slack.rs` and `tests/discord.rs`.

#![cfg(all(feature = "slack", feature = "discord"))]

#[path = "support/fake_discord.rs"]
mod fake_discord;
#[path = "support/fake_slack.rs"]
mod fake_slack;
#[path = "chat/fixture.rs"]
mod fixture;
#[path = "chat/on_discord.rs"]
mod on_discord;
#[path = "chat/on_slack.rs"]
mod on_slack;
#[path = "chat/transcript.rs"]
mod transcript;

use std::time::Duration;
use transcript::{CONVERGE, Chat, PAYLOAD, Platform, Setup};

transcripts!(
    a_command_changes_the_store_and_the_answer_lands_in_its_thread,
    a_redelivered_message_runs_nothing_twice_even_after_a_restart,
    converge_progress_edits_one_message_in_order_and_ends_with_the_outcome,
    a_dropped_connection_comes_back_and_the_next_message_works,
    a_refused_command_is_refused_in_chat_and_audited,
    the_slash_command_answers_and_a_failed_deploy_alerts,
    a_hung_progress_edit_does_not_stall_the_converge_and_the_outcome_is_posted,
    what_users_typed_is_escaped_in_every_reply,
    what_people_typed_is_stored_exactly,
    long_output_is_split_under_the_limit_and_nothing_is_cut,
    a_huge_reply_is_cut_to_five_messages_and_says_how_to_narrow_it,
    a_protected_converge_waits_for_a_button_click_in_the_bound_channel,
);

/// Waits a while so that anything ferry would still do shows up.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

async fn a_command_changes_the_store_and_the_answer_lands_in_its_thread<P: Platform>() {
    let chat = Chat::<P>::start("mention", Setup::default()).await;
    let before = chat.head("staging").await;
    let asked = chat
        .say(
            "alice",
            "#deploys",
            "env staging.svc-01.version 2.0.0 -- from chat",
        )
        .await;
    let reply = chat.reply(&asked).await;
    assert_eq!(reply.channel, P::channel_ref("#deploys"));
    let expected = P::bold(&format!(
        "staging@{}: svc-01.version 1.0.1 → 2.0.0",
        before + 1
    ));
    assert!(reply.text.starts_with(&expected), "{}", reply.text);
    assert_eq!(chat.head("staging").await, before + 1);
    let entry = chat.audit_of("alice", 1).await.remove(0);
    assert_eq!(
        (entry.actor.display.as_str(), entry.channel.as_deref()),
        ("alice", Some("#deploys"))
    );
}

async fn a_redelivered_message_runs_nothing_twice_even_after_a_restart<P: Platform>() {
    let mut chat = Chat::<P>::start("dedupe", Setup::default()).await;
    let before = chat.head("staging").await;
    let asked = chat
        .say("alice", "#deploys", "env staging.svc-02.version 3.0.0")
        .await;
    chat.reply(&asked).await;
    chat.p.redeliver(&asked).await;
    chat.p.redeliver(&asked).await;
    settle().await;
    assert_eq!(chat.replies(&asked).await.len(), 1);
    assert_eq!(chat.head("staging").await, before + 1);
    // Across a restart too: a new ferry process on the same store.
    chat.restart().await;
    chat.p.redeliver(&asked).await;
    settle().await;
    assert_eq!(chat.replies(&asked).await.len(), 1);
    assert_eq!(chat.head("staging").await, before + 1);
}

async fn converge_progress_edits_one_message_in_order_and_ends_with_the_outcome<P: Platform>() {
    let chat = Chat::<P>::start("progress", Setup::default()).await;
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
    assert!(
        replies[0].text.contains("deploy #1: staging@1, 3 services"),
        "{}",
        replies[0].text
    );
    let edits = log.edits_of(&replies[0].id);
    assert!(
        edits.len() >= 2,
        "progress edits then the outcome: {edits:?}"
    );
    let (outcome, steps) = edits.split_last().unwrap();
    assert!(
        outcome.starts_with(&P::bold_start("staging@1 deployed (deploy #1)")),
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
}

async fn a_dropped_connection_comes_back_and_the_next_message_works<P: Platform>() {
    let chat = Chat::<P>::start("reconnect", Setup::default()).await;
    chat.p.drop_connection().await;
    let asked = chat
        .say("alice", "#deploys", "env staging.svc-00.version")
        .await;
    let reply = chat.reply(&asked).await;
    assert!(
        reply.text.contains("svc-00.version = 1.0.0"),
        "{}",
        reply.text
    );
}

async fn a_refused_command_is_refused_in_chat_and_audited<P: Platform>() {
    let chat = Chat::<P>::start("refused", Setup::default()).await;
    let before = chat.head("staging").await;
    let asked = chat
        .say("carol", "#deploys", "env staging.svc-00.version 6.6.6")
        .await;
    let text = chat.reply(&asked).await.text;
    assert!(
        text.contains("not allowed")
            && text.contains("write:staging")
            && text.contains("Nothing changed."),
        "{text}"
    );
    assert_eq!(chat.head("staging").await, before);
    let audit = chat.audit_of("carol", 5).await;
    assert_eq!(audit.len(), 1);
    let entry = &audit[0];
    assert_eq!(
        entry.actor.identity(),
        format!("{}:{}", P::NAME, P::user_id("carol"))
    );
    assert_eq!(entry.actor.display, "carol");
    assert_eq!(entry.outcome, ferry::domain::Outcome::Refused);
    assert_eq!(entry.platform, P::NAME);
}

async fn the_slash_command_answers_and_a_failed_deploy_alerts<P: Platform>() {
    let chat = Chat::<P>::start("slash", Setup::default()).await;
    let asked = chat
        .slash(
            "alice",
            "#deploys",
            "env staging.svc-01.version 2.0.0-broken",
        )
        .await;
    let answer = chat.reply(&asked).await;
    assert!(answer.text.contains("2.0.0-broken"), "{}", answer.text);
    chat.say("alice", "#deploys", "converge staging").await;
    let alert = chat
        .posted_in("#alerts", "Deploy failure", CONVERGE)
        .await
        .text;
    assert!(
        alert.contains("Deploy failure in staging")
            && alert.contains("svc-01")
            && alert.contains("#deploys"),
        "{alert}"
    );
}

async fn a_hung_progress_edit_does_not_stall_the_converge_and_the_outcome_is_posted<P: Platform>() {
    // A long call timeout: everything below must happen while the hung edits still hang.
    let setup = Setup {
        call_timeout: Some(Duration::from_secs(60)),
        ..Setup::default()
    };
    let chat = Chat::<P>::start("hung", setup).await;
    chat.p.hang_edits().await;
    let asked = chat.say("alice", "#deploys", "converge staging").await;
    let outcome = P::bold_start("staging@1 deployed (deploy #1)");
    let log = chat
        .wait("the outcome posted", Duration::from_secs(40), |log| {
            log.replies(&asked)
                .iter()
                .any(|s| s.text.starts_with(&outcome))
        })
        .await;
    assert_eq!(chat.deployed(), 3, "every service was deployed");
    assert!(chat.p.an_edit_hung().await, "{}", chat.p.dump().await);
    let replies = log.replies(&asked);
    assert!(
        replies[0].text.contains("deploy #1: staging@1, 3 services"),
        "the progress message came first: {replies:?}"
    );
    // The command returned: its audit entry is written.
    assert_eq!(chat.audit_of("alice", 1).await[0].text, "converge staging");
}

async fn what_people_typed_is_stored_exactly<P: Platform>() {
    let chat = Chat::<P>::start("typed", Setup::default()).await;
    let chat = &chat;
    let stored = |key: &'static str| async move {
        let key = format!("config.{key}");
        chat.value("staging", "ms-users", &key).await
    };
    // The first creates the service.
    for (key, typed, want) in [
        (
            "URL",
            "https://x.io/a?b=1&c=2 --new",
            "https://x.io/a?b=1&c=2",
        ),
        ("GREETING", "“hello world”", "hello world"),
        ("EXPR", "a<b>&c", "a<b>&c"),
    ] {
        let asked = chat
            .say(
                "alice",
                "#deploys",
                &format!("env staging.ms-users.config.{key} {typed}"),
            )
            .await;
        let reply = chat.reply(&asked).await;
        assert_eq!(stored(key).await.as_deref(), Some(want), "{}", reply.text);
        assert!(
            !reply.text.contains("a<b>&c"),
            "echoed unescaped: {}",
            reply.text
        );
    }
    let asked = chat
        .say("alice", "#deploys", "env staging.ms-users.config.URL")
        .await;
    let shown = chat.reply(&asked).await.text;
    assert!(shown.contains("https://x.io/a?b=1"), "{shown}");
    assert!(!shown.contains("<https://"), "{shown}");
}

async fn what_users_typed_is_escaped_in_every_reply<P: Platform>() {
    let chat = Chat::<P>::start("escape", Setup::default()).await;
    let mut replies = Vec::new();
    for command in [
        format!("env staging.svc-00.note \"{PAYLOAD}\" -- {PAYLOAD}"),
        "env staging".to_string(),
        "history staging".to_string(),
        "diff staging".to_string(),
        "audit --limit 5".to_string(),
    ] {
        let asked = chat.say("alice", "#deploys", &command).await;
        replies.push((command, chat.reply(&asked).await));
    }
    let set = &replies[0].1.text;
    let (prose, code) = (P::PROSE, P::CODE);
    assert!(
        set.starts_with(&format!(
            "{}\nReason: {prose}",
            P::bold(&format!("staging@2: svc-00.note (none) → {prose}"))
        )),
        "{set}"
    );
    for (command, reply) in &replies[1..] {
        assert!(reply.text.contains(code), "{command}: {}", reply.text);
    }
    let table = &replies[1].1.text;
    assert!(
        table.contains(&format!("  note     {code}\n")),
        "a table cell: {table}"
    );
    for (command, reply) in &replies {
        for raw in P::UNESCAPED {
            assert!(
                !reply.text.contains(raw),
                "{command}: {raw} unescaped in {}",
                reply.text
            );
        }
        assert!(
            P::mentions_nothing(&reply.body),
            "{command}: {}",
            reply.body
        );
    }
}

async fn long_output_is_split_under_the_limit_and_nothing_is_cut<P: Platform>() {
    let setup = Setup {
        many: true,
        ..Setup::default()
    };
    let chat = Chat::<P>::start("long", setup).await;
    let asked = chat.say("alice", "#deploys", "env staging").await;
    chat.wait("two replies", transcript::WAIT, |log| {
        log.replies(&asked).len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replies = chat.replies(&asked).await;
    for reply in &replies {
        assert!(P::fits(&reply.text), "{}", reply.text.len());
    }
    let all: String = replies
        .iter()
        .map(|p| p.text.clone())
        .collect::<Vec<_>>()
        .join("\n");
    for i in 0..80 {
        assert!(all.contains(&format!("svc-{i:02}")), "svc-{i:02} missing");
        assert!(
            all.contains(&format!("1.0.{i}")),
            "version of svc-{i:02} missing"
        );
    }
}

async fn a_huge_reply_is_cut_to_five_messages_and_says_how_to_narrow_it<P: Platform>() {
    let chat = Chat::<P>::start("huge", Setup::default()).await;
    let long = "x".repeat(900);
    for i in 0..150 {
        chat.handle_directly("carol", &format!("env staging.svc-00.k{i} {long}"))
            .await;
    }
    let asked = chat.say("alice", "#deploys", "audit --limit 1000").await;
    chat.reply(&asked).await;
    settle().await;
    let replies = chat.replies(&asked).await;
    assert_eq!(replies.len(), 5, "{replies:#?}");
    let last = &replies[4].text;
    assert!(last.starts_with("(5/5) "), "{last}");
    let note = last.lines().last().unwrap_or_default();
    let hint = format!(
        " more lines not shown; narrow it with `audit --limit 20`, `{}` or `{}`",
        P::code("audit <env>"),
        P::code("audit --user <user>")
    );
    assert!(note.starts_with("… ") && note.ends_with(&hint), "{note}");
    let hidden: usize = note["… ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(hidden > 100, "{note}");
    for reply in &replies {
        assert!(P::fits(&reply.text), "{}", reply.text.len());
        assert_eq!(
            reply.text.matches("```").count() % 2,
            0,
            "balanced: {}",
            reply.text
        );
    }
}

async fn a_protected_converge_waits_for_a_button_click_in_the_bound_channel<P: Platform>() {
    let setup = Setup {
        roles: vec![("bob", "releaser"), ("dana", "releaser")],
        production: Some(P::binding("#deploys")),
        ..Setup::default()
    };
    let chat = Chat::<P>::start("buttons", setup).await;

    // Outside the bound channel: refused, with where to go instead.
    let asked = chat.say("bob", "#random", "converge production").await;
    let refusal = chat.reply(&asked).await.text;
    assert!(
        refusal.contains(&format!("accepted only in {}", P::binding("#deploys")))
            && refusal.contains(&format!("{}:#random", P::NAME)),
        "{refusal}"
    );

    // In the bound channel: a request with buttons.
    let asked = chat.say("bob", "#deploys", "converge production").await;
    let request = chat.reply(&asked).await;
    assert!(
        request.text.contains("needs 1 approval"),
        "{}",
        request.text
    );
    assert_eq!(request.buttons[0].label, "Approve");
    assert_eq!(request.buttons[0].value, "approve 1");
    assert_eq!(request.buttons[1].value, "deny 1");
    assert_eq!(chat.deployed(), 0, "nothing deployed before approval");

    // Dana clicks Approve.
    chat.p.click("dana", &request, "approve 1").await;
    chat.wait("the approval", CONVERGE, |log| {
        log.replies(&asked)
            .iter()
            .any(|s| s.text.contains("approved by dana"))
            || log.any_edit_contains("approved by dana")
    })
    .await;
    assert_eq!(chat.deployed(), 3, "the approval ran the converge");
}
