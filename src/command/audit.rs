//! `audit`: who did what, where, with what outcome, newest first.
//!
//! ```text
//! audit [<env>] [--user <user>] [--limit N]
//! ```

use super::args::Args;
use super::context::Context;
use super::error::{CommandError, ParseError};
use super::registry::Run;
use super::{Info, Reply, render};
use crate::domain::{AuditFilter, Name};
use crate::policy::Permission;

pub const INFO: Info = Info {
    name: "audit",
    usage: "audit [<env>] [--user <user>] [--limit N]",
    summary: "every command attempted: who, where, what, outcome",
    detail: "Newest first, 20 entries unless `--limit` (up to 1000) says otherwise. `--user` \
matches an identity (`slack:U024BE7LH`), a user id or a display name.",
    example: "audit staging --user alice --limit 20",
    parse: |args| Ok(Box::new(parse(args)?)),
};

/// A parsed `audit` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub env: Option<Name>,
    pub user: Option<String>,
    pub limit: u32,
}

pub fn parse(mut args: Args) -> Result<Audit, ParseError> {
    let limit = args.limit(20, 1000)?;
    let user = args.option("--user")?;
    let env = args
        .next()
        .map(|e| Name::parse(&e).map_err(|err| args.error(format!("environment: {err}"))))
        .transpose()?;
    args.finish()?;
    Ok(Audit { env, user, limit })
}

impl Audit {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        if let Some(env) = &self.env {
            ctx.environment(env)?;
        }
        ctx.require(Permission::read())?;
        let filter = AuditFilter {
            env: self.env.clone(),
            user: self.user.clone(),
            limit: self.limit,
        };
        let entries = ctx.store.audit(&filter).await?;
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                let e = &e.entry;
                let place = match &e.channel {
                    Some(channel) => format!("{} {channel}", e.platform),
                    None => e.platform.clone(),
                };
                vec![
                    render::time(e.at),
                    format!("{} ({})", e.actor.display, e.actor.identity()),
                    place,
                    e.outcome.to_string(),
                    e.text.clone(),
                ]
            })
            .collect();
        let n = rows.len();
        Ok(Reply::ok(format!(
            "{n} audit entr{}, newest first",
            if n == 1 { "y" } else { "ies" }
        ))
        .table(&["when", "who", "where", "outcome", "command"], rows))
    }
}

#[async_trait::async_trait]
impl Run for Audit {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse;

    #[test]
    fn parses_filters() {
        let Some(a) = parse("audit staging --user alice --limit 5")
            .ok()
            .and_then(|c| c.get::<Audit>().cloned())
        else {
            panic!()
        };
        assert_eq!(
            (a.env.unwrap().as_str(), a.user.as_deref(), a.limit),
            ("staging", Some("alice"), 5)
        );
        let Some(a) = parse("audit").ok().and_then(|c| c.get::<Audit>().cloned()) else {
            panic!()
        };
        assert_eq!((a.env, a.user, a.limit), (None, None, 20));
    }
}
