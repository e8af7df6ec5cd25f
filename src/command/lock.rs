//! `lock` and `unlock`: hold an environment so that others cannot change or converge it.
//!
//! ```text
//! lock <env> [reason…] [--for <duration>]
//! unlock <env> [--force]
//! ```
//! Only the holder unlocks; someone holding `force:<env>` may break another's lock with
//! `--force`, which the audit trail records.

use super::args::Args;
use super::context::{Context, describe_lock};
use super::error::{CommandError, ParseError, UserError};
use super::registry::Run;
use super::{Info, Reply, render};
use crate::domain::{Lock, Name, parse_duration, render_duration};
use crate::policy::{Verb, on};
use crate::store::LockAttempt;
use std::time::Duration;

pub const LOCK: Info = Info {
    name: "lock",
    usage: "lock <env> [reason…] [--for <duration>]",
    summary: "block others' changes and converges of an environment",
    detail: "`lock staging database migration --for 2h` holds staging for two hours; without \
`--for` the lock holds until `unlock staging`. Locking again renews your own lock.",
    example: "lock staging db migration --for 2h",
    parse: |args| Ok(Box::new(parse_lock(args)?)),
};

pub const UNLOCK: Info = Info {
    name: "unlock",
    usage: "unlock <env> [--force]",
    summary: "release your lock (or, with force:<env>, someone else's)",
    detail: "`unlock staging` releases your lock. `unlock staging --force` breaks another \
person's lock and needs the `force:<env>` permission.",
    example: "unlock staging",
    parse: |args| Ok(Box::new(parse_unlock(args)?)),
};

/// A parsed `lock` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEnv {
    pub env: Name,
    pub reason: Option<String>,
    pub duration: Option<Duration>,
}

/// A parsed `unlock` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlock {
    pub env: Name,
    pub force: bool,
}

pub fn parse_lock(mut args: Args) -> Result<LockEnv, ParseError> {
    let duration = args
        .option("--for")?
        .map(|d| parse_duration(&d).map_err(|e| args.error(e.to_string())))
        .transpose()?;
    let env = args.required("an environment, e.g. `lock staging`")?;
    let env = Name::parse(&env).map_err(|e| args.error(format!("environment: {e}")))?;
    let words = args.rest()?;
    let after_dashes = args.finish()?;
    let reason = [words.join(" "), after_dashes.unwrap_or_default()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let reason = (!reason.is_empty()).then_some(reason);
    Ok(LockEnv {
        env,
        reason,
        duration,
    })
}

pub fn parse_unlock(mut args: Args) -> Result<Unlock, ParseError> {
    let force = args.flag("--force");
    let env = args.required("an environment, e.g. `unlock staging`")?;
    let env = Name::parse(&env).map_err(|e| args.error(format!("environment: {e}")))?;
    args.finish()?;
    Ok(Unlock { env, force })
}

impl LockEnv {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let env = &self.env;
        ctx.environment(env)?;
        ctx.require(on(Verb::Write, env))?;
        let now = ctx.now();
        let lock = Lock {
            env: env.clone(),
            holder: ctx.actor.clone(),
            reason: self.reason.clone(),
            since: now,
            expires: self.duration.map(|d| now + d.as_millis() as i64),
        };
        match ctx.store.acquire_lock(lock, now).await? {
            LockAttempt::Acquired(lock) => {
                let until = match (lock.expires, self.duration) {
                    (Some(at), Some(d)) => {
                        format!("for {} (until {})", render_duration(d), render::time(at))
                    }
                    _ => "until you unlock it".to_string(),
                };
                Ok(
                    Reply::ok(format!("{env} is locked by {} {until}", ctx.actor))
                        .text("Others cannot change or converge it meanwhile.")
                        .next("Release it with", format!("unlock {env}")),
                )
            }
            LockAttempt::HeldBy(lock) => Err(CommandError::Refused(
                UserError::new(format!("{env} is already {}", describe_lock(&lock)))
                    .try_instead(format!("ask {} to `unlock {env}`", lock.holder)),
            )),
        }
    }
}

impl Unlock {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let env = &self.env;
        ctx.environment(env)?;
        ctx.require(on(Verb::Write, env))?;
        let now = ctx.now();
        let existing = ctx.store.lock(env).await?;
        let Some(lock) = existing.filter(|l| l.is_active(now)) else {
            return Ok(Reply::ok(format!("{env} is not locked; nothing changed")));
        };
        if !lock.is_held_by(ctx.actor) {
            if !self.force {
                return Err(CommandError::Refused(
                    UserError::new(format!(
                        "{env} is {}; only {} can unlock it",
                        describe_lock(&lock),
                        lock.holder
                    ))
                    .try_instead(format!("unlock {env} --force (needs force:{env})")),
                ));
            }
            ctx.require(on(Verb::Force, env))?;
        }
        ctx.store.release_lock(env).await?;
        let whose = if lock.is_held_by(ctx.actor) {
            String::new()
        } else {
            format!(" (broke the lock of {})", lock.holder)
        };
        Ok(Reply::ok(format!("{env} is unlocked{whose}")))
    }
}

#[async_trait::async_trait]
impl Run for LockEnv {
    fn env(&self) -> Option<&Name> {
        Some(&self.env)
    }

    async fn execute(&self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        self.clone().run(ctx).await
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[async_trait::async_trait]
impl Run for Unlock {
    fn env(&self) -> Option<&Name> {
        Some(&self.env)
    }

    async fn execute(&self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        self.clone().run(ctx).await
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse;
    use std::time::Duration;

    #[test]
    fn lock_takes_a_reason_and_a_duration_anywhere() {
        let Some(l) = parse("lock staging database migration --for 2h")
            .ok()
            .and_then(|c| c.get::<LockEnv>().cloned())
        else {
            panic!()
        };
        assert_eq!(l.reason.as_deref(), Some("database migration"));
        assert_eq!(l.duration, Some(Duration::from_secs(7200)));
        let Some(l) = parse("lock --for=30m staging")
            .ok()
            .and_then(|c| c.get::<LockEnv>().cloned())
        else {
            panic!()
        };
        assert_eq!(
            (l.reason, l.duration),
            (None, Some(Duration::from_secs(1800)))
        );
        assert!(parse("lock staging --for 2x").is_err());
        assert!(parse("lock").is_err());
    }

    #[test]
    fn unlock_takes_force() {
        let Some(u) = parse("unlock staging --force")
            .ok()
            .and_then(|c| c.get::<Unlock>().cloned())
        else {
            panic!()
        };
        assert!(u.force);
        assert!(parse("unlock staging now").is_err());
    }
}
