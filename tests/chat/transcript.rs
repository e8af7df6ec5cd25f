//! The chat-test harness: a scenario is written once, as the conversation a person would see
//! (who typed what in which channel, what ferry answered in that thread, which buttons it showed
//! and who clicked them, how it edited its progress message, what it alerted), and runs against
//! every [`Platform`]: the fake Slack (`on_slack.rs`) and the fake Discord (`on_discord.rs`).
//!
//! People are `alice`, `bob`, `carol` and `dana`; channels are `#deploys`, `#random` and
//! `#alerts` (the alert channel). Each platform maps them to its own ids and addressing, and
//! reads what ferry did back from its fake as [`Said`] messages and [`Edited`] edits.

#![allow(dead_code)] // Each test crate uses part of it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a step waits for ferry unless it says otherwise.
pub const WAIT: Duration = Duration::from_secs(15);
/// How long a step waits for a whole converge.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// Everything a user can put into a message that a chat platform would turn into a ping or a
/// link.
pub const PAYLOAD: &str = "@everyone <!channel> <@U123> [x](https://evil) <https://evil|click>";

/// A message ferry posted, as the transcript sees it.
#[derive(Clone, Debug)]
pub struct Said {
    /// The platform's id of the message (Slack `ts`, Discord snowflake).
    pub id: String,
    /// The channel as the platform's API names it (see [`Platform::channel_ref`]).
    pub channel: String,
    /// The message it answers, as returned by [`Chat::say`] / [`Chat::slash`]; `None` for a
    /// message that starts a conversation (an alert, the header of a Slack slash command).
    pub thread: Option<String>,
    pub text: String,
    /// The buttons under it, in order.
    pub buttons: Vec<Button>,
    /// The request as the fake received it.
    pub body: serde_json::Value,
}

/// A button, as ferry means it (`value` is the command a click runs, e.g. `approve 1`).
#[derive(Clone, Debug, PartialEq)]
pub struct Button {
    pub label: String,
    pub value: String,
}

/// An edit of one of ferry's messages.
#[derive(Clone, Debug)]
pub struct Edited {
    /// The edited message's [`Said::id`].
    pub id: String,
    pub text: String,
    pub body: serde_json::Value,
}

/// What ferry did so far, in order.
#[derive(Clone, Debug, Default)]
pub struct Log {
    pub said: Vec<Said>,
    pub edits: Vec<Edited>,
}

impl Log {
    /// ferry's messages in the thread of `asked`.
    pub fn replies(&self, asked: &Asked) -> Vec<Said> {
        self.said
            .iter()
            .filter(|s| s.thread.as_deref() == Some(asked.id.as_str()))
            .cloned()
            .collect()
    }

    /// The texts of the edits of the message `id`, in order.
    pub fn edits_of(&self, id: &str) -> Vec<String> {
        self.edits
            .iter()
            .filter(|e| e.id == id)
            .map(|e| e.text.clone())
            .collect()
    }

    /// Some edit's text contains `needle`.
    pub fn any_edit_contains(&self, needle: &str) -> bool {
        self.edits.iter().any(|e| e.text.contains(needle))
    }
}

/// Something a person typed (a message, or a slash command): ferry answers in its thread.
#[derive(Clone, Debug)]
pub struct Asked {
    pub id: String,
}

/// How ferry is configured for one scenario.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Seeds 80 services instead of 3, so that `env staging` takes several messages.
    pub many: bool,
    /// `(person, role)`; everyone else is a viewer.
    pub roles: Vec<(&'static str, &'static str)>,
    /// Adds a protected `production` (one approval) bound to this channel binding.
    pub production: Option<String>,
    pub call_timeout: Option<Duration>,
    /// Platforms without a name cache ignore it.
    pub name_ttl: Option<Duration>,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            many: false,
            roles: vec![("alice", "deployer")],
            production: None,
            call_timeout: None,
            name_ttl: None,
        }
    }
}

/// A chat platform as the transcript uses it: its fake, its identities, its formatting.
#[allow(async_fn_in_trait)] // Scenarios are generic over it, never boxed.
pub trait Platform: Sized {
    /// `slack` or `discord`, as in identities (`slack:U0ALICE`).
    const NAME: &'static str;
    /// [`PAYLOAD`] as ferry must render it in prose.
    const PROSE: &'static str;
    /// [`PAYLOAD`] as ferry must render it in a code block.
    const CODE: &'static str;
    /// Pieces of [`PAYLOAD`] that must never reach the platform unescaped.
    const UNESCAPED: &'static [&'static str];

    /// Starts the fake, with the people and channels of the harness.
    async fn start() -> Self;
    /// The transport's config table; `test` makes its environment variables unique.
    fn config_table(&self, test: &str) -> String;
    /// Connects ferry's transport to the fake and runs it until `stop`.
    async fn run(
        &self,
        app: Arc<ferry::app::App>,
        setup: &Setup,
    ) -> tokio::sync::watch::Sender<bool>;
    /// Waits until the `n`th transport started (1, 2, …) is connected.
    async fn wait_connected(&self, n: usize);

    /// A person's platform user id.
    fn user_id(person: &str) -> String;
    /// How a config names `channel` in a channel binding (`slack:#deploys`).
    fn binding(channel: &str) -> String;
    /// How the platform's API names `channel` when ferry posts there.
    fn channel_ref(channel: &str) -> String;
    /// What opens and closes bold text (`*` on Slack).
    const BOLD: &'static str;
    /// `text` in bold.
    fn bold(text: &str) -> String {
        format!("{0}{text}{0}", Self::BOLD)
    }
    /// `text` starting bold, to match the start of a bold line.
    fn bold_start(text: &str) -> String {
        format!("{}{text}", Self::BOLD)
    }
    /// `text` as it must read inside a code block.
    fn code(text: &str) -> String;
    /// The longest message ferry may post is respected by `text`.
    fn fits(text: &str) -> bool;
    /// The body of a message ferry sent can ping no one.
    fn mentions_nothing(body: &serde_json::Value) -> bool;

    /// `person` addresses ferry with `command` in `channel`.
    async fn say(&self, person: &str, channel: &str, command: &str) -> Asked;
    /// `person` types `/ferry command` in `channel`.
    async fn slash(&self, person: &str, channel: &str, command: &str) -> Asked;
    /// `person` clicks the button of `message` whose value is `value`.
    async fn click(&self, person: &str, message: &Said, value: &str);
    /// The platform delivers `asked` again.
    async fn redeliver(&self, asked: &Asked);
    /// The connection drops; waits until the transport is back.
    async fn drop_connection(&self);
    /// From now on, edits of ferry's messages never answer.
    async fn hang_edits(&self);
    /// Some edit hung.
    async fn an_edit_hung(&self) -> bool;

    async fn log(&self) -> Log;
    async fn dump(&self) -> String;
}

/// ferry running against one platform's fake.
pub struct Chat<P: Platform> {
    pub p: P,
    pub app: Arc<ferry::app::App>,
    pub dir: tempfile::TempDir,
    setup: Setup,
    stop: tokio::sync::watch::Sender<bool>,
    started: usize,
}

impl<P: Platform> Chat<P> {
    /// Starts the fake and ferry; `test` names the scenario.
    pub async fn start(test: &str, setup: Setup) -> Chat<P> {
        let p = P::start().await;
        let dir = tempfile::tempdir().unwrap();
        let table = p.config_table(&format!("{}_{test}", P::NAME));
        let users: Vec<String> = setup
            .roles
            .iter()
            .map(|(person, role)| format!("\"{}:{}\" = [\"{role}\"]", P::NAME, P::user_id(person)))
            .collect();
        crate::fixture::write(
            dir.path(),
            &table,
            &P::binding("#alerts"),
            &users.join("\n"),
            setup.many,
        );
        if let Some(binding) = &setup.production {
            crate::fixture::add_protected_production(dir.path(), binding);
        }
        let app = crate::fixture::app(dir.path()).await;
        let stop = p.run(app.clone(), &setup).await;
        p.wait_connected(1).await;
        Chat {
            p,
            app,
            dir,
            setup,
            stop,
            started: 1,
        }
    }

    /// Stops ferry and starts a new ferry process on the same config and store.
    pub async fn restart(&mut self) {
        let _ = self.stop.send(true);
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.app = crate::fixture::app(self.dir.path()).await;
        self.stop = self.p.run(self.app.clone(), &self.setup).await;
        self.started += 1;
        self.p.wait_connected(self.started).await;
    }

    pub async fn say(&self, person: &str, channel: &str, command: &str) -> Asked {
        self.p.say(person, channel, command).await
    }

    pub async fn slash(&self, person: &str, channel: &str, command: &str) -> Asked {
        self.p.slash(person, channel, command).await
    }

    /// Waits until `done` holds for what ferry did; panics with the fake's dump otherwise.
    pub async fn wait(&self, what: &str, timeout: Duration, done: impl Fn(&Log) -> bool) -> Log {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.p.log().await;
            if done(&log) {
                return log;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: no {what} within {timeout:?}\n{log:#?}\n{}",
                    P::NAME,
                    self.p.dump().await
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// ferry's first message in the thread of `asked`, once there is one.
    pub async fn reply(&self, asked: &Asked) -> Said {
        self.reply_within(asked, WAIT).await
    }

    pub async fn reply_within(&self, asked: &Asked, timeout: Duration) -> Said {
        let log = self
            .wait("reply", timeout, |log| !log.replies(asked).is_empty())
            .await;
        log.replies(asked).remove(0)
    }

    /// ferry's messages in the thread of `asked` so far.
    pub async fn replies(&self, asked: &Asked) -> Vec<Said> {
        self.p.log().await.replies(asked)
    }

    /// ferry's first message in `channel` containing `needle`, once there is one.
    pub async fn posted_in(&self, channel: &str, needle: &str, timeout: Duration) -> Said {
        let at = P::channel_ref(channel);
        let found = |log: &Log| {
            log.said
                .iter()
                .find(|s| s.channel == at && s.text.contains(needle))
                .cloned()
        };
        let log = self
            .wait(&format!("post in {channel}"), timeout, |log| {
                found(log).is_some()
            })
            .await;
        found(&log).unwrap()
    }

    /// The head revision number of `env`.
    pub async fn head(&self, env: &str) -> u64 {
        crate::fixture::head(&self.app, env).await
    }

    /// The stored value of `service.key` in the head of `env`.
    pub async fn value(&self, env: &str, service: &str, key: &str) -> Option<String> {
        crate::fixture::value(&self.app, env, service, key).await
    }

    /// The newest audit entries of `person`.
    pub async fn audit_of(&self, person: &str, limit: u32) -> Vec<ferry::domain::NewAuditEntry> {
        let filter = ferry::domain::AuditFilter {
            env: None,
            user: Some(format!("{}:{}", P::NAME, P::user_id(person))),
            limit,
        };
        let entries = self.app.store.audit(&filter).await.unwrap();
        entries.into_iter().map(|e| e.entry).collect()
    }

    /// Deploys recorded by the fixture's script.
    pub fn deployed(&self) -> usize {
        deployed(self.dir.path())
    }

    /// Runs `command` as `person` in `#deploys` straight through the app, not through chat.
    pub async fn handle_directly(&self, person: &str, command: &str) {
        let actor = ferry::domain::Actor::new(P::NAME, &P::user_id(person), person);
        let origin = ferry::domain::Origin {
            platform: P::NAME.into(),
            channel: Some("#deploys".into()),
            channel_ids: vec![P::channel_ref("#deploys")],
        };
        self.app.handle(&actor, &origin, command).await;
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl<P: Platform> Drop for Chat<P> {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Deploys recorded by the fixture's script in `dir`.
pub fn deployed(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("deploy.log"))
        .map(|log| log.lines().count())
        .unwrap_or(0)
}

/// One `#[tokio::test]` per platform per scenario: `transcripts!(scenario_a, scenario_b);`
/// where each scenario is `async fn name<P: Platform>()`. The tests are `slack::name` and
/// `discord::name`.
#[macro_export]
macro_rules! transcripts {
    ($($name:ident),* $(,)?) => {
        #[cfg(feature = "slack")]
        mod slack {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<super::on_slack::OnSlack>().await
                }
            )*
        }
        #[cfg(feature = "discord")]
        mod discord {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<super::on_discord::OnDiscord>().await
                }
            )*
        }
    };
}
