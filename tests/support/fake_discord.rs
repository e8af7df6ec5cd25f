//! A protocol-faithful fake of Discord for the tests of the Discord transport: one axum server on
//! 127.0.0.1 that speaks the REST API (`/api/v10/...`) and the gateway (a WebSocket at `/gw`)
//! the way Discord does, closely enough that serenity 0.12.5 runs against it unchanged.
//!
//! Point serenity at it with
//! `HttpBuilder::new(fake.token()).proxy(fake.base_url()).ratelimiter_disabled(true).build()`
//! and `ClientBuilder::new_with_http(http, intents)`; `GET /api/v10/gateway` then hands out
//! `ws://127.0.0.1:PORT/gw`.
//!
//! It speaks only the part of the protocol ferry's transport (`src/chat/discord.rs`) uses:
//! `GET /gateway`, `GET /users/@me`, `GET /channels/{id}` of a server channel, messages
//! created and edited in a channel, the interaction callback (deferred, or an immediate message
//! for the self-test's plain bot), the original response and follow-ups edited or created
//! through the interaction's webhook, and `/ferry` registered as a global command; on the
//! gateway HELLO, IDENTIFY, heartbeats, RESUME, RECONNECT and INVALID_SESSION. JSON bodies
//! only: ferry uploads no files.
//!
//! What it keeps faithful, because a transport can get each of these wrong:
//! - the gateway handshake: HELLO, IDENTIFY (token, intents, privileged intents, shard), READY
//!   with sequence numbers, heartbeat ACKs, RESUME with replay of what was missed and RESUMED,
//!   INVALID_SESSION for a bad resume, and Discord's close codes (4004 for a bad token, ...);
//! - intents: MESSAGE_CREATE only reaches a bot with GUILD_MESSAGES (guild) or DIRECT_MESSAGES
//!   (DM), and without MESSAGE_CONTENT a guild message that does not mention the bot arrives with
//!   empty content, as on Discord;
//! - the bot sees its own messages: what it posts comes back as MESSAGE_CREATE (and edits as
//!   MESSAGE_UPDATE), so a bot that does not ignore itself loops here as it would in production;
//! - REST rules: `Authorization: Bot <token>` (401 otherwise), 2000-character content, no empty
//!   messages, replies only to messages that exist, edits only of the bot's own messages, the
//!   3-second deadline and single use of an interaction callback, follow-ups only after it,
//!   command name and description rules; errors carry Discord's JSON codes.
//!
//! Everything the bot did is recorded for the test (`posted`, `edits`, `interaction_responses`,
//! `followups`, `commands`, `identifies`, `resumes`, `requests`, ...), and `wait_for` panics
//! with a dump of the whole exchange when its condition does not come true in time.
//!
//! It needs only axum, tokio and serde_json, not serenity, so it builds with every feature set.

// Each test binary uses only part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Gateway intent bits (Discord's values; serenity's `GatewayIntents` has the same bits).
pub mod intents {
    pub const GUILDS: u64 = 1 << 0;
    pub const GUILD_MEMBERS: u64 = 1 << 1;
    pub const GUILD_PRESENCES: u64 = 1 << 8;
    pub const GUILD_MESSAGES: u64 = 1 << 9;
    pub const DIRECT_MESSAGES: u64 = 1 << 12;
    pub const MESSAGE_CONTENT: u64 = 1 << 15;
    /// The intents a bot must be granted in the developer portal.
    pub const PRIVILEGED: u64 = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT;
}

/// Discord's epoch for snowflakes, in Unix milliseconds.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
/// The largest `content` Discord accepts, in characters.
const MAX_CONTENT: usize = 2000;
/// The "bot is thinking" flag of a deferred interaction response's placeholder.
const FLAG_LOADING: u64 = 1 << 7;

/// How the fake is set up; `Config::default()` is what `FakeDiscord::start` uses.
#[derive(Clone, Debug)]
pub struct Config {
    /// The bot token the fake accepts (without the `Bot ` prefix).
    pub token: String,
    pub bot_user_id: u64,
    pub bot_name: String,
    /// Deliberately not the bot user's id, so that mixing the two up shows.
    pub application_id: u64,
    /// Sent in HELLO. Discord uses ~41 s; short here so heartbeats happen within a test.
    pub heartbeat_interval: Duration,
    /// How long after INTERACTION_CREATE the callback is accepted (Discord: 3 s).
    pub interaction_deadline: Duration,
    /// Whether the application may use privileged intents (else IDENTIFY with one closes 4014).
    pub privileged_intents_allowed: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token: "ZmVycnktdGVzdA.fake-discord.t0ken".to_string(),
            bot_user_id: 1_200_000_000_000_000_001,
            bot_name: "ferry".to_string(),
            application_id: 1_200_000_000_000_000_002,
            heartbeat_interval: Duration::from_millis(1000),
            interaction_deadline: Duration::from_secs(3),
            privileged_intents_allowed: true,
        }
    }
}

/// A message the bot created with `POST /channels/{id}/messages`.
#[derive(Clone, Debug)]
pub struct Posted {
    pub channel_id: u64,
    /// The id the fake gave it.
    pub id: u64,
    pub content: String,
    /// `message_reference.message_id`: the message this one replies to.
    pub reference_message_id: Option<u64>,
    /// The JSON body as sent.
    pub body: Value,
}

/// An accepted `PATCH /channels/{id}/messages/{id}`.
#[derive(Clone, Debug)]
pub struct Edit {
    pub channel_id: u64,
    pub message_id: u64,
    /// `content` if the body set it.
    pub content: Option<String>,
    pub body: Value,
}

/// An accepted `POST /interactions/{id}/{token}/callback`.
#[derive(Clone, Debug)]
pub struct InteractionResponse {
    pub interaction_id: u64,
    /// 4 message, 5 deferred message, 6 a button click acknowledged without a message.
    pub kind: u64,
    pub content: Option<String>,
}

/// What a request to the interaction webhook did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowupKind {
    /// `POST /webhooks/{app}/{token}`: a new follow-up message.
    Create,
    /// `PATCH /webhooks/{app}/{token}/messages/@original`.
    EditOriginal,
    /// `PATCH /webhooks/{app}/{token}/messages/{id}`.
    Edit(u64),
}

/// An accepted request to an interaction's webhook.
#[derive(Clone, Debug)]
pub struct Followup {
    pub interaction_id: u64,
    pub kind: FollowupKind,
    /// The message created or changed.
    pub message_id: u64,
    pub content: Option<String>,
    pub body: Value,
}

/// An IDENTIFY the fake received, accepted or not.
#[derive(Clone, Debug)]
pub struct Identify {
    /// As sent; serenity sends `Bot <token>`.
    pub token: String,
    pub intents: u64,
    pub shard: Option<(u64, u64)>,
    /// `None` if accepted, else the close code the fake answered with.
    pub rejected_with: Option<u16>,
}

/// A RESUME the fake received.
#[derive(Clone, Debug)]
pub struct Resume {
    pub session_id: String,
    pub seq: u64,
    pub accepted: bool,
    /// How many missed dispatches were replayed before RESUMED.
    pub replayed: usize,
}

/// One WebSocket connection to the gateway.
#[derive(Clone, Debug)]
pub struct Connection {
    pub id: u64,
    /// `/gw`.
    pub path: String,
    /// The query string, e.g. `v=10`.
    pub query: Option<String>,
    /// How it ended, if it did.
    pub ended: Option<String>,
}

/// One REST request and the fake's answer.
#[derive(Clone, Debug)]
pub struct RequestLog {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The error body for a 4xx.
    pub error: Option<Value>,
}

/// One gateway dispatch the fake produced (or held back).
#[derive(Clone, Debug)]
pub struct DispatchLog {
    pub seq: Option<u64>,
    pub t: String,
    /// Delivered, queued for replay, waiting for READY, or suppressed (and why).
    pub fate: String,
    pub summary: String,
}

/// A handle on a running fake; clones share it. The server stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeDiscord {
    shared: Shared,
    addr: SocketAddr,
    _server: Arc<ServerGuard>,
}

type Shared = Arc<Mutex<Fake>>;

struct ServerGuard(tokio::task::JoinHandle<()>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the fake sends on a connection, in order.
enum Out {
    Text(String),
    /// A close frame with this code and reason, then the end of the connection.
    Close(u16, String),
    /// Drop the TCP connection without a close frame.
    Abort,
}

struct Live {
    id: u64,
    tx: mpsc::UnboundedSender<Out>,
    /// Identified or resumed: dispatches go to it.
    attached: bool,
}

struct Session {
    id: String,
    intents: u64,
    seq: u64,
    /// Every dispatch of the session, as sent, for replay on RESUME.
    log: Vec<(u64, String)>,
}

/// When a dispatch may be sent and how much of it the intents let through.
#[derive(Clone, Copy)]
enum Gate {
    Always,
    Message {
        guild: bool,
        mentions_bot: bool,
        own: bool,
    },
}

struct Pending {
    t: String,
    d: Value,
    gate: Gate,
}

struct StoredMessage {
    channel_id: u64,
    guild_id: Option<u64>,
    author_id: u64,
    mentions_bot: bool,
    /// The message as the REST API returns it (no `guild_id`, no `member`).
    json: Value,
}

struct InteractionState {
    id: u64,
    token: String,
    channel_id: u64,
    guild_id: Option<u64>,
    user_id: u64,
    user_name: String,
    created: Instant,
    acked: Option<u64>,
    original: Option<u64>,
    /// A button click (type 3), which may also be acknowledged with type 6.
    component: bool,
}

/// A global application command.
struct Command {
    id: u64,
    json: Value,
}

struct Fake {
    cfg: Config,
    port: u16,
    last_snowflake: u64,
    counter: u64,
    next_conn: u64,
    live: Option<Live>,
    session: Option<Session>,
    pending: Vec<Pending>,
    connections: Vec<Connection>,
    identifies: Vec<Identify>,
    resumes: Vec<Resume>,
    heartbeats: usize,
    readies: usize,
    users: HashMap<u64, String>,
    /// Known channels and their server (`None` for a DM).
    channels: HashMap<u64, Option<u64>>,
    /// Names given with `add_named_channel`; others are `channel-<id>`.
    channel_names: HashMap<u64, String>,
    /// Message edits (PATCH of a channel message or an interaction's message) never answer.
    hang_edits: bool,
    /// This many of the next `POST /channels/{c}/messages` never answer.
    hang_posts: usize,
    /// This many of the next message creates are answered 429 Too Many Requests.
    rate_limit_posts: usize,
    /// This many of the next message edits are answered 429 Too Many Requests.
    rate_limit_edits: usize,
    messages: HashMap<u64, StoredMessage>,
    interactions: HashMap<u64, InteractionState>,
    commands: Vec<Command>,
    posted: Vec<Posted>,
    edits: Vec<Edit>,
    interaction_responses: Vec<InteractionResponse>,
    followups: Vec<Followup>,
    requests: Vec<RequestLog>,
    dispatches: Vec<DispatchLog>,
}

impl FakeDiscord {
    /// Starts a fake with `Config::default()`.
    pub async fn start() -> FakeDiscord {
        FakeDiscord::start_with(Config::default()).await
    }

    pub async fn start_with(cfg: Config) -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Discord on 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let mut users = HashMap::new();
        users.insert(cfg.bot_user_id, cfg.bot_name.clone());
        let shared: Shared = Arc::new(Mutex::new(Fake {
            cfg,
            port: addr.port(),
            last_snowflake: 0,
            counter: 0,
            next_conn: 1,
            live: None,
            session: None,
            pending: Vec::new(),
            connections: Vec::new(),
            identifies: Vec::new(),
            resumes: Vec::new(),
            heartbeats: 0,
            readies: 0,
            users,
            channels: HashMap::new(),
            channel_names: HashMap::new(),
            hang_edits: false,
            hang_posts: 0,
            rate_limit_posts: 0,
            rate_limit_edits: 0,
            messages: HashMap::new(),
            interactions: HashMap::new(),
            commands: Vec::new(),
            posted: Vec::new(),
            edits: Vec::new(),
            interaction_responses: Vec::new(),
            followups: Vec::new(),
            requests: Vec::new(),
            dispatches: Vec::new(),
        }));
        let app = Router::new()
            .route("/gw", get(gateway_upgrade))
            .fallback(rest)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeDiscord {
            shared,
            addr,
            _server: Arc::new(ServerGuard(server)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Fake> {
        lock(&self.shared)
    }

    /// `http://127.0.0.1:PORT`: serenity's `HttpBuilder::proxy` value.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token(&self) -> String {
        self.lock().cfg.token.clone()
    }

    pub fn bot_user_id(&self) -> u64 {
        self.lock().cfg.bot_user_id
    }

    pub fn application_id(&self) -> u64 {
        self.lock().cfg.application_id
    }

    /// `<@BOTID>`, the mention a user types.
    pub fn bot_mention(&self) -> String {
        format!("<@{}>", self.bot_user_id())
    }

    /// Makes a server channel known under a name (`deploys`, without `#`); sending a message or
    /// interaction in a channel makes it known too. A bot may post only to known channels, as on
    /// Discord. Renaming a known channel changes only its name.
    pub fn add_named_channel(&self, channel_id: u64, guild_id: u64, name: &str) {
        let mut st = self.lock();
        st.channels.entry(channel_id).or_insert(Some(guild_id));
        st.channel_names.insert(channel_id, name.to_string());
    }

    /// From now on every message edit (`PATCH /channels/{c}/messages/{m}` and
    /// `PATCH /webhooks/{app}/{token}/messages/{m}`) is accepted and never answered.
    pub fn hang_edits(&self, on: bool) {
        self.lock().hang_edits = on;
    }

    /// The next `n` messages the bot posts (`POST /channels/{c}/messages`) are accepted and
    /// never answered, nor created.
    pub fn hang_next_posts(&self, n: usize) {
        self.lock().hang_posts = n;
    }

    /// The next `n` message creates (`POST /channels/{c}/messages`, and an interaction's
    /// follow-up `POST /webhooks/{app}/{token}`) are refused as Discord refuses a rate-limited
    /// request: 429, `Retry-After: 1` and a body with `retry_after` (seconds, a float) and
    /// `global`. Nothing is created.
    pub fn rate_limit_next_posts(&self, n: usize) {
        self.lock().rate_limit_posts = n;
    }

    /// As `rate_limit_next_posts`, for the next `n` message edits (`PATCH
    /// /channels/{c}/messages/{m}` and `PATCH /webhooks/{app}/{token}/messages/{m}`, which
    /// also edits an interaction's original response). Nothing is changed.
    pub fn rate_limit_next_edits(&self, n: usize) {
        self.lock().rate_limit_edits = n;
    }

    /// A user sends a message; it is dispatched as MESSAGE_CREATE with the next sequence number
    /// (or queued until READY, or kept for replay while the gateway is down). The bot is in
    /// `mentions` if `mentions_bot` or the content contains `<@BOTID>`. Returns its id.
    pub fn message(
        &self,
        author_id: u64,
        author_name: &str,
        channel_id: u64,
        guild_id: Option<u64>,
        content: &str,
        mentions_bot: bool,
    ) -> u64 {
        let mut st = self.lock();
        st.user_message(
            author_id,
            author_name,
            channel_id,
            guild_id,
            content,
            mentions_bot,
        )
    }

    /// Dispatches the same MESSAGE_CREATE again (Discord does deliver duplicates), with a new
    /// sequence number.
    pub fn redeliver_message(&self, id: u64) {
        let mut st = self.lock();
        let Some(m) = st.messages.get(&id) else {
            panic!("redeliver_message: the fake knows no message {id}");
        };
        let gate = Gate::Message {
            guild: m.guild_id.is_some(),
            mentions_bot: m.mentions_bot,
            own: m.author_id == st.cfg.bot_user_id,
        };
        let d = st.message_event(id);
        st.dispatch("MESSAGE_CREATE", d, gate);
    }

    /// A user runs `/ferry command:<command_text>` (no option if `command_text` is empty); it is
    /// dispatched as INTERACTION_CREATE. Returns the interaction id.
    pub fn interaction(
        &self,
        user_id: u64,
        user_name: &str,
        channel_id: u64,
        guild_id: Option<u64>,
        command_text: &str,
    ) -> u64 {
        let mut st = self.lock();
        st.user_interaction(user_id, user_name, channel_id, guild_id, command_text)
    }

    /// A user clicks a button (`custom_id`) on the bot's message `message_id`; dispatched as
    /// INTERACTION_CREATE of type 3 (message component). Returns the interaction id.
    pub fn component_interaction(
        &self,
        user_id: u64,
        user_name: &str,
        channel_id: u64,
        guild_id: Option<u64>,
        message_id: u64,
        custom_id: &str,
    ) -> u64 {
        let mut st = self.lock();
        st.component_payload(
            user_id, user_name, channel_id, guild_id, message_id, custom_id,
        )
    }

    /// The interaction token the fake gave an interaction.
    pub fn interaction_token(&self, interaction_id: u64) -> String {
        let st = self.lock();
        match st.interactions.get(&interaction_id) {
            Some(i) => i.token.clone(),
            None => panic!("no interaction {interaction_id}"),
        }
    }

    /// Drops the gateway's TCP connection without a close frame, like a network failure. The
    /// session stays, so the client should RESUME; what is dispatched meanwhile is replayed.
    pub fn drop_gateway(&self) {
        let mut st = self.lock();
        if let Some(live) = st.live.take() {
            let _ = live.tx.send(Out::Abort);
        }
    }

    /// Closes the gateway connection with a close frame (4000 unknown error: resumable; 4004
    /// authentication failed; 4009 session timed out: the session is forgotten, ...).
    pub fn close_gateway(&self, code: u16, reason: &str) {
        let mut st = self.lock();
        if matches!(code, 4007 | 4009) {
            st.session = None;
        }
        if let Some(live) = st.live.take() {
            let _ = live.tx.send(Out::Close(code, reason.to_string()));
        }
    }

    /// Sends op 7 RECONNECT: the client should reconnect and RESUME.
    pub fn request_reconnect(&self) {
        let mut st = self.lock();
        st.send_live(json!({"op": 7, "d": null}));
    }

    /// Sends op 9 INVALID_SESSION; unless `resumable`, the session is forgotten.
    pub fn invalidate_session(&self, resumable: bool) {
        let mut st = self.lock();
        if !resumable {
            st.session = None;
        }
        st.send_live(json!({"op": 9, "d": resumable}));
    }

    pub fn identifies(&self) -> Vec<Identify> {
        self.lock().identifies.clone()
    }

    pub fn resumes(&self) -> Vec<Resume> {
        self.lock().resumes.clone()
    }

    pub fn connections(&self) -> Vec<Connection> {
        self.lock().connections.clone()
    }

    /// Heartbeats (op 1) received, all connections together.
    pub fn heartbeats(&self) -> usize {
        self.lock().heartbeats
    }

    /// READY dispatches sent.
    pub fn readies(&self) -> usize {
        self.lock().readies
    }

    pub fn session_id(&self) -> Option<String> {
        self.lock().session.as_ref().map(|s| s.id.clone())
    }

    /// A connection is open and identified or resumed: dispatches reach the client now.
    pub fn is_connected(&self) -> bool {
        self.lock().live.as_ref().is_some_and(|l| l.attached)
    }

    pub fn posted(&self) -> Vec<Posted> {
        self.lock().posted.clone()
    }

    pub fn edits(&self) -> Vec<Edit> {
        self.lock().edits.clone()
    }

    pub fn interaction_responses(&self) -> Vec<InteractionResponse> {
        self.lock().interaction_responses.clone()
    }

    pub fn followups(&self) -> Vec<Followup> {
        self.lock().followups.clone()
    }

    /// The registered application commands, as the API returns them (with `id`, and `guild_id`
    /// for guild commands).
    pub fn commands(&self) -> Vec<Value> {
        self.lock()
            .commands
            .iter()
            .map(|c| c.json.clone())
            .collect()
    }

    /// Every REST request, in order, with the status the fake answered.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.lock().requests.clone()
    }

    /// Every dispatch, in order, with what became of it.
    pub fn dispatches(&self) -> Vec<DispatchLog> {
        self.lock().dispatches.clone()
    }

    /// Waits until a READY has been sent and a connection is identified or resumed. Panics
    /// with a dump after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) {
        self.wait_for(|d| d.readies() > 0 && d.is_connected(), timeout)
            .await;
    }

    /// Waits until `pred` holds, checking every 10 ms. Panics with a dump after `timeout`.
    pub async fn wait_for(&self, pred: impl Fn(&FakeDiscord) -> bool, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !pred(self) {
            if Instant::now() >= deadline {
                panic!(
                    "fake Discord: condition not met within {timeout:?}\n{}",
                    self.dump()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Everything the fake saw and did, for a failing test's message.
    pub fn dump(&self) -> String {
        let st = self.lock();
        let mut s = String::new();
        let _ = writeln!(s, "--- fake Discord at {} ---", self.addr);
        let _ = writeln!(
            s,
            "session: {:?}; live connection: {}; heartbeats: {}; readies: {}",
            st.session.as_ref().map(|x| (&x.id, x.seq, x.intents)),
            match &st.live {
                Some(l) => format!("#{} attached={}", l.id, l.attached),
                None => "none".to_string(),
            },
            st.heartbeats,
            st.readies,
        );
        let _ = writeln!(s, "connections:");
        for c in &st.connections {
            let _ = writeln!(s, "  {c:?}");
        }
        let _ = writeln!(s, "identifies:");
        for i in &st.identifies {
            let _ = writeln!(
                s,
                "  intents={} shard={:?} rejected_with={:?}",
                i.intents, i.shard, i.rejected_with
            );
        }
        let _ = writeln!(s, "resumes:");
        for r in &st.resumes {
            let _ = writeln!(s, "  {r:?}");
        }
        let _ = writeln!(s, "dispatches:");
        for d in &st.dispatches {
            let _ = writeln!(s, "  s={:?} {} [{}] {}", d.seq, d.t, d.fate, d.summary);
        }
        for p in &st.pending {
            let _ = writeln!(s, "  (waiting for READY) {}", p.t);
        }
        let _ = writeln!(s, "REST requests:");
        for r in &st.requests {
            let _ = writeln!(s, "  {} {} -> {}", r.method, r.path, r.status);
            if let Some(e) = &r.error {
                let _ = writeln!(s, "      {e}");
            }
        }
        let _ = writeln!(s, "posted:");
        for p in &st.posted {
            let _ = writeln!(
                s,
                "  #{} in {} reply_to={:?} {:?}",
                p.id, p.channel_id, p.reference_message_id, p.content
            );
        }
        let _ = writeln!(s, "edits:");
        for e in &st.edits {
            let _ = writeln!(
                s,
                "  #{} in {}: {:?}",
                e.message_id, e.channel_id, e.content
            );
        }
        let _ = writeln!(s, "interaction responses:");
        for r in &st.interaction_responses {
            let _ = writeln!(
                s,
                "  interaction {} type {}: {:?}",
                r.interaction_id, r.kind, r.content
            );
        }
        let _ = writeln!(s, "followups:");
        for f in &st.followups {
            let _ = writeln!(
                s,
                "  interaction {} {:?} #{}: {:?}",
                f.interaction_id, f.kind, f.message_id, f.content
            );
        }
        let _ = writeln!(s, "commands:");
        for c in &st.commands {
            let _ = writeln!(s, "  {}", c.json);
        }
        s
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Fake> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// State: ids, payloads, dispatch.

impl Fake {
    /// A fresh snowflake: milliseconds since Discord's epoch, shifted, plus a counter.
    fn snowflake(&mut self) -> u64 {
        let ms = unix_ms().saturating_sub(DISCORD_EPOCH_MS);
        self.counter += 1;
        let id = (ms << 22) | (self.counter & 0xfff);
        self.last_snowflake = id.max(self.last_snowflake + 1);
        self.last_snowflake
    }

    fn random_hex(&mut self) -> String {
        let n = self.snowflake();
        let a = std::collections::hash_map::RandomState::new().hash_one(n);
        let b = std::collections::hash_map::RandomState::new().hash_one(a);
        format!("{a:016x}{b:016x}")
    }

    fn user_json(&self, id: u64) -> Value {
        let bot = id == self.cfg.bot_user_id;
        let name = self
            .users
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("user{id}"));
        let mut u = json!({
            "id": id.to_string(),
            "username": name,
            "discriminator": if bot { "4242" } else { "0" },
            "global_name": if bot { Value::Null } else { Value::String(name.clone()) },
            "avatar": null,
            "public_flags": 0,
            "flags": 0,
            "banner": null,
            "accent_color": null,
            "avatar_decoration_data": null,
        });
        if bot {
            u["bot"] = json!(true);
        }
        u
    }

    fn current_user_json(&self) -> Value {
        let mut u = self.user_json(self.cfg.bot_user_id);
        u["verified"] = json!(true);
        u["mfa_enabled"] = json!(false);
        u["email"] = Value::Null;
        u["locale"] = json!("en-US");
        u["premium_type"] = json!(0);
        u
    }

    /// A guild member as MESSAGE_CREATE carries it (without `user`).
    fn partial_member_json(&self) -> Value {
        json!({
            "roles": [],
            "joined_at": "2024-01-01T00:00:00.000000+00:00",
            "premium_since": null,
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "nick": null,
            "avatar": null,
            "banner": null,
            "communication_disabled_until": null,
        })
    }

    /// A server channel (text, type 0), as `GET /channels/{id}` returns it.
    fn channel_json(&self, id: u64, guild_id: u64) -> Value {
        json!({
            "id": id.to_string(),
            "type": 0,
            "guild_id": guild_id.to_string(),
            "name": self
                .channel_names
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("channel-{id}")),
            "position": 0,
            "permission_overwrites": [],
            "nsfw": false,
            "topic": null,
            "last_message_id": null,
            "rate_limit_per_user": 0,
            "parent_id": null,
            "flags": 0,
        })
    }

    /// The base Message object (REST shape): no mentions, embeds, attachments or components.
    fn message_json(
        &self,
        id: u64,
        channel_id: u64,
        author_id: u64,
        content: &str,
        kind: u64,
        flags: u64,
    ) -> Value {
        json!({
            "id": id.to_string(),
            "channel_id": channel_id.to_string(),
            "author": self.user_json(author_id),
            "content": content,
            "timestamp": timestamp_of(id),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": false,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": false,
            "type": kind,
            "flags": flags,
            "components": [],
        })
    }

    fn user_message(
        &mut self,
        author_id: u64,
        author_name: &str,
        channel_id: u64,
        guild_id: Option<u64>,
        content: &str,
        mentions_bot: bool,
    ) -> u64 {
        self.users.insert(author_id, author_name.to_string());
        self.channels.entry(channel_id).or_insert(guild_id);
        let bot = self.cfg.bot_user_id;
        let mentions_bot = mentions_bot
            || content.contains(&format!("<@{bot}>"))
            || content.contains(&format!("<@!{bot}>"));
        let id = self.snowflake();
        let mut json = self.message_json(id, channel_id, author_id, content, 0, 0);
        if mentions_bot {
            json["mentions"] = json!([self.user_json(bot)]);
        }
        self.messages.insert(
            id,
            StoredMessage {
                channel_id,
                guild_id,
                author_id,
                mentions_bot,
                json,
            },
        );
        let d = self.message_event(id);
        let gate = Gate::Message {
            guild: guild_id.is_some(),
            mentions_bot,
            own: false,
        };
        self.dispatch("MESSAGE_CREATE", d, gate);
        id
    }

    /// A stored message as the gateway sends it: with `guild_id` and `member` in a guild.
    fn message_event(&self, id: u64) -> Value {
        let m = &self.messages[&id];
        let mut d = m.json.clone();
        if let Some(g) = m.guild_id {
            d["guild_id"] = json!(g.to_string());
            d["member"] = self.partial_member_json();
        }
        d
    }

    /// The bot's own message `id` comes back over the gateway, as on Discord.
    fn echo(&mut self, t: &str, id: u64) {
        let m = &self.messages[&id];
        let gate = Gate::Message {
            guild: m.guild_id.is_some(),
            mentions_bot: m.mentions_bot,
            own: true,
        };
        let d = self.message_event(id);
        self.dispatch(t, d, gate);
    }

    fn user_interaction(
        &mut self,
        user_id: u64,
        user_name: &str,
        channel_id: u64,
        guild_id: Option<u64>,
        command_text: &str,
    ) -> u64 {
        let (id, d) =
            self.interaction_payload(user_id, user_name, channel_id, guild_id, command_text);
        self.dispatch("INTERACTION_CREATE", d, Gate::Always);
        id
    }

    /// A click on a button of message `message_id`: the interaction payload of a command,
    /// turned into a message-component interaction (type 3) carrying the message it was on.
    fn component_payload(
        &mut self,
        user_id: u64,
        user_name: &str,
        channel_id: u64,
        guild_id: Option<u64>,
        message_id: u64,
        custom_id: &str,
    ) -> u64 {
        let (id, mut d) = self.interaction_payload(user_id, user_name, channel_id, guild_id, "");
        d["type"] = json!(3);
        d["data"] = json!({"custom_id": custom_id, "component_type": 2});
        if let Some(i) = self.interactions.get_mut(&id) {
            i.component = true;
        }
        d["message"] = match self.messages.get(&message_id) {
            Some(m) => m.json.clone(),
            None => panic!("component_interaction: the fake knows no message {message_id}"),
        };
        self.dispatch("INTERACTION_CREATE", d, Gate::Always);
        id
    }

    fn interaction_payload(
        &mut self,
        user_id: u64,
        user_name: &str,
        channel_id: u64,
        guild_id: Option<u64>,
        command_text: &str,
    ) -> (u64, Value) {
        self.users.insert(user_id, user_name.to_string());
        self.channels.entry(channel_id).or_insert(guild_id);
        let id = self.snowflake();
        let token = format!("aW50ZXJhY3Rpb24.{}", self.random_hex());
        let command = self
            .commands
            .iter()
            .find(|c| c.json["name"] == "ferry")
            .map(|c| c.id);
        let command_id = match command {
            Some(c) => c,
            None => self.snowflake(),
        };
        let options = if command_text.is_empty() {
            json!([])
        } else {
            json!([{"name": "command", "type": 3, "value": command_text}])
        };
        let data = json!({
            "id": command_id.to_string(),
            "name": "ferry",
            "type": 1,
            "options": options,
        });
        let user = self.user_json(user_id);
        let mut d = json!({
            "id": id.to_string(),
            "application_id": self.cfg.application_id.to_string(),
            "type": 2,
            "data": data,
            "channel_id": channel_id.to_string(),
            "token": token,
            "version": 1,
            "app_permissions": "2248473465835073",
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10_485_760,
        });
        match guild_id {
            Some(g) => {
                let mut member = self.partial_member_json();
                member["user"] = user;
                member["permissions"] = json!("2248473465835073");
                d["guild_id"] = json!(g.to_string());
                d["member"] = member;
                d["guild_locale"] = json!("en-US");
                d["context"] = json!(0);
                d["authorizing_integration_owners"] = json!({"0": g.to_string()});
                d["channel"] = json!({
                    "id": channel_id.to_string(),
                    "type": 0,
                    "name": format!("channel-{channel_id}"),
                    "permissions": "2248473465835073",
                });
            }
            None => {
                d["user"] = user;
                d["context"] = json!(1);
                d["authorizing_integration_owners"] = json!({"0": "0"});
                d["channel"] = json!({"id": channel_id.to_string(), "type": 1});
            }
        }
        self.interactions.insert(
            id,
            InteractionState {
                id,
                token,
                channel_id,
                guild_id,
                user_id,
                user_name: user_name.to_string(),
                created: Instant::now(),
                acked: None,
                component: false,
                original: None,
            },
        );
        (id, d)
    }

    /// Applies the intents to a dispatch: `None` if it must not be sent at all.
    fn render(&self, d: &Value, gate: Gate, intents: u64) -> Result<Value, String> {
        let Gate::Message {
            guild,
            mentions_bot,
            own,
        } = gate
        else {
            return Ok(d.clone());
        };
        let (needed, name) = if guild {
            (intents::GUILD_MESSAGES, "GUILD_MESSAGES")
        } else {
            (intents::DIRECT_MESSAGES, "DIRECT_MESSAGES")
        };
        if intents & needed == 0 {
            return Err(format!("suppressed: no {name} intent"));
        }
        let mut d = d.clone();
        if guild && !mentions_bot && !own && intents & intents::MESSAGE_CONTENT == 0 {
            d["content"] = json!("");
        }
        Ok(d)
    }

    /// Sends a dispatch on the session (assigning the next sequence number), or keeps it for
    /// READY. Returns the sequence number if it got one.
    fn dispatch(&mut self, t: &str, d: Value, gate: Gate) -> Option<u64> {
        let summary = summarize(t, &d);
        let Some(session) = self.session.as_ref() else {
            self.pending.push(Pending {
                t: t.to_string(),
                d,
                gate,
            });
            return None;
        };
        let d = match self.render(&d, gate, session.intents) {
            Ok(d) => d,
            Err(why) => {
                self.dispatches.push(DispatchLog {
                    seq: None,
                    t: t.to_string(),
                    fate: why,
                    summary,
                });
                return None;
            }
        };
        let session = self.session.as_mut().expect("session checked above");
        session.seq += 1;
        let seq = session.seq;
        let frame = json!({"op": 0, "s": seq, "t": t, "d": d}).to_string();
        session.log.push((seq, frame.clone()));
        let fate = match &self.live {
            Some(live) if live.attached => {
                if live.tx.send(Out::Text(frame)).is_ok() {
                    "delivered"
                } else {
                    "kept for replay (connection gone)"
                }
            }
            _ => "kept for replay (gateway down)",
        };
        self.dispatches.push(DispatchLog {
            seq: Some(seq),
            t: t.to_string(),
            fate: fate.to_string(),
            summary,
        });
        Some(seq)
    }

    fn send_live(&mut self, v: Value) {
        if let Some(live) = &self.live {
            let _ = live.tx.send(Out::Text(v.to_string()));
        }
    }
}

fn summarize(t: &str, d: &Value) -> String {
    match t {
        "MESSAGE_CREATE" | "MESSAGE_UPDATE" => format!(
            "#{} in {} by {}: {:?}",
            d["id"].as_str().unwrap_or("?"),
            d["channel_id"].as_str().unwrap_or("?"),
            d["author"]["username"].as_str().unwrap_or("?"),
            d["content"].as_str().unwrap_or(""),
        ),
        "INTERACTION_CREATE" => format!(
            "interaction {} /{} {}",
            d["id"].as_str().unwrap_or("?"),
            d["data"]["name"].as_str().unwrap_or("?"),
            d["data"]["options"],
        ),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway.

async fn gateway_upgrade(State(shared): State<Shared>, uri: Uri, ws: WebSocketUpgrade) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().map(str::to_string);
    ws.on_upgrade(move |socket| gateway_connection(shared, socket, path, query))
}

async fn gateway_connection(
    shared: Shared,
    mut socket: WebSocket,
    path: String,
    query: Option<String>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = {
        let mut st = lock(&shared);
        let id = st.next_conn;
        st.next_conn += 1;
        st.connections.push(Connection {
            id,
            path,
            query,
            ended: None,
        });
        let hello = json!({
            "op": 10,
            "s": null,
            "t": null,
            "d": {"heartbeat_interval": st.cfg.heartbeat_interval.as_millis() as u64},
        });
        let _ = tx.send(Out::Text(hello.to_string()));
        // A new connection takes over; the old one's sender is dropped, which ends it.
        st.live = Some(Live {
            id,
            tx,
            attached: false,
        });
        id
    };
    let mut client_close = None;
    let ended = loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Text(text)) => {
                    if socket.send(WsMessage::Text(text.into())).await.is_err() {
                        break "send failed".to_string();
                    }
                }
                Some(Out::Close(code, reason)) => {
                    let frame = CloseFrame { code, reason: reason.clone().into() };
                    let _ = socket.send(WsMessage::Close(Some(frame))).await;
                    break format!("closed by the fake with {code} {reason:?}");
                }
                Some(Out::Abort) => break "dropped by the fake (no close frame)".to_string(),
                None => break "replaced by a newer connection".to_string(),
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Text(text))) => on_client_frame(&shared, id, text.as_str()),
                Some(Ok(WsMessage::Binary(_))) => {
                    on_client_frame(&shared, id, "binary frame: not JSON text")
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    // Keep reading: the next read sends the closing handshake's reply, which
                    // serenity waits for on shutdown.
                    let frame = frame.map(|f| (f.code, f.reason.to_string()));
                    client_close = Some(format!("closed by the client: {frame:?}"));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break client_close.unwrap_or(format!("client error: {e}")),
                None => break client_close.unwrap_or("client went away".to_string()),
            },
        }
    };
    let mut st = lock(&shared);
    if st.live.as_ref().is_some_and(|l| l.id == id) {
        st.live = None;
    }
    if let Some(c) = st.connections.iter_mut().find(|c| c.id == id) {
        c.ended = Some(ended);
    }
}

/// Handles one frame from the client; answers go through the connection's queue.
fn on_client_frame(shared: &Shared, conn: u64, text: &str) {
    let mut st = lock(shared);
    let Some(live) = st.live.as_ref().filter(|l| l.id == conn) else {
        return; // A connection that has been replaced or dropped.
    };
    let tx = live.tx.clone();
    let attached = live.attached;
    let close = |code: u16, reason: &str| {
        let _ = tx.send(Out::Close(code, reason.to_string()));
    };
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return close(4002, "Error while decoding payload.");
    };
    let d = &v["d"];
    match v["op"].as_u64() {
        Some(1) => {
            st.heartbeats += 1;
            let _ = tx.send(Out::Text(
                json!({"op": 11, "s": null, "t": null, "d": null}).to_string(),
            ));
        }
        Some(2) => {
            let token = d["token"].as_str().unwrap_or_default().to_string();
            let intents = d["intents"].as_u64().unwrap_or(0);
            let shard = d["shard"]
                .as_array()
                .and_then(|a| Some((a.first()?.as_u64()?, a.get(1)?.as_u64()?)));
            let mut identify = Identify {
                token: token.clone(),
                intents,
                shard,
                rejected_with: None,
            };
            let rejection = if attached {
                Some((4005, "Already authenticated."))
            } else if bare_token(&token) != st.cfg.token {
                Some((4004, "Authentication failed."))
            } else if d["intents"].as_u64().is_none() {
                Some((4013, "Invalid intent(s)."))
            } else if !st.cfg.privileged_intents_allowed && intents & intents::PRIVILEGED != 0 {
                Some((4014, "Disallowed intent(s)."))
            } else if shard.is_some_and(|(i, n)| n == 0 || i >= n) {
                Some((4010, "Invalid shard."))
            } else {
                None
            };
            if let Some((code, reason)) = rejection {
                identify.rejected_with = Some(code);
                st.identifies.push(identify);
                return close(code, reason);
            }
            st.identifies.push(identify);
            let session_id = st.random_hex();
            st.session = Some(Session {
                id: session_id.clone(),
                intents,
                seq: 0,
                log: Vec::new(),
            });
            if let Some(live) = st.live.as_mut() {
                live.attached = true;
            }
            st.readies += 1;
            let ready = json!({
                "v": 10,
                "user": st.current_user_json(),
                "guilds": [],
                "session_id": session_id,
                "session_type": "normal",
                "resume_gateway_url": format!("ws://127.0.0.1:{}/gw", st.port),
                "shard": [shard.map_or(0, |s| s.0), shard.map_or(1, |s| s.1)],
                "application": {"id": st.cfg.application_id.to_string(), "flags": 8_953_856},
                "private_channels": [],
                "presences": [],
                "relationships": [],
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": ["frankfurt"],
                "auth": {},
                "_trace": ["[\"fake-discord\"]"],
            });
            st.dispatch("READY", ready, Gate::Always);
            for p in std::mem::take(&mut st.pending) {
                st.dispatch(&p.t, p.d, p.gate);
            }
        }
        Some(6) => {
            let session_id = d["session_id"].as_str().unwrap_or_default().to_string();
            let seq = d["seq"].as_u64().unwrap_or(0);
            let token = d["token"].as_str().unwrap_or_default().to_string();
            let valid = !attached
                && bare_token(&token) == st.cfg.token
                && st.session.as_ref().is_some_and(|s| s.id == session_id);
            let mut resume = Resume {
                session_id,
                seq,
                accepted: valid,
                replayed: 0,
            };
            if !valid {
                st.resumes.push(resume);
                let _ = tx.send(Out::Text(
                    json!({"op": 9, "s": null, "t": null, "d": false}).to_string(),
                ));
                return;
            }
            let missed: Vec<String> = st
                .session
                .as_ref()
                .map(|s| {
                    s.log
                        .iter()
                        .filter(|(s, _)| *s > seq)
                        .map(|(_, f)| f.clone())
                        .collect()
                })
                .unwrap_or_default();
            resume.replayed = missed.len();
            st.resumes.push(resume);
            for frame in missed {
                let _ = tx.send(Out::Text(frame));
            }
            if let Some(live) = st.live.as_mut() {
                live.attached = true;
            }
            st.dispatch(
                "RESUMED",
                json!({"_trace": ["[\"fake-discord\"]"]}),
                Gate::Always,
            );
        }
        // Presence, voice state and member requests: ferry sends none of them.
        _ => close(4001, "Unknown opcode."),
    }
}

fn bare_token(token: &str) -> &str {
    token.strip_prefix("Bot ").unwrap_or(token)
}

// ---------------------------------------------------------------------------------------------
// REST.

/// A REST answer: status and JSON body (`None`: no body, for 204).
type Reply = (StatusCode, Option<Value>);

fn error(status: StatusCode, code: u64, message: &str) -> Reply {
    (status, Some(json!({"message": message, "code": code})))
}

fn form_error(field: &str, code: &str, message: &str) -> Reply {
    (
        StatusCode::BAD_REQUEST,
        Some(json!({
            "message": "Invalid Form Body",
            "code": 50035,
            "errors": {field: {"_errors": [{"code": code, "message": message}]}},
        })),
    )
}

fn not_found() -> Reply {
    error(StatusCode::NOT_FOUND, 0, "404: Not Found")
}

fn unknown_message() -> Reply {
    error(StatusCode::NOT_FOUND, 10008, "Unknown Message")
}

fn unknown_interaction() -> Reply {
    error(StatusCode::NOT_FOUND, 10062, "Unknown interaction")
}

fn unknown_webhook() -> Reply {
    error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook")
}

async fn rest(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let hang_post = method == Method::POST && path.ends_with("/messages") && {
        let mut st = lock(&shared);
        let hang = st.hang_posts > 0;
        st.hang_posts = st.hang_posts.saturating_sub(1);
        hang
    };
    let hang_edit =
        method == Method::PATCH && path.contains("/messages/") && lock(&shared).hang_edits;
    if hang_post || hang_edit {
        lock(&shared).requests.push(RequestLog {
            method: method.to_string(),
            path,
            status: 0,
            error: Some(json!("hung by the test")),
        });
        return std::future::pending().await;
    }
    let mut st = lock(&shared);
    let limited = match message_write(&method, &path) {
        Some(Write::Create) => &mut st.rate_limit_posts,
        Some(Write::Edit) => &mut st.rate_limit_edits,
        None => &mut 0,
    };
    if *limited > 0 {
        *limited -= 1;
        let body = json!({
            "message": "You are being rate limited.",
            "retry_after": 1.0,
            "global": false,
        });
        st.requests.push(RequestLog {
            method: method.to_string(),
            path,
            status: StatusCode::TOO_MANY_REQUESTS.as_u16(),
            error: Some(body.clone()),
        });
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::RETRY_AFTER, "1"),
                (header::HeaderName::from_static("x-ratelimit-scope"), "user"),
            ],
            axum::Json(body),
        )
            .into_response();
    }
    let (status, value) = route(&mut st, &method, &uri, &headers, &body);
    st.requests.push(RequestLog {
        method: method.to_string(),
        path: match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        },
        status: status.as_u16(),
        error: if status.is_client_error() {
            value.clone()
        } else {
            None
        },
    });
    drop(st);
    match value {
        Some(v) => (status, axum::Json(v)).into_response(),
        None => status.into_response(),
    }
}

/// What a message-writing request does.
enum Write {
    Create,
    Edit,
}

/// Whether a request creates or edits a message: in a channel, or an interaction's follow-up or
/// response through its webhook.
fn message_write(method: &Method, path: &str) -> Option<Write> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), segs.as_slice()) {
        ("POST", ["api", "v10", "channels", _, "messages"])
        | ("POST", ["api", "v10", "webhooks", _, _]) => Some(Write::Create),
        ("PATCH", ["api", "v10", "channels", _, "messages", _])
        | ("PATCH", ["api", "v10", "webhooks", _, _, "messages", _]) => Some(Write::Edit),
        _ => None,
    }
}

fn route(st: &mut Fake, method: &Method, uri: &Uri, headers: &HeaderMap, bytes: &[u8]) -> Reply {
    let Some(rest) = uri.path().strip_prefix("/api/v10/") else {
        return not_found();
    };
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let m = method.as_str();
    // The gateway URL and the interaction endpoints need no bot token (the latter carry their
    // own); everything else does.
    let public = matches!(
        segs.as_slice(),
        ["gateway"] | ["webhooks", ..] | ["interactions", ..]
    );
    if !public {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if auth != format!("Bot {}", st.cfg.token) {
            return error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
        }
    }
    let body = match parse_body(bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let id = |s: &str| s.parse::<u64>().ok();
    match (m, segs.as_slice()) {
        ("GET", ["gateway"]) => (
            StatusCode::OK,
            Some(json!({"url": format!("ws://127.0.0.1:{}/gw", st.port)})),
        ),
        ("GET", ["users", "@me"]) => (StatusCode::OK, Some(st.current_user_json())),
        // Only server channels: ferry looks up a channel's name for server messages alone.
        ("GET", ["channels", c]) => match id(c).and_then(|c| Some((c, (*st.channels.get(&c)?)?))) {
            Some((c, guild_id)) => (StatusCode::OK, Some(st.channel_json(c, guild_id))),
            None => error(StatusCode::NOT_FOUND, 10003, "Unknown Channel"),
        },
        ("POST", ["channels", c, "messages"]) => match id(c) {
            Some(c) => create_message(st, c, body),
            None => not_found(),
        },
        ("PATCH", ["channels", c, "messages", mid]) => match (id(c), id(mid)) {
            (Some(c), Some(mid)) => edit_message(st, c, mid, body),
            _ => not_found(),
        },
        ("POST", ["interactions", i, token, "callback"]) => match id(i) {
            Some(i) => interaction_callback(st, i, token, body),
            None => unknown_interaction(),
        },
        ("POST", ["webhooks", app, token]) => webhook(st, app, token, None, body),
        ("PATCH", ["webhooks", app, token, "messages", mid]) => {
            webhook(st, app, token, Some(mid), body)
        }
        ("POST", ["applications", app, "commands"]) => create_command(st, app, body),
        _ => not_found(),
    }
}

/// A request's JSON body (`Null` if empty).
fn parse_body(bytes: &[u8]) -> Result<Value, Reply> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            50109,
            "The request body contains invalid JSON.",
        )
    })
}

/// Discord's checks on a message body: its length, and no empty message (content or
/// components).
fn check_message_body(json: &Value, creating: bool) -> Result<(), Reply> {
    let content = json["content"].as_str().unwrap_or_default();
    if content.chars().count() > MAX_CONTENT {
        return Err(form_error(
            "content",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 2000 or fewer in length.",
        ));
    }
    let components = json["components"].as_array().is_some_and(|a| !a.is_empty());
    if creating && content.is_empty() && !components {
        return Err(error(
            StatusCode::BAD_REQUEST,
            50006,
            "Cannot send an empty message",
        ));
    }
    Ok(())
}

fn create_message(st: &mut Fake, channel_id: u64, json: Value) -> Reply {
    let Some(guild_id) = st.channels.get(&channel_id).copied() else {
        return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    };
    if let Err(r) = check_message_body(&json, true) {
        return r;
    }
    let mut reference = None;
    if let Some(r) = json.get("message_reference").filter(|r| r.is_object()) {
        let target = r["message_id"].as_str().and_then(|s| s.parse::<u64>().ok());
        match target.filter(|t| {
            st.messages
                .get(t)
                .is_some_and(|m| m.channel_id == channel_id)
        }) {
            Some(t) => reference = Some(t),
            None => {
                return form_error(
                    "message_reference",
                    "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                    "Unknown message",
                );
            }
        }
    }
    let id = st.snowflake();
    let content = json["content"].as_str().unwrap_or_default().to_string();
    let bot = st.cfg.bot_user_id;
    let kind = if reference.is_some() { 19 } else { 0 };
    let mut message = st.message_json(id, channel_id, bot, &content, kind, 0);
    if let Some(t) = reference {
        message["message_reference"] = json!({
            "type": 0,
            "channel_id": channel_id.to_string(),
            "message_id": t.to_string(),
            "guild_id": guild_id.map(|g| g.to_string()),
        });
        message["referenced_message"] = st.messages[&t].json.clone();
    }
    st.messages.insert(
        id,
        StoredMessage {
            channel_id,
            guild_id,
            author_id: bot,
            mentions_bot: false,
            json: message.clone(),
        },
    );
    st.posted.push(Posted {
        channel_id,
        id,
        content,
        reference_message_id: reference,
        body: json,
    });
    st.echo("MESSAGE_CREATE", id);
    (StatusCode::OK, Some(message))
}

/// Applies an edit body to a stored message; the caller has checked the author.
fn apply_edit(st: &mut Fake, id: u64, json: &Value) -> Value {
    let m = st
        .messages
        .get_mut(&id)
        .expect("message checked by the caller");
    for key in ["content", "components"] {
        if let Some(v) = json.get(key) {
            m.json[key] = if v.is_null() && key == "content" {
                json!("")
            } else {
                v.clone()
            };
        }
    }
    m.json["edited_timestamp"] = json!(iso_timestamp(unix_ms()));
    m.json.clone()
}

fn edit_message(st: &mut Fake, channel_id: u64, id: u64, json: Value) -> Reply {
    let Some(m) = st.messages.get(&id).filter(|m| m.channel_id == channel_id) else {
        return unknown_message();
    };
    if m.author_id != st.cfg.bot_user_id {
        return error(
            StatusCode::FORBIDDEN,
            50005,
            "Cannot edit a message authored by another user",
        );
    }
    if let Err(r) = check_message_body(&json, false) {
        return r;
    }
    let message = apply_edit(st, id, &json);
    st.edits.push(Edit {
        channel_id,
        message_id: id,
        content: json["content"].as_str().map(str::to_string),
        body: json,
    });
    st.echo("MESSAGE_UPDATE", id);
    (StatusCode::OK, Some(message))
}

/// The message an interaction response or follow-up creates.
fn interaction_message(st: &mut Fake, interaction: u64, json: &Value, flags: u64) -> u64 {
    let (channel_id, guild_id, user_id, user_name) = {
        let i = &st.interactions[&interaction];
        (i.channel_id, i.guild_id, i.user_id, i.user_name.clone())
    };
    let id = st.snowflake();
    let content = json["content"].as_str().unwrap_or_default().to_string();
    let bot = st.cfg.bot_user_id;
    let mut message = st.message_json(id, channel_id, bot, &content, 20, flags);
    message["webhook_id"] = json!(st.cfg.application_id.to_string());
    message["application_id"] = json!(st.cfg.application_id.to_string());
    let owner = guild_id.map_or("0".to_string(), |g| g.to_string());
    message["interaction_metadata"] = json!({
        "id": interaction.to_string(),
        "type": 2,
        "user": {
            "id": user_id.to_string(),
            "username": user_name,
            "discriminator": "0",
            "global_name": user_name,
            "avatar": null,
        },
        "authorizing_integration_owners": {"0": owner},
    });
    st.messages.insert(
        id,
        StoredMessage {
            channel_id,
            guild_id,
            author_id: bot,
            mentions_bot: false,
            json: message,
        },
    );
    id
}

/// The interaction callback: 5 (deferred; ferry's answer to `/ferry`) makes a "thinking"
/// placeholder as the original response, 4 (a message at once) makes the message, and 6
/// (ferry's answer to a button click) acknowledges a click without a message.
fn interaction_callback(st: &mut Fake, interaction: u64, token: &str, json: Value) -> Reply {
    let deadline = st.cfg.interaction_deadline;
    let Some(i) = st
        .interactions
        .get(&interaction)
        .filter(|i| i.token == token)
    else {
        return unknown_interaction();
    };
    if i.acked.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            40060,
            "Interaction has already been acknowledged.",
        );
    }
    if i.created.elapsed() > deadline {
        return unknown_interaction();
    }
    let kind = json["type"].as_u64().unwrap_or(0);
    let data = &json["data"];
    let component = i.component;
    let original = match kind {
        // DEFERRED_UPDATE_MESSAGE: a click acknowledged without a message of its own.
        6 if component => {
            if let Some(i) = st.interactions.get_mut(&interaction) {
                i.acked = Some(6);
            }
            st.interaction_responses.push(InteractionResponse {
                interaction_id: interaction,
                kind,
                content: None,
            });
            return (StatusCode::NO_CONTENT, None);
        }
        4 => {
            if let Err(r) = check_message_body(data, true) {
                return r;
            }
            interaction_message(st, interaction, data, 0)
        }
        5 => interaction_message(st, interaction, &json!({}), FLAG_LOADING),
        _ => {
            return form_error(
                "type",
                "INTERACTION_RESPONSE_TYPE_INVALID",
                "Invalid interaction response type for an application command",
            );
        }
    };
    let i = st
        .interactions
        .get_mut(&interaction)
        .expect("interaction checked above");
    i.acked = Some(kind);
    i.original = Some(original);
    st.interaction_responses.push(InteractionResponse {
        interaction_id: interaction,
        kind,
        content: data["content"].as_str().map(str::to_string),
    });
    st.echo("MESSAGE_CREATE", original);
    (StatusCode::NO_CONTENT, None)
}

/// The interaction's webhook: `POST` creates a follow-up, `PATCH` edits the original response
/// (`@original`) or a follow-up.
fn webhook(st: &mut Fake, app: &str, token: &str, which: Option<&str>, json: Value) -> Reply {
    if app != st.cfg.application_id.to_string() {
        return unknown_webhook();
    }
    let Some(i) = st.interactions.values().find(|i| i.token == token) else {
        return unknown_webhook();
    };
    let interaction = i.id;
    let original = i.original;
    if i.acked.is_none() {
        // Follow-ups and the original response exist only once the interaction is acknowledged.
        return unknown_webhook();
    }
    let Some(which) = which else {
        if let Err(r) = check_message_body(&json, true) {
            return r;
        }
        let id = interaction_message(st, interaction, &json, 0);
        st.followups.push(Followup {
            interaction_id: interaction,
            kind: FollowupKind::Create,
            message_id: id,
            content: json["content"].as_str().map(str::to_string),
            body: json,
        });
        st.echo("MESSAGE_CREATE", id);
        return (StatusCode::OK, Some(st.messages[&id].json.clone()));
    };
    let target = if which == "@original" {
        original
    } else {
        which
            .parse::<u64>()
            .ok()
            .filter(|m| st.messages.contains_key(m))
    };
    let Some(id) = target else {
        return unknown_message();
    };
    if let Err(r) = check_message_body(&json, false) {
        return r;
    }
    let was_loading = st.messages[&id].json["flags"].as_u64().unwrap_or(0) & FLAG_LOADING != 0;
    let mut message = apply_edit(st, id, &json);
    if was_loading {
        // Editing a deferred response's placeholder turns it into the real message.
        let flags = message["flags"].as_u64().unwrap_or(0) & !FLAG_LOADING;
        message["flags"] = json!(flags);
        st.messages.get_mut(&id).expect("edited above").json["flags"] = json!(flags);
    }
    let kind = if which == "@original" {
        FollowupKind::EditOriginal
    } else {
        FollowupKind::Edit(id)
    };
    st.followups.push(Followup {
        interaction_id: interaction,
        kind,
        message_id: id,
        content: json["content"].as_str().map(str::to_string),
        body: json,
    });
    st.echo("MESSAGE_UPDATE", id);
    (StatusCode::OK, Some(message))
}

/// Discord's rules for command and option names and descriptions.
fn check_command(cmd: &Value, path: &str) -> Result<(), Reply> {
    let name = cmd["name"].as_str().unwrap_or_default();
    let name_ok = (1..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c == '-' || c == '_' || (c.is_alphanumeric() && !c.is_uppercase()));
    if !name_ok {
        return Err(form_error(
            &format!("{path}name"),
            "APPLICATION_COMMAND_INVALID_NAME",
            "Command name is invalid",
        ));
    }
    let chat_input = cmd["type"].as_u64().unwrap_or(1) == 1 || !path.is_empty();
    let description = cmd["description"].as_str().unwrap_or_default();
    if chat_input && !(1..=100).contains(&description.chars().count()) {
        return Err(form_error(
            &format!("{path}description"),
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        ));
    }
    let options = cmd["options"].as_array().cloned().unwrap_or_default();
    if options.len() > 25 {
        return Err(form_error(
            &format!("{path}options"),
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.",
        ));
    }
    for (n, o) in options.iter().enumerate() {
        if o["type"].as_u64().is_none_or(|t| !(1..=11).contains(&t)) {
            return Err(form_error(
                &format!("{path}options.{n}.type"),
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}.",
            ));
        }
        check_command(o, &format!("{path}options.{n}."))?;
    }
    Ok(())
}

/// `POST /applications/{app}/commands`: creates a global command, or overwrites the one of the
/// same name and type (ferry registers `/ferry` on every READY).
fn create_command(st: &mut Fake, app: &str, c: Value) -> Reply {
    if app != st.cfg.application_id.to_string() {
        return error(StatusCode::FORBIDDEN, 50001, "Missing Access");
    }
    if let Err(r) = check_command(&c, "") {
        return r;
    }
    let name = c["name"].as_str().unwrap_or_default().to_string();
    let kind = c["type"].as_u64().unwrap_or(1);
    // Discord keeps a command's id when it is overwritten under the same name and type.
    let existing = st
        .commands
        .iter()
        .find(|x| x.json["name"] == name && x.json["type"] == kind)
        .map(|x| x.id);
    let id = match existing {
        Some(id) => id,
        None => st.snowflake(),
    };
    let version = st.snowflake();
    let integration_types = match c["integration_types"].as_array() {
        Some(t) => json!(t),
        None => json!([0]),
    };
    let json = json!({
        "id": id.to_string(),
        "application_id": st.cfg.application_id.to_string(),
        "version": version.to_string(),
        "type": kind,
        "name": name,
        "description": c["description"].as_str().unwrap_or_default(),
        "options": c["options"].as_array().cloned().unwrap_or_default(),
        "default_member_permissions": c["default_member_permissions"].clone(),
        "nsfw": c["nsfw"].as_bool().unwrap_or(false),
        "contexts": c["contexts"].clone(),
        "integration_types": integration_types,
        "name_localizations": c["name_localizations"].clone(),
        "description_localizations": c["description_localizations"].clone(),
    });
    st.commands.retain(|x| x.id != id);
    st.commands.push(Command {
        id,
        json: json.clone(),
    });
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, Some(json))
}

// ---------------------------------------------------------------------------------------------
// Time.

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The creation time of a snowflake, as Discord writes timestamps.
fn timestamp_of(snowflake: u64) -> String {
    iso_timestamp((snowflake >> 22) + DISCORD_EPOCH_MS)
}

/// `2024-05-06T07:08:09.123000+00:00` for Unix milliseconds.
fn iso_timestamp(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}000+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}
