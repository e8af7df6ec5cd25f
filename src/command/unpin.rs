//! `unpin`: lift the pin a rollback left, so promotions into the environment work again.
//!
//! ```text
//! unpin <env>
//! ```

use super::args::Args;
use super::context::Context;
use super::error::{CommandError, ParseError};
use super::registry::Run;
use super::{Info, Reply};
use crate::domain::Name;
use crate::policy::{Verb, on};

pub const INFO: Info = Info {
    name: "unpin",
    usage: "unpin <env>",
    summary: "lift the pin a rollback left",
    detail: "Needs `rollback:<env>` or `write:<env>`.",
    example: "unpin production",
    parse: |args| Ok(Box::new(parse(args)?)),
};

/// A parsed `unpin` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpin {
    pub env: Name,
}

pub fn parse(mut args: Args) -> Result<Unpin, ParseError> {
    let env = args.required("an environment, e.g. `unpin production`")?;
    let env = Name::parse(&env).map_err(|e| args.error(format!("environment: {e}")))?;
    args.finish()?;
    Ok(Unpin { env })
}

impl Unpin {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let env = &self.env;
        ctx.environment(env)?;
        if ctx.require(on(Verb::Rollback, env)).is_err() {
            ctx.require(on(Verb::Write, env))?;
        }
        Ok(match ctx.store.clear_pin(env).await? {
            Some(pin) => Reply::ok(format!(
                "{env} is unpinned (was pinned at {env}@{} by {}): promotions into it work again",
                pin.revision, pin.by
            )),
            None => Reply::ok(format!("{env} is not pinned; nothing changed")),
        })
    }
}

#[async_trait::async_trait]
impl Run for Unpin {
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
