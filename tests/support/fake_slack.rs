//! A fake Slack for ferry's tests, faithful to the wire protocol that slack-morphism 2.31 speaks:
//! one axum server on 127.0.0.1 serves the Web API under `/api/<method>`, the Socket Mode
//! WebSocket at `/link`: the methods ferry calls and nothing else (no file uploads, no
//! `response_url`: ferry answers slash commands in a thread). Tests push Socket Mode envelopes (mentions, DMs, channel
//! messages, slash commands, redeliveries, `disconnect`, dropped sockets) through a cloneable
//! [`FakeSlack`] handle and read back what the bot did: acks, posts, updates, calls.
//!
//! Nothing here asserts ferry's behaviour; the waiting helpers only panic on a timeout, with a
//! dump of everything the fake saw so the failing test explains itself.
//!
//! Shapes follow Slack's documented payloads and slack-morphism's serde models (checked in its
//! source): e.g. `hello` carries `connection_info.app_id`, `num_connections`, `debug_info.host`;
//! `disconnect` must carry `debug_info` or slack-morphism cannot parse it and never reconnects.

#![allow(dead_code)] // `mod support;` compiles this into every test crate, used or not.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequest, Path, Query, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// The workspace the fake pretends to be.
pub const TEAM_ID: &str = "T0FERRY";
/// The app that owns the tokens; `hello` and every event callback name it.
pub const APP_ID: &str = "A0FERRY";
/// The bot user of the app (what `<@UBOT>` mentions and `auth.test` returns).
pub const BOT_USER_ID: &str = "UBOT";
/// The bot id of the app, as Slack puts it on the bot's own messages.
pub const BOT_ID: &str = "B0FERRY";
/// The bot user's name.
pub const BOT_NAME: &str = "ferry";
/// The bot token (`xoxb-`) that every Web API method but `apps.connections.open` accepts.
pub const BOT_TOKEN: &str = "xoxb-1-fake-ferry-bot-token";
/// The app-level token (`xapp-`) that only `apps.connections.open` accepts.
pub const APP_TOKEN: &str = "xapp-1-A0FERRY-1-fake-ferry-app-token";
/// The legacy verification token Slack still puts into event and command payloads.
pub const VERIFICATION_TOKEN: &str = "fakeVerificationToken0";
/// How often the waiting helpers look again.
const POLL: Duration = Duration::from_millis(10);
/// How long a push waits for a live Socket Mode connection before it gives up.
const PUSH_WAIT: Duration = Duration::from_secs(5);
/// How long after a `disconnect` the fake closes the socket itself if the client has not.
const DEFAULT_REFRESH_GRACE: Duration = Duration::from_secs(1);
/// The seconds part of every `ts` the fake makes up.
const TS_EPOCH: u64 = 1_700_000_000;

// ---------------------------------------------------------------------------------------------
// What the fake records
// ---------------------------------------------------------------------------------------------

/// One Web API request, whatever its outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiCall {
    /// The Slack method, e.g. `chat.postMessage`.
    pub method: String,
    /// `GET` or `POST`: slack-morphism GETs the read methods (auth.test, users.info,
    /// conversations.info) with query parameters and POSTs JSON.
    pub http_method: String,
    /// The request's `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The token, from `Authorization: Bearer …` or a `token` parameter.
    pub token: Option<String>,
    /// Query string and body merged into one object (form values stay strings, except that
    /// `blocks` is decoded when it holds JSON).
    pub params: Value,
    /// `None` when the fake answered `ok: true`, else the error code it answered with.
    pub error: Option<String>,
    /// Milliseconds since the fake started.
    pub at_ms: u64,
}

/// A `chat.postMessage` the fake accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Posted {
    pub channel: String,
    pub text: Option<String>,
    pub blocks: Option<Value>,
    pub thread_ts: Option<String>,
    /// The `ts` the fake gave the new message.
    pub ts: String,
    /// The whole request, for anything not broken out above.
    pub body: Value,
    pub at_ms: u64,
}

/// A `chat.update` the fake accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Updated {
    pub channel: String,
    pub ts: String,
    pub text: Option<String>,
    pub blocks: Option<Value>,
    pub body: Value,
    pub at_ms: u64,
}

/// An acknowledgement frame the client sent: `{"envelope_id": …}`, with a `payload` for slash
/// commands (slack-morphism always adds one there, `{}` at least).
#[derive(Clone, Debug, PartialEq)]
pub struct Ack {
    pub envelope_id: String,
    pub payload: Option<Value>,
    /// The Socket Mode connection it came on.
    pub connection: u64,
    pub raw: String,
    pub at_ms: u64,
}

/// Any text frame the client sent that was not an ack (slack-morphism sends none).
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub connection: u64,
    pub text: String,
    pub at_ms: u64,
}

/// What an envelope carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvelopeKind {
    EventsApi,
    SlashCommands,
}

impl EnvelopeKind {
    fn wire(self) -> &'static str {
        match self {
            EnvelopeKind::EventsApi => "events_api",
            EnvelopeKind::SlashCommands => "slash_commands",
        }
    }
}

/// An envelope the fake pushed down a socket.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub envelope_id: String,
    pub kind: EnvelopeKind,
    /// `event_id` of an events_api envelope.
    pub event_id: Option<String>,
    pub retry_attempt: u32,
    pub connection: u64,
    pub json: Value,
    pub at_ms: u64,
}

/// One Socket Mode connection, open or closed.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    /// 1, 2, 3… in the order the connections opened.
    pub id: u64,
    pub ticket: String,
    pub opened_ms: u64,
    /// The fake sent it a `disconnect`; new envelopes avoid it.
    pub refresh_requested: bool,
    /// How it ended: "client sent close frame", "dropped by test", "closed by test", "eof", …
    pub closed: Option<String>,
    pub closed_ms: Option<u64>,
}

/// Everything the fake has seen, in arrival order. [`FakeSlack::snapshot`] clones it and
/// [`FakeSlack::wait_for`] hands it to predicates.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    pub calls: Vec<ApiCall>,
    pub posts: Vec<Posted>,
    pub updates: Vec<Updated>,
    pub connections: Vec<Connection>,
    pub envelopes: Vec<Envelope>,
    pub acks: Vec<Ack>,
    pub frames: Vec<Frame>,
}

impl Recorded {
    /// Connections that got their `hello` (closed ones included).
    pub fn connections_opened(&self) -> usize {
        self.connections.len()
    }

    /// Connections not closed yet.
    pub fn connections_open(&self) -> usize {
        self.connections
            .iter()
            .filter(|c| c.closed.is_none())
            .count()
    }

    /// The ack for an envelope, if the client sent one.
    pub fn ack_for(&self, envelope_id: &str) -> Option<&Ack> {
        self.acks.iter().find(|a| a.envelope_id == envelope_id)
    }

    /// Envelopes the client has not acked (yet): real Slack would redeliver them.
    pub fn unacked(&self) -> Vec<&Envelope> {
        self.envelopes
            .iter()
            .filter(|e| self.ack_for(&e.envelope_id).is_none())
            .collect()
    }

    /// A readable account of everything, for panic messages.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let mut section = |title: &str, items: Vec<String>| {
            out.push_str(&format!("--- {title} ({})\n", items.len()));
            for item in items {
                out.push_str("  ");
                out.push_str(&item);
                out.push('\n');
            }
        };
        section(
            "socket connections",
            self.connections.iter().map(|c| format!("{c:?}")).collect(),
        );
        section(
            "envelopes pushed",
            self.envelopes
                .iter()
                .map(|e| {
                    format!(
                        "{} {:?} event_id={:?} retry={} conn={} at={}ms",
                        e.envelope_id, e.kind, e.event_id, e.retry_attempt, e.connection, e.at_ms
                    )
                })
                .collect(),
        );
        section(
            "acks received",
            self.acks.iter().map(|a| format!("{a:?}")).collect(),
        );
        section(
            "other frames received",
            self.frames.iter().map(|f| format!("{f:?}")).collect(),
        );
        section(
            "Web API calls",
            self.calls
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {} -> {} params={}",
                        c.at_ms,
                        c.http_method,
                        c.method,
                        c.error.as_deref().unwrap_or("ok"),
                        c.params
                    )
                })
                .collect(),
        );
        section(
            "chat.postMessage",
            self.posts.iter().map(|p| format!("{p:?}")).collect(),
        );
        section(
            "chat.update",
            self.updates.iter().map(|u| format!("{u:?}")).collect(),
        );
        out
    }
}

// ---------------------------------------------------------------------------------------------
// What tests put in
// ---------------------------------------------------------------------------------------------

/// A user `users.info` knows.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeUser {
    pub id: String,
    /// The handle (`name`), e.g. `alice`.
    pub name: String,
    pub real_name: String,
    pub display_name: String,
    pub is_bot: bool,
    pub deleted: bool,
}

impl FakeUser {
    /// A human user whose real and display names are `name`.
    pub fn new(id: &str, name: &str) -> FakeUser {
        FakeUser {
            id: id.into(),
            name: name.into(),
            real_name: name.into(),
            display_name: name.into(),
            is_bot: false,
            deleted: false,
        }
    }
}

/// A conversation `conversations.info` knows: a public channel, or an IM with a user.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeChannel {
    pub id: String,
    /// Empty for an IM.
    pub name: String,
    pub is_im: bool,
    pub is_private: bool,
    /// The other party of an IM.
    pub im_user: Option<String>,
}

/// Which Events API event a [`FakeMessage`] becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// `app_mention` (the user wrote `<@UBOT> …` in a channel).
    Mention,
    /// `message` with `channel_type: "im"`.
    Im,
    /// `message` with `channel_type: "channel"`.
    Channel,
}

/// A user message to push as an `events_api` envelope. Build with [`FakeMessage::mention`],
/// [`FakeMessage::im`] or [`FakeMessage::channel`], then push with [`FakeSlack::push_message`].
#[derive(Clone, Debug, PartialEq)]
pub struct FakeMessage {
    pub kind: MessageKind,
    pub user: String,
    pub channel: String,
    /// What the person typed; pushed encoded as Slack encodes it ([`slack_encode`]).
    pub text: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    /// When set, the event's `text` exactly (e.g. with a [`user_mention`] in the middle).
    pub wire: Option<String>,
}

impl FakeMessage {
    pub fn mention(user: &str, channel: &str, text: &str, ts: &str) -> FakeMessage {
        FakeMessage::new(MessageKind::Mention, user, channel, text, ts)
    }

    pub fn im(user: &str, channel: &str, text: &str, ts: &str) -> FakeMessage {
        FakeMessage::new(MessageKind::Im, user, channel, text, ts)
    }

    pub fn channel(user: &str, channel: &str, text: &str, ts: &str) -> FakeMessage {
        FakeMessage::new(MessageKind::Channel, user, channel, text, ts)
    }

    /// Makes it a reply in the thread of the message `thread_ts`.
    pub fn in_thread(mut self, thread_ts: &str) -> FakeMessage {
        self.thread_ts = Some(thread_ts.into());
        self
    }

    /// Sends `wire` as the event's `text` as it is, without encoding it.
    pub fn with_wire_text(mut self, wire: &str) -> FakeMessage {
        self.wire = Some(wire.into());
        self
    }

    /// The event's `text`: the wire text if set, else what was typed, encoded.
    pub fn wire_text(&self) -> String {
        self.wire
            .clone()
            .unwrap_or_else(|| slack_encode(&self.text))
    }

    fn new(kind: MessageKind, user: &str, channel: &str, text: &str, ts: &str) -> FakeMessage {
        FakeMessage {
            kind,
            user: user.into(),
            channel: channel.into(),
            text: text.into(),
            ts: ts.into(),
            thread_ts: None,
            wire: None,
        }
    }
}

/// A mention of `user` as Slack sends it when someone picks a person: `<@U024BE7LH>`.
pub fn user_mention(user: &str) -> String {
    format!("<@{user}>")
}

/// `&`, `<` and `>` as Slack sends them in message text: `&amp;`, `&lt;`, `&gt;`.
pub fn slack_entities(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What a person typed as Slack sends it: mentions picked from the list at the very start
/// (`<@UBOT> …`, as the bot is addressed) are kept; URLs (`http://`, `https://`) are
/// auto-linked as `<url>` with their `&` encoded; every other `&`, `<`, `>` is an entity.
pub fn slack_encode(typed: &str) -> String {
    let mut out = String::new();
    let mut rest = typed;
    // Leading mentions, `<@U…>` or `<@W…>`, each followed by whitespace or the end.
    while let Some(inner) = rest.strip_prefix("<@") {
        let Some(end) = inner.find('>') else { break };
        let id = &inner[..end];
        let is_id = id.starts_with(['U', 'W'])
            && id.len() > 1
            && id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        let after = &inner[end + 1..];
        if !is_id || !(after.is_empty() || after.starts_with(char::is_whitespace)) {
            break;
        }
        out.push_str(&user_mention(id));
        let spaces = after.len() - after.trim_start().len();
        out.push_str(&after[..spaces]);
        rest = &after[spaces..];
    }
    while !rest.is_empty() {
        let link = ["https://", "http://"]
            .iter()
            .filter_map(|scheme| rest.find(scheme))
            .min();
        let Some(at) = link else {
            out.push_str(&slack_entities(rest));
            break;
        };
        out.push_str(&slack_entities(&rest[..at]));
        let url_len = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '|'))
            .unwrap_or(rest.len() - at);
        let url = &rest[at..at + url_len];
        out.push('<');
        out.push_str(&slack_entities(url));
        out.push('>');
        rest = &rest[at + url_len..];
    }
    out
}

/// What a push returns, to find its ack or deliver it again.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRef {
    pub kind: EnvelopeKind,
    /// The envelope of the latest delivery.
    pub envelope_id: String,
    /// The `event_id` (events_api only); a redelivery keeps it.
    pub event_id: Option<String>,
    /// How many times this was redelivered.
    pub retry_attempt: u32,
    /// The envelope's `payload`, exactly as pushed.
    pub payload: Value,
}

/// A failure to inject into the next call of a method.
#[derive(Clone, Debug, PartialEq)]
enum Failure {
    /// HTTP 200 with `{"ok":false,"error":…}`.
    Error(String),
    /// HTTP 429 with `Retry-After` and `{"ok":false,"error":"ratelimited"}`.
    RateLimited(u64),
}

// ---------------------------------------------------------------------------------------------
// Internal state
// ---------------------------------------------------------------------------------------------

enum Outgoing {
    Text(String),
    /// Close code, close reason, and how the connection log should call it.
    Close(u16, String, String),
    Drop,
}

struct LiveSocket {
    id: u64,
    tx: mpsc::UnboundedSender<Outgoing>,
}

struct Inner {
    counter: u64,
    ts_counter: u64,
    users: BTreeMap<String, FakeUser>,
    channels: BTreeMap<String, FakeChannel>,
    /// ticket → already used.
    tickets: HashMap<String, bool>,
    live: Vec<LiveSocket>,
    failures: Vec<(String, Failure)>,
    /// Calls that never answer: (method, and if set, a parameter and its value).
    hangs: Vec<(String, Option<(String, String)>)>,
    /// Socket Mode upgrades answered 401, as for an expired ticket.
    refuse_sockets: bool,
    echo_bot_messages: bool,
    refresh_grace: Duration,
    rec: Recorded,
}

impl Inner {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn fresh_ts(&mut self) -> String {
        self.ts_counter += 1;
        let micros = self.ts_counter * 100;
        format!(
            "{}.{:06}",
            TS_EPOCH + micros / 1_000_000,
            micros % 1_000_000
        )
    }

    /// The socket new envelopes go to: the newest open one not asked to refresh.
    fn target(&self) -> Option<&LiveSocket> {
        self.live.iter().rev().find(|s| {
            self.rec
                .connections
                .iter()
                .any(|c| c.id == s.id && !c.refresh_requested && c.closed.is_none())
        })
    }

    fn connection_mut(&mut self, id: u64) -> Option<&mut Connection> {
        self.rec.connections.iter_mut().find(|c| c.id == id)
    }
}

struct Shared {
    base: String,
    started: Instant,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not hide what the fake recorded from the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Sends an envelope to the target socket, or says why it cannot.
    fn send_envelope(
        &self,
        kind: EnvelopeKind,
        payload: &Value,
        event_id: Option<&str>,
        retry_attempt: u32,
    ) -> Result<String, String> {
        let at_ms = self.ms();
        let mut inner = self.lock();
        let Some(target) = inner.target() else {
            return Err("no open Socket Mode connection".into());
        };
        let (connection, tx) = (target.id, target.tx.clone());
        let n = inner.next();
        let envelope_id = format!("5f1e0c2a-fake-4e{:02x}-8000-{n:012}", retry_attempt);
        let mut json = json!({
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind.wire(),
            "accepts_response_payload": kind == EnvelopeKind::SlashCommands,
        });
        if kind == EnvelopeKind::EventsApi {
            json["retry_attempt"] = json!(retry_attempt);
            json["retry_reason"] = json!(if retry_attempt > 0 { "timeout" } else { "" });
        }
        tx.send(Outgoing::Text(json.to_string()))
            .map_err(|_| format!("connection {connection} is gone"))?;
        inner.rec.envelopes.push(Envelope {
            envelope_id: envelope_id.clone(),
            kind,
            event_id: event_id.map(str::to_string),
            retry_attempt,
            connection,
            json,
            at_ms,
        });
        Ok(envelope_id)
    }

    /// The `event_callback` payload Slack wraps an event in.
    fn event_callback(&self, event: Value, event_id: &str, ts: &str) -> Value {
        let event_time = ts
            .split('.')
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or_else(unix_now);
        json!({
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "context_team_id": TEAM_ID,
            "context_enterprise_id": null,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": event_time,
            "authorizations": [{
                "enterprise_id": null,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": true,
                "is_enterprise_install": false,
            }],
            "is_ext_shared_channel": false,
            "event_context": format!("4-fake-{event_id}"),
        })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(TS_EPOCH, |d| d.as_secs())
}

/// Slack's `rich_text` block for a plain message: `<@U…>` become user elements.
fn rich_text_blocks(text: &str, n: u64) -> Value {
    let mut elements = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        if start > 0 {
            elements.push(json!({"type": "text", "text": &rest[..start]}));
        }
        let inner = &rest[start + 2..start + len];
        let user = inner.split('|').next().unwrap_or(inner);
        elements.push(json!({"type": "user", "user_id": user}));
        rest = &rest[start + len + 1..];
    }
    if !rest.is_empty() {
        elements.push(json!({"type": "text", "text": rest}));
    }
    json!([{
        "type": "rich_text",
        "block_id": format!("fk{n:04}"),
        "elements": [{"type": "rich_text_section", "elements": elements}],
    }])
}

fn api_ok(mut body: Value) -> Response {
    body["ok"] = json!(true);
    // axum's Json sets `Content-Type: application/json`; slack-morphism decodes only that.
    axum::Json(body).into_response()
}

fn api_error(code: &str) -> Response {
    axum::Json(json!({"ok": false, "error": code})).into_response()
}

fn str_param(params: &Value, key: &str) -> Option<String> {
    match params.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn non_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

// ---------------------------------------------------------------------------------------------
// The handle
// ---------------------------------------------------------------------------------------------

/// Stops the server when the last handle goes away.
struct ServerGuard {
    task: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.task.abort();
        // Dropping the senders ends every socket task, which drops its socket.
        self.shared.lock().live.clear();
    }
}

/// The test's handle on a running fake Slack. Cheap to clone; all clones see one server.
#[derive(Clone)]
pub struct FakeSlack {
    shared: Arc<Shared>,
    _guard: Arc<ServerGuard>,
}

impl FakeSlack {
    /// Starts the fake on `127.0.0.1:<free port>`. Knows the bot user from the start.
    pub async fn start() -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake Slack: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake Slack: local_addr");
        let mut users = BTreeMap::new();
        users.insert(
            BOT_USER_ID.to_string(),
            FakeUser {
                is_bot: true,
                ..FakeUser::new(BOT_USER_ID, BOT_NAME)
            },
        );
        let shared = Arc::new(Shared {
            base: format!("http://{addr}"),
            started: Instant::now(),
            inner: Mutex::new(Inner {
                counter: 0,
                ts_counter: 0,
                users,
                channels: BTreeMap::new(),
                tickets: HashMap::new(),
                live: Vec::new(),
                failures: Vec::new(),
                hangs: Vec::new(),
                refuse_sockets: false,
                echo_bot_messages: false,
                refresh_grace: DEFAULT_REFRESH_GRACE,
                rec: Recorded::default(),
            }),
        });
        let app = Router::new()
            .route("/api/{method}", any(web_api))
            .route("/link", get(socket_mode))
            .route("/link/", get(socket_mode))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSlack {
            _guard: Arc::new(ServerGuard {
                task,
                shared: shared.clone(),
            }),
            shared,
        }
    }

    // --- addresses and identities -------------------------------------------------------------

    /// `http://127.0.0.1:PORT/api`, for `SlackClientHyperConnector::with_slack_api_url`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.shared.base)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    pub fn app_token(&self) -> &'static str {
        APP_TOKEN
    }

    pub fn bot_token(&self) -> &'static str {
        BOT_TOKEN
    }

    pub fn bot_user_id(&self) -> &'static str {
        BOT_USER_ID
    }

    pub fn team_id(&self) -> &'static str {
        TEAM_ID
    }

    pub fn app_id(&self) -> &'static str {
        APP_ID
    }

    /// A `ts` no other message of this fake has: `1700000000.000100`, `…000200`, …
    /// (bot posts draw from the same counter).
    pub async fn fresh_ts(&self) -> String {
        self.shared.lock().fresh_ts()
    }

    // --- directory ----------------------------------------------------------------------------

    /// Adds a human user whose real and display names are `name`.
    pub async fn add_user(&self, id: &str, name: &str) {
        self.add_user_full(FakeUser::new(id, name)).await;
    }

    /// Adds (or replaces) a user with every field chosen by the test.
    pub async fn add_user_full(&self, user: FakeUser) {
        self.shared.lock().users.insert(user.id.clone(), user);
    }

    /// Adds a public channel the bot is a member of.
    pub async fn add_channel(&self, id: &str, name: &str) {
        self.add_conversation(FakeChannel {
            id: id.into(),
            name: name.into(),
            is_im: false,
            is_private: false,
            im_user: None,
        })
        .await;
    }

    /// Adds the IM between the bot and `user`. [`FakeSlack::dm`] adds it by itself.
    pub async fn add_im(&self, id: &str, user: &str) {
        self.add_conversation(FakeChannel {
            id: id.into(),
            name: String::new(),
            is_im: true,
            is_private: true,
            im_user: Some(user.into()),
        })
        .await;
    }

    pub async fn add_conversation(&self, channel: FakeChannel) {
        self.shared
            .lock()
            .channels
            .insert(channel.id.clone(), channel);
    }

    // --- behaviour switches -------------------------------------------------------------------

    /// The next call of `method` fails with `{"ok":false,"error":code}` (HTTP 200), once.
    pub async fn fail_next(&self, method: &str, code: &str) {
        self.shared
            .lock()
            .failures
            .push((method.into(), Failure::Error(code.into())));
    }

    /// The next call of `method` gets HTTP 429, `Retry-After: secs`, once.
    pub async fn rate_limit_next(&self, method: &str, retry_after_secs: u64) {
        self.shared
            .lock()
            .failures
            .push((method.into(), Failure::RateLimited(retry_after_secs)));
    }

    /// The next `n` calls of `method` get HTTP 429, `Retry-After: secs`, each.
    pub async fn rate_limit_next_n(&self, method: &str, n: usize, retry_after_secs: u64) {
        let mut inner = self.shared.lock();
        for _ in 0..n {
            inner
                .failures
                .push((method.into(), Failure::RateLimited(retry_after_secs)));
        }
    }

    /// Every later call of `method` is accepted and never answered (the connection stays open),
    /// like a Slack endpoint that hangs. The call is recorded with the error `hung`.
    pub async fn hang(&self, method: &str) {
        self.shared.lock().hangs.push((method.into(), None));
    }

    /// Later calls of `method` whose parameter `param` is `value` never answer.
    pub async fn hang_when(&self, method: &str, param: &str, value: &str) {
        self.shared
            .lock()
            .hangs
            .push((method.into(), Some((param.into(), value.into()))));
    }

    /// Calls made from now on answer again (hung calls stay hung).
    pub async fn unhang(&self) {
        self.shared.lock().hangs.clear();
    }

    /// Socket Mode upgrades are refused with 401 (the ticket is still used up), so the client
    /// keeps failing to connect and retrying.
    pub async fn refuse_sockets(&self, on: bool) {
        self.shared.lock().refuse_sockets = on;
    }

    /// Like real Slack with `message.channels`/`message.im` subscriptions: every
    /// `chat.postMessage` comes back as a `message` event with `bot_id` set. Off by default.
    pub async fn echo_bot_messages(&self, on: bool) {
        self.shared.lock().echo_bot_messages = on;
    }

    /// How long after a `disconnect` the fake closes that socket (with a close frame) if the
    /// client has not closed it; 1 s unless changed. Real Slack closes it soon after too.
    pub async fn set_refresh_grace(&self, grace: Duration) {
        self.shared.lock().refresh_grace = grace;
    }

    // --- Socket Mode connections --------------------------------------------------------------

    /// Connections that got `hello`, closed ones included (grows on every reconnect).
    pub async fn connections(&self) -> usize {
        self.shared.lock().rec.connections_opened()
    }

    /// Connections open right now.
    pub async fn open_connections(&self) -> usize {
        self.shared.lock().rec.connections_open()
    }

    /// Waits until `n` connections have got their `hello`; panics with a dump on timeout.
    pub async fn wait_for_connections(&self, n: usize, timeout: Duration) {
        self.wait_until(
            &format!("{n} Socket Mode connection(s)"),
            |r| r.connections_opened() >= n && r.connections_open() > 0,
            timeout,
        )
        .await;
    }

    /// Sends `{"type":"disconnect","reason":"refresh_requested",…}` to the socket envelopes go
    /// to, and sends later envelopes elsewhere. Returns the connection id. slack-morphism
    /// answers by opening a new connection and closing this one; if it has not closed it
    /// within the refresh grace, the fake does ([`Connection::closed`] says who did).
    pub async fn request_refresh(&self) -> u64 {
        self.send_disconnect("refresh_requested").await
    }

    /// Sends a `disconnect` with any reason (`warning`, `link_disabled`, …).
    pub async fn send_disconnect(&self, reason: &str) -> u64 {
        let frame = json!({
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "applink-fake-1"},
        });
        let id = self.send_raw(&frame.to_string()).await;
        let grace = {
            let mut inner = self.shared.lock();
            if let Some(c) = inner.connection_mut(id) {
                c.refresh_requested = true;
            }
            inner.refresh_grace
        };
        let shared = self.shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let inner = shared.lock();
            if let Some(s) = inner.live.iter().find(|s| s.id == id) {
                let _ = s.tx.send(Outgoing::Close(
                    1001,
                    "refresh".into(),
                    format!("closed by the fake {grace:?} after disconnect"),
                ));
            }
        });
        id
    }

    /// Sends any text frame to the socket envelopes go to. Returns the connection id.
    pub async fn send_raw(&self, text: &str) -> u64 {
        let (id, tx) = self.wait_target().await;
        tx.send(Outgoing::Text(text.into()))
            .unwrap_or_else(|_| self.fail(&format!("connection {id} vanished")));
        id
    }

    /// `user` clicks the button `value` (labelled `label`) of the bot's message `message`: an
    /// `interactive` envelope with a `block_actions` payload, as Slack sends it. Returns the
    /// envelope id, to find its ack.
    pub async fn click(&self, user: &str, message: &Posted, label: &str, value: &str) -> String {
        let (n, user_name, channel_name) = {
            let mut inner = self.shared.lock();
            let n = inner.next();
            let user_name = inner.users.get(user).map(|u| u.name.clone());
            let channel_name = inner.channels.get(&message.channel).map(|c| c.name.clone());
            (
                n,
                user_name.unwrap_or_default(),
                channel_name.unwrap_or_default(),
            )
        };
        let envelope_id = format!("env-click-{n}");
        let mut container_message = json!({
            "type": "message", "ts": message.ts, "text": message.text,
            "user": BOT_USER_ID, "bot_id": BOT_ID,
        });
        if let Some(thread) = &message.thread_ts {
            container_message["thread_ts"] = json!(thread);
        }
        let envelope = json!({
            "envelope_id": envelope_id,
            "type": "interactive",
            "accepts_response_payload": false,
            "payload": {
                "type": "block_actions",
                "team": { "id": TEAM_ID, "domain": "ferry" },
                "user": { "id": user, "username": user_name, "name": user_name, "team_id": TEAM_ID },
                "api_app_id": APP_ID,
                "token": VERIFICATION_TOKEN,
                "container": {
                    "type": "message", "message_ts": message.ts,
                    "channel_id": message.channel, "is_ephemeral": false,
                },
                "trigger_id": format!("trigger-click-{n}"),
                "channel": { "id": message.channel, "name": channel_name },
                "message": container_message,
                "actions": [{
                    "type": "button", "action_id": "ferry-0", "block_id": "b1",
                    "text": { "type": "plain_text", "text": label },
                    "value": value, "action_ts": format!("{TS_EPOCH}.{n:06}"),
                }],
            }
        });
        self.send_raw(&envelope.to_string()).await;
        envelope_id
    }

    /// Ends the socket envelopes go to without a close frame (the TCP connection just goes
    /// away), the way a network failure does. Returns the connection id.
    pub async fn drop_socket(&self) -> u64 {
        let (id, tx) = self.wait_target().await;
        let _ = tx.send(Outgoing::Drop);
        id
    }

    /// Ends the socket envelopes go to with a close frame (code 1001, going away).
    pub async fn close_socket(&self) -> u64 {
        let (id, tx) = self.wait_target().await;
        let _ = tx.send(Outgoing::Close(
            1001,
            "going away".into(),
            "closed by test (close frame)".into(),
        ));
        id
    }

    // --- pushing events -----------------------------------------------------------------------

    /// `app_mention` from `user` in `channel`, e.g. `text = "<@UBOT> env staging"`.
    pub async fn mention(&self, user: &str, channel: &str, text: &str, ts: &str) -> EventRef {
        self.push_message(FakeMessage::mention(user, channel, text, ts))
            .await
    }

    /// `app_mention` as a reply in the thread of `thread_ts`.
    pub async fn mention_in_thread(
        &self,
        user: &str,
        channel: &str,
        text: &str,
        ts: &str,
        thread_ts: &str,
    ) -> EventRef {
        self.push_message(FakeMessage::mention(user, channel, text, ts).in_thread(thread_ts))
            .await
    }

    /// `message` in the IM `channel` between `user` and the bot (registers the IM).
    pub async fn dm(&self, user: &str, channel: &str, text: &str, ts: &str) -> EventRef {
        self.push_message(FakeMessage::im(user, channel, text, ts))
            .await
    }

    /// `message` in a public channel (needs `message.channels`; real Slack sends it *besides*
    /// `app_mention` when the text mentions the bot; see [`FakeSlack::mention_both`]).
    pub async fn channel_message(
        &self,
        user: &str,
        channel: &str,
        text: &str,
        ts: &str,
    ) -> EventRef {
        self.push_message(FakeMessage::channel(user, channel, text, ts))
            .await
    }

    /// What real Slack does for `<@UBOT> …` in a channel when the app subscribes to both
    /// `app_mention` and `message.channels`: two events, two event_ids, one message `ts`.
    pub async fn mention_both(
        &self,
        user: &str,
        channel: &str,
        text: &str,
        ts: &str,
    ) -> (EventRef, EventRef) {
        let a = self.mention(user, channel, text, ts).await;
        let b = self.channel_message(user, channel, text, ts).await;
        (a, b)
    }

    /// Pushes any [`FakeMessage`] as an `events_api` envelope with a fresh `event_id`.
    pub async fn push_message(&self, m: FakeMessage) -> EventRef {
        let (event_id, payload) = {
            let mut inner = self.shared.lock();
            if m.kind == MessageKind::Im && !inner.channels.contains_key(&m.channel) {
                inner.channels.insert(
                    m.channel.clone(),
                    FakeChannel {
                        id: m.channel.clone(),
                        name: String::new(),
                        is_im: true,
                        is_private: true,
                        im_user: Some(m.user.clone()),
                    },
                );
            }
            let n = inner.next();
            let event_id = format!("Ev0FAKE{n:06}");
            let mut event = json!({
                "type": if m.kind == MessageKind::Mention { "app_mention" } else { "message" },
                "user": m.user,
                "text": m.wire_text(),
                "ts": m.ts,
                "client_msg_id": format!("c1a2b3c4-fake-4000-8000-{n:012}"),
                "team": TEAM_ID,
                "blocks": rich_text_blocks(&m.text, n),
                "channel": m.channel,
                "event_ts": m.ts,
            });
            match m.kind {
                MessageKind::Mention => {}
                MessageKind::Im => event["channel_type"] = json!("im"),
                MessageKind::Channel => {
                    let private = inner.channels.get(&m.channel).is_some_and(|c| c.is_private);
                    event["channel_type"] = json!(if private { "group" } else { "channel" });
                }
            }
            if let Some(thread_ts) = &m.thread_ts {
                event["thread_ts"] = json!(thread_ts);
                event["parent_user_id"] = json!(m.user);
            }
            let payload = self.shared.event_callback(event, &event_id, &m.ts);
            (event_id, payload)
        };
        self.deliver(EnvelopeKind::EventsApi, payload, Some(event_id), 0)
            .await
    }

    /// Pushes any event object (it must have `type`) as an `events_api` envelope.
    pub async fn push_event(&self, event: Value) -> EventRef {
        let ts = str_param(&event, "event_ts")
            .or_else(|| str_param(&event, "ts"))
            .unwrap_or_else(|| format!("{}.000000", unix_now()));
        let event_id = format!("Ev0FAKE{:06}", self.shared.lock().next());
        let payload = self.shared.event_callback(event, &event_id, &ts);
        self.deliver(EnvelopeKind::EventsApi, payload, Some(event_id), 0)
            .await
    }

    /// `/ferry <text>` typed by `user` in `channel`.
    pub async fn slash(&self, user: &str, channel: &str, text: &str) -> EventRef {
        self.slash_command("/ferry", user, channel, text).await
    }

    /// Any slash command, as a `slash_commands` envelope (`accepts_response_payload: true`).
    /// Its `response_url` points at the fake, which records what is POSTed there.
    pub async fn slash_command(
        &self,
        command: &str,
        user: &str,
        channel: &str,
        text: &str,
    ) -> EventRef {
        let payload = {
            let mut inner = self.shared.lock();
            let n = inner.next();
            let user_name = inner
                .users
                .get(user)
                .map_or_else(|| user.to_lowercase(), |u| u.name.clone());
            let channel_name = match inner.channels.get(channel) {
                Some(c) if c.is_im => "directmessage".to_string(),
                Some(c) => c.name.clone(),
                None if channel.starts_with('D') => "directmessage".to_string(),
                None => "privategroup".to_string(),
            };
            json!({
                "token": VERIFICATION_TOKEN,
                "team_id": TEAM_ID,
                "team_domain": "ferry-fake",
                "channel_id": channel,
                "channel_name": channel_name,
                "user_id": user,
                "user_name": user_name,
                "command": command,
                "text": slack_entities(text),
                "api_app_id": APP_ID,
                "is_enterprise_install": "false",
                "response_url": format!("{}/commands/resp-{n}", self.shared.base),
                "trigger_id": format!("{n}.{TS_EPOCH}.fake{n:08x}"),
            })
        };
        self.deliver(EnvelopeKind::SlashCommands, payload, None, 0)
            .await
    }

    /// Delivers the same payload again, as Slack does when an ack is late or missing: same
    /// `event_id`, new `envelope_id`, `retry_attempt` + 1, `retry_reason: "timeout"`.
    pub async fn redeliver(&self, event: &EventRef) -> EventRef {
        self.deliver(
            event.kind,
            event.payload.clone(),
            event.event_id.clone(),
            event.retry_attempt + 1,
        )
        .await
    }

    // --- reading back -------------------------------------------------------------------------

    /// A copy of everything recorded so far.
    pub async fn snapshot(&self) -> Recorded {
        self.shared.lock().rec.clone()
    }

    pub async fn acks(&self) -> Vec<Ack> {
        self.shared.lock().rec.acks.clone()
    }

    pub async fn ack_for(&self, event: &EventRef) -> Option<Ack> {
        self.shared.lock().rec.ack_for(&event.envelope_id).cloned()
    }

    pub async fn envelopes(&self) -> Vec<Envelope> {
        self.shared.lock().rec.envelopes.clone()
    }

    pub async fn posts(&self) -> Vec<Posted> {
        self.shared.lock().rec.posts.clone()
    }

    pub async fn updates(&self) -> Vec<Updated> {
        self.shared.lock().rec.updates.clone()
    }

    pub async fn calls(&self) -> Vec<ApiCall> {
        self.shared.lock().rec.calls.clone()
    }

    /// The calls of one method, in order.
    pub async fn calls_to(&self, method: &str) -> Vec<ApiCall> {
        self.shared
            .lock()
            .rec
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    pub async fn connection_log(&self) -> Vec<Connection> {
        self.shared.lock().rec.connections.clone()
    }

    // --- waiting ------------------------------------------------------------------------------

    /// Polls until `pred` holds for what was recorded, and returns that record. On timeout,
    /// panics with a dump of everything recorded. [`FakeSlack::wait_until`] names the condition.
    pub async fn wait_for<F>(&self, pred: F, timeout: Duration) -> Recorded
    where
        F: Fn(&Recorded) -> bool,
    {
        self.wait_until("a condition of the test", pred, timeout)
            .await
    }

    /// [`FakeSlack::wait_for`] whose timeout panic says what it was waiting for.
    pub async fn wait_until<F>(&self, what: &str, pred: F, timeout: Duration) -> Recorded
    where
        F: Fn(&Recorded) -> bool,
    {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let inner = self.shared.lock();
                if pred(&inner.rec) {
                    return inner.rec.clone();
                }
            }
            if Instant::now() >= deadline {
                self.fail(&format!("timed out after {timeout:?} waiting for {what}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until at least `n` messages were posted; returns all posts.
    pub async fn wait_for_posts(&self, n: usize, timeout: Duration) -> Vec<Posted> {
        self.wait_until(
            &format!("{n} chat.postMessage call(s)"),
            |r| r.posts.len() >= n,
            timeout,
        )
        .await
        .posts
    }

    /// Waits until at least `n` updates were made; returns all updates.
    pub async fn wait_for_updates(&self, n: usize, timeout: Duration) -> Vec<Updated> {
        self.wait_until(
            &format!("{n} chat.update call(s)"),
            |r| r.updates.len() >= n,
            timeout,
        )
        .await
        .updates
    }

    /// Waits for the ack of the latest delivery of `event`.
    pub async fn wait_for_ack(&self, event: &EventRef, timeout: Duration) -> Ack {
        let id = event.envelope_id.clone();
        let r = self
            .wait_until(
                &format!("the ack of envelope {id}"),
                |r| r.ack_for(&id).is_some(),
                timeout,
            )
            .await;
        r.ack_for(&id).cloned().expect("just seen")
    }

    /// Panics with `msg` and a dump of everything recorded.
    pub fn fail(&self, msg: &str) -> ! {
        let dump = self.shared.lock().rec.dump();
        panic!("fake Slack: {msg}\n{dump}");
    }

    // --- internals ----------------------------------------------------------------------------

    async fn wait_target(&self) -> (u64, mpsc::UnboundedSender<Outgoing>) {
        let deadline = Instant::now() + PUSH_WAIT;
        loop {
            if let Some(s) = self.shared.lock().target() {
                return (s.id, s.tx.clone());
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "no open Socket Mode connection to use after {PUSH_WAIT:?}"
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn deliver(
        &self,
        kind: EnvelopeKind,
        payload: Value,
        event_id: Option<String>,
        retry_attempt: u32,
    ) -> EventRef {
        let deadline = Instant::now() + PUSH_WAIT;
        loop {
            match self
                .shared
                .send_envelope(kind, &payload, event_id.as_deref(), retry_attempt)
            {
                Ok(envelope_id) => {
                    return EventRef {
                        kind,
                        envelope_id,
                        event_id,
                        retry_attempt,
                        payload,
                    };
                }
                Err(why) if Instant::now() >= deadline => {
                    self.fail(&format!("cannot push a {kind:?} envelope: {why}"))
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Web API
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum TokenKind {
    Bot,
    App,
}

/// Slack's answers for a missing, wrong or wrong-kind token.
fn check_token(token: Option<&str>, want: TokenKind) -> Result<(), &'static str> {
    match (token, want) {
        (None, _) => Err("not_authed"),
        (Some(BOT_TOKEN), TokenKind::Bot) | (Some(APP_TOKEN), TokenKind::App) => Ok(()),
        (Some(BOT_TOKEN), _) | (Some(APP_TOKEN), _) => Err("not_allowed_token_type"),
        (Some(_), _) => Err("invalid_auth"),
    }
}

/// Query string plus body (JSON or form) as one object.
async fn request_params(uri: &Uri, headers: &HeaderMap, body: Bytes) -> Value {
    let mut params = Map::new();
    if let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(uri) {
        for (k, v) in pairs {
            params.insert(k, Value::String(v));
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) {
            params.extend(map);
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let req = Request::builder()
            .method(Method::POST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("form request");
        if let Ok(axum::Form(pairs)) =
            axum::Form::<Vec<(String, String)>>::from_request(req, &()).await
        {
            for (k, v) in pairs {
                let value = match k.as_str() {
                    "blocks" => serde_json::from_str(&v).unwrap_or(Value::String(v)),
                    _ => Value::String(v),
                };
                params.insert(k, value);
            }
        }
    }
    Value::Object(params)
}

async fn web_api(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    http_method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = request_params(&uri, &headers, body).await;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
        .or_else(|| str_param(&params, "token"));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let at_ms = shared.ms();

    let hangs = shared.lock().hangs.iter().any(|(m, when)| {
        *m == method
            && when
                .as_ref()
                .is_none_or(|(k, v)| str_param(&params, k).as_deref() == Some(v.as_str()))
    });
    if hangs {
        shared.lock().rec.calls.push(ApiCall {
            method,
            http_method: http_method.to_string(),
            content_type,
            token,
            params,
            error: Some("hung".into()),
            at_ms,
        });
        return std::future::pending().await;
    }
    let (response, error) = dispatch(&shared, &method, token.as_deref(), &params, at_ms);
    shared.lock().rec.calls.push(ApiCall {
        method,
        http_method: http_method.to_string(),
        content_type,
        token,
        params,
        error,
        at_ms,
    });
    response
}

/// Answers one Web API call; returns the response and the error code if it failed.
fn dispatch(
    shared: &Arc<Shared>,
    method: &str,
    token: Option<&str>,
    params: &Value,
    at_ms: u64,
) -> (Response, Option<String>) {
    let err = |code: &str| (api_error(code), Some(code.to_string()));

    let want = if method == "apps.connections.open" {
        TokenKind::App
    } else {
        TokenKind::Bot
    };
    if let Err(code) = check_token(token, want) {
        return err(code);
    }

    let mut inner = shared.lock();
    if let Some(i) = inner.failures.iter().position(|(m, _)| m == method) {
        match inner.failures.remove(i).1 {
            Failure::Error(code) => return err(&code),
            Failure::RateLimited(secs) => {
                let resp = (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, secs.to_string())],
                    axum::Json(json!({"ok": false, "error": "ratelimited"})),
                )
                    .into_response();
                return (resp, Some("ratelimited".into()));
            }
        }
    }

    match method {
        "auth.test" => (
            api_ok(json!({
                "url": format!("{}/", shared.base),
                "team": "Ferry Fake",
                "user": BOT_NAME,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": false,
            })),
            None,
        ),

        "apps.connections.open" => {
            let n = inner.next();
            let ticket = format!("fake-ticket-{n}");
            inner.tickets.insert(ticket.clone(), false);
            let url = format!(
                "{}/link?ticket={ticket}&app_id={APP_ID}",
                shared.base.replacen("http://", "ws://", 1)
            );
            (api_ok(json!({"url": url})), None)
        }

        "chat.postMessage" => {
            let Some(channel) = str_param(params, "channel").filter(|c| !c.is_empty()) else {
                return err("channel_not_found");
            };
            let has_content = ["text", "blocks", "attachments", "markdown_text"]
                .iter()
                .any(|k| non_empty(params.get(*k)));
            if !has_content {
                return err("no_text");
            }
            let text = str_param(params, "text");
            let blocks = params.get("blocks").cloned().filter(|b| !b.is_null());
            let thread_ts = str_param(params, "thread_ts").filter(|t| !t.is_empty());
            let ts = inner.fresh_ts();
            let mut message = json!({
                "type": "message",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "app_id": APP_ID,
                "team": TEAM_ID,
                "text": text.clone().unwrap_or_default(),
                "ts": ts,
            });
            if let Some(b) = &blocks {
                message["blocks"] = b.clone();
            }
            if let Some(t) = &thread_ts {
                message["thread_ts"] = json!(t);
            }
            inner.rec.posts.push(Posted {
                channel: channel.clone(),
                text: text.clone(),
                blocks: blocks.clone(),
                thread_ts: thread_ts.clone(),
                ts: ts.clone(),
                body: params.clone(),
                at_ms,
            });
            if inner.echo_bot_messages {
                let is_im = inner.channels.get(&channel).is_some_and(|c| c.is_im);
                let mut event = message.clone();
                event["channel"] = json!(channel);
                event["event_ts"] = json!(ts);
                event["channel_type"] = json!(if is_im { "im" } else { "channel" });
                let n = inner.next();
                drop(inner);
                let event_id = format!("Ev0FAKE{n:06}");
                let payload = shared.event_callback(event, &event_id, &ts);
                // Best effort, like Slack: no socket, no echo.
                let _ = shared.send_envelope(EnvelopeKind::EventsApi, &payload, Some(&event_id), 0);
            }
            (
                api_ok(json!({"channel": channel, "ts": ts, "message": message})),
                None,
            )
        }

        "chat.update" => {
            let channel = str_param(params, "channel").unwrap_or_default();
            let ts = str_param(params, "ts").unwrap_or_default();
            if channel.is_empty() {
                return err("channel_not_found");
            }
            if !inner
                .rec
                .posts
                .iter()
                .any(|p| p.channel == channel && p.ts == ts)
            {
                // Only the bot's own messages, posted through this fake, can be updated.
                return err("message_not_found");
            }
            let text = str_param(params, "text");
            let blocks = params.get("blocks").cloned().filter(|b| !b.is_null());
            inner.rec.updates.push(Updated {
                channel: channel.clone(),
                ts: ts.clone(),
                text: text.clone(),
                blocks: blocks.clone(),
                body: params.clone(),
                at_ms,
            });
            let mut message = json!({
                "type": "message",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "app_id": APP_ID,
                "team": TEAM_ID,
                "text": text.clone().unwrap_or_default(),
            });
            if let Some(b) = blocks {
                message["blocks"] = b;
            }
            (
                api_ok(json!({
                    "channel": channel,
                    "ts": ts,
                    "text": text.unwrap_or_default(),
                    "message": message,
                })),
                None,
            )
        }

        "users.info" => {
            let id = str_param(params, "user").unwrap_or_default();
            let Some(u) = inner.users.get(&id) else {
                return err("user_not_found");
            };
            (api_ok(json!({"user": user_json(u, &shared.base)})), None)
        }

        "conversations.info" => {
            let id = str_param(params, "channel").unwrap_or_default();
            let Some(c) = inner.channels.get(&id) else {
                return err("channel_not_found");
            };
            (api_ok(json!({"channel": channel_json(c)})), None)
        }

        _ => err("unknown_method"),
    }
}

fn user_json(u: &FakeUser, base: &str) -> Value {
    json!({
        "id": u.id,
        "team_id": TEAM_ID,
        "name": u.name,
        "deleted": u.deleted,
        "color": "9f69e7",
        "real_name": u.real_name,
        "tz": "Europe/London",
        "tz_label": "Greenwich Mean Time",
        "tz_offset": 0,
        "profile": {
            "real_name": u.real_name,
            "real_name_normalized": u.real_name,
            "display_name": u.display_name,
            "display_name_normalized": u.display_name,
            "avatar_hash": "g0fake",
            "status_text": "",
            "status_emoji": "",
            "image_48": format!("{base}/avatars/{}_48.png", u.id),
            "image_72": format!("{base}/avatars/{}_72.png", u.id),
            "team": TEAM_ID,
        },
        "is_admin": false,
        "is_owner": false,
        "is_primary_owner": false,
        "is_restricted": false,
        "is_ultra_restricted": false,
        "is_bot": u.is_bot,
        "is_app_user": false,
        "updated": TS_EPOCH,
    })
}

fn channel_json(c: &FakeChannel) -> Value {
    if c.is_im {
        json!({
            "id": c.id,
            "created": TS_EPOCH,
            "is_archived": false,
            "is_im": true,
            "is_org_shared": false,
            "context_team_id": TEAM_ID,
            "user": c.im_user,
            "is_user_deleted": false,
            "last_read": "0000000000.000000",
            "priority": 0,
        })
    } else {
        json!({
            "id": c.id,
            "name": c.name,
            "is_channel": !c.is_private,
            "is_group": c.is_private,
            "is_im": false,
            "is_mpim": false,
            "is_private": c.is_private,
            "created": TS_EPOCH,
            "is_archived": false,
            "is_general": false,
            "unlinked": 0,
            "name_normalized": c.name,
            "is_shared": false,
            "is_org_shared": false,
            "is_member": true,
            "creator": "U0CREATOR",
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
        })
    }
}
// ---------------------------------------------------------------------------------------------
// Socket Mode
// ---------------------------------------------------------------------------------------------

async fn socket_mode(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let ticket = query.get("ticket").cloned().unwrap_or_default();
    {
        let mut inner = shared.lock();
        match inner.tickets.get_mut(&ticket) {
            Some(used) if !*used => *used = true,
            _ => return (StatusCode::UNAUTHORIZED, "invalid or used ticket").into_response(),
        }
        if inner.refuse_sockets {
            return (StatusCode::UNAUTHORIZED, "ticket expired").into_response();
        }
    }
    ws.on_upgrade(move |socket| serve_socket(shared, socket, ticket))
}

async fn serve_socket(shared: Arc<Shared>, mut socket: WebSocket, ticket: String) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = {
        let mut inner = shared.lock();
        let id = inner.rec.connections.len() as u64 + 1;
        let open = inner.rec.connections_open() + 1;
        let hello = json!({
            "type": "hello",
            "num_connections": open,
            "debug_info": {
                "host": "applink-fake-1",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": APP_ID},
        });
        // Queued first, so nothing can overtake the hello.
        let _ = tx.send(Outgoing::Text(hello.to_string()));
        inner.rec.connections.push(Connection {
            id,
            ticket,
            opened_ms: shared.ms(),
            refresh_requested: false,
            closed: None,
            closed_ms: None,
        });
        inner.live.push(LiveSocket { id, tx });
        id
    };

    let reason = loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outgoing::Text(text)) => {
                    if let Err(e) = socket.send(Message::Text(text.into())).await {
                        break format!("send failed: {e}");
                    }
                }
                Some(Outgoing::Close(code, why, log)) => {
                    let frame = CloseFrame { code, reason: why.into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    // Keep reading: the client answers with its own close frame.
                    let until = tokio::time::sleep(Duration::from_secs(2));
                    tokio::pin!(until);
                    loop {
                        tokio::select! {
                            m = socket.recv() => match m {
                                Some(Ok(Message::Text(t))) => record_frame(&shared, id, t.as_str()),
                                Some(Ok(_)) => {}
                                _ => break,
                            },
                            _ = &mut until => break,
                        }
                    }
                    break log;
                }
                Some(Outgoing::Drop) => break "dropped by test (no close frame)".to_string(),
                None => break "fake shut down".to_string(),
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => record_frame(&shared, id, text.as_str()),
                Some(Ok(Message::Close(frame))) => {
                    break format!("client sent close frame {frame:?}");
                }
                Some(Ok(Message::Binary(b))) => {
                    record_frame(&shared, id, &format!("<binary {} bytes>", b.len()));
                }
                Some(Ok(_)) => {} // ping/pong: tungstenite answers pings by itself
                Some(Err(e)) => break format!("error: {e}"),
                None => break "eof".to_string(),
            },
        }
    };

    let mut inner = shared.lock();
    inner.live.retain(|s| s.id != id);
    let ms = shared.ms();
    if let Some(c) = inner.connection_mut(id) {
        c.closed = Some(reason);
        c.closed_ms = Some(ms);
    }
    drop(inner);
    drop(socket); // no close frame unless one was sent above
}

fn record_frame(shared: &Shared, connection: u64, text: &str) {
    let at_ms = shared.ms();
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let mut inner = shared.lock();
    match parsed.as_ref().and_then(|v| str_param(v, "envelope_id")) {
        Some(envelope_id) => inner.rec.acks.push(Ack {
            envelope_id,
            payload: parsed.as_ref().and_then(|v| v.get("payload")).cloned(),
            connection,
            raw: text.to_string(),
            at_ms,
        }),
        None => inner.rec.frames.push(Frame {
            connection,
            text: text.to_string(),
            at_ms,
        }),
    }
}
