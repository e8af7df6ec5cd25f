//! Approvals for protected environments: a converge of an environment with `approvals = N`
//! becomes a request bound to the revision and plan shown; N other people holding
//! `approve:<env>` approve it, and the last approval runs the converge.
//!
//! ```text
//! pending [<env>]
//! approve <id>
//! deny <id> [reason…]
//! ```
//! A request goes stale when desired state (or what is applied) moved since it was made, and
//! expires after the environment's `approval_ttl`; either way the reply says how to ask again.
//! Approving twice counts once; the requester cannot approve their own request.

use super::args::Args;
use super::context::Context;
use super::error::{CommandError, ParseError, UserError};
use super::registry::Run;
use super::{Info, Reply, render};
use crate::config::EnvironmentConfig;
use crate::domain::{ApprovalRequest, ApprovalStatus, Name, NewApproval};
use crate::engine::Expected;
use crate::policy::{Permission, Verb, on};
use crate::store::Store;

pub const PENDING: Info = Info {
    name: "pending",
    usage: "pending [<env>]",
    summary: "approval requests waiting for approvers",
    detail: "Lists open requests with what they would deploy, who asked, approvals so far and \
when they expire.",
    example: "pending production",
    parse: |args| Ok(Box::new(parse_pending(args)?)),
};

pub const APPROVE: Info = Info {
    name: "approve",
    usage: "approve <id>",
    summary: "approve someone else's converge request (needs approve:<env>)",
    detail: "When the last approval arrives the converge runs. You cannot approve your own \
request; approving twice counts once. A request whose desired state moved is stale.",
    example: "approve 7",
    parse: |args| Ok(Box::new(parse_decide(args, true)?)),
};

pub const DENY: Info = Info {
    name: "deny",
    usage: "deny <id> [reason…]",
    summary: "refuse a converge request (approvers, or the requester to withdraw it)",
    detail: "Closes the request; the requester can ask again with `converge <env>`.",
    example: "deny 7 wrong version",
    parse: |args| Ok(Box::new(parse_decide(args, false)?)),
};

/// A parsed `pending`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub env: Option<Name>,
}

/// A parsed `approve` or `deny`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decide {
    pub id: i64,
    pub approve: bool,
    pub reason: Option<String>,
}

pub fn parse_pending(mut args: Args) -> Result<Pending, ParseError> {
    let env = args
        .next()
        .map(|e| Name::parse(&e).map_err(|err| args.error(format!("environment: {err}"))))
        .transpose()?;
    args.finish()?;
    Ok(Pending { env })
}

pub fn parse_decide(mut args: Args, approve: bool) -> Result<Decide, ParseError> {
    let id = args.required("a request id, e.g. `approve 7` (see `pending`)")?;
    let id = match id.trim_start_matches('#').parse::<i64>() {
        Ok(n) if n > 0 => n,
        _ => return Err(args.error(format!("`{id}` is not a request id (see `pending`)"))),
    };
    let words = args.rest()?;
    let dashes = args.finish()?;
    let reason = [words.join(" "), dashes.unwrap_or_default()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if approve && !reason.is_empty() {
        return Err(ParseError::with_usage(
            "`approve` takes only the request id",
            APPROVE.usage,
        ));
    }
    Ok(Decide {
        id,
        approve,
        reason: (!reason.is_empty()).then_some(reason),
    })
}

/// What a converge of `env` that needs approvals does instead: record (or find) the request.
pub async fn request(
    ctx: &Context<'_>,
    env: &Name,
    config: &EnvironmentConfig,
    force: bool,
) -> Result<Reply, CommandError> {
    let (revision, plan) = ctx
        .engine
        .plan(env, force)
        .await
        .map_err(|e| super::outcome::engine_error(env, e))?;
    if plan.steps.is_empty() {
        return Ok(Reply::ok(format!(
            "{env}@{revision} is up to date: nothing to deploy, no approval needed"
        )));
    }
    let plan_text = plan.text();
    let digest = plan.digest();
    let now = ctx.now();
    let existing = ctx
        .store
        .pending_approvals(Some(env))
        .await?
        .into_iter()
        .find(|r| {
            r.request.requester.identity() == ctx.actor.identity()
                && r.request.revision == revision
                && r.request.plan == plan_text
                && r.request.digest == digest
                && r.request.force == force
                && r.request.expires > now
        });
    let (id, expires) = match existing {
        Some(r) => (r.id, r.request.expires),
        None => {
            let expires = now + config.approval_ttl.0.as_millis() as i64;
            let new = NewApproval {
                env: env.clone(),
                revision,
                plan: plan_text.clone(),
                digest,
                force,
                requester: ctx.actor.clone(),
                created: now,
                expires,
                needed: config.approvals,
            };
            (ctx.store.create_approval(&new).await?, expires)
        }
    };
    let n = config.approvals;
    let mut reply = Reply::ok(format!(
        "{env}@{revision} needs {n} approval{} before it deploys: request #{id} is waiting",
        if n == 1 { "" } else { "s" }
    ));
    for line in plan_text.lines() {
        reply = reply.text(format!("  {line}"));
    }
    Ok(reply
        .text(format!(
            "Another user holding approve:{env} approves it until {}.",
            render::time(expires)
        ))
        .next("To approve", format!("approve {id}"))
        .buttons(vec![
            super::Button {
                label: "Approve".into(),
                command: format!("approve {id}"),
                primary: true,
            },
            super::Button {
                label: "Deny".into(),
                command: format!("deny {id}"),
                primary: false,
            },
        ]))
}

impl Pending {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        if let Some(env) = &self.env {
            ctx.environment(env)?;
        }
        ctx.require(Permission::read())?;
        let now = ctx.now();
        let open: Vec<ApprovalRequest> = ctx
            .store
            .pending_approvals(self.env.as_ref())
            .await?
            .into_iter()
            .filter(|r| r.request.expires > now)
            // Requests of environments bound to other channels are not shown here.
            .filter(|r| ctx.ensure_channel(&r.request.env).is_ok())
            .collect();
        if open.is_empty() {
            return Ok(Reply::ok("No approval requests are waiting"));
        }
        let rows = open
            .iter()
            .map(|r| {
                let q = &r.request;
                vec![
                    format!("#{}", r.id),
                    format!("{}@{}", q.env, q.revision),
                    q.requester.to_string(),
                    format!("{}/{}", r.approvers.len(), q.needed),
                    render::time(q.expires),
                    q.plan.lines().collect::<Vec<_>>().join("; "),
                ]
            })
            .collect();
        let n = open.len();
        Ok(Reply::ok(format!(
            "{n} approval request{} waiting",
            if n == 1 { "" } else { "s" }
        ))
        .table(
            &[
                "request",
                "revision",
                "asked by",
                "approvals",
                "expires",
                "would deploy",
            ],
            rows,
        )
        .next("To approve one", "approve <request>"))
    }
}

impl Decide {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let Some(found) = ctx.store.approval(self.id).await? else {
            return Err(CommandError::Invalid(
                UserError::new(format!("there is no approval request #{}", self.id))
                    .try_instead("pending"),
            ));
        };
        let env = found.request.env.clone();
        let config = ctx.environment(&env)?;
        // The request names its environment only now: its channel bindings apply here too.
        ctx.ensure_channel(&env)?;
        let is_requester = found.request.requester.identity() == ctx.actor.identity();
        if self.approve || !is_requester {
            ctx.require(on(Verb::Approve, &env))?;
        }
        if found.status != ApprovalStatus::Pending {
            return Err(CommandError::Invalid(
                UserError::new(format!(
                    "request #{} is already {}",
                    self.id,
                    found.status.as_str()
                ))
                .try_instead(format!("converge {env} (to ask again)")),
            ));
        }
        if !self.approve {
            let who = ctx.actor.to_string();
            ctx.store
                .close_approval(
                    self.id,
                    ApprovalStatus::Denied,
                    Some(&who),
                    self.reason.as_deref(),
                )
                .await?;
            let why = self
                .reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let verb = if is_requester { "withdrawn" } else { "denied" };
            return Ok(Reply::ok(format!(
                "request #{} ({env}@{}, asked by {}) {verb} by {who}{why}",
                self.id, found.request.revision, found.request.requester
            )));
        }
        if is_requester {
            return Err(CommandError::Refused(
                UserError::new(format!(
                    "you asked for request #{} yourself: another user holding approve:{env} must approve it",
                    self.id
                ))
                .try_instead(format!("ask a colleague to `approve {}`", self.id)),
            ));
        }
        self.check_current(ctx, &found).await?;
        let added = ctx
            .store
            .add_approver(self.id, ctx.actor, ctx.now())
            .await?;
        let count = found.approvers.len() + usize::from(added);
        let needed = found.request.needed as usize;
        if count < needed {
            let headline = if added {
                format!(
                    "approved request #{} ({count} of {needed}); it needs {} more",
                    self.id,
                    needed - count
                )
            } else {
                format!(
                    "you already approved request #{}; it still needs {} more (approving twice counts once)",
                    self.id,
                    needed - count
                )
            };
            return Ok(Reply::ok(headline));
        }
        if !added && count > needed {
            return Ok(Reply::ok(format!(
                "you already approved request #{}",
                self.id
            )));
        }
        // Everything that could refuse the converge is checked before the request is closed,
        // so that a refusal leaves it pending.
        ctx.ensure_unlocked(&env).await?;
        let override_note = super::gates::check_freeze(ctx, &env, config, found.request.force)?;
        // Closing is the claim: of two approvers racing, only one runs the converge.
        if !ctx
            .store
            .close_approval(
                self.id,
                ApprovalStatus::Executed,
                Some(&ctx.actor.to_string()),
                None,
            )
            .await?
        {
            return Err(CommandError::Invalid(
                UserError::new(format!("request #{} was closed meanwhile", self.id))
                    .try_instead("pending"),
            ));
        }
        // The engine deploys exactly the approved revision and plan, or nothing.
        let expect = Expected {
            revision: found.request.revision,
            plan: Some((found.request.plan.clone(), found.request.digest.clone())),
        };
        let deployed = super::outcome::converge_as(
            ctx,
            &env,
            config,
            &found.request.requester,
            found.request.force,
            Some(expect),
        )
        .await;
        let deployed = match deployed {
            Ok(reply) => reply,
            Err(e) => {
                // It never started, so the request did not execute after all: stale when what
                // would deploy moved (or a check failed), pending again when another deploy was
                // in the way. A deploy that started and stopped stays executed.
                let back = match &e {
                    CommandError::Invalid(_) => Some(ApprovalStatus::Stale),
                    CommandError::Refused(_) => Some(ApprovalStatus::Pending),
                    CommandError::Store(_) | CommandError::Interrupted(_) => None,
                };
                if let Some(status) = back {
                    ctx.store
                        .reclose_approval(self.id, ApprovalStatus::Executed, status, None)
                        .await?;
                }
                // The request stays closed as executed: say so rather than "nothing changed".
                if let CommandError::Store(store) = e {
                    return Err(CommandError::Interrupted(UserError::new(format!(
                        "request #{} was approved and closed, but its converge of {env} could not complete: {store}",
                        self.id
                    )).try_instead(format!("status {env}"))));
                }
                return Err(e);
            }
        };
        let deployed = super::gates::with_override(deployed, &env, override_note);
        Ok(Reply::wrapping(
            format!(
                "request #{} approved by {}: converging {env}@{} as asked by {}",
                self.id, ctx.actor, found.request.revision, found.request.requester
            ),
            deployed,
        ))
    }

    /// Refuses (and closes) a request that expired or whose desired state or plan moved.
    async fn check_current(
        &self,
        ctx: &Context<'_>,
        found: &ApprovalRequest,
    ) -> Result<(), CommandError> {
        let env = &found.request.env;
        let ask_again = format!("converge {env} (to ask again)");
        if ctx.now() >= found.request.expires {
            ctx.store
                .close_approval(self.id, ApprovalStatus::Expired, None, None)
                .await?;
            return Err(CommandError::Invalid(
                UserError::new(format!(
                    "request #{} expired at {}",
                    self.id,
                    render::time(found.request.expires)
                ))
                .try_instead(ask_again),
            ));
        }
        let (revision, plan) = ctx
            .engine
            .plan(env, found.request.force)
            .await
            .map_err(|e| super::outcome::engine_error(env, e))?;
        let digest_moved =
            !found.request.digest.is_empty() && plan.digest() != found.request.digest;
        if revision != found.request.revision || plan.text() != found.request.plan || digest_moved {
            ctx.store
                .close_approval(self.id, ApprovalStatus::Stale, None, None)
                .await?;
            let what = if revision != found.request.revision {
                format!(
                    "{env}'s desired state moved from {env}@{} to {env}@{revision}",
                    found.request.revision
                )
            } else {
                format!("what {env} runs changed, so the plan is no longer the one shown")
            };
            return Err(CommandError::Invalid(
                UserError::new(format!(
                    "request #{} is stale: {what} since it was made",
                    self.id
                ))
                .try_instead(ask_again),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Run for Pending {
    fn env(&self) -> Option<&Name> {
        self.env.as_ref()
    }

    async fn execute(&self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        self.clone().run(ctx).await
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[async_trait::async_trait]
impl Run for Decide {
    /// The request names the environment: the audit trail records it.
    async fn audited_env(&self, store: &dyn Store) -> Option<Name> {
        store
            .approval(self.id)
            .await
            .ok()
            .flatten()
            .map(|r| r.request.env)
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

    #[test]
    fn parses_ids_and_reasons() {
        let Some(d) = parse("approve #7")
            .ok()
            .and_then(|c| c.get::<Decide>().cloned())
        else {
            panic!()
        };
        assert!(d.approve && d.id == 7);
        let Some(d) = parse("deny 7 not during the incident")
            .ok()
            .and_then(|c| c.get::<Decide>().cloned())
        else {
            panic!()
        };
        assert_eq!(d.reason.as_deref(), Some("not during the incident"));
        assert!(parse("approve").is_err());
        assert!(parse("approve x").is_err());
        assert!(parse("approve 7 because").is_err());
        let Some(p) = parse("pending production")
            .ok()
            .and_then(|c| c.get::<Pending>().cloned())
        else {
            panic!()
        };
        assert_eq!(p.env.unwrap().as_str(), "production");
    }
}
