//! `converge`: apply an environment's desired state: plan → apply → verify health → record.
//!
//! ```text
//! converge <env> [--force]
//! ```

use super::args::Args;
use super::context::Context;
use super::error::{CommandError, ParseError};
use super::gates::{check_freeze, with_override};
use super::outcome::converge_as;
use super::registry::Run;
use super::{Info, Reply};
use crate::domain::Name;
use crate::policy::{Verb, on};

pub const INFO: Info = Info {
    name: "converge",
    usage: "converge <env> [--force]",
    summary: "apply desired state: deploy what changed, verify health, record it",
    detail: "Deploys only the services whose desired spec differs from what they last ran, in \
the environment's waves and concurrency, verifying each. The first failure stops the deploy \
(and rolls back what it touched where `auto_rollback` is on). `--force` redeploys every service, \
and overrides a freeze window for someone holding `force:<env>`. Where the environment needs \
approvals, the converge becomes a request others approve.",
    example: "converge staging",
    parse: |args| Ok(Box::new(parse(args)?)),
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
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let config = ctx.environment(&self.env)?;
        ctx.require(on(Verb::Converge, &self.env))?;
        ctx.ensure_unlocked(&self.env).await?;
        let override_note = check_freeze(ctx, &self.env, config, self.force)?;
        if config.approvals > 0 {
            return super::approve::request(ctx, &self.env, config, self.force).await;
        }
        let reply = converge_as(ctx, &self.env, config, ctx.actor, self.force, None).await?;
        Ok(with_override(reply, &self.env, override_note))
    }
}

#[async_trait::async_trait]
impl Run for Converge {
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

    #[test]
    fn needs_an_environment() {
        let err = parse("converge").unwrap_err();
        assert!(err.try_instead.unwrap().starts_with("converge <env>"));
        let Some(c) = parse("converge production --force")
            .ok()
            .and_then(|c| c.get::<Converge>().cloned())
        else {
            panic!()
        };
        assert!(c.force);
    }
}
