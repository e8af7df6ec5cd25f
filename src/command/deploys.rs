//! `deploys`: recent deploys of an environment with outcome and duration.
//!
//! ```text
//! deploys <env> [--limit N]
//! ```

use super::args::Args;
use super::context::Context;
use super::error::{CommandError, ParseError};
use super::registry::Run;
use super::{Info, Reply, render};
use crate::domain::{DeployStatus, Name};
use crate::policy::Permission;

pub const INFO: Info = Info {
    name: "deploys",
    usage: "deploys <env> [--limit N]",
    summary: "recent deploys with outcome and duration",
    detail: "Newest first, 10 unless `--limit` (up to 200) says otherwise. A deploy whose process \
died shows as interrupted.",
    example: "deploys staging --limit 5",
    parse: |args| Ok(Box::new(parse(args)?)),
};

/// A parsed `deploys` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploys {
    pub env: Name,
    pub limit: u32,
}

pub fn parse(mut args: Args) -> Result<Deploys, ParseError> {
    let limit = args.limit(10, 200)?;
    let env = args.required("an environment, e.g. `deploys staging`")?;
    let env = Name::parse(&env).map_err(|e| args.error(format!("environment: {e}")))?;
    args.finish()?;
    Ok(Deploys { env, limit })
}

impl Deploys {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        ctx.environment(&self.env)?;
        ctx.require(Permission::read())?;
        let deploys = ctx.engine.deploys(&self.env, self.limit).await?;
        if deploys.is_empty() {
            return Ok(Reply::ok(format!("{} has not been deployed yet", self.env))
                .next("Deploy it", format!("converge {}", self.env)));
        }
        let now = ctx.now();
        let rows = deploys
            .iter()
            .map(|d| {
                let took = match (d.status, d.finished) {
                    (DeployStatus::Running, _) => {
                        format!("{} so far", render::millis(now - d.started))
                    }
                    (_, Some(end)) => render::millis(end - d.started),
                    (_, None) => "-".to_string(),
                };
                vec![
                    format!("#{}", d.id),
                    format!("{}@{}", d.env, d.revision),
                    d.kind.as_str().to_string(),
                    d.actor.to_string(),
                    render::time(d.started),
                    took,
                    d.status.to_string(),
                    d.summary.clone(),
                ]
            })
            .collect();
        let n = deploys.len();
        Ok(Reply::ok(format!(
            "{}: {n} deploy{}, newest first",
            self.env,
            if n == 1 { "" } else { "s" }
        ))
        .table(
            &[
                "deploy", "revision", "kind", "who", "started", "took", "status", "summary",
            ],
            rows,
        ))
    }
}

#[async_trait::async_trait]
impl Run for Deploys {
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
