//! The transcript harness's Discord: ferry's serenity transport against the fake Discord
//! (`tests/support/fake_discord.rs`). People address the bot with the `!` prefix; ferry answers
//! with replies (`message_reference`), and a reply to one of ferry's own messages (the request
//! with buttons) belongs to the same thread; a `/ferry` interaction is answered through its
//! webhook; a button click is a component interaction.

#![allow(dead_code)] // Each test crate uses part of it.

use crate::fake_discord::{FakeDiscord, FollowupKind};
use crate::transcript::{Asked, Button, Edited, Log, Platform, Said, Setup, WAIT};
use ferry::chat::Transport;
use ferry::chat::discord::DiscordTransport;
use std::collections::HashMap;
use std::sync::Arc;

pub const GUILD: u64 = 800_000_000_000_000_001;
/// The harness's channels, all in [`GUILD`].
const CHANNELS: &[(&str, u64)] = &[
    ("#deploys", 800_000_000_000_000_002),
    ("#alerts", 800_000_000_000_000_003),
    ("#random", 800_000_000_000_000_004),
];
/// The harness's people.
const PEOPLE: &[(&str, u64)] = &[
    ("alice", 800_000_000_000_000_010),
    ("carol", 800_000_000_000_000_011),
    ("bob", 800_000_000_000_000_012),
    ("dana", 800_000_000_000_000_013),
];
/// What Discord button ids carry before ferry's command.
const BUTTON_PREFIX: &str = "ferry:";

pub struct OnDiscord {
    pub fake: FakeDiscord,
}

/// A person's snowflake.
pub fn person_id(person: &str) -> u64 {
    PEOPLE
        .iter()
        .find(|(name, _)| *name == person)
        .unwrap_or_else(|| panic!("no person {person}"))
        .1
}

/// A channel's snowflake.
pub fn channel_id(channel: &str) -> u64 {
    CHANNELS
        .iter()
        .find(|(name, _)| *name == channel)
        .unwrap_or_else(|| panic!("no channel {channel}"))
        .1
}

impl Platform for OnDiscord {
    const BOLD: &'static str = "**";
    const NAME: &'static str = "discord";
    /// Mentions, masked links and markdown escaped, `@everyone` broken.
    const PROSE: &'static str =
        "@\u{200B}everyone \\<!channel> \\<@U123> \\[x\\](https://evil) \\<https://evil\\|click>";
    /// In a code block Discord renders no mention or link; only `@everyone` is broken.
    const CODE: &'static str =
        "@\u{200B}everyone <!channel> <@U123> [x](https://evil) <https://evil|click>";
    const UNESCAPED: &'static [&'static str] = &["@everyone"];

    async fn start() -> OnDiscord {
        let fake = FakeDiscord::start().await;
        for (name, id) in CHANNELS {
            fake.add_named_channel(*id, GUILD, &name[1..]);
        }
        OnDiscord { fake }
    }

    fn config_table(&self, test: &str) -> String {
        let var = format!("FERRY_TEST_DISCORD_TOKEN_{test}");
        // SAFETY: each test sets its own variable, read only by the transport it starts.
        unsafe { std::env::set_var(&var, self.fake.token()) };
        format!(
            "[discord]\ntoken_env = \"{var}\"\napi_url = \"{}\"",
            self.fake.base_url()
        )
    }

    async fn run(
        &self,
        app: Arc<ferry::app::App>,
        setup: &Setup,
    ) -> tokio::sync::watch::Sender<bool> {
        let mut transport =
            DiscordTransport::from_config(app.config.discord.as_ref().unwrap()).unwrap();
        if let Some(timeout) = setup.call_timeout {
            transport = transport.with_call_timeout(timeout);
        }
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(async move { transport.run(app, shutdown).await });
        stop
    }

    async fn wait_connected(&self, n: usize) {
        self.fake
            .wait_for(|f| f.readies() >= n && f.is_connected(), WAIT)
            .await;
    }

    fn user_id(person: &str) -> String {
        person_id(person).to_string()
    }

    fn binding(channel: &str) -> String {
        format!("discord:{}", channel_id(channel))
    }

    fn channel_ref(channel: &str) -> String {
        channel_id(channel).to_string()
    }

    fn code(text: &str) -> String {
        text.replace("@everyone", "@\u{200B}everyone")
    }

    fn fits(text: &str) -> bool {
        text.chars().count() <= 2000
    }

    fn mentions_nothing(body: &serde_json::Value) -> bool {
        let mentions = &body["allowed_mentions"];
        mentions["parse"] == serde_json::json!([])
            && mentions["users"].as_array().is_none_or(Vec::is_empty)
            && mentions["roles"].as_array().is_none_or(Vec::is_empty)
    }

    async fn say(&self, person: &str, channel: &str, command: &str) -> Asked {
        let id = self.fake.message(
            person_id(person),
            person,
            channel_id(channel),
            Some(GUILD),
            &format!("!{command}"),
            false,
        );
        Asked { id: id.to_string() }
    }

    async fn slash(&self, person: &str, channel: &str, command: &str) -> Asked {
        self.fake.wait_for(|f| !f.commands().is_empty(), WAIT).await;
        let id = self.fake.interaction(
            person_id(person),
            person,
            channel_id(channel),
            Some(GUILD),
            command,
        );
        Asked { id: id.to_string() }
    }

    async fn click(&self, person: &str, message: &Said, value: &str) {
        let interaction = self.fake.component_interaction(
            person_id(person),
            person,
            message.channel.parse().unwrap(),
            Some(GUILD),
            message.id.parse().unwrap(),
            &format!("{BUTTON_PREFIX}{value}"),
        );
        // Discord shows "This interaction failed" unless the click is acknowledged in time.
        self.fake
            .wait_for(
                |f| {
                    f.interaction_responses()
                        .iter()
                        .any(|r| r.interaction_id == interaction && r.kind == 6)
                },
                std::time::Duration::from_secs(10),
            )
            .await;
    }

    async fn redeliver(&self, asked: &Asked) {
        self.fake.redeliver_message(asked.id.parse().unwrap());
    }

    async fn drop_connection(&self) {
        let before = self.accepted_resumes();
        self.fake.drop_gateway();
        self.fake
            .wait_for(
                |f| f.resumes().iter().filter(|r| r.accepted).count() > before,
                WAIT,
            )
            .await;
    }

    async fn hang_edits(&self) {
        self.fake.hang_edits(true);
    }

    async fn an_edit_hung(&self) -> bool {
        self.fake
            .requests()
            .iter()
            .any(|q| q.method == "PATCH" && q.status == 0)
    }

    async fn log(&self) -> Log {
        // A reply to one of ferry's own messages is in that message's thread.
        let mut thread_of: HashMap<u64, Option<String>> = HashMap::new();
        let mut said = Vec::new();
        for p in self.fake.posted() {
            let thread = p.reference_message_id.map(|to| match thread_of.get(&to) {
                Some(thread) => thread.clone().unwrap_or_else(|| to.to_string()),
                None => to.to_string(),
            });
            thread_of.insert(p.id, thread.clone());
            said.push(Said {
                id: p.id.to_string(),
                channel: p.channel_id.to_string(),
                thread,
                text: p.content.clone(),
                buttons: buttons(&p.body),
                body: p.body.clone(),
            });
        }
        // An interaction's answers are in the interaction's thread.
        for f in self.fake.followups() {
            if !matches!(f.kind, FollowupKind::Create | FollowupKind::EditOriginal) {
                continue;
            }
            said.push(Said {
                id: f.message_id.to_string(),
                channel: String::new(),
                thread: Some(f.interaction_id.to_string()),
                text: f.content.clone().unwrap_or_default(),
                buttons: buttons(&f.body),
                body: f.body.clone(),
            });
        }
        let edits = self
            .fake
            .edits()
            .into_iter()
            .map(|e| Edited {
                id: e.message_id.to_string(),
                text: e.content.unwrap_or_default(),
                body: e.body,
            })
            .collect();
        Log { said, edits }
    }

    async fn dump(&self) -> String {
        self.fake.dump()
    }
}

impl OnDiscord {
    fn accepted_resumes(&self) -> usize {
        self.fake.resumes().iter().filter(|r| r.accepted).count()
    }
}

/// The buttons of the first action row. A custom id without ferry's prefix keeps it, so that a
/// transcript expecting `approve 1` sees the difference.
fn buttons(body: &serde_json::Value) -> Vec<Button> {
    let Some(row) = body["components"][0]["components"].as_array() else {
        return Vec::new();
    };
    row.iter()
        .map(|b| {
            let id = b["custom_id"].as_str().unwrap_or_default();
            Button {
                label: b["label"].as_str().unwrap_or_default().to_string(),
                value: id.strip_prefix(BUTTON_PREFIX).unwrap_or(id).to_string(),
            }
        })
        .collect()
}
