//! Self-test of the fake Slack in `tests/support/fake_slack.rs`, driven by the real
//! slack-morphism client and Socket Mode listener (not by ferry's code): if these pass, a test
//! that points ferry's Slack transport at the fake exercises the same wire protocol that
//! slack-morphism speaks to slack.com. The tests also pin down the library's behaviour that the
//! transport must live with: when it acks, what a slow or failing callback does, how fast it
//! reconnects, and that it does not deduplicate redeliveries.

#![cfg(feature = "slack")]

#[allow(dead_code)]
mod support;

use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::fake_slack::{EnvelopeKind, FakeSlack};

/// Generous bound for anything that should happen at once.
const T: Duration = Duration::from_secs(5);
/// How long the callback sleeps for a message containing "slow".
const SLOW: Duration = Duration::from_millis(1200);

type Listener = SlackClientSocketModeListener<SlackClientHyperHttpsConnector>;

/// The client as ferry builds it for a local fake: `https_or_http`, HTTP/1.1, base URL.
fn client_for(fake: &FakeSlack) -> Arc<SlackHyperClient> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .expect("native roots")
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    let connector =
        SlackClientHyperConnector::with_connector(https).with_slack_api_url(&fake.api_url());
    Arc::new(SlackClient::new(connector))
}

fn bot_token(fake: &FakeSlack) -> SlackApiToken {
    SlackApiToken::new(fake.bot_token().into())
}

fn api_error_code<T: std::fmt::Debug>(r: ClientResult<T>) -> String {
    match r {
        Err(SlackClientError::ApiError(e)) => e.code,
        other => panic!("expected a Slack API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_api_round_trips_through_the_typed_client() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let token = bot_token(&fake);
    let session = client.open_session(&token);

    // auth.test: right token, wrong token, app token.
    let me = session.auth_test().await.expect("auth.test");
    assert_eq!(me.user_id.0, fake.bot_user_id());
    assert_eq!(me.team_id.0, fake.team_id());
    assert!(me.bot_id.is_some());
    let wrong = SlackApiToken::new("xoxb-wrong".into());
    assert_eq!(
        api_error_code(client.open_session(&wrong).auth_test().await),
        "invalid_auth"
    );
    let app = SlackApiToken::new(fake.app_token().into());
    assert_eq!(
        api_error_code(client.open_session(&app).auth_test().await),
        "not_allowed_token_type"
    );
    assert_eq!(
        api_error_code(
            client
                .open_session(&token)
                .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
                .await
        ),
        "not_allowed_token_type"
    );

    // users.info and conversations.info.
    fake.add_user("U1", "alice").await;
    let alice = session
        .users_info(&SlackApiUsersInfoRequest::new("U1".into()))
        .await
        .expect("users.info")
        .user;
    assert_eq!(alice.name.as_deref(), Some("alice"));
    assert_eq!(alice.real_name.as_deref(), Some("alice"));
    let profile = alice.profile.expect("profile");
    assert_eq!(profile.display_name.as_deref(), Some("alice"));
    assert_eq!(alice.flags.is_bot, Some(false));
    assert_eq!(
        api_error_code(
            session
                .users_info(&SlackApiUsersInfoRequest::new("U404".into()))
                .await
        ),
        "user_not_found"
    );

    fake.add_channel("C1", "deploys").await;
    fake.add_im("D1", "U1").await;
    let c1 = session
        .conversations_info(&SlackApiConversationsInfoRequest::new("C1".into()))
        .await
        .expect("conversations.info C1")
        .channel;
    assert_eq!(c1.name.as_deref(), Some("deploys"));
    assert_eq!(c1.flags.is_im, Some(false));
    assert_eq!(c1.flags.is_channel, Some(true));
    let d1 = session
        .conversations_info(&SlackApiConversationsInfoRequest::new("D1".into()))
        .await
        .expect("conversations.info D1")
        .channel;
    assert_eq!(d1.flags.is_im, Some(true));
    assert_eq!(
        api_error_code(
            session
                .conversations_info(&SlackApiConversationsInfoRequest::new("C404".into()))
                .await
        ),
        "channel_not_found"
    );

    // chat.postMessage with blocks, then chat.update.
    let blocks: Vec<SlackBlock> = vec![
        SlackSectionBlock::new()
            .with_text(SlackBlockText::MarkDown(SlackBlockMarkDownText::new(
                "*staging*: deploying".into(),
            )))
            .into(),
    ];
    let posted = session
        .chat_post_message(
            &SlackApiChatPostMessageRequest::new(
                "C1".into(),
                SlackMessageContent::new()
                    .with_text("staging: deploying".into())
                    .with_blocks(blocks.clone()),
            )
            .with_thread_ts("1700000001.000001".into()),
        )
        .await
        .expect("chat.postMessage");
    assert_eq!(posted.channel.0, "C1");
    assert_eq!(
        posted.message.sender.bot_id.as_ref().map(|b| b.0.as_str()),
        Some("B0FERRY")
    );
    assert_eq!(posted.message.content.blocks.as_ref(), Some(&blocks));
    let p = &fake.posts().await[0];
    assert_eq!(p.channel, "C1");
    assert_eq!(p.text.as_deref(), Some("staging: deploying"));
    assert_eq!(p.thread_ts.as_deref(), Some("1700000001.000001"));
    assert_eq!(p.ts, posted.ts.0);
    assert_eq!(p.blocks.as_ref().unwrap()[0]["type"], "section");

    let second = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C1".into(),
            SlackMessageContent::new().with_text("two".into()),
        ))
        .await
        .expect("second post");
    assert!(second.ts.0 > posted.ts.0, "fresh, increasing ts");
    assert_eq!(
        api_error_code(
            session
                .chat_post_message(&SlackApiChatPostMessageRequest::new(
                    "C1".into(),
                    SlackMessageContent::new(),
                ))
                .await
        ),
        "no_text"
    );

    let updated = session
        .chat_update(&SlackApiChatUpdateRequest::new(
            "C1".into(),
            SlackMessageContent::new().with_text("staging: done".into()),
            posted.ts.clone(),
        ))
        .await
        .expect("chat.update");
    assert_eq!(updated.ts, posted.ts);
    let u = &fake.updates().await[0];
    assert_eq!(
        (u.channel.as_str(), u.ts.as_str(), u.text.as_deref()),
        ("C1", posted.ts.0.as_str(), Some("staging: done"))
    );
    assert_eq!(
        api_error_code(
            session
                .chat_update(&SlackApiChatUpdateRequest::new(
                    "C1".into(),
                    SlackMessageContent::new().with_text("x".into()),
                    "1.2".into(),
                ))
                .await
        ),
        "message_not_found"
    );

    // Injected failures.
    fake.fail_next("chat.postMessage", "channel_not_found")
        .await;
    let req = SlackApiChatPostMessageRequest::new(
        "C1".into(),
        SlackMessageContent::new().with_text("x".into()),
    );
    assert_eq!(
        api_error_code(session.chat_post_message(&req).await),
        "channel_not_found"
    );
    fake.rate_limit_next("chat.postMessage", 7).await;
    match session.chat_post_message(&req).await {
        Err(SlackClientError::RateLimitError(e)) => {
            assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("expected a rate limit error, got {other:?}"),
    }
    session
        .chat_post_message(&req)
        .await
        .expect("failures are one-shot");

    // How slack-morphism sends each method.
    let calls = fake.calls().await;
    let first = |m: &str| calls.iter().find(|c| c.method == m).unwrap().clone();
    for m in ["auth.test", "users.info", "conversations.info"] {
        let c = first(m);
        assert_eq!(c.http_method, "GET", "{m}: {c:?}");
    }
    for m in ["chat.postMessage", "chat.update"] {
        let c = first(m);
        assert_eq!(c.http_method, "POST", "{m}");
        assert_eq!(
            c.content_type.as_deref(),
            Some("application/json; charset=utf-8"),
            "{m}"
        );
        assert_eq!(c.token.as_deref(), Some(fake.bot_token()), "{m}");
    }
    assert_eq!(first("users.info").params["user"], "U1");
}

// ---------------------------------------------------------------------------------------------
// Socket Mode
// ---------------------------------------------------------------------------------------------

/// One event as the push callback got it.
#[derive(Debug)]
struct SeenEvent {
    event_id: String,
    /// `app_mention`, `message/<channel_type>`, `message/<channel_type>/bot`, `unexpected: …`
    kind: String,
    text: String,
    thread_ts: Option<String>,
    /// Its `blocks` parsed, and the first is `SlackBlock::RichText`.
    rich_text: bool,
}

impl SeenEvent {
    fn new(event_id: &SlackEventId, kind: String, text: String) -> SeenEvent {
        SeenEvent {
            event_id: event_id.0.clone(),
            kind,
            text,
            thread_ts: None,
            rich_text: false,
        }
    }
}

/// What the listener's callbacks saw.
#[derive(Default)]
struct Seen {
    hellos: Mutex<Vec<String>>,
    events: Mutex<Vec<SeenEvent>>,
    commands: Mutex<Vec<SlackCommandEvent>>,
    errors: Mutex<Vec<String>>,
}

/// The listener's user state: callbacks are plain `fn`s, so this is how they reach the test.
struct BotState {
    token: SlackApiToken,
    seen: Arc<Seen>,
}

async fn bot_state(states: &SlackClientEventsUserState) -> (SlackApiToken, Arc<Seen>) {
    let guard = states.read().await;
    let st = guard.get_user_state::<BotState>().expect("BotState");
    (st.token.clone(), st.seen.clone())
}

/// Generic because slack-morphism 2.31 exports `SlackSocketModeHelloEvent` under no path
/// (`models` is private and `socket_mode` names the listener module at the root and in the
/// prelude); it is read through serde instead.
async fn on_hello<E: serde::Serialize>(
    ev: E,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) {
    let (_, seen) = bot_state(&states).await;
    let ev = serde_json::to_value(&ev).expect("hello serializes");
    let app_id = ev["connection_info"]["app_id"].as_str().unwrap_or("?");
    seen.hellos.lock().unwrap().push(app_id.to_string());
}

/// Replies in the event's thread; sleeps first on "slow", fails on "fail", ignores bot messages.
async fn on_push(
    ev: SlackPushEventCallback,
    client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let (token, seen) = bot_state(&states).await;
    let (kind, channel, ts, thread_ts, text, blocks) = match &ev.event {
        SlackEventCallbackBody::AppMention(m) => (
            "app_mention".to_string(),
            m.channel.clone(),
            m.origin.ts.clone(),
            m.origin.thread_ts.clone(),
            m.content.text.clone().unwrap_or_default(),
            m.content.blocks.clone(),
        ),
        SlackEventCallbackBody::Message(m) => {
            let content = m.content.clone().unwrap_or_else(SlackMessageContent::new);
            let channel_type = m
                .origin
                .channel_type
                .clone()
                .map(|t| t.0)
                .unwrap_or_default();
            if m.sender.bot_id.is_some() {
                let kind = format!("message/{channel_type}/bot");
                let text = content.text.unwrap_or_default();
                let seen_event = SeenEvent::new(&ev.event_id, kind, text);
                seen.events.lock().unwrap().push(seen_event);
                return Ok(());
            }
            (
                format!("message/{channel_type}"),
                m.origin.channel.clone().expect("channel"),
                m.origin.ts.clone(),
                m.origin.thread_ts.clone(),
                content.text.unwrap_or_default(),
                content.blocks,
            )
        }
        other => {
            let kind = format!("unexpected: {other:?}");
            let seen_event = SeenEvent::new(&ev.event_id, kind, String::new());
            seen.events.lock().unwrap().push(seen_event);
            return Ok(());
        }
    };
    seen.events.lock().unwrap().push(SeenEvent {
        thread_ts: thread_ts.as_ref().map(|t| t.0.clone()),
        rich_text: blocks.is_some_and(|b| matches!(b.first(), Some(SlackBlock::RichText(_)))),
        ..SeenEvent::new(&ev.event_id, kind, text.clone())
    });
    if text.contains("slow") {
        tokio::time::sleep(SLOW).await;
    }
    if text.contains("fail") {
        return Err("the callback failed on purpose".into());
    }
    let req = SlackApiChatPostMessageRequest::new(
        channel,
        SlackMessageContent::new().with_text(format!("re: {text}")),
    )
    .with_thread_ts(thread_ts.unwrap_or(ts));
    client.open_session(&token).chat_post_message(&req).await?;
    Ok(())
}

/// Answers in the ack (ferry never uses `response_url`, so the fake does not serve it).
async fn on_command(
    ev: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let (_, seen) = bot_state(&states).await;
    seen.commands.lock().unwrap().push(ev.clone());
    let text = ev.text.clone().unwrap_or_default();
    Ok(
        SlackCommandEventResponse::new(
            SlackMessageContent::new().with_text(format!("now: {text}")),
        )
        .with_response_type(SlackMessageResponseType::InChannel),
    )
}

/// Records the error and answers like slack-morphism's default handler (400: do not ack).
fn on_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> HttpStatusCode {
    if let Ok(guard) = states.try_read()
        && let Some(st) = guard.get_user_state::<BotState>()
    {
        st.seen.errors.lock().unwrap().push(err.to_string());
    }
    HttpStatusCode::BAD_REQUEST
}

async fn start_listener(fake: &FakeSlack) -> (Listener, Arc<Seen>) {
    // RUST_LOG=slack_morphism=trace shows the library's side of the conversation.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let seen = Arc::new(Seen::default());
    let env = Arc::new(
        SlackClientEventsListenerEnvironment::new(client_for(fake))
            .with_error_handler(on_error)
            .with_user_state(BotState {
                token: bot_token(fake),
                seen: seen.clone(),
            }),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_hello_events(on_hello)
        .with_push_events(on_push)
        .with_command_events(on_command);
    let config = SlackClientSocketModeConfig::new()
        .with_max_connections_count(1)
        .with_reconnect_timeout_in_seconds(1);
    let listener = SlackClientSocketModeListener::new(&config, env, callbacks);
    listener
        .listen_for(&SlackApiToken::new(fake.app_token().into()))
        .await
        .expect("listen_for");
    listener.start().await;
    (listener, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_events_reach_the_callbacks_and_are_acked() {
    let fake = FakeSlack::start().await;
    fake.add_user("U1", "alice").await;
    fake.add_channel("C1", "deploys").await;
    let (listener, seen) = start_listener(&fake).await;

    fake.wait_for_connections(1, T).await;
    let open = fake.calls_to("apps.connections.open").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].token.as_deref(), Some(fake.app_token()));
    assert_eq!(open[0].http_method, "POST");
    fake.wait_until(
        "the hello callback",
        |_| !seen.hellos.lock().unwrap().is_empty(),
        T,
    )
    .await;
    assert_eq!(seen.hellos.lock().unwrap()[0], fake.app_id());

    // A mention: the reply lands in its thread and the envelope is acked.
    let m1 = fake
        .mention("U1", "C1", "<@UBOT> env staging", "1700000001.000001")
        .await;
    let posts = fake.wait_for_posts(1, T).await;
    assert_eq!(posts[0].channel, "C1");
    assert_eq!(posts[0].thread_ts.as_deref(), Some("1700000001.000001"));
    assert_eq!(posts[0].text.as_deref(), Some("re: <@UBOT> env staging"));
    let ack = fake.wait_for_ack(&m1, T).await;
    assert_eq!(ack.payload, None, "events_api acks carry no payload");
    assert_eq!(
        ack.raw,
        format!(r#"{{"envelope_id":"{}"}}"#, m1.envelope_id)
    );
    {
        let events = seen.events.lock().unwrap();
        assert_eq!(events[0].event_id, m1.event_id.clone().unwrap());
        assert_eq!(events[0].kind, "app_mention");
        assert!(
            events[0].rich_text,
            "rich_text blocks parse into SlackBlock::RichText"
        );
    }

    // A mention inside a thread: the reply goes to the parent thread.
    fake.mention_in_thread(
        "U1",
        "C1",
        "<@UBOT> again",
        "1700000002.000001",
        "1700000001.000001",
    )
    .await;
    let posts = fake.wait_for_posts(2, T).await;
    assert_eq!(posts[1].thread_ts.as_deref(), Some("1700000001.000001"));
    assert_eq!(
        seen.events.lock().unwrap()[1].thread_ts.as_deref(),
        Some("1700000001.000001")
    );

    // A DM and a plain channel message.
    fake.dm("U1", "D1", "envs", "1700000003.000001").await;
    fake.channel_message("U1", "C1", "hello all", "1700000004.000001")
        .await;
    let posts = fake.wait_for_posts(4, T).await;
    assert_eq!(posts[2].channel, "D1");
    assert_eq!(posts[2].thread_ts.as_deref(), Some("1700000003.000001"));
    {
        let events = seen.events.lock().unwrap();
        assert_eq!(events[2].kind, "message/im");
        assert_eq!(events[3].kind, "message/channel");
    }

    // A slash command: the ack carries the callback's response.
    let s = fake.slash("U1", "C1", "env staging").await;
    let ack = fake.wait_for_ack(&s, T).await;
    let payload = ack.payload.expect("slash command acks carry a payload");
    assert_eq!(payload["text"], "now: env staging");
    assert_eq!(payload["response_type"], "in_channel");
    {
        let commands = seen.commands.lock().unwrap();
        assert_eq!(commands[0].command.0, "/ferry");
        assert_eq!(commands[0].user_id.0, "U1");
        assert_eq!(commands[0].channel_id.0, "C1");
        assert_eq!(commands[0].channel_name.as_deref(), Some("deploys"));
    }

    // A redelivery has the same event_id, and slack-morphism hands it over again.
    let again = fake.redeliver(&m1).await;
    assert_eq!(again.event_id, m1.event_id);
    assert_ne!(again.envelope_id, m1.envelope_id);
    fake.wait_for_ack(&again, T).await;
    let posts = fake.wait_for_posts(5, T).await;
    assert_eq!(posts[4].thread_ts.as_deref(), Some("1700000001.000001"));
    let env = fake.envelopes().await;
    let redelivered = env
        .iter()
        .find(|e| e.envelope_id == again.envelope_id)
        .unwrap();
    assert_eq!(redelivered.json["retry_attempt"], 1);
    assert_eq!(redelivered.json["retry_reason"], "timeout");
    assert_eq!(
        seen.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| Some(&e.event_id) == m1.event_id.as_ref())
            .count(),
        2,
        "the library does not deduplicate by event_id"
    );

    // Real Slack sends app_mention *and* message.channels for one mention.
    let (a, b) = fake
        .mention_both("U1", "C1", "<@UBOT> envs", "1700000005.000001")
        .await;
    assert_ne!(a.event_id, b.event_id);
    fake.wait_for_ack(&b, T).await;
    assert_eq!(fake.wait_for_posts(7, T).await.len(), 7);

    // With echo on, the bot's own posts come back as message events with bot_id.
    fake.echo_bot_messages(true).await;
    fake.dm("U1", "D1", "echo please", "1700000006.000001")
        .await;
    fake.wait_until(
        "the echoed bot message",
        |_| {
            seen.events
                .lock()
                .unwrap()
                .iter()
                .any(|e| e.kind == "message/im/bot" && e.text == "re: echo please")
        },
        T,
    )
    .await;
    fake.echo_bot_messages(false).await;

    // Every envelope was acked, and nothing but acks came up the socket.
    let rec = fake
        .wait_until(
            "an ack for every envelope",
            |r| {
                r.envelopes
                    .iter()
                    .all(|e| r.ack_for(&e.envelope_id).is_some())
            },
            T,
        )
        .await;
    assert!(rec.frames.is_empty(), "{:?}", rec.frames);
    assert!(
        seen.events
            .lock()
            .unwrap()
            .iter()
            .all(|e| !e.kind.starts_with("unexpected")),
        "every event parsed into its typed variant"
    );

    // shutdown() closes the socket with a close frame.
    listener.shutdown().await;
    let rec = fake
        .wait_until("the socket to close", |r| r.connections_open() == 0, T)
        .await;
    let reason = rec.connections[0].closed.clone().unwrap();
    assert!(reason.starts_with("client sent close frame"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_reconnects_after_refresh_drop_and_close() {
    let fake = FakeSlack::start().await;
    fake.add_channel("C1", "deploys").await;
    let (listener, seen) = start_listener(&fake).await;
    fake.wait_for_connections(1, T).await;

    // disconnect/refresh_requested: slack-morphism opens a new socket and closes the old one.
    // It closes it only if its writer task has entered its loop: a `disconnect` that arrives
    // within a few ms of `hello` leaves the old socket open (until the fake closes it after
    // the refresh grace), so let the connection settle first, as it would in real life.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    let old = fake.request_refresh().await;
    fake.wait_for_connections(2, T).await;
    eprintln!("reconnect after disconnect: {:?}", t0.elapsed());
    let rec = fake
        .wait_until(
            "the refreshed socket to close",
            |r| r.connections[0].closed.is_some(),
            T,
        )
        .await;
    assert_eq!(rec.connections[0].id, old);
    assert!(rec.connections[0].refresh_requested);
    let reason = rec.connections[0].closed.clone().unwrap();
    eprintln!("refreshed socket: {reason}");
    assert!(
        reason.starts_with("client sent close frame") || reason.starts_with("closed by the fake"),
        "{reason}"
    );
    let e = fake
        .mention("U1", "C1", "<@UBOT> after refresh", "1700000001.000001")
        .await;
    fake.wait_for_posts(1, T).await;
    assert_eq!(fake.wait_for_ack(&e, T).await.connection, 2);

    // A socket that just goes away (no close frame): reported as an error, then reconnected.
    let t0 = Instant::now();
    fake.drop_socket().await;
    fake.wait_for_connections(3, T).await;
    eprintln!("reconnect after dropped socket: {:?}", t0.elapsed());
    assert!(
        seen.errors
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains("WSS error")),
        "{:?}",
        seen.errors.lock().unwrap()
    );
    let e = fake
        .mention("U1", "C1", "<@UBOT> after drop", "1700000002.000001")
        .await;
    fake.wait_for_posts(2, T).await;
    assert_eq!(fake.wait_for_ack(&e, T).await.connection, 3);

    // A close frame from the server: reconnected as well.
    let t0 = Instant::now();
    fake.close_socket().await;
    fake.wait_for_connections(4, T).await;
    eprintln!("reconnect after server close frame: {:?}", t0.elapsed());
    let e = fake
        .mention("U1", "C1", "<@UBOT> after close", "1700000003.000001")
        .await;
    fake.wait_for_posts(3, T).await;
    assert_eq!(fake.wait_for_ack(&e, T).await.connection, 4);

    // A failing apps.connections.open delays the reconnect by reconnect_timeout_in_seconds.
    fake.fail_next("apps.connections.open", "internal_error")
        .await;
    let t0 = Instant::now();
    fake.drop_socket().await;
    fake.wait_for_connections(5, T).await;
    let took = t0.elapsed();
    eprintln!("reconnect after dropped socket + failed apps.connections.open: {took:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    let opens = fake.calls_to("apps.connections.open").await;
    assert_eq!(opens.len(), 6, "one per connection + the failed one");

    let rec = fake.snapshot().await;
    assert_eq!(rec.connections_open(), 1, "{}", rec.dump());
    listener.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_wait_for_the_callback() {
    let fake = FakeSlack::start().await;
    fake.add_channel("C1", "deploys").await;
    let (listener, seen) = start_listener(&fake).await;
    fake.wait_for_connections(1, T).await;

    // A slow callback delays its own ack, and the next envelope waits behind it.
    let slow = fake
        .mention("U1", "C1", "<@UBOT> slow", "1700000001.000001")
        .await;
    let quick = fake
        .mention("U1", "C1", "<@UBOT> quick", "1700000002.000001")
        .await;
    let slow_ack = fake.wait_for_ack(&slow, T).await;
    let quick_ack = fake.wait_for_ack(&quick, T).await;
    let rec = fake.snapshot().await;
    let pushed = |id: &str| {
        rec.envelopes
            .iter()
            .find(|e| e.envelope_id == id)
            .unwrap()
            .at_ms
    };
    let slow_delay = slow_ack.at_ms - pushed(&slow.envelope_id);
    let quick_delay = quick_ack.at_ms - pushed(&quick.envelope_id);
    eprintln!(
        "ack delay: slow callback {slow_delay} ms, quick one queued behind it {quick_delay} ms"
    );
    assert!(slow_delay as u128 >= SLOW.as_millis() - 50, "{slow_delay}");
    assert!(
        quick_delay as u128 >= SLOW.as_millis() - 100,
        "{quick_delay}"
    );
    // The ack follows the callback's reply post: ack after the callback returned.
    let slow_post = rec
        .posts
        .iter()
        .find(|p| p.text.as_deref() == Some("re: <@UBOT> slow"))
        .unwrap();
    assert!(slow_post.at_ms <= slow_ack.at_ms);
    assert!(quick_ack.at_ms >= slow_ack.at_ms);

    // A callback that returns Err with an error handler answering 400 (the default): no ack.
    let failing = fake
        .mention("U1", "C1", "<@UBOT> fail", "1700000003.000001")
        .await;
    let probe = fake
        .mention("U1", "C1", "<@UBOT> probe", "1700000004.000001")
        .await;
    fake.wait_for_ack(&probe, T).await;
    assert!(
        fake.ack_for(&failing).await.is_none(),
        "a failed callback is not acked"
    );
    let rec = fake.snapshot().await;
    let unacked: Vec<&str> = rec
        .unacked()
        .iter()
        .map(|e| e.envelope_id.as_str())
        .collect();
    assert_eq!(unacked, [failing.envelope_id.as_str()]);
    assert!(
        seen.errors
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains("failed on purpose"))
    );

    // An envelope slack-morphism cannot parse is still acked (and reported as an error).
    fake.send_raw(r#"{"envelope_id":"odd-1","type":"something_new","payload":{}}"#)
        .await;
    fake.wait_for(|r| r.ack_for("odd-1").is_some(), T).await;

    // A disconnect without debug_info does not parse: no reconnect, only an error.
    let before = seen.errors.lock().unwrap().len();
    fake.send_raw(r#"{"type":"disconnect","reason":"refresh_requested"}"#)
        .await;
    fake.wait_until(
        "the parse error",
        |_| seen.errors.lock().unwrap().len() > before,
        T,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.connections().await, 1, "no reconnect");
    assert!(
        fake.snapshot()
            .await
            .envelopes
            .iter()
            .all(|e| e.kind == EnvelopeKind::EventsApi)
    );
    listener.shutdown().await;
}
