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
use super::outcome::{Ask, converge_reply, converge_request, engine_error};
use super::registry::Run;
use super::{Info, Reply};
use crate::domain::{DeployKind, DeployStatus, Document, Name, Pin};
use crate::engine::{EngineError, Expected};
use crate::policy::{Verb, on};
use std::collections::BTreeSet;

pub const INFO: Info = Info {
    name: "rollback",
    usage: "rollback <env> [<service>] [to <rev>] [-- reason]",
    summary: "restore the last good revision (or one service, or a given revision) and apply it",
    detail: "Writes a new revision equal to the last good one and converges it, then pins the \
environment so that promotions do not undo it until `unpin <env>`. `rollback production \
ms-users` restores one service; `rollback production to 41` a given revision. Needs \
`rollback:<env>` only.",
    example: "rollback production ms-users to 41 -- bad release",
    parse: |args| Ok(Box::new(parse(args)?)),
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
            // `41` or `production@41`; a label of another environment is a mistake.
            let number = match rev.rsplit_once('@') {
                Some((label, _)) if label != env.as_str() => {
                    return Err(args.error(format!(
                        "`{rev}` is a revision of {label}, not of {env}: write `to 41` or `to {env}@41`"
                    )));
                }
                Some((_, number)) => number,
                None => rev.as_str(),
            };
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
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let env = &self.env;
        let config = ctx.environment(env)?;
        ctx.require(on(Verb::Rollback, env))?;
        ctx.ensure_unlocked(env).await?;
        // A running deploy would make the rollback's converge fail after its revision and pin
        // were written: refuse before writing anything.
        if let Some(running) = ctx.engine.running(env).await? {
            return Err(engine_error(env, EngineError::Busy(Box::new(running))));
        }
        let succeeded = self.succeeded(ctx).await?;
        let target = match self.to {
            Some(to) => self.check_target(ctx, to, &succeeded).await?,
            None => self.last_good(ctx, &succeeded).await?,
        };
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
        // What stands if the deploy then cannot run.
        let kept = match &written {
            Written::Revision(_) => {
                format!("wrote {env}@{revision} (rollback to {what}) and pinned {env} there")
            }
            Written::Unchanged(_) => {
                format!("pinned {env} at {env}@{revision}, which already wants {what}")
            }
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
        // Bound to the revision just written, and for a one-service rollback to that service:
        // anything else that differs in desired state (an unapproved change of another
        // service, a write that landed meanwhile) is a converge, with its own checks.
        let ask = Ask {
            actor: ctx.actor,
            force: false,
            kind: match self.service {
                Some(_) => DeployKind::ServiceRollback,
                None => DeployKind::Rollback,
            },
            expect: Some(Expected {
                revision,
                plan: None,
            }),
            only: self.service.clone().map(|s| BTreeSet::from([s])),
        };
        let request = converge_request(ctx, env, config, ask);
        let outcome = ctx.engine.converge(&request).await.map_err(|e| {
            // The revision and pin are written: say so, rather than "nothing changed".
            match engine_error(env, e) {
                CommandError::Invalid(e) | CommandError::Refused(e) => {
                    CommandError::Interrupted(UserError {
                        message: format!("{kept}, but did not deploy it: {}", e.message),
                        try_instead: Some(format!("rollback {env} again, or `unpin {env}`")),
                    })
                }
                // Partway (a store failure, a lost lease): what was written still stands.
                CommandError::Store(e) => CommandError::Interrupted(UserError {
                    message: format!("{kept}, but the deploy could not be completed: {e}"),
                    try_instead: Some(format!("status {env}, then `rollback {env}` again")),
                }),
                other => other,
            }
        })?;
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

    /// Revisions of the environment's successful deploys, newest first: the only ones a
    /// rollback may restore, since each ran healthy before. A one-service rollback does not
    /// count: its revision carries other services' desired state that it never deployed.
    async fn succeeded(&self, ctx: &Context<'_>) -> Result<Vec<u64>, CommandError> {
        Ok(ctx
            .engine
            .deploys(&self.env, DEPLOYS_CONSIDERED)
            .await?
            .iter()
            .filter(|d| d.status == DeployStatus::Succeeded && d.kind.is_whole())
            .map(|d| d.revision)
            .collect())
    }

    /// `rollback <env> to <rev>`: only a revision that was applied successfully before. Any
    /// other revision (the head nobody approved, one an approver denied) is a converge, with
    /// approvals, freeze windows and `converge:<env>`.
    async fn check_target(
        &self,
        ctx: &Context<'_>,
        to: u64,
        succeeded: &[u64],
    ) -> Result<u64, CommandError> {
        let env = &self.env;
        if succeeded.contains(&to) {
            return Ok(to);
        }
        if ctx.store.revision(env, to).await?.is_none() {
            return Err(CommandError::Invalid(
                UserError::new(format!("{env} has no revision {to}"))
                    .try_instead(format!("history {env}")),
            ));
        }
        let deployed: Vec<String> = succeeded
            .iter()
            .take(5)
            .map(|r| format!("{env}@{r}"))
            .collect();
        let choices = if deployed.is_empty() {
            format!("{env} has no successful deploy to go back to")
        } else {
            format!(
                "revisions deployed successfully lately: {}",
                deployed.join(", ")
            )
        };
        Err(CommandError::Refused(
            UserError::new(format!(
                "{env}@{to} was never deployed successfully (in the last {DEPLOYS_CONSIDERED} deploys), so a rollback cannot restore it; {choices}"
            ))
            .try_instead(match succeeded.first() {
                Some(r) => format!("rollback {env} to {r}, or `converge {env}` to deploy new desired state (with its approvals)"),
                None => format!("converge {env} (with its approvals)"),
            }),
        ))
    }

    /// The last good revision: the applied one when desired state moved past it, otherwise
    /// the one applied before it.
    async fn last_good(&self, ctx: &Context<'_>, succeeded: &[u64]) -> Result<u64, CommandError> {
        let env = &self.env;
        let Some(&applied) = succeeded.first() else {
            return Err(CommandError::Invalid(
                UserError::new(format!("{env} has never been deployed successfully, so there is no good revision to go back to"))
                    .try_instead(format!("converge {env}")),
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
                    .try_instead(format!("history {env}")),
            )
        })
    }
}

#[async_trait::async_trait]
impl Run for Rollback {
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

    fn rollback(text: &str) -> super::Rollback {
        match parse(text).map(|c| c.get::<Rollback>().cloned()) {
            Ok(Some(r)) => r,
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
            "rollback production to staging@3",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
