//! `converge`: apply an environment's desired state: plan → apply → verify health → record.
//!
//! ```text
//! converge <env> [--force]
//! ```

use super::args::Args;
use super::context::Context;
use super::error::{CommandError, ParseError, UserError};
use super::outcome::{converge_reply, engine_error};
use super::{Info, Reply};
use crate::config::EnvironmentConfig;
use crate::domain::{DeployKind, Name};
use crate::engine::{ConvergeRequest, Expected};
use crate::policy::{Verb, frozen, on};

pub const INFO: Info = Info {
    name: "converge",
    usage: "converge <env> [--force]",
    summary: "apply desired state: deploy what changed, verify health, record it",
    detail: "Deploys only the services whose desired spec differs from what they last ran, in \
the environment's waves and concurrency, verifying each. The first failure stops the deploy \
(and rolls back what it touched where `auto_rollback` is on). `--force` redeploys every service, \
and overrides a freeze window for someone holding `force:<env>`. Where the environment needs \
approvals, the converge becomes a request others approve.",
};

/// A parsed `converge` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converge {
    pub env: Name,
    pub force: bool,
}

pub fn parse(mut args: Args) -> Result<Converge, ParseError> {
    let force = args.flag("--force");
    let env = args.required("an environment, e.g. `converge staging`")?;
    let env = Name::parse(&env).map_err(|e| args.error(format!("environment: {e}")))?;
    args.finish()?;
    Ok(Converge { env, force })
}

impl Converge {
    pub async fn execute(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let config = ctx.environment(&self.env)?;
        ctx.require(on(Verb::Converge, &self.env))?;
        ctx.ensure_unlocked(&self.env).await?;
        let override_note = check_freeze(ctx, &self.env, config, self.force)?;
        if config.approvals > 0 {
            return super::approve::request(ctx, &self.env, config, self.force).await;
        }
        let reply = run(ctx, &self.env, config, ctx.actor, self.force, None).await?;
        Ok(with_override(reply, &self.env, override_note))
    }
}

/// Refuses a converge inside a freeze window unless `--force` by someone holding
/// `force:<env>`; then returns the note to record and announce.
pub fn check_freeze(
    ctx: &Context<'_>,
    env: &Name,
    config: &EnvironmentConfig,
    force: bool,
) -> Result<Option<String>, CommandError> {
    let Some((window, ends)) = frozen(&config.freeze, ctx.now()) else {
        return Ok(None);
    };
    let until = format!("{} ({})", window.local(ends), super::render::time(ends));
    if !force {
        return Err(CommandError::Refused(
            UserError::new(format!(
                "{env} is frozen ({}) until {until}: converges are refused",
                window.describe()
            ))
            .try_instead(format!(
                "converge {env} after the freeze, or `converge {env} --force` (needs force:{env}; audited and announced)"
            )),
        ));
    }
    ctx.require(on(Verb::Force, env))?;
    Ok(Some(format!(
        "{} overrode the freeze of {env} ({}, until {until})",
        ctx.actor,
        window.describe()
    )))
}

/// Adds the freeze override to the reply and to what the transports announce.
pub fn with_override(mut reply: Reply, env: &Name, note: Option<String>) -> Reply {
    if let Some(note) = note {
        reply.alert = Some((
            env.clone(),
            format!("Forced deploy during a freeze: {note}. {}", reply.headline),
        ));
        reply = reply.text(format!("Freeze overridden: {note}."));
    }
    reply
}

/// Converges `env` for `actor`: what `converge` does once policy said yes, and what an
/// approved request runs (bound by `expect` to the revision and plan that were approved).
pub async fn run(
    ctx: &Context<'_>,
    env: &Name,
    config: &EnvironmentConfig,
    actor: &crate::domain::Actor,
    force: bool,
    expect: Option<Expected>,
) -> Result<Reply, CommandError> {
    let request = ConvergeRequest {
        env,
        config,
        base_dir: &ctx.config.base_dir,
        actor,
        force,
        kind: DeployKind::Converge,
        events: ctx.events,
        expect,
        only: None,
    };
    let outcome = ctx
        .engine
        .converge(&request)
        .await
        .map_err(|e| engine_error(env, e))?;
    Ok(converge_reply(env, outcome))
}

#[cfg(test)]
mod tests {
    use crate::command::{Command, parse};

    #[test]
    fn needs_an_environment() {
        let err = parse("converge").unwrap_err();
        assert!(err.try_instead.unwrap().starts_with("converge <env>"));
        let Ok(Command::Converge(c)) = parse("converge production --force") else {
            panic!()
        };
        assert!(c.force);
    }
}
