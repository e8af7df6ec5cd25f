//! Proves the fake Discord (`tests/support/fake_discord.rs`) against the real serenity 0.12.5
//! client, not against ferry: if serenity runs unchanged on it (handshake, dispatches, replies,
//! interactions, commands, edits, resume, a bad token), a transport test that fails on it points
//! at ferry, not at the fake.

#![cfg(feature = "discord")]

#[path = "support/fake_discord.rs"]
mod fake_discord;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_discord::{Config, FakeDiscord, FollowupKind, intents};
use serde_json::json;
use serenity::all::{
    ChannelId, ClientBuilder, Command, CommandOptionType, Context, CreateCommand,
    CreateCommandOption, CreateInteractionResponse, CreateInteractionResponseMessage,
    CreateMessage, EditMessage, EventHandler, GatewayError, GatewayIntents, HttpBuilder, HttpError,
    Interaction, InteractionId, Message, MessageId, Ready, ResumedEvent,
};
use serenity::http::Http;
use serenity::{Client, async_trait};

const WAIT: Duration = Duration::from_secs(5);
const GUILD: u64 = 700_000_000_000_000_001;
const CHANNEL: u64 = 700_000_000_000_000_002;
const DM_CHANNEL: u64 = 700_000_000_000_000_003;
const ALICE: u64 = 700_000_000_000_000_010;

/// What the handler saw, one line per event.
type Log = Arc<Mutex<Vec<String>>>;

fn lines(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

fn saw(log: &Log, prefix: &str) -> bool {
    lines(log).iter().any(|l| l.starts_with(prefix))
}

/// A plain serenity bot: registers `/ferry` on READY, replies to every human message, answers
/// every command interaction.
struct Handler {
    log: Log,
}

impl Handler {
    fn note(&self, line: String) {
        self.log.lock().unwrap().push(line);
    }
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        self.note(format!("ready {} {}", ready.user.id, ready.session_id));
        let command = CreateCommand::new("ferry")
            .description("Run a ferry command")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "command", "what to run")
                    .required(true),
            );
        match Command::create_global_command(&ctx.http, command).await {
            Ok(c) => self.note(format!("registered {} {}", c.name, c.id)),
            Err(e) => self.note(format!("register failed {e:?}")),
        }
    }

    async fn resume(&self, _ctx: Context, _event: ResumedEvent) {
        self.note("resumed".to_string());
    }

    async fn message(&self, ctx: Context, msg: Message) {
        if msg.author.bot {
            self.note(format!("own {}", msg.content));
            return;
        }
        let mentioned = msg.mentions.iter().any(|u| u.bot);
        self.note(format!(
            "message {} guild={:?} mentioned={mentioned} {:?}",
            msg.id,
            msg.guild_id.map(|g| g.get()),
            msg.content
        ));
        if let Err(e) = msg.reply(&ctx.http, format!("ack: {}", msg.content)).await {
            self.note(format!("reply failed {e:?}"));
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let Interaction::Command(cmd) = interaction else {
            return;
        };
        let text = cmd
            .data
            .options
            .first()
            .and_then(|o| o.value.as_str())
            .unwrap_or_default()
            .to_string();
        self.note(format!(
            "interaction {} /{} {text:?} by {}",
            cmd.id, cmd.data.name, cmd.user.id
        ));
        let reply = CreateInteractionResponseMessage::new().content(format!("ran {text}"));
        if let Err(e) = cmd
            .create_response(&ctx.http, CreateInteractionResponse::Message(reply))
            .await
        {
            self.note(format!("interaction response failed {e:?}"));
        }
    }
}

fn http_for(fake: &FakeDiscord, token: &str) -> Http {
    HttpBuilder::new(token)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build()
}

async fn client_for(fake: &FakeDiscord, token: &str, intents: GatewayIntents, log: &Log) -> Client {
    ClientBuilder::new_with_http(http_for(fake, token), intents)
        .event_handler(Handler { log: log.clone() })
        .await
        .expect("build the serenity client")
}

/// `(HTTP status, Discord error code)` of a REST result; `(200, 0)` for success.
fn status<T>(r: serenity::Result<T>) -> (u16, isize) {
    match r {
        Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(e))) => {
            (e.status_code.as_u16(), e.error.code)
        }
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => (200, 0),
    }
}

fn standard_intents() -> GatewayIntents {
    GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_runs_unchanged_against_the_fake() {
    let fake = FakeDiscord::start().await;
    let log = Log::default();
    let mut client = client_for(&fake, &fake.token(), standard_intents(), &log).await;
    let http = client.http.clone();
    let shards = client.shard_manager.clone();
    let run = tokio::spawn(async move { client.start().await });

    // Handshake: one connection to /gw?v=10, IDENTIFY with the token and the intents, READY.
    fake.wait_ready(WAIT).await;
    let identify = &fake.identifies()[0];
    assert_eq!(identify.token, format!("Bot {}", fake.token()));
    let want = intents::GUILD_MESSAGES | intents::DIRECT_MESSAGES | intents::MESSAGE_CONTENT;
    assert_eq!(identify.intents, want);
    assert_eq!(identify.shard, Some((0, 1)));
    assert_eq!(identify.rejected_with, None);
    let conn = &fake.connections()[0];
    assert_eq!(
        (conn.path.as_str(), conn.query.as_deref()),
        ("/gw", Some("v=10"))
    );
    fake.wait_for(|_| saw(&log, "registered ferry"), WAIT).await;
    assert!(saw(&log, &format!("ready {}", fake.bot_user_id())));
    assert_eq!(
        http.application_id().map(|a| a.get()),
        Some(fake.application_id())
    );
    let commands = fake.commands();
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0]["name"], "ferry");
    assert_eq!(commands[0]["options"][0]["type"], 3);

    // A guild message that mentions the bot: the handler replies with a reference to it, and
    // sees its own reply come back over the gateway.
    let text = format!("{} env staging", fake.bot_mention());
    let m1 = fake.message(ALICE, "alice", CHANNEL, Some(GUILD), &text, true);
    fake.wait_for(|d| d.posted().len() == 1, WAIT).await;
    let reply = &fake.posted()[0];
    assert_eq!(reply.channel_id, CHANNEL);
    assert_eq!(reply.reference_message_id, Some(m1));
    assert_eq!(reply.content, format!("ack: {text}"));
    assert!(saw(
        &log,
        &format!("message {m1} guild=Some({GUILD}) mentioned=true")
    ));
    fake.wait_for(|_| saw(&log, &format!("own ack: {text}")), WAIT)
        .await;

    // A slash command: the handler's response lands on the callback.
    let i1 = fake.interaction(ALICE, "alice", CHANNEL, Some(GUILD), "env staging");
    fake.wait_for(|d| d.interaction_responses().len() == 1, WAIT)
        .await;
    let response = &fake.interaction_responses()[0];
    assert_eq!(response.interaction_id, i1);
    assert_eq!(response.kind, 4);
    assert_eq!(response.content.as_deref(), Some("ran env staging"));
    assert!(saw(
        &log,
        &format!("interaction {i1} /ferry \"env staging\" by {ALICE}")
    ));

    // Editing the bot's message through the REST API.
    let edited = ChannelId::new(CHANNEL)
        .edit_message(
            &http,
            MessageId::new(reply.id),
            EditMessage::new().content("done"),
        )
        .await
        .expect("edit the reply");
    assert_eq!(edited.content, "done");
    assert!(edited.edited_timestamp.is_some());
    let edits = fake.edits();
    assert_eq!(edits.len(), 1);
    assert_eq!(
        (edits[0].message_id, edits[0].content.as_deref()),
        (reply.id, Some("done"))
    );

    // Heartbeats are answered (the fake's interval is 1 s).
    fake.wait_for(|d| d.heartbeats() >= 1, WAIT).await;

    // The connection drops; a message sent meanwhile is replayed on RESUME.
    let session = fake.session_id().expect("a session");
    fake.drop_gateway();
    let m2 = fake.message(ALICE, "alice", DM_CHANNEL, None, "env prod", false);
    fake.wait_for(|d| d.resumes().len() == 1 && d.is_connected(), WAIT)
        .await;
    let resume = &fake.resumes()[0];
    assert!(resume.accepted, "{resume:?}");
    assert_eq!(resume.session_id, session);
    assert_eq!(fake.identifies().len(), 1, "resumed, not re-identified");
    // Unless the client was back before `message` ran, m2 was missed and is replayed.
    let missed = fake
        .dispatches()
        .iter()
        .any(|d| d.fate.starts_with("kept for replay") && d.summary.contains(&m2.to_string()));
    assert_eq!(resume.replayed, usize::from(missed));
    fake.wait_for(|_| saw(&log, "resumed"), WAIT).await;
    fake.wait_for(
        |d| {
            d.posted()
                .iter()
                .any(|p| p.reference_message_id == Some(m2))
        },
        WAIT,
    )
    .await;
    assert!(saw(
        &log,
        &format!("message {m2} guild=None mentioned=false \"env prod\"")
    ));

    // And the next message after the resume works too.
    let m3 = fake.message(
        ALICE,
        "alice",
        CHANNEL,
        Some(GUILD),
        "<@1> unrelated",
        false,
    );
    fake.wait_for(
        |d| {
            d.posted()
                .iter()
                .any(|p| p.reference_message_id == Some(m3))
        },
        WAIT,
    )
    .await;

    // A duplicate delivery reaches the handler again (ferry must dedupe, not the fake).
    fake.redeliver_message(m3);
    fake.wait_for(
        |d| {
            d.posted()
                .iter()
                .filter(|p| p.reference_message_id == Some(m3))
                .count()
                == 2
        },
        WAIT,
    )
    .await;

    shards.shutdown_all().await;
    let ended = tokio::time::timeout(WAIT, run).await.expect("client stops");
    assert!(ended.expect("client task").is_ok());
    let failures: Vec<String> = lines(&log)
        .into_iter()
        .filter(|l| l.contains("failed"))
        .collect();
    assert!(failures.is_empty(), "{failures:?}\n{}", fake.dump());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_of_losing_the_gateway_is_survived() {
    let fake = FakeDiscord::start().await;
    let log = Log::default();
    let mut client = client_for(&fake, &fake.token(), standard_intents(), &log).await;
    let shards = client.shard_manager.clone();
    let run = tokio::spawn(async move { client.start().await });
    fake.wait_ready(WAIT).await;
    let replied = |fake: &FakeDiscord, m: u64| {
        fake.posted()
            .iter()
            .any(|p| p.reference_message_id == Some(m))
    };

    // A close frame with a resumable code, then op 7 RECONNECT: both RESUME.
    fake.close_gateway(4000, "Unknown error.");
    fake.wait_for(|d| d.resumes().len() == 1 && d.is_connected(), WAIT)
        .await;
    fake.request_reconnect();
    fake.wait_for(|d| d.resumes().len() == 2 && d.is_connected(), WAIT)
        .await;
    assert!(fake.resumes().iter().all(|r| r.accepted));
    let m1 = fake.message(ALICE, "alice", CHANNEL, Some(GUILD), "env", false);
    fake.wait_for(|d| replied(d, m1), WAIT).await;

    // op 9 INVALID_SESSION (not resumable): serenity restarts the shard and IDENTIFYs afresh,
    // which takes about 5 s (its shard manager times out waiting for the old runner).
    let started = std::time::Instant::now();
    fake.invalidate_session(false);
    fake.wait_for(
        |d| d.identifies().len() == 2 && d.is_connected(),
        Duration::from_secs(15),
    )
    .await;
    println!("re-identified after {:?}", started.elapsed());
    assert_eq!(fake.readies(), 2);
    let m2 = fake.message(ALICE, "alice", CHANNEL, Some(GUILD), "env", false);
    fake.wait_for(|d| replied(d, m2), WAIT).await;

    shards.shutdown_all().await;
    let _ = tokio::time::timeout(WAIT, run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_fails_the_gateway_and_rest() {
    let fake = FakeDiscord::start().await;
    let log = Log::default();
    // Building the client succeeds: GET /gateway needs no token.
    let mut client = client_for(&fake, "not-the-token", standard_intents(), &log).await;
    let http = client.http.clone();
    let result = tokio::time::timeout(WAIT, client.start())
        .await
        .expect("start() returns instead of retrying");
    match result {
        Err(serenity::Error::Gateway(GatewayError::InvalidAuthentication)) => {}
        other => panic!(
            "expected InvalidAuthentication, got {other:?}\n{}",
            fake.dump()
        ),
    }
    let identifies = fake.identifies();
    assert_eq!(identifies.len(), 1);
    assert_eq!(identifies[0].rejected_with, Some(4004));
    assert!(lines(&log).is_empty(), "no handler ran: {:?}", lines(&log));

    match http.get_current_user().await {
        Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(r))) => {
            assert_eq!(r.status_code.as_u16(), 401);
            assert_eq!(r.error.message, "401: Unauthorized");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intents_decide_what_the_bot_sees() {
    let fake = FakeDiscord::start().await;
    let log = Log::default();
    // No MESSAGE_CONTENT and no DIRECT_MESSAGES.
    let mut client = client_for(&fake, &fake.token(), GatewayIntents::GUILD_MESSAGES, &log).await;
    let shards = client.shard_manager.clone();
    let run = tokio::spawn(async move { client.start().await });
    fake.wait_ready(WAIT).await;

    let plain = fake.message(ALICE, "alice", CHANNEL, Some(GUILD), "env staging", false);
    let text = format!("{} env staging", fake.bot_mention());
    let mentioned = fake.message(ALICE, "alice", CHANNEL, Some(GUILD), &text, false);
    let dm = fake.message(ALICE, "alice", DM_CHANNEL, None, "env prod", false);
    fake.wait_for(|d| d.posted().len() == 2, WAIT).await;
    assert!(saw(
        &log,
        &format!("message {plain} guild=Some({GUILD}) mentioned=false \"\"")
    ));
    assert!(saw(
        &log,
        &format!("message {mentioned} guild=Some({GUILD}) mentioned=true {text:?}")
    ));
    assert!(!saw(&log, &format!("message {dm}")));
    assert!(
        fake.dispatches()
            .iter()
            .any(|d| d.fate.contains("no DIRECT_MESSAGES"))
    );

    shards.shutdown_all().await;
    let _ = tokio::time::timeout(WAIT, run).await;

    // An application without the privileged intent enabled cannot ask for it.
    let fake = FakeDiscord::start_with(Config {
        privileged_intents_allowed: false,
        ..Config::default()
    })
    .await;
    let mut client = client_for(&fake, &fake.token(), standard_intents(), &log).await;
    match tokio::time::timeout(WAIT, client.start()).await {
        Ok(Err(serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents))) => {}
        other => panic!("expected DisallowedGatewayIntents, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_rules_are_discords() {
    let fake = FakeDiscord::start_with(Config {
        interaction_deadline: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let http = HttpBuilder::new(fake.token())
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .application_id(fake.application_id().into())
        .build();
    // Posting needs a known channel; a user's message makes it known.
    let channel = ChannelId::new(CHANNEL);
    assert_eq!(status(channel.say(&http, "hi").await), (404, 10003));
    let m = fake.message(ALICE, "alice", CHANNEL, Some(GUILD), "hello", false);
    assert_eq!(status(channel.say(&http, "hi").await), (200, 0));
    let long = json!({"content": "x".repeat(2001)});
    assert_eq!(
        status(http.send_message(channel, vec![], &long).await),
        (400, 50035)
    );
    assert_eq!(
        status(http.send_message(channel, vec![], &json!({})).await),
        (400, 50006)
    );
    let unknown = CreateMessage::new()
        .content("re")
        .reference_message((channel, MessageId::new(42)));
    assert_eq!(
        status(channel.send_message(&http, unknown).await),
        (400, 50035)
    );
    let other = EditMessage::new().content("mine now");
    assert_eq!(
        status(channel.edit_message(&http, m, other).await),
        (403, 50005)
    );
    let missing = EditMessage::new().content("x");
    assert_eq!(
        status(
            channel
                .edit_message(&http, MessageId::new(42), missing)
                .await
        ),
        (404, 10008)
    );

    // Interactions: deferred response, then the original edited and a follow-up; one callback
    // only; follow-ups not before the callback; the callback deadline.
    let i = fake.interaction(ALICE, "alice", CHANNEL, Some(GUILD), "deploy prod");
    let token = fake.interaction_token(i);
    let followup = json!({"content": "step 1"});
    assert_eq!(
        status(
            http.create_followup_message(&token, &followup, vec![])
                .await
        ),
        (404, 10015)
    );
    let defer = json!({"type": 5});
    let id = InteractionId::new(i);
    assert_eq!(
        status(
            http.create_interaction_response(id, &token, &defer, vec![])
                .await
        ),
        (200, 0)
    );
    assert_eq!(
        status(
            http.create_interaction_response(id, &token, &defer, vec![])
                .await
        ),
        (400, 40060)
    );
    let done = json!({"content": "deployed"});
    let original = http
        .edit_original_interaction_response(&token, &done, vec![])
        .await
        .expect("edit @original");
    assert_eq!(original.content, "deployed");
    http.create_followup_message(&token, &followup, vec![])
        .await
        .expect("follow-up");
    let followups = fake.followups();
    assert_eq!(followups[0].kind, FollowupKind::EditOriginal);
    assert_eq!(followups[0].content.as_deref(), Some("deployed"));
    assert_eq!(followups[1].kind, FollowupKind::Create);
    assert_eq!(fake.interaction_responses()[0].kind, 5);

    let late = fake.interaction(ALICE, "alice", CHANNEL, Some(GUILD), "env");
    let late_token = fake.interaction_token(late);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let answer = json!({"type": 4, "data": {"content": "too late"}});
    let late_id = InteractionId::new(late);
    assert_eq!(
        status(
            http.create_interaction_response(late_id, &late_token, &answer, vec![])
                .await
        ),
        (404, 10062)
    );

    // Command names follow Discord's rules.
    let bad = CreateCommand::new("Ferry").description("uppercase is not allowed");
    assert_eq!(
        status(Command::create_global_command(&http, bad).await),
        (400, 50035)
    );

    // Without the right token, 401.
    let wrong = http_for(&fake, "nope");
    assert_eq!(status(wrong.get_channel(channel).await), (401, 0));
    assert_eq!(status(http.get_channel(channel).await), (200, 0));
}
