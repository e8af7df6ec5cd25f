//! The transcript harness's Slack: ferry's slack-morphism transport against the fake Slack
//! (`tests/support/fake_slack.rs`). People mention the bot (`<@UBOT> …`); ferry answers in the
//! mention's thread; a `/ferry` command is answered in the thread of the header ferry posts
//! for it; a button click is a `block_actions` envelope. Every envelope the harness pushes must
//! be acked.

#![allow(dead_code)] // Each test crate uses part of it.

use crate::fake_slack::{self, FakeSlack};
use crate::transcript::{Asked, Button, Edited, Log, Platform, Said, Setup, WAIT};
use ferry::chat::Transport;
use ferry::chat::slack::SlackTransport;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct OnSlack {
    pub fake: FakeSlack,
    /// What each `say` pushed, by message `ts`, to deliver it again.
    events: Mutex<HashMap<String, fake_slack::EventRef>>,
}

/// The harness's people: `alice` is `U0ALICE`.
fn id_of(person: &str) -> String {
    format!("U0{}", person.to_uppercase())
}

/// The harness's channels the fake knows, by name.
const CHANNELS: &[(&str, &str)] = &[("#deploys", "C0DEPLOYS"), ("#random", "C0RANDOM")];

impl OnSlack {
    async fn wait_acked(&self, envelope_id: &str, what: &str) {
        self.fake
            .wait_until(
                &format!("the ack of {what}"),
                |rec| rec.ack_for(envelope_id).is_some(),
                WAIT,
            )
            .await;
    }
}

impl Platform for OnSlack {
    const BOLD: &'static str = "*";
    const NAME: &'static str = "slack";
    const PROSE: &'static str =
        "@everyone &lt;!channel&gt; &lt;@U123&gt; [x](https://evil) &lt;https://evil|click&gt;";
    const CODE: &'static str = Self::PROSE;
    const UNESCAPED: &'static [&'static str] = &["<!channel>", "<@U123>", "<https://evil"];

    async fn start() -> OnSlack {
        let fake = FakeSlack::start().await;
        for person in ["alice", "bob", "carol", "dana"] {
            fake.add_user(&id_of(person), person).await;
        }
        for (name, id) in CHANNELS {
            fake.add_channel(id, &name[1..]).await;
        }
        OnSlack {
            fake,
            events: Mutex::default(),
        }
    }

    fn config_table(&self, test: &str) -> String {
        let (app_var, bot_var) = (
            format!("FERRY_TEST_SLACK_APP_{test}"),
            format!("FERRY_TEST_SLACK_BOT_{test}"),
        );
        // SAFETY: each test sets its own variables, read only by the transport it starts.
        unsafe {
            std::env::set_var(&app_var, self.fake.app_token());
            std::env::set_var(&bot_var, self.fake.bot_token());
        }
        format!(
            "[slack]\napp_token_env = \"{app_var}\"\nbot_token_env = \"{bot_var}\"\napi_url = \"{}\"",
            self.fake.api_url()
        )
    }

    async fn run(
        &self,
        app: Arc<ferry::app::App>,
        setup: &Setup,
    ) -> tokio::sync::watch::Sender<bool> {
        let mut transport = SlackTransport::connect(app.config.slack.as_ref().unwrap())
            .await
            .unwrap();
        if let Some(timeout) = setup.call_timeout {
            transport = transport.with_call_timeout(timeout);
        }
        if let Some(ttl) = setup.name_ttl {
            transport = transport.with_name_ttl(ttl);
        }
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(async move { transport.run(app, shutdown).await });
        stop
    }

    async fn wait_connected(&self, n: usize) {
        self.fake.wait_for_connections(n, WAIT).await;
    }

    fn user_id(person: &str) -> String {
        id_of(person)
    }

    fn binding(channel: &str) -> String {
        format!("slack:{channel}")
    }

    fn channel_ref(channel: &str) -> String {
        CHANNELS
            .iter()
            .find(|(name, _)| *name == channel)
            .map_or(channel.to_string(), |(_, id)| id.to_string())
    }

    fn code(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    fn fits(text: &str) -> bool {
        text.len() <= 3600
    }

    fn mentions_nothing(body: &serde_json::Value) -> bool {
        body["parse"] == "none" && body["link_names"] == false
    }

    async fn say(&self, person: &str, channel: &str, command: &str) -> Asked {
        let ts = self.fake.fresh_ts().await;
        let event = self
            .fake
            .mention(
                &id_of(person),
                &Self::channel_ref(channel),
                &format!("<@{}> {command}", self.fake.bot_user_id()),
                &ts,
            )
            .await;
        self.wait_acked(&event.envelope_id, command).await;
        self.events.lock().unwrap().insert(ts.clone(), event);
        Asked { id: ts }
    }

    async fn slash(&self, person: &str, channel: &str, command: &str) -> Asked {
        let event = self
            .fake
            .slash(&id_of(person), &Self::channel_ref(channel), command)
            .await;
        self.wait_acked(&event.envelope_id, command).await;
        let ran = format!(
            "ran `/ferry {}",
            command.split(' ').next().unwrap_or_default()
        );
        let header = |rec: &fake_slack::Recorded| {
            rec.posts
                .iter()
                .find(|p| p.text.as_deref().is_some_and(|t| t.contains(&ran)))
                .cloned()
        };
        let rec = self
            .fake
            .wait_until(
                "the header of a slash command",
                |r| header(r).is_some(),
                WAIT,
            )
            .await;
        Asked {
            id: header(&rec).unwrap().ts,
        }
    }

    async fn click(&self, person: &str, message: &Said, value: &str) {
        let posted = self
            .fake
            .posts()
            .await
            .into_iter()
            .find(|p| p.ts == message.id)
            .expect("a message ferry posted");
        let label = &message
            .buttons
            .iter()
            .find(|b| b.value == value)
            .expect("a button of that message")
            .label;
        let envelope = self.fake.click(&id_of(person), &posted, label, value).await;
        self.wait_acked(&envelope, "the click").await;
    }

    async fn redeliver(&self, asked: &Asked) {
        let event = self.events.lock().unwrap().get(&asked.id).cloned();
        self.fake
            .redeliver(&event.expect("a message the harness pushed"))
            .await;
    }

    async fn drop_connection(&self) {
        let before = self.fake.connections().await;
        self.fake.drop_socket().await;
        self.fake.wait_for_connections(before + 1, WAIT).await;
    }

    async fn hang_edits(&self) {
        self.fake.hang("chat.update").await;
    }

    async fn an_edit_hung(&self) -> bool {
        self.fake
            .calls()
            .await
            .iter()
            .any(|c| c.method == "chat.update" && c.error.as_deref() == Some("hung"))
    }

    async fn log(&self) -> Log {
        let rec = self.fake.snapshot().await;
        let said = rec
            .posts
            .iter()
            .map(|p| Said {
                id: p.ts.clone(),
                channel: p.channel.clone(),
                thread: p.thread_ts.clone(),
                text: p.text.clone().unwrap_or_default(),
                buttons: buttons(p.blocks.as_ref()),
                body: p.body.clone(),
            })
            .collect();
        let edits = rec
            .updates
            .iter()
            .map(|u| Edited {
                id: u.ts.clone(),
                text: u.text.clone().unwrap_or_default(),
                body: u.body.clone(),
            })
            .collect();
        Log { said, edits }
    }

    async fn dump(&self) -> String {
        self.fake.snapshot().await.dump()
    }
}

/// The buttons of the message's second block (its `actions` block; the first is the text).
fn buttons(blocks: Option<&serde_json::Value>) -> Vec<Button> {
    let Some(elements) = blocks.and_then(|b| b[1]["elements"].as_array()) else {
        return Vec::new();
    };
    elements
        .iter()
        .map(|e| Button {
            label: e["text"]["text"].as_str().unwrap_or_default().to_string(),
            value: e["value"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}
