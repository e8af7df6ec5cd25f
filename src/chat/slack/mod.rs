//! The Slack transport: Socket Mode (no public URL needed) through slack-morphism. Commands come
//! from @mentions, direct messages, messages starting with the bot's name or a prefix in
//! channels the bot is in, and the `/ferry` slash command. Replies go to the thread of the
//! message that asked; a converge's progress edits one message in place. Identities are
//! `slack:<user id>`; display and channel names are looked up (and cached) for replies, the
//! audit trail and channel bindings.

mod thread;

use super::addressing::strip_address;
use super::conversation::{Alerts, Format, Incoming, Thread, handle};
use super::decode::slack_text;
use super::markdown::{SLACK, escape_text};
use super::names::{NAME_TTL, Names};
use super::{CALL_TIMEOUT, ChatError, Transport, TransportError, timed};
use crate::app::App;
use crate::config::SlackConfig;
use crate::domain::{Actor, Origin};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use thread::*;

/// Slack's message text limit is 40k, but long messages are unreadable; split well before.
const MESSAGE_LIMIT: usize = 3500;

/// The Socket Mode transport.
pub struct SlackTransport {
    client: Arc<SlackHyperClient>,
    app_token: SlackApiToken,
    bot_token: SlackApiToken,
    bot_user: String,
    call_timeout: Duration,
    name_ttl: Duration,
    /// Set when Socket Mode says hello (a connection is up), cleared when ferry stops it.
    live: super::Live,
}

/// What the event callbacks (plain `fn`s, as slack-morphism requires) reach through the
/// listener's user state.
struct Shared {
    app: Arc<App>,
    client: Arc<SlackHyperClient>,
    bot_token: SlackApiToken,
    bot_user: String,
    /// Every Web API call gives up after this long.
    call_timeout: Duration,
    /// Display and channel names, cached for a while: a burst of events from one new user
    /// makes one users.info call (both methods are rate limited), and a lookup that hangs
    /// holds up only events naming the same user or channel, until the timeout.
    users: Names,
    channels: Names,
    live: super::Live,
}

/// Builds the client; with `api_url` (a Slack-compatible server, e.g. a test fake) plain
/// `http://` is allowed too.
fn client(api_url: Option<&str>) -> Result<Arc<SlackHyperClient>, TransportError> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| TransportError::Failed(format!("slack: no TLS root certificates: {e}")))?;
    let https = if api_url.is_some() {
        builder.https_or_http()
    } else {
        builder.https_only()
    }
    .enable_http1()
    .enable_http2()
    .build();
    let mut connector = SlackClientHyperConnector::with_connector(https);
    if let Some(url) = api_url {
        connector = connector.with_slack_api_url(url);
    }
    Ok(Arc::new(SlackClient::new(connector)))
}

impl SlackTransport {
    /// Reads the tokens from the environment variables `config` names and checks them with
    /// Slack (`auth.test`), so that a bad token fails at start-up with a clear error.
    pub async fn connect(config: &SlackConfig) -> Result<SlackTransport, TransportError> {
        let app_token = super::secret_from_env(&config.app_token_env)?;
        let bot_token = super::secret_from_env(&config.bot_token_env)?;
        let client = client(config.api_url.as_deref())?;
        let bot_token = SlackApiToken::new(bot_token.into());
        let session = client.open_session(&bot_token);
        let auth = timed("slack auth.test", CALL_TIMEOUT, session.auth_test())
            .await
            .map_err(|e| {
                TransportError::Auth(format!(
                    "slack: the bot token in {} was refused: {e}",
                    config.bot_token_env
                ))
            })?;
        Ok(SlackTransport {
            client,
            app_token: SlackApiToken::new(app_token.into()),
            bot_token,
            bot_user: auth.user_id.to_string(),
            call_timeout: CALL_TIMEOUT,
            live: Default::default(),
            name_ttl: NAME_TTL,
        })
    }

    /// How long one Web API call may take (10 s unless changed; tests shorten it).
    pub fn with_call_timeout(mut self, limit: Duration) -> SlackTransport {
        self.call_timeout = limit;
        self
    }

    /// How long a looked-up user or channel name is trusted (10 minutes unless changed).
    pub fn with_name_ttl(mut self, ttl: Duration) -> SlackTransport {
        self.name_ttl = ttl;
        self
    }
}

#[async_trait::async_trait]
impl Transport for SlackTransport {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn live(&self) -> super::Live {
        self.live.clone()
    }

    async fn run(
        &self,
        app: Arc<App>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), TransportError> {
        let shared = Arc::new(Shared {
            app,
            client: self.client.clone(),
            bot_token: self.bot_token.clone(),
            bot_user: self.bot_user.clone(),
            call_timeout: self.call_timeout,
            users: Names::new(self.name_ttl, self.call_timeout),
            channels: Names::new(self.name_ttl, self.call_timeout),
            live: self.live.clone(),
        });
        let environment = Arc::new(
            SlackClientEventsListenerEnvironment::new(self.client.clone()).with_user_state(shared),
        );
        let callbacks = SlackSocketModeListenerCallbacks::new()
            .with_hello_events(on_hello)
            .with_push_events(on_push)
            .with_command_events(on_command)
            .with_interaction_events(on_interaction);
        let config = SlackClientSocketModeConfig::new().with_max_connections_count(1);
        let listener = SlackClientSocketModeListener::new(&config, environment, callbacks);
        let listening = timed(
            "slack apps.connections.open",
            self.call_timeout,
            listener.listen_for(&self.app_token),
        );
        listening.await.map_err(|e| {
            TransportError::Auth(format!(
                "slack: cannot open Socket Mode (is the app token right?): {e}"
            ))
        })?;
        listener.start().await;
        tracing::info!(bot = %self.bot_user, "slack: connected in Socket Mode");
        super::stopped(&mut shutdown).await;
        self.live.store(false, std::sync::atomic::Ordering::SeqCst);
        listener.shutdown().await;
        Ok(())
    }
}

async fn shared(states: &SlackClientEventsUserState) -> Option<Arc<Shared>> {
    states.read().await.get_user_state::<Arc<Shared>>().cloned()
}

/// Socket Mode's `hello`: a connection is up and events will flow. (slack-morphism reconnects
/// by itself and tells of no drop, so a connection lost later shows only through its next hello
/// or ferry's own stop.)
async fn on_hello<Hello: Send>(
    // slack-morphism does not export the hello event's type; nothing of it is needed.
    _event: Hello,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) {
    if let Some(shared) = shared(&states).await {
        shared.live.store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::info!("slack: Socket Mode connection up");
    }
}

/// Events API envelopes: mentions, direct messages, addressed channel messages. Returns at
/// once so the envelope is acked promptly; the command runs in its own task.
async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let Some(shared) = shared(&states).await else {
        return Ok(());
    };
    let event_id = event.event_id.to_string();
    let found = match event.event {
        SlackEventCallbackBody::AppMention(mention) => {
            let text = mention.content.text.unwrap_or_default();
            let command = slack_text(strip_mention(&text, &shared.bot_user));
            let thread = mention
                .origin
                .thread_ts
                .clone()
                .unwrap_or(mention.origin.ts.clone());
            Some((
                mention.user.to_string(),
                mention.channel.to_string(),
                false,
                thread,
                command,
            ))
        }
        SlackEventCallbackBody::Message(message) => {
            let is_im = message
                .origin
                .channel_type
                .as_ref()
                .is_some_and(|t| t.to_string() == "im");
            let from_person = message.sender.bot_id.is_none() && message.subtype.is_none();
            let text = message
                .content
                .as_ref()
                .and_then(|c| c.text.clone())
                .unwrap_or_default();
            let (Some(user), Some(channel)) =
                (message.sender.user.clone(), message.origin.channel.clone())
            else {
                return Ok(());
            };
            let command = if is_im {
                let typed = slack_text(strip_mention(&text, &shared.bot_user));
                let bot = &shared.app.config.bot;
                Some(
                    strip_address(&typed, &bot.name, &bot.prefixes)
                        .unwrap_or(&typed)
                        .to_string(),
                )
            } else if text.starts_with(&format!("<@{}>", shared.bot_user)) {
                None // the app_mention event for the same message runs it
            } else {
                let typed = slack_text(&text);
                let bot = &shared.app.config.bot;
                strip_address(&typed, &bot.name, &bot.prefixes).map(str::to_string)
            };
            let thread = message
                .origin
                .thread_ts
                .clone()
                .unwrap_or(message.origin.ts.clone());
            match (from_person, command) {
                (true, Some(command)) => Some((
                    user.to_string(),
                    channel.to_string(),
                    is_im,
                    thread,
                    command,
                )),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some((user, channel, is_im, thread_ts, text)) = found {
        tokio::spawn(async move {
            let incoming = shared
                .incoming(event_id, &user, &channel, is_im, text)
                .await;
            shared.reply(&incoming, channel, Some(thread_ts)).await;
        });
    }
    Ok(())
}

/// The `/ferry <command>` slash command: acknowledged at once (only the asker sees that), the
/// reply posted in the channel, threaded under a line saying who asked what.
async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let text = slack_text(&event.text.clone().unwrap_or_default());
    let ack = SlackCommandEventResponse::new(SlackMessageContent::new().with_text(format!(
        "Running `{}`…",
        escape_text(&text.replace('`', "'"), SLACK)
    )));
    let Some(shared) = shared(&states).await else {
        return Ok(ack);
    };
    tokio::spawn(async move {
        let user = event.user_id.to_string();
        let channel = event.channel_id.to_string();
        let is_im = channel.starts_with('D');
        let incoming = shared
            .incoming(
                event.trigger_id.to_string(),
                &user,
                &channel,
                is_im,
                text.trim().to_string(),
            )
            .await;
        let header = shared.thread(channel.clone(), None);
        let asked = format!(
            "<@{user}> ran `/ferry {}`",
            escape_text(&incoming.text.replace('`', "'"), SLACK)
        );
        let thread_ts = match header.post(&asked).await {
            Ok(ts) => Some(SlackTs::new(ts)),
            Err(e) => {
                tracing::error!(error = %e, "slack: could not post the slash command's header");
                None
            }
        };
        shared.reply(&incoming, channel, thread_ts).await;
    });
    Ok(ack)
}

/// A click on an Approve / Deny button: runs the button's command as the person who clicked,
/// replying in the thread of the message that carried the buttons.
async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let SlackInteractionEvent::BlockActions(actions) = event else {
        return Ok(());
    };
    let Some(shared) = shared(&states).await else {
        return Ok(());
    };
    let Some(user) = actions.user.as_ref().map(|u| u.id.to_string()) else {
        return Ok(());
    };
    let channel = match (&actions.channel, &actions.container) {
        (Some(channel), _) => channel.id.to_string(),
        (None, SlackInteractionActionContainer::Message(m)) => m
            .channel_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        _ => return Ok(()),
    };
    let thread_ts = actions
        .message
        .as_ref()
        .map(|m| m.origin.thread_ts.clone().unwrap_or(m.origin.ts.clone()));
    for (i, action) in actions.actions.unwrap_or_default().into_iter().enumerate() {
        let Some(command) = action
            .value
            .filter(|v| crate::command::is_button_command(v))
        else {
            continue;
        };
        let event_id = format!("{}:{i}", actions.trigger_id);
        let (shared, user, channel, thread_ts) = (
            shared.clone(),
            user.clone(),
            channel.clone(),
            thread_ts.clone(),
        );
        tokio::spawn(async move {
            let is_im = channel.starts_with('D');
            let incoming = shared
                .incoming(event_id, &user, &channel, is_im, command)
                .await;
            shared.reply(&incoming, channel, thread_ts).await;
        });
    }
    Ok(())
}

/// `<@UBOT> env staging` → `env staging`.
fn strip_mention<'a>(text: &'a str, bot_user: &str) -> &'a str {
    let text = text.trim();
    let mention = format!("<@{bot_user}>");
    text.strip_prefix(&mention)
        .map(str::trim_start)
        .unwrap_or(text)
}

impl Shared {
    /// Where replies in `channel` go: the thread of `thread_ts`, or new messages when `None`.
    fn thread(&self, channel: String, thread_ts: Option<SlackTs>) -> SlackThread {
        SlackThread {
            client: self.client.clone(),
            token: self.bot_token.clone(),
            channel,
            thread_ts,
            timeout: self.call_timeout,
        }
    }

    /// Runs `incoming`, replying in `thread_ts` of `channel` (a new message when `None`).
    async fn reply(&self, incoming: &Incoming, channel: String, thread_ts: Option<SlackTs>) {
        let thread = self.thread(channel, thread_ts);
        handle(
            &self.app,
            incoming,
            &thread,
            Format {
                dialect: SLACK,
                limit: MESSAGE_LIMIT,
            },
            Some(self),
        )
        .await;
    }

    async fn incoming(
        &self,
        event_id: String,
        user: &str,
        channel: &str,
        is_im: bool,
        text: String,
    ) -> Incoming {
        let display = self.user_name(user).await;
        let channel_name = if is_im {
            "direct message".to_string()
        } else {
            self.channel_name(channel).await
        };
        Incoming {
            event_id,
            actor: Actor::new("slack", user, &display),
            origin: Origin {
                platform: "slack".into(),
                channel: Some(channel_name),
                channel_ids: if is_im {
                    Vec::new()
                } else {
                    vec![channel.to_string()]
                },
            },
            text,
        }
    }

    /// The display name of `user`, or its id when Slack cannot say.
    async fn user_name(&self, user: &str) -> String {
        let lookup = || async {
            let session = self.client.open_session(&self.bot_token);
            let request = SlackApiUsersInfoRequest::new(SlackUserId::new(user.to_string()));
            let info = session
                .users_info(&request)
                .await
                .map_err(|e| ChatError::call("slack users.info", e))?;
            let profile = info.user.profile;
            let display = profile.as_ref().and_then(|p| p.display_name.clone());
            let real = profile.and_then(|p| p.real_name);
            Ok([display, real, info.user.name]
                .into_iter()
                .flatten()
                .find(|n| !n.is_empty())
                .unwrap_or_else(|| user.to_string()))
        };
        (self.users.get(user, lookup).await).unwrap_or_else(|| user.to_string())
    }

    /// `#deploys` for channel `C123`, for channel bindings and the audit trail.
    async fn channel_name(&self, channel: &str) -> String {
        let lookup = || async {
            let session = self.client.open_session(&self.bot_token);
            let request =
                SlackApiConversationsInfoRequest::new(SlackChannelId::new(channel.to_string()));
            let info = session
                .conversations_info(&request)
                .await
                .map_err(|e| ChatError::call("slack conversations.info", e))?;
            Ok(format!(
                "#{}",
                info.channel.name.unwrap_or_else(|| channel.to_string())
            ))
        };
        (self.channels.get(channel, lookup).await).unwrap_or_else(|| format!("#{channel}"))
    }
}

#[async_trait::async_trait]
impl Alerts for Shared {
    fn platform(&self) -> &'static str {
        "slack"
    }

    /// `channel` is an id (`C123`) or a name (`#alerts`), both of which chat.postMessage takes.
    async fn alert(&self, channel: &str, text: &str) -> Result<(), ChatError> {
        let thread = self.thread(channel.to_string(), None);
        thread
            .post(&super::markdown::render(
                &crate::command::Reply::failed(text),
                SLACK,
            ))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::strip_mention;

    #[test]
    fn mentions_are_stripped() {
        assert_eq!(strip_mention("<@UBOT> env staging", "UBOT"), "env staging");
        assert_eq!(strip_mention("env staging", "UBOT"), "env staging");
    }
}
