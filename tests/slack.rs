//! The Slack transport end to end: ferry's slack-morphism client (Web API + Socket Mode)
//! against the protocol-faithful fake Slack: a mention goes in, the store changes and the reply
//! lands in the thread; a converge's progress edits one message in order; a redelivered event
//! (and the `message` twin of a mention) runs nothing twice, even after a restart; a dropped
//! socket reconnects and the next message works; a refused command is refused in chat and
//! audited with the Slack identity and channel; `/ferry` works; failures alert; a bad token is
//! a clear start-up error.

#![cfg(feature = "slack")]

#[path = "support/fake_slack.rs"]
mod fake_slack;
#[path = "chat/fixture.rs"]
mod fixture;

use fake_slack::FakeSlack;
use ferry::chat::Transport;
use ferry::chat::slack::SlackTransport;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const CHANNEL: &str = "C0DEPLOYS";
const ALICE: &str = "U0ALICE";
const CAROL: &str = "U0CAROL";

struct Running {
    fake: FakeSlack,
    app: Arc<ferry::app::App>,
    stop: tokio::sync::watch::Sender<bool>,
    dir: tempfile::TempDir,
}

fn config_table(fake: &FakeSlack, test: &str) -> String {
    let (app_var, bot_var) = (
        format!("FERRY_TEST_SLACK_APP_{test}"),
        format!("FERRY_TEST_SLACK_BOT_{test}"),
    );
    // SAFETY: each test sets its own variables, read only by the transport it starts.
    unsafe {
        std::env::set_var(&app_var, fake.app_token());
        std::env::set_var(&bot_var, fake.bot_token());
    }
    format!(
        "[slack]\napp_token_env = \"{app_var}\"\nbot_token_env = \"{bot_var}\"\napi_url = \"{}\"",
        fake.api_url()
    )
}

async fn run_transport(app: Arc<ferry::app::App>) -> tokio::sync::watch::Sender<bool> {
    run_transport_with(app, |t| t).await
}

async fn run_transport_with(
    app: Arc<ferry::app::App>,
    configure: impl FnOnce(SlackTransport) -> SlackTransport,
) -> tokio::sync::watch::Sender<bool> {
    let transport = configure(
        SlackTransport::connect(app.config.slack.as_ref().unwrap())
            .await
            .unwrap(),
    );
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move { transport.run(app, shutdown).await });
    stop
}

async fn start(test: &str) -> Running {
    start_with(test, |t| t).await
}

async fn start_with(
    test: &str,
    configure: impl FnOnce(SlackTransport) -> SlackTransport,
) -> Running {
    let fake = FakeSlack::start().await;
    fake.add_user(ALICE, "alice").await;
    fake.add_user(CAROL, "carol").await;
    fake.add_channel(CHANNEL, "deploys").await;
    let dir = tempfile::tempdir().unwrap();
    let table = config_table(&fake, test);
    fixture::write(
        dir.path(),
        &table,
        "slack:#alerts",
        &format!("\"slack:{ALICE}\" = [\"deployer\"]"),
        false,
    );
    let app = fixture::app(dir.path()).await;
    let stop = run_transport_with(app.clone(), configure).await;
    fake.wait_for_connections(1, WAIT).await;
    Running {
        fake,
        app,
        stop,
        dir,
    }
}

fn in_thread(posts: &[fake_slack::Posted], ts: &str) -> Vec<fake_slack::Posted> {
    posts
        .iter()
        .filter(|p| p.thread_ts.as_deref() == Some(ts))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_changes_the_store_and_the_reply_lands_in_its_thread() {
    let r = start("mention").await;
    let before = fixture::head(&r.app, "staging").await;
    let ts = r.fake.fresh_ts().await;
    let event = r
        .fake
        .mention(
            ALICE,
            CHANNEL,
            "<@UBOT> env staging.svc-01.version 2.0.0 -- from slack",
            &ts,
        )
        .await;
    r.fake
        .wait_for(|rec| !in_thread(&rec.posts, &ts).is_empty(), WAIT)
        .await;
    let reply = in_thread(&r.fake.posts().await, &ts).remove(0);
    assert_eq!(reply.channel, CHANNEL);
    let text = reply.text.unwrap_or_default();
    assert!(
        text.starts_with(&format!(
            "*staging@{}: svc-01.version 1.0.1 → 2.0.0*",
            before + 1
        )),
        "{text}"
    );
    assert_eq!(fixture::head(&r.app, "staging").await, before + 1);
    assert!(
        r.fake
            .acks()
            .await
            .iter()
            .any(|a| a.envelope_id == event.envelope_id),
        "the envelope is acked"
    );
    let audit = r
        .app
        .store
        .audit(&ferry::domain::AuditFilter {
            env: None,
            user: Some(format!("slack:{ALICE}")),
            limit: 1,
        })
        .await
        .unwrap();
    let entry = &audit[0].entry;
    assert_eq!(
        (entry.actor.display.as_str(), entry.channel.as_deref()),
        ("alice", Some("#deploys"))
    );
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_and_its_message_twin_and_redeliveries_run_once() {
    let r = start("dedupe").await;
    let before = fixture::head(&r.app, "staging").await;
    let ts = r.fake.fresh_ts().await;
    let (mention, _twin) = r
        .fake
        .mention_both(
            ALICE,
            CHANNEL,
            "<@UBOT> env staging.svc-02.version 3.0.0",
            &ts,
        )
        .await;
    r.fake
        .wait_for(|rec| !in_thread(&rec.posts, &ts).is_empty(), WAIT)
        .await;
    r.fake.redeliver(&mention).await;
    r.fake.redeliver(&mention).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(in_thread(&r.fake.posts().await, &ts).len(), 1);
    assert_eq!(fixture::head(&r.app, "staging").await, before + 1);
    // Across a restart too: a new ferry process on the same store.
    let _ = r.stop.send(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let app = fixture::app(r.dir.path()).await;
    let stop = run_transport(app.clone()).await;
    r.fake.wait_for_connections(2, WAIT).await;
    r.fake.redeliver(&mention).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(in_thread(&r.fake.posts().await, &ts).len(), 1);
    assert_eq!(fixture::head(&app, "staging").await, before + 1);
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converge_progress_edits_one_message_in_order() {
    let r = start("progress").await;
    let ts = r.fake.fresh_ts().await;
    r.fake
        .mention(ALICE, CHANNEL, "<@UBOT> converge staging", &ts)
        .await;
    let done = |rec: &fake_slack::Recorded| {
        rec.updates.iter().any(|u| {
            u.text
                .as_deref()
                .is_some_and(|t| t.contains("deployed (deploy #1)"))
        })
    };
    r.fake.wait_for(done, Duration::from_secs(30)).await;
    let posts = in_thread(&r.fake.posts().await, &ts);
    assert_eq!(posts.len(), 1, "one message, edited in place");
    assert!(
        posts[0]
            .text
            .as_deref()
            .unwrap_or_default()
            .contains("deploy #1: staging@1, 3 services")
    );
    let edits: Vec<String> = r
        .fake
        .updates()
        .await
        .into_iter()
        .filter(|u| u.ts == posts[0].ts)
        .filter_map(|u| u.text)
        .collect();
    assert!(edits.len() >= 2, "{edits:?}");
    let (outcome, progress) = edits.split_last().unwrap();
    assert!(
        outcome.starts_with("*staging@1 deployed (deploy #1)"),
        "{outcome}"
    );
    let mut lines = 0;
    for edit in progress {
        assert!(
            edit.lines().count() >= lines,
            "progress only grows: {edits:?}"
        );
        lines = edit.lines().count();
    }
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_reconnects_and_the_next_message_works() {
    let r = start("reconnect").await;
    r.fake.drop_socket().await;
    r.fake.wait_for_connections(2, WAIT).await;
    let ts = r.fake.fresh_ts().await;
    r.fake
        .mention(ALICE, CHANNEL, "<@UBOT> env staging.svc-00.version", &ts)
        .await;
    r.fake
        .wait_for(|rec| !in_thread(&rec.posts, &ts).is_empty(), WAIT)
        .await;
    r.fake.request_refresh().await;
    r.fake.wait_for_connections(3, WAIT).await;
    let ts2 = r.fake.fresh_ts().await;
    r.fake
        .dm(ALICE, "D0ALICE", "env staging.svc-00.version", &ts2)
        .await;
    r.fake
        .wait_for(|rec| !in_thread(&rec.posts, &ts2).is_empty(), WAIT)
        .await;
    let reply = in_thread(&r.fake.posts().await, &ts2).remove(0);
    assert!(
        reply
            .text
            .unwrap_or_default()
            .contains("svc-00.version = 1.0.0")
    );
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_is_refused_in_chat_and_audited() {
    let r = start("refused").await;
    let before = fixture::head(&r.app, "staging").await;
    let ts = r.fake.fresh_ts().await;
    r.fake
        .mention(
            CAROL,
            CHANNEL,
            "<@UBOT> env staging.svc-00.version 6.6.6",
            &ts,
        )
        .await;
    r.fake
        .wait_for(|rec| !in_thread(&rec.posts, &ts).is_empty(), WAIT)
        .await;
    let text = in_thread(&r.fake.posts().await, &ts)
        .remove(0)
        .text
        .unwrap_or_default();
    assert!(
        text.contains("not allowed")
            && text.contains("write:staging")
            && text.contains("Nothing changed."),
        "{text}"
    );
    assert_eq!(fixture::head(&r.app, "staging").await, before);
    let audit = r
        .app
        .store
        .audit(&ferry::domain::AuditFilter {
            env: None,
            user: Some(format!("slack:{CAROL}")),
            limit: 5,
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].entry.outcome, ferry::domain::Outcome::Refused);
    assert_eq!(audit[0].entry.actor.display, "carol");
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slash_command_answers_in_a_thread_and_a_failed_deploy_alerts() {
    let r = start("slash").await;
    r.fake
        .slash(ALICE, CHANNEL, "env staging.svc-01.version 2.0.0-broken")
        .await;
    let header = |rec: &fake_slack::Recorded| {
        rec.posts.iter().any(|p| {
            p.text
                .as_deref()
                .is_some_and(|t| t.contains("ran `/ferry env staging"))
        })
    };
    r.fake.wait_for(header, WAIT).await;
    let posts = r.fake.posts().await;
    let asked = posts
        .iter()
        .find(|p| p.text.as_deref().is_some_and(|t| t.contains("ran `/ferry")))
        .unwrap();
    assert!(
        asked
            .text
            .as_deref()
            .unwrap()
            .starts_with(&format!("<@{ALICE}>"))
    );
    let ts = asked.ts.clone();
    r.fake
        .wait_for(|rec| !in_thread(&rec.posts, &ts).is_empty(), WAIT)
        .await;
    assert!(
        in_thread(&r.fake.posts().await, &ts)[0]
            .text
            .as_deref()
            .unwrap_or_default()
            .contains("2.0.0-broken")
    );
    let ts = r.fake.fresh_ts().await;
    r.fake
        .mention(ALICE, CHANNEL, "<@UBOT> converge staging", &ts)
        .await;
    r.fake
        .wait_for(
            |rec| rec.posts.iter().any(|p| p.channel == "#alerts"),
            Duration::from_secs(30),
        )
        .await;
    let alert = r
        .fake
        .posts()
        .await
        .into_iter()
        .find(|p| p.channel == "#alerts")
        .unwrap();
    let text = alert.text.unwrap_or_default();
    assert!(
        text.contains("Deploy failure in staging")
            && text.contains("svc-01")
            && text.contains("#deploys"),
        "{text}"
    );
    let _ = r.stop.send(true);
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

/// Deploys recorded by the fixture's script.
fn deployed(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("deploy.log"))
        .map(|log| log.lines().count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_progress_edit_does_not_stall_the_converge_and_the_outcome_is_posted() {
    // A long call timeout: everything below must happen while the hung edits still hang.
    let r = start_with("hung", |t| t.with_call_timeout(Duration::from_secs(60))).await;
    r.fake.hang("chat.update").await;
    let ts = r.fake.fresh_ts().await;
    r.fake
        .mention(ALICE, CHANNEL, "<@UBOT> converge staging", &ts)
        .await;
    let outcome = |rec: &fake_slack::Recorded| {
        in_thread(&rec.posts, &ts).iter().any(|p| {
            p.text
                .as_deref()
                .is_some_and(|t| t.starts_with("*staging@1 deployed (deploy #1)"))
        })
    };
    let rec = r.fake.wait_for(outcome, Duration::from_secs(40)).await;
    assert_eq!(deployed(r.dir.path()), 3, "every service was deployed");
    assert!(
        rec.calls
            .iter()
            .any(|c| c.method == "chat.update" && c.error.as_deref() == Some("hung")),
        "the progress edit hung: {}",
        rec.dump()
    );
    let posts = in_thread(&rec.posts, &ts);
    assert!(
        posts[0]
            .text
            .as_deref()
            .unwrap_or_default()
            .contains("deploy #1: staging@1, 3 services"),
        "the progress message came first: {posts:?}"
    );
    // The command returned: its audit entry is written.
    let audit = r
        .app
        .store
        .audit(&ferry::domain::AuditFilter {
            env: None,
            user: Some(format!("slack:{ALICE}")),
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(audit[0].entry.text, "converge staging");
    let _ = r.stop.send(true);
}

/// Everything a user can put into a message that Slack would turn into a ping or a link.
const PAYLOAD: &str = "@everyone <!channel> <@U123> [x](https://evil) <https://evil|click>";
const ESCAPED: &str =
    "@everyone &lt;!channel&gt; &lt;@U123&gt; [x](https://evil) &lt;https://evil|click&gt;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_users_typed_is_escaped_in_every_reply() {
    let r = start("escape").await;
    let mut replies = Vec::new();
    for command in [
        format!("env staging.svc-00.note \"{PAYLOAD}\" -- {PAYLOAD}"),
        "env staging".to_string(),
        "history staging".to_string(),
        "diff staging".to_string(),
        "audit --limit 5".to_string(),
    ] {
        let ts = r.fake.fresh_ts().await;
        r.fake
            .mention(ALICE, CHANNEL, &format!("<@UBOT> {command}"), &ts)
            .await;
        let rec = r
            .fake
            .wait_for(|rec| !in_thread(&rec.posts, &ts).is_empty(), WAIT)
            .await;
        replies.push((command, in_thread(&rec.posts, &ts).remove(0)));
    }
    for (command, reply) in &replies {
        let text = reply.text.as_deref().unwrap_or_default();
        assert!(text.contains(ESCAPED), "{command}: {text}");
        for raw in ["<!channel>", "<@U123>", "<https://evil"] {
            assert!(!text.contains(raw), "{command}: {raw} unescaped in {text}");
        }
        assert_eq!(reply.body["parse"], "none", "{command}");
        assert_eq!(reply.body["link_names"], false, "{command}");
    }
    let set = replies[0].1.text.as_deref().unwrap_or_default();
    assert!(
        set.starts_with(&format!(
            "*staging@2: svc-00.note (none) → {ESCAPED}*\nReason: {ESCAPED}"
        )),
        "{set}"
    );
    let table = replies[1].1.text.as_deref().unwrap_or_default();
    assert!(
        table.contains(&format!("  note     {ESCAPED}\n")),
        "a table cell: {table}"
    );
    let _ = r.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_reply_is_cut_to_five_messages_and_says_how_to_narrow_it() {
    let r = start("huge").await;
    let actor = ferry::domain::Actor::new("slack", CAROL, "carol");
    let origin = ferry::domain::Origin {
        platform: "slack".into(),
        channel: Some("#deploys".into()),
        channel_ids: vec![CHANNEL.into()],
    };
    let long = "x".repeat(900);
    for i in 0..150 {
        r.app
            .handle(&actor, &origin, &format!("env staging.svc-00.k{i} {long}"))
            .await;
    }
    let ts = r.fake.fresh_ts().await;
    r.fake
        .mention(ALICE, CHANNEL, "<@UBOT> audit --limit 1000", &ts)
        .await;
    r.fake
        .wait_for(|rec| !in_thread(&rec.posts, &ts).is_empty(), WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let posts = in_thread(&r.fake.posts().await, &ts);
    assert_eq!(posts.len(), 5, "{posts:#?}");
    let last = posts[4].text.as_deref().unwrap_or_default();
    assert!(last.starts_with("(5/5) "), "{last}");
    let note = last.lines().last().unwrap_or_default();
    assert!(
        note.starts_with("… ")
            && note.ends_with(
                " more lines not shown; narrow it with `audit --limit 20`, `audit &lt;env&gt;` or `audit --user &lt;user&gt;`"
            ),
        "{note}"
    );
    let hidden: usize = note[4..].split(' ').next().unwrap().parse().unwrap();
    assert!(hidden > 100, "{note}");
    for post in &posts {
        let text = post.text.as_deref().unwrap_or_default();
        assert!(text.len() <= 3600, "{}", text.len());
        assert_eq!(text.matches("```").count() % 2, 0, "balanced: {text}");
    }
    let _ = r.stop.send(true);
}

async fn last_audit(app: &ferry::app::App, user: &str) -> ferry::domain::NewAuditEntry {
    let filter = ferry::domain::AuditFilter {
        env: None,
        user: Some(format!("slack:{user}")),
        limit: 1,
    };
    app.store.audit(&filter).await.unwrap().remove(0).entry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_name_lookup_holds_up_only_its_user_and_names_expire() {
    let r = start_with("names", |t| {
        t.with_call_timeout(Duration::from_secs(8))
            .with_name_ttl(Duration::from_millis(700))
    })
    .await;
    r.fake.hang_when("users.info", "user", CAROL).await;
    let carol_ts = r.fake.fresh_ts().await;
    r.fake
        .mention(
            CAROL,
            CHANNEL,
            "<@UBOT> env staging.svc-00.version",
            &carol_ts,
        )
        .await;
    r.fake
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
    let alice_ts = r.fake.fresh_ts().await;
    r.fake
        .mention(
            ALICE,
            CHANNEL,
            "<@UBOT> env staging.svc-01.version",
            &alice_ts,
        )
        .await;
    let rec = r
        .fake
        .wait_for(
            |rec| !in_thread(&rec.posts, &alice_ts).is_empty(),
            Duration::from_secs(6),
        )
        .await;
    assert!(
        in_thread(&rec.posts, &carol_ts).is_empty(),
        "Carol waits for her own lookup only"
    );
    // Carol's lookup times out: the command runs under her id, and the failure is not cached.
    r.fake.unhang().await;
    r.fake
        .wait_for(
            |rec| !in_thread(&rec.posts, &carol_ts).is_empty(),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(last_audit(&r.app, CAROL).await.actor.display, CAROL);
    let ts = r.fake.fresh_ts().await;
    r.fake
        .mention(CAROL, CHANNEL, "<@UBOT> env staging.svc-02.version", &ts)
        .await;
    r.fake
        .wait_for(|rec| !in_thread(&rec.posts, &ts).is_empty(), WAIT)
        .await;
    assert_eq!(last_audit(&r.app, CAROL).await.actor.display, "carol");
    // A renamed channel is seen once its cached name expired.
    r.fake.add_channel(CHANNEL, "releases").await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let ts = r.fake.fresh_ts().await;
    r.fake
        .mention(ALICE, CHANNEL, "<@UBOT> env staging.svc-00.version", &ts)
        .await;
    r.fake
        .wait_for(|rec| !in_thread(&rec.posts, &ts).is_empty(), WAIT)
        .await;
    assert_eq!(
        last_audit(&r.app, ALICE).await.channel.as_deref(),
        Some("#releases")
    );
    let _ = r.stop.send(true);
}
