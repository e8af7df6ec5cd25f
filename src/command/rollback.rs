//! `rollback`: a new revision equal to the last good one (or a given one), then converge it,
//! and pin the environment there until `unpin`.
//!
//! ```text
//! rollback <env> [<service>] [to <rev>] [-- reason]
//! ```
//! The last good revision is the applied one when desired state has moved past it (after a
//! failed deploy, say), otherwise the one applied before it. Needs only `rollback:<env>`, so
//! on-call can roll back without being able to deploy anything else.

use super::args::Args;
use super::context::{Context, Written};
use super::error::{CommandError, ParseError, UserError};
use super::outcome::{converge_reply, engine_error};
use super::{Info, Reply};
use crate::domain::{DeployKind, DeployStatus, Document, Name, Pin};
use crate::engine::ConvergeRequest;
use crate::policy::{Verb, on};

pub const INFO: Info = Info {
    name: "rollback",
    usage: "rollback <env> [<service>] [to <rev>] [-- reason]",
    summary: "restore the last good revision (or one service, or a given revision) and apply it",
    detail: "Writes a new revision equal to the last good one and converges it, then pins the \
environment so that promotions do not undo it until `unpin <env>`. `rollback production \
ms-users` restores one service; `rollback production to 41` a given revision. Needs \
`rollback:<env>` only.",
};

/// How many deploys back `rollback` looks for the last good revisions.
const DEPLOYS_CONSIDERED: u32 = 200;

/// A parsed `rollback` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    pub env: Name,
    pub service: Option<Name>,
    pub to: Option<u64>,
    pub reason: Option<String>,
}

pub fn parse(mut args: Args) -> Result<Rollback, ParseError> {
    let env = args.required("an environment, e.g. `rollback production`")?;
    let env = Name::parse(&env).map_err(|e| args.error(format!("environment: {e}")))?;
    let mut words = args.rest()?.into_iter().peekable();
    let service = match words.peek() {
        Some(w) if w != "to" => {
            let w = words.next().unwrap_or_default();
            Some(Name::parse(&w).map_err(|e| args.error(format!("service: {e}")))?)
        }
        _ => None,
    };
    let to = match words.next() {
        None => None,
        Some(w) if w == "to" => {
            let rev = words
                .next()
                .ok_or_else(|| args.error("`to` needs a revision, e.g. `to 41`"))?;
            let number = rev.rsplit('@').next().unwrap_or_default();
            match number.parse::<u64>() {
                Ok(n) if n >= 1 => Some(n),
                _ => return Err(args.error(format!("`{rev}` is not a revision number"))),
            }
        }
        Some(w) => return Err(args.error(format!("unexpected `{w}`"))),
    };
    if let Some(w) = words.next() {
        return Err(args.error(format!("unexpected `{w}`")));
    }
    let reason = args.finish()?;
    Ok(Rollback {
        env,
        service,
        to,
        reason,
    })
}

impl Rollback {
    pub async fn execute(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let env = &self.env;
        let config = ctx.environment(env)?;
        ctx.require(on(Verb::Rollback, env))?;
        ctx.ensure_unlocked(env).await?;
        let target = self.target(ctx).await?;
        let target_doc = ctx
            .store
            .revision(env, target)
            .await?
            .ok_or_else(|| {
                CommandError::Invalid(
                    UserError::new(format!("{env} has no revision {target}"))
                        .try_instead(format!("history {env}")),
                )
            })?
            .document;
        if let Some(service) = &self.service
            && target_doc.service(service).is_none()
        {
            return Err(CommandError::Invalid(
                UserError::new(format!(
                    "{env}@{target} has no service `{service}` to restore"
                ))
                .try_instead(format!("history {env} {service}")),
            ));
        }
        let what = match &self.service {
            Some(service) => format!("{service} to {env}@{target}"),
            None => format!("{env}@{target}"),
        };
        let reason = self
            .reason
            .clone()
            .unwrap_or_else(|| format!("rollback to {what}"));
        let service = self.service.clone();
        let written = ctx
            .write(env, Some(reason.clone()), |doc| {
                Ok(match &service {
                    None => target_doc.clone(),
                    Some(service) => {
                        let mut doc: Document = doc.clone();
                        doc.services
                            .insert(service.clone(), target_doc.services[service].clone());
                        doc
                    }
                })
            })
            .await?;
        let revision = match &written {
            Written::Revision(rev) => rev.meta.number,
            Written::Unchanged(head) => head.unwrap_or(target),
        };
        ctx.store
            .set_pin(&Pin {
                env: env.clone(),
                revision,
                by: ctx.actor.clone(),
                at: ctx.now(),
                reason,
            })
            .await?;
        let request = ConvergeRequest {
            env,
            config,
            base_dir: &ctx.config.base_dir,
            actor: ctx.actor,
            force: false,
            kind: DeployKind::Rollback,
            events: ctx.events,
        };
        let outcome = ctx
            .engine
            .converge(&request)
            .await
            .map_err(|e| engine_error(env, e))?;
        let deployed = converge_reply(env, outcome);
        let headline = match &written {
            Written::Revision(rev) => format!("{}: rolled back {what}", rev.meta.label()),
            Written::Unchanged(_) => format!("{env} already wants {what}"),
        };
        let mut reply = Reply::wrapping(headline, deployed);
        if let Some((window, ends)) = crate::policy::frozen(&config.freeze, ctx.now()) {
            let note = format!(
                "{env} is frozen ({}, until {}); the rollback by {} passed as break-glass",
                window.describe(),
                window.local(ends),
                ctx.actor
            );
            reply = reply.text(format!("{note} (audited)."));
            reply
                .alert
                .get_or_insert((env.clone(), format!("Rollback during a freeze: {note}.")));
        }
        Ok(reply
            .text(format!("{env} is pinned at {env}@{revision}: promotions into it are refused until unpinned."))
            .next("When the fix is ready", format!("unpin {env}")))
    }

    /// The revision to restore: `to`, or the last good one.
    async fn target(&self, ctx: &Context<'_>) -> Result<u64, CommandError> {
        let env = &self.env;
        if let Some(to) = self.to {
            return Ok(to);
        }
        ctx.engine.reap(env).await?;
        let succeeded: Vec<u64> = ctx
            .store
            .deploys(env, DEPLOYS_CONSIDERED)
            .await?
            .iter()
            .filter(|d| d.status == DeployStatus::Succeeded)
            .map(|d| d.revision)
            .collect();
        let Some(&applied) = succeeded.first() else {
            return Err(CommandError::Invalid(
                UserError::new(format!("{env} has never been deployed successfully, so there is no good revision to go back to"))
                    .try_instead(format!("rollback {env} to <revision> (see `history {env}`)")),
            ));
        };
        let (head, desired) = ctx.head(env).await?;
        let applied_doc = ctx
            .store
            .revision(env, applied)
            .await?
            .map(|r| r.document)
            .unwrap_or_default();
        if head.is_some_and(|h| h > applied) && desired != applied_doc {
            return Ok(applied);
        }
        succeeded.iter().copied().find(|&r| r != applied).ok_or_else(|| {
            CommandError::Invalid(
                UserError::new(format!("{env}@{applied} is the only revision of {env} ever deployed; there is nothing earlier to go back to"))
                    .try_instead(format!("rollback {env} to <revision> (see `history {env}`)")),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::command::{Command, parse};

    fn rollback(text: &str) -> super::Rollback {
        match parse(text) {
            Ok(Command::Rollback(r)) => r,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn parses_service_and_target() {
        let r = rollback("rollback production");
        assert_eq!((r.service, r.to), (None, None));
        let r = rollback("rollback production ms-users to 41 -- bad release");
        assert_eq!((r.service.unwrap().as_str(), r.to), ("ms-users", Some(41)));
        assert_eq!(r.reason.as_deref(), Some("bad release"));
        assert_eq!(rollback("rollback production to production@7").to, Some(7));
    }

    #[test]
    fn rejects_malformed_targets() {
        for bad in [
            "rollback",
            "rollback production to",
            "rollback production to x",
            "rollback production a b",
            "rollback production to 3 4",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
