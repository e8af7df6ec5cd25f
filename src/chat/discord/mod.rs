//! The Discord transport: serenity's gateway client (with the message content intent).
//! Commands come from mentions, direct messages and the prefix or bot name, and from the
//! `/ferry` application command registered at start-up. Replies are Discord replies (or the
//! interaction's response); a converge's progress edits one message; the 2000-character limit
//! is met by splitting. No message ferry sends mentions anyone (`allowed_mentions` parses
//! nothing) and every REST call has a timeout. A reply Discord refuses with 429 Too Many Requests
//! is tried again after a wait, in order. Identities are `discord:<user id>`; channels are
//! bound by id or `<server id>/#<name>`, since names repeat across servers.

mod thread;

use super::addressing::strip_address;
use super::conversation::{Alerts, Format, Incoming, Thread, handle};
use super::decode::discord_text;
use super::markdown::{DISCORD, MAX_PIECES};
use super::names::{NAME_TTL, Names};
use super::{CALL_TIMEOUT, ChatError, Transport, TransportError};
use crate::app::App;
use crate::config::DiscordConfig;
use crate::domain::{Actor, Origin};
use serenity::all::{
    ButtonStyle, ChannelId, Command, CommandInteraction, CommandOptionType, ComponentInteraction,
    Context, CreateActionRow, CreateAllowedMentions, CreateButton, CreateCommand,
    CreateCommandOption, CreateInteractionResponseFollowup, CreateMessage, EditInteractionResponse,
    EditMessage, EventHandler, GatewayIntents, GuildId, Http, HttpBuilder, Interaction, Message,
    MessageId, Ready,
};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use thread::*;

/// Discord's limit is 2000 characters; stay below it with room for continuation marks.
const MESSAGE_LIMIT: usize = 1900;

/// The gateway transport.
pub struct DiscordTransport {
    token: String,
    api_url: Option<String>,
    call_timeout: Duration,
    name_ttl: Duration,
    /// Up while the gateway shard is connected (READY, RESUMED, or a stage update to
    /// connected); down on any other stage and when ferry stops.
    live: super::Live,
}

/// No mentions at all: whatever a message says, nobody is pinged (`{"parse": []}`). Set on
/// every message, edit and interaction reply, and as the client's default.
fn no_mentions() -> CreateAllowedMentions {
    CreateAllowedMentions::new()
}

impl DiscordTransport {
    /// Reads the token from the environment variable `config` names.
    pub fn from_config(config: &DiscordConfig) -> Result<DiscordTransport, TransportError> {
        Ok(DiscordTransport {
            token: super::secret_from_env(&config.token_env)?,
            api_url: config.api_url.clone(),
            call_timeout: CALL_TIMEOUT,
            name_ttl: NAME_TTL,
            live: Default::default(),
        })
    }

    /// How long one REST call may take (10 s unless changed; tests shorten it).
    pub fn with_call_timeout(mut self, limit: Duration) -> DiscordTransport {
        self.call_timeout = limit;
        self
    }

    /// How long a looked-up channel name is trusted (10 minutes unless changed).
    pub fn with_name_ttl(mut self, ttl: Duration) -> DiscordTransport {
        self.name_ttl = ttl;
        self
    }

    /// serenity's REST client: every request bounded by the call timeout (reqwest's, so it
    /// covers serenity's own calls too), mentions off by default.
    fn http(&self) -> Result<Http, TransportError> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(self.call_timeout)
            .build()
            .map_err(|e| {
                TransportError::Failed(format!("discord: cannot build the client: {e}"))
            })?;
        let builder = HttpBuilder::new(&self.token)
            .client(client)
            .default_allowed_mentions(no_mentions());
        Ok(match &self.api_url {
            // serenity only honours a base URL with its rate limiter off (serenity#1739);
            // production keeps the limiter and Discord's own URL.
            Some(url) => builder
                .proxy(url.trim_end_matches('/'))
                .ratelimiter_disabled(true)
                .build(),
            None => builder.build(),
        })
    }
}

#[async_trait::async_trait]
impl Transport for DiscordTransport {
    fn live(&self) -> super::Live {
        self.live.clone()
    }

    fn name(&self) -> &'static str {
        "discord"
    }

    async fn run(
        &self,
        app: Arc<App>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), TransportError> {
        let http = self.http()?;
        let me = http.get_current_user().await.map_err(|e| {
            TransportError::Auth(format!("discord: the bot token was refused: {e}"))
        })?;
        let handler = Handler {
            app,
            bot: me.id.get(),
            channels: Names::new(self.name_ttl, self.call_timeout),
            timeout: self.call_timeout,
            live: self.live.clone(),
        };
        let intents = GatewayIntents::GUILD_MESSAGES
            | GatewayIntents::DIRECT_MESSAGES
            | GatewayIntents::MESSAGE_CONTENT;
        let mut client = serenity::all::ClientBuilder::new_with_http(http, intents)
            .event_handler(handler)
            .await
            .map_err(|e| {
                TransportError::Failed(format!("discord: cannot build the client: {e}"))
            })?;
        let shards = client.shard_manager.clone();
        let running = tokio::spawn(async move { client.start().await });
        tokio::select! {
            result = running => match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(TransportError::Failed(format!("discord: the gateway connection ended: {e}"))),
                Err(e) => Err(TransportError::Failed(format!("discord: {e}"))),
            },
            () = super::stopped(&mut shutdown) => {
                self.live.store(false, std::sync::atomic::Ordering::SeqCst);
                shards.shutdown_all().await;
                Ok(())
            }
        }
    }
}

/// serenity's event handler.
struct Handler {
    app: Arc<App>,
    bot: u64,
    /// `#name` per channel id, for channel bindings and the audit trail.
    channels: Names,
    /// How long one REST call may take.
    timeout: Duration,
    live: super::Live,
}

impl Handler {
    /// Runs `incoming`, replying through `thread`; failures also go to the alert channel.
    async fn reply(&self, http: Arc<Http>, incoming: &Incoming, thread: &dyn Thread) {
        let alerts = ChannelAlerts {
            http,
            timeout: self.timeout,
        };
        handle(&self.app, incoming, thread, format(), Some(&alerts)).await;
    }

    /// The command in a message, if it is addressed to ferry.
    fn command_in(&self, msg: &Message) -> Option<String> {
        if msg.author.bot {
            return None;
        }
        let text = msg.content.trim();
        for mention in [format!("<@{}>", self.bot), format!("<@!{}>", self.bot)] {
            if let Some(rest) = text.strip_prefix(&mention) {
                return Some(self.typed(rest.trim()));
            }
        }
        let text = self.typed(text);
        let config = &self.app.config.bot;
        match strip_address(&text, &config.name, &config.prefixes) {
            Some(command) => Some(command.to_string()),
            None if msg.guild_id.is_none() => Some(text),
            None => None,
        }
    }

    /// `text` as typed: mentions decoded, channels named from the cache (never looked up here).
    fn typed(&self, text: &str) -> String {
        discord_text(text, |id| self.channels.cached(id))
    }

    async fn channel_name(&self, ctx: &Context, channel: ChannelId) -> String {
        let lookup = || async {
            match channel.to_channel(&ctx.http).await {
                Ok(serenity::all::Channel::Guild(guild)) => Ok(format!("#{}", guild.name)),
                Ok(_) => Err(ChatError::Unexpected("not a server channel")),
                Err(e) => Err(ChatError::call("discord channel lookup", e)),
            }
        };
        let key = channel.get().to_string();
        (self.channels.get(&key, lookup).await).unwrap_or_else(|| format!("#{key}"))
    }

    /// The command's origin: a direct message, or a server's channel by name for people and by
    /// id and `<server id>/#<name>` for channel bindings (names repeat across servers).
    async fn origin(&self, ctx: &Context, channel: ChannelId, guild: Option<GuildId>) -> Origin {
        let Some(guild) = guild else {
            return Origin {
                platform: "discord".into(),
                channel: Some("direct message".to_string()),
                channel_ids: Vec::new(),
            };
        };
        let name = self.channel_name(ctx, channel).await;
        Origin {
            platform: "discord".into(),
            channel_ids: vec![channel.get().to_string(), format!("{}/{name}", guild.get())],
            channel: Some(name),
        }
    }

    async fn incoming(
        &self,
        ctx: &Context,
        event_id: String,
        user: &serenity::all::User,
        channel: ChannelId,
        guild: Option<GuildId>,
        text: String,
    ) -> Incoming {
        let display = user
            .global_name
            .clone()
            .unwrap_or_else(|| user.name.clone());
        Incoming {
            event_id,
            actor: Actor::new("discord", &user.id.get().to_string(), &display),
            origin: self.origin(ctx, channel, guild).await,
            text,
        }
    }
}

/// The `custom_id` prefix of ferry's buttons; the rest is the command the button runs.
const BUTTON_PREFIX: &str = "ferry:";

impl Handler {
    /// A click on an Approve / Deny button: acknowledged at once, then the button's command runs
    /// as the person who clicked, replying to the message that carried the buttons.
    async fn button(&self, ctx: &Context, click: ComponentInteraction) {
        let Some(command) = click
            .data
            .custom_id
            .strip_prefix(BUTTON_PREFIX)
            .filter(|c| crate::command::is_button_command(c))
            .map(str::to_string)
        else {
            return;
        };
        if let Err(e) = click.defer(&ctx.http).await {
            tracing::warn!(error = %e, "discord: could not acknowledge the button");
        }
        let incoming = self
            .incoming(
                ctx,
                click.id.get().to_string(),
                &click.user,
                click.channel_id,
                click.guild_id,
                command,
            )
            .await;
        let thread = Replies {
            http: ctx.http.clone(),
            channel: click.channel_id,
            reply_to: click.message.id,
            timeout: self.timeout,
        };
        self.reply(ctx.http.clone(), &incoming, &thread).await;
    }
}

/// Discord buttons for ferry's `Button`s.
fn components(buttons: &[crate::command::Button]) -> Vec<CreateActionRow> {
    let buttons = buttons
        .iter()
        .map(|b| {
            CreateButton::new(format!("{BUTTON_PREFIX}{}", b.command))
                .label(&b.label)
                .style(if b.primary {
                    ButtonStyle::Success
                } else {
                    ButtonStyle::Danger
                })
        })
        .collect();
    vec![CreateActionRow::Buttons(buttons)]
}

fn format() -> Format {
    Format {
        dialect: DISCORD,
        limit: MESSAGE_LIMIT,
    }
}

#[async_trait::async_trait]
impl EventHandler for Handler {
    async fn resume(&self, _ctx: Context, _event: serenity::model::event::ResumedEvent) {
        self.live.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    async fn shard_stage_update(
        &self,
        _ctx: Context,
        event: serenity::gateway::ShardStageUpdateEvent,
    ) {
        let up = event.new == serenity::gateway::ConnectionStage::Connected;
        self.live.store(up, std::sync::atomic::Ordering::SeqCst);
    }

    async fn ready(&self, ctx: Context, ready: Ready) {
        self.live.store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::info!(user = %ready.user.name, "discord: connected");
        let command = CreateCommand::new("ferry")
            .description("Run a ferry command")
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "command",
                    "e.g. env staging, converge staging",
                )
                .required(true),
            );
        if let Err(e) = Command::create_global_command(&ctx.http, command).await {
            tracing::warn!(error = %e, "discord: could not register /ferry");
        }
    }

    async fn message(&self, ctx: Context, msg: Message) {
        let Some(text) = self.command_in(&msg) else {
            return;
        };
        let incoming = self
            .incoming(
                &ctx,
                msg.id.get().to_string(),
                &msg.author,
                msg.channel_id,
                msg.guild_id,
                text,
            )
            .await;
        let thread = Replies {
            http: ctx.http.clone(),
            channel: msg.channel_id,
            reply_to: msg.id,
            timeout: self.timeout,
        };
        self.reply(ctx.http.clone(), &incoming, &thread).await;
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let command = match interaction {
            Interaction::Command(command) => command,
            Interaction::Component(click) => return self.button(&ctx, click).await,
            _ => return,
        };
        if command.data.name != "ferry" {
            return;
        }
        let text = command
            .data
            .options
            .iter()
            .find(|o| o.name == "command")
            .and_then(|o| o.value.as_str())
            .map(|t| self.typed(t.trim()))
            .unwrap_or_default();
        // Discord wants an answer within 3 s; a deploy takes longer, so defer and edit.
        if let Err(e) = command.defer(&ctx.http).await {
            tracing::warn!(error = %e, "discord: could not acknowledge the interaction");
        }
        let incoming = self
            .incoming(
                &ctx,
                command.id.get().to_string(),
                &command.user,
                command.channel_id,
                command.guild_id,
                text,
            )
            .await;
        let thread = InteractionReplies {
            http: ctx.http.clone(),
            command,
            original_used: AtomicBool::new(false),
            timeout: self.timeout,
        };
        self.reply(ctx.http.clone(), &incoming, &thread).await;
    }
}

/// Alerts to a channel given by id (`alert_channel = "discord:123456789"`).
struct ChannelAlerts {
    http: Arc<Http>,
    timeout: Duration,
}

#[async_trait::async_trait]
impl Alerts for ChannelAlerts {
    fn platform(&self) -> &'static str {
        "discord"
    }

    async fn alert(&self, channel: &str, text: &str) -> Result<(), ChatError> {
        let id: u64 =
            channel
                .trim_start_matches('#')
                .parse()
                .map_err(|_| ChatError::BadChannelId {
                    platform: "discord",
                    channel: channel.to_string(),
                })?;
        let text = super::markdown::render(&crate::command::Reply::failed(text), DISCORD);
        for piece in super::markdown::split(&text, MESSAGE_LIMIT)
            .into_iter()
            .take(MAX_PIECES)
        {
            let message = CreateMessage::new()
                .content(piece)
                .allowed_mentions(no_mentions());
            sending("discord send message", self.timeout, || {
                ChannelId::new(id).send_message(&self.http, message.clone())
            })
            .await?;
        }
        Ok(())
    }
}
