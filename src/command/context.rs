//! What a command runs against: the config, the store, the clock and who is asking. Also the
//! checks every command shares: the environment exists, the actor holds the permission, nobody
//! else's lock is in the way, and the compare-and-set loop that writes a revision.

use super::error::{CommandError, UserError};
use crate::clock::Clock;
use crate::config::{Config, EnvironmentConfig};
use crate::domain::{
    Actor, Change, Document, Lock, Millis, Name, NewRevision, Origin, Revision, diff, nearest,
};
use crate::engine::{Engine, EventSink};
use crate::policy::Permission;
use crate::store::{AppendError, Store};
use std::time::Duration;

/// How many times a write retries after losing a race before giving up; each retry means
/// another writer succeeded, so this only runs out under extreme contention.
const MAX_WRITE_ATTEMPTS: u32 = 200;

/// Everything a command may use.
pub struct Context<'a> {
    pub config: &'a Config,
    /// The user-defined commands of `commands/*.toml`.
    pub commands: &'a super::custom::CustomCommands,
    pub engine: &'a Engine,
    /// Where converges publish progress, if a transport listens.
    pub events: Option<&'a EventSink>,
    pub store: &'a dyn Store,
    pub clock: &'a dyn Clock,
    pub actor: &'a Actor,
    pub origin: &'a Origin,
    /// The command as typed (after the bot's name), recorded with revisions.
    pub text: &'a str,
}

/// The result of a write.
pub enum Written {
    /// The new revision.
    Revision(Box<Revision>),
    /// The edit changed nothing; no revision was made. Carries the head it was checked against.
    Unchanged(Option<u64>),
}

impl Context<'_> {
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The configuration of `env`, or an error naming the nearest environment.
    pub fn environment(&self, env: &Name) -> Result<&EnvironmentConfig, CommandError> {
        self.config.environment(env).ok_or_else(|| {
            let names: Vec<&str> = self.config.environments.keys().map(Name::as_str).collect();
            let list = names.join(", ");
            let error = match nearest(env.as_str(), names.iter().copied()) {
                Some(best) => UserError::new(format!(
                    "unknown environment `{env}`: did you mean `{best}`? (environments: {list})"
                ))
                .try_instead(replace_word(self.text, env.as_str(), best)),
                None => UserError::new(format!(
                    "unknown environment `{env}` (environments: {list})"
                ))
                .try_instead("envs"),
            };
            CommandError::Invalid(error)
        })
    }

    /// Refuses unless the actor holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), CommandError> {
        let identity = self.actor.identity();
        self.config.policy.check(&identity, permission).map_err(|denied| {
            let roles = if denied.roles.is_empty() { "none".to_string() } else { denied.roles.join(", ") };
            CommandError::Refused(
                UserError::new(format!(
                    "{} is not allowed to do this: it needs the `{}` permission, which {identity}'s roles ({roles}) do not grant",
                    self.actor, denied.missing
                ))
                .try_instead(format!("whoami (to see your permissions), or ask someone holding `{}`", denied.missing)),
            )
        })
    }

    /// Channel bindings: commands touching an environment with `channels = [...]` are accepted
    /// only there (the shell and `ferry run` always). Checked by every command that touches an
    /// environment, including steps of user-defined commands and `approve`/`deny`, which learn
    /// their environment from the request.
    pub fn ensure_channel(&self, env: &Name) -> Result<(), CommandError> {
        let Some(config) = self.config.environment(env) else {
            return Ok(());
        };
        if config.channels.is_empty() || self.origin.platform == "shell" {
            return Ok(());
        }
        // The channel's name and, where the platform gives them, its ids (`discord:<id>`,
        // `discord:<server id>/#name`): a binding may name any of them.
        let names = self.origin.bindings();
        if config.channels.iter().any(|c| names.contains(c)) {
            return Ok(());
        }
        let here = names.first().map(String::as_str).unwrap_or("here");
        Err(CommandError::Refused(
            UserError::new(format!(
                "{env} commands are accepted only in {}; this was typed in {here}",
                config.channels.join(", ")
            ))
            .try_instead(format!("the same command in {}", config.channels[0])),
        ))
    }

    /// Refuses when someone else holds an active lock on `env`.
    pub async fn ensure_unlocked(&self, env: &Name) -> Result<(), CommandError> {
        match self.store.lock(env).await? {
            Some(lock) if lock.is_active(self.now()) && !lock.is_held_by(self.actor) => {
                Err(CommandError::Refused(
                    UserError::new(format!("{env} is {}", describe_lock(&lock)))
                        .try_instead(format!("ask {} to `unlock {env}`", lock.holder)),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The head revision's number and document (`None` and empty before the first revision).
    pub async fn head(&self, env: &Name) -> Result<(Option<u64>, Document), CommandError> {
        Ok(match self.store.head(env).await? {
            Some(rev) => (Some(rev.meta.number), rev.document),
            None => (None, Document::default()),
        })
    }

    /// Writes one revision of `env` made by `edit` on the head, compare-and-set: when another
    /// writer wins the race, `edit` runs again on the new head, so no change is ever lost.
    pub async fn write(
        &self,
        env: &Name,
        reason: Option<String>,
        edit: impl Fn(&Document) -> Result<Document, CommandError>,
    ) -> Result<Written, CommandError> {
        let writer = self.engine.writer(env);
        let _queued = writer.lock().await;
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            let (head, document) = self.head(env).await?;
            let edited = edit(&document)?;
            let changes: Vec<Change> = diff(&document, &edited);
            if changes.is_empty() {
                return Ok(Written::Unchanged(head));
            }
            let revision = NewRevision {
                env: env.clone(),
                parent: head,
                author: self.actor.clone(),
                at: self.now(),
                reason: reason.clone(),
                command: self.text.to_string(),
                changes,
                document: edited,
            };
            match self.store.append(revision).await {
                Ok(revision) => return Ok(Written::Revision(Box::new(revision))),
                Err(AppendError::Conflict { .. }) => {
                    tracing::debug!(env = %env, attempt, "lost a write race; retrying on the new head");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(AppendError::Store(e)) => return Err(e.into()),
            }
        }
        Err(CommandError::Invalid(
            UserError::new(format!(
                "{env} is changing too fast to write to ({MAX_WRITE_ATTEMPTS} attempts lost a race)"
            ))
            .try_instead("the same command again in a moment"),
        ))
    }
}

/// `locked by bob since 04:31 UTC until 06:31 UTC (database migration)`.
pub fn describe_lock(lock: &Lock) -> String {
    let until = match lock.expires {
        Some(at) => format!(" until {}", super::render::time(at)),
        None => String::new(),
    };
    let reason = lock
        .reason
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    format!(
        "locked by {} since {}{until}{reason}",
        lock.holder,
        super::render::time(lock.since)
    )
}

/// A short, jittered pause so that racing writers spread out.
fn backoff(attempt: u32) -> Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 5_000)
        .unwrap_or(0);
    Duration::from_micros(u64::from(attempt.min(10)) * 2_000 + u64::from(jitter))
}

/// `text` with the first word (or dot-separated part of a word) equal to `from` replaced by
/// `to`, for suggesting the corrected command; parts that merely contain `from` stay as they are.
pub fn replace_word(text: &str, from: &str, to: &str) -> String {
    let mut done = false;
    text.split(' ')
        .map(|word| {
            if done {
                return word.to_string();
            }
            word.split('.')
                .map(|part| {
                    if !done && part == from {
                        done = true;
                        to.to_string()
                    } else {
                        part.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::replace_word;

    #[test]
    fn replaces_whole_words_and_path_parts_only() {
        assert_eq!(
            replace_word("diff production prod", "prod", "production"),
            "diff production production"
        );
        assert_eq!(
            replace_word("env stagign.ms-users.version 1", "stagign", "staging"),
            "env staging.ms-users.version 1"
        );
        assert_eq!(
            replace_word("promote staging stag", "stag", "staging"),
            "promote staging staging"
        );
    }
}
