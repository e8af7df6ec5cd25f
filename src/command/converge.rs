//! `converge`: apply an environment's desired state: plan → apply → verify health → record.
//!
//! ```text
//! converge <env> [--force]
//! ```

use super::args::Args;
use super::context::Context;
use super::error::{CommandError, ParseError};
use super::outcome::{converge_reply, engine_error};
use super::{Info, Reply};
use crate::domain::{DeployKind, Name};
use crate::engine::ConvergeRequest;
use crate::policy::{Verb, on};

pub const INFO: Info = Info {
    name: "converge",
    usage: "converge <env> [--force]",
    summary: "apply desired state: deploy what changed, verify health, record it",
    detail: "Deploys only the services whose desired spec differs from what they last ran, in \
the environment's waves and concurrency, verifying each. The first failure stops the deploy \
(and rolls back what it touched where `auto_rollback` is on). `--force` redeploys every service.",
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
        let request = ConvergeRequest {
            env: &self.env,
            config,
            base_dir: &ctx.config.base_dir,
            actor: ctx.actor,
            force: self.force,
            kind: DeployKind::Converge,
            events: ctx.events,
        };
        let outcome = ctx
            .engine
            .converge(&request)
            .await
            .map_err(|e| engine_error(&self.env, e))?;
        Ok(converge_reply(&self.env, outcome))
    }
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
