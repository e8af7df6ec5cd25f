//! `plan`: what `converge` would do now, changing nothing.
//!
//! ```text
//! plan <env> [--force]
//! ```

use super::args::Args;
use super::context::Context;
use super::error::{CommandError, ParseError};
use super::outcome::engine_error;
use super::registry::Run;
use super::{Info, Reply};
use crate::domain::{Name, waves};
use crate::policy::Permission;

pub const INFO: Info = Info {
    name: "plan",
    usage: "plan <env> [--force]",
    summary: "what converge would deploy, changing nothing",
    detail: "Lists the services whose desired spec differs from what they last ran, in deploy \
order (waves). With `--force`, every service.",
    example: "plan staging",
    parse: |args| Ok(Box::new(parse(args)?)),
};

/// A parsed `plan` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub env: Name,
    pub force: bool,
}

pub fn parse(mut args: Args) -> Result<Plan, ParseError> {
    let force = args.flag("--force");
    let env = args.required("an environment, e.g. `plan staging`")?;
    let env = Name::parse(&env).map_err(|e| args.error(format!("environment: {e}")))?;
    args.finish()?;
    Ok(Plan { env, force })
}

impl Plan {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let config = ctx.environment(&self.env)?;
        ctx.require(Permission::read())?;
        let (revision, plan) = ctx
            .engine
            .plan(&self.env, self.force)
            .await
            .map_err(|e| engine_error(&self.env, e))?;
        let label = format!("{}@{revision}", self.env);
        if plan.steps.is_empty() {
            return Ok(Reply::ok(format!(
                "{label} is up to date: converge would deploy nothing"
            )));
        }
        let n = plan.steps.len();
        let waves = waves(plan.steps, &config.waves);
        let mut rows = Vec::new();
        for (i, wave) in waves.iter().enumerate() {
            for step in wave {
                rows.push(vec![format!("{}", i + 1), step.summary()]);
            }
        }
        let mut reply = Reply::ok(format!(
            "converge {} would deploy {n} service{} of {label}",
            self.env,
            if n == 1 { "" } else { "s" }
        ))
        .table(&["wave", "change"], rows);
        if !plan.orphaned.is_empty() {
            let names: Vec<&str> = plan.orphaned.iter().map(Name::as_str).collect();
            reply = reply.text(format!(
                "Deployed earlier but no longer desired (left running): {}",
                names.join(", ")
            ));
        }
        Ok(reply.next("Next", format!("converge {}", self.env)))
    }
}

#[async_trait::async_trait]
impl Run for Plan {
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
    fn parses_env_and_force() {
        let Some(p) = parse("plan staging --force")
            .ok()
            .and_then(|c| c.get::<Plan>().cloned())
        else {
            panic!()
        };
        assert!(p.force && p.env.as_str() == "staging");
        assert!(parse("plan").unwrap_err().message.contains("missing"));
    }
}
