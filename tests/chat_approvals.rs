//! Approvals and channel bindings as people meet them in chat, through the protocol-faithful
//! fakes with the real clients: a converge of a protected environment posts a request with
//! Approve / Deny buttons; another approver's click runs the converge and the reply lands in
//! the thread; the same command typed outside the bound channel is refused there.

#![cfg(all(feature = "slack", feature = "discord"))]

#[path = "support/fake_discord.rs"]
mod fake_discord;
#[path = "support/fake_slack.rs"]
mod fake_slack;
#[path = "chat/fixture.rs"]
mod fixture;

use ferry::chat::Transport;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn deployed(dir: &std::path::Path, env_marker: &str) -> usize {
    let _ = env_marker;
    std::fs::read_to_string(dir.join("deploy.log"))
        .map(|l| l.lines().count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_button_approval_and_channel_refusal() {
    let fake = fake_slack::FakeSlack::start().await;
    for (id, name) in [("U0BOB", "bob"), ("U0DANA", "dana")] {
        fake.add_user(id, name).await;
    }
    fake.add_channel("C0DEPLOYS", "deploys").await;
    fake.add_channel("C0RANDOM", "random").await;
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: this test's own variables.
    unsafe {
        std::env::set_var("FERRY_TEST_SLACK_APP_buttons", fake.app_token());
        std::env::set_var("FERRY_TEST_SLACK_BOT_buttons", fake.bot_token());
    }
    let table = format!(
        "[slack]\napp_token_env = \"FERRY_TEST_SLACK_APP_buttons\"\nbot_token_env = \"FERRY_TEST_SLACK_BOT_buttons\"\napi_url = \"{}\"",
        fake.api_url()
    );
    fixture::write(
        dir.path(),
        &table,
        "slack:#alerts",
        "\"slack:U0BOB\" = [\"releaser\"]\n\"slack:U0DANA\" = [\"releaser\"]",
        false,
    );
    fixture::add_protected_production(dir.path(), "slack:#deploys");
    let app = fixture::app(dir.path()).await;
    let transport = ferry::chat::slack::SlackTransport::connect(app.config.slack.as_ref().unwrap())
        .await
        .unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move { transport.run(app, shutdown).await });
    fake.wait_for_connections(1, WAIT).await;

    // Outside the bound channel: refused, with where to go instead.
    let ts = fake.fresh_ts().await;
    fake.mention("U0BOB", "C0RANDOM", "<@UBOT> converge production", &ts)
        .await;
    let rec = fake
        .wait_for(
            |r| {
                r.posts
                    .iter()
                    .any(|p| p.thread_ts.as_deref() == Some(ts.as_str()))
            },
            WAIT,
        )
        .await;
    let refusal = rec
        .posts
        .iter()
        .find(|p| p.thread_ts.as_deref() == Some(ts.as_str()))
        .unwrap();
    let text = refusal.text.clone().unwrap_or_default();
    assert!(
        text.contains("accepted only in slack:#deploys") && text.contains("slack:#random"),
        "{text}"
    );

    // In the bound channel: a request with buttons.
    let ts = fake.fresh_ts().await;
    fake.mention("U0BOB", "C0DEPLOYS", "<@UBOT> converge production", &ts)
        .await;
    let rec = fake
        .wait_for(
            |r| {
                r.posts
                    .iter()
                    .any(|p| p.thread_ts.as_deref() == Some(ts.as_str()) && p.blocks.is_some())
            },
            WAIT,
        )
        .await;
    let request = rec
        .posts
        .iter()
        .find(|p| p.thread_ts.as_deref() == Some(ts.as_str()) && p.blocks.is_some())
        .unwrap()
        .clone();
    let blocks = request.blocks.clone().unwrap();
    let buttons = &blocks[1]["elements"];
    assert_eq!(buttons[0]["text"]["text"], "Approve");
    assert_eq!(buttons[0]["value"], "approve 1");
    assert_eq!(buttons[1]["value"], "deny 1");
    assert_eq!(
        deployed(dir.path(), "production"),
        0,
        "nothing deployed before approval"
    );

    // Dana clicks Approve: a block_actions interactive envelope, as Slack sends it.
    let envelope = json!({
        "envelope_id": "env-click-1",
        "type": "interactive",
        "accepts_response_payload": false,
        "payload": {
            "type": "block_actions",
            "team": { "id": "T0FERRY", "domain": "ferry" },
            "user": { "id": "U0DANA", "username": "dana", "name": "dana", "team_id": "T0FERRY" },
            "api_app_id": "A0FERRY",
            "token": "verification",
            "container": { "type": "message", "message_ts": request.ts, "channel_id": "C0DEPLOYS", "is_ephemeral": false },
            "trigger_id": "trigger-click-1",
            "channel": { "id": "C0DEPLOYS", "name": "deploys" },
            "message": { "type": "message", "ts": request.ts, "thread_ts": ts, "text": request.text, "user": "UBOT", "bot_id": "B0FERRY" },
            "response_url": format!("{}/response/click-1", fake.api_url()),
            "actions": [{
                "type": "button", "action_id": "ferry-0", "block_id": "b1",
                "text": { "type": "plain_text", "text": "Approve" },
                "value": "approve 1", "action_ts": "1700000001.000001"
            }]
        }
    });
    fake.send_raw(&envelope.to_string()).await;
    let rec = fake
        .wait_for(
            |r| {
                r.posts.iter().any(|p| {
                    p.thread_ts.as_deref() == Some(ts.as_str())
                        && p.text
                            .as_deref()
                            .is_some_and(|t| t.contains("approved by dana"))
                }) || r.updates.iter().any(|u| {
                    u.text
                        .as_deref()
                        .is_some_and(|t| t.contains("approved by dana"))
                })
            },
            Duration::from_secs(30),
        )
        .await;
    assert!(
        rec.acks.iter().any(|a| a.envelope_id == "env-click-1"),
        "the click is acked"
    );
    assert_eq!(
        deployed(dir.path(), "production"),
        3,
        "the approval ran the converge"
    );
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_button_approval_and_channel_refusal() {
    const GUILD: u64 = 900_000_000_000_000_001;
    const DEPLOYS: u64 = 900_000_000_000_000_002;
    const RANDOM: u64 = 900_000_000_000_000_003;
    const BOB: u64 = 900_000_000_000_000_010;
    const DANA: u64 = 900_000_000_000_000_011;
    let fake = fake_discord::FakeDiscord::start().await;
    fake.add_channel(DEPLOYS, Some(GUILD));
    fake.add_channel(RANDOM, Some(GUILD));
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: this test's own variable.
    unsafe { std::env::set_var("FERRY_TEST_DISCORD_TOKEN_buttons", fake.token()) };
    let table = format!(
        "[discord]\ntoken_env = \"FERRY_TEST_DISCORD_TOKEN_buttons\"\napi_url = \"{}\"",
        fake.base_url()
    );
    let users = format!("\"discord:{BOB}\" = [\"releaser\"]\n\"discord:{DANA}\" = [\"releaser\"]");
    fixture::write(dir.path(), &table, "discord:1", &users, false);
    fixture::add_protected_production(dir.path(), &format!("discord:{DEPLOYS}"));
    let app = fixture::app(dir.path()).await;
    let transport =
        ferry::chat::discord::DiscordTransport::from_config(app.config.discord.as_ref().unwrap())
            .unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move { transport.run(app, shutdown).await });
    fake.wait_ready(WAIT).await;

    let asked = fake.message(
        BOB,
        "bob",
        RANDOM,
        Some(GUILD),
        "!converge production",
        false,
    );
    fake.wait_for(
        |f| {
            f.posted()
                .iter()
                .any(|p| p.reference_message_id == Some(asked))
        },
        WAIT,
    )
    .await;
    let refusal = fake
        .posted()
        .into_iter()
        .find(|p| p.reference_message_id == Some(asked))
        .unwrap();
    assert!(
        refusal
            .content
            .contains(&format!("accepted only in discord:{DEPLOYS}")),
        "{}",
        refusal.content
    );

    let asked = fake.message(
        BOB,
        "bob",
        DEPLOYS,
        Some(GUILD),
        "!converge production",
        false,
    );
    fake.wait_for(
        |f| {
            f.posted()
                .iter()
                .any(|p| p.reference_message_id == Some(asked))
        },
        WAIT,
    )
    .await;
    let request = fake
        .posted()
        .into_iter()
        .find(|p| p.reference_message_id == Some(asked))
        .unwrap();
    assert!(
        request.content.contains("needs 1 approval"),
        "{}",
        request.content
    );
    let row = &request.body["components"][0]["components"];
    assert_eq!(row[0]["label"], "Approve");
    assert_eq!(row[0]["custom_id"], "ferry:approve 1");
    assert_eq!(row[1]["custom_id"], "ferry:deny 1");
    assert_eq!(deployed(dir.path(), "production"), 0);

    // Dana clicks Approve: an INTERACTION_CREATE of type 3 (message component).
    fake.component_interaction(
        DANA,
        "dana",
        DEPLOYS,
        Some(GUILD),
        request.id,
        "ferry:approve 1",
    );
    fake.wait_for(
        |f| {
            f.posted().iter().any(|p| {
                p.reference_message_id == Some(request.id) && p.content.contains("approved by dana")
            }) || f.edits().iter().any(|e| {
                e.content
                    .as_deref()
                    .is_some_and(|c| c.contains("approved by dana"))
            })
        },
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        deployed(dir.path(), "production"),
        3,
        "the approval ran the converge"
    );
    let _ = stop.send(true);
}
