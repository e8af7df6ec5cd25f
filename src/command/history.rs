//! `history`: revisions of an environment (or of one service), newest first.
//!
//! ```text
//! history <env> [<service>] [--limit N]
//! ```

use super::args::Args;
use super::context::Context;
use super::env::known_service;
use super::error::{CommandError, ParseError};
use super::registry::Run;
use super::render;
use super::{Info, Reply};
use crate::domain::Name;
use crate::policy::Permission;

pub const INFO: Info = Info {
    name: "history",
    usage: "history <env> [<service>] [--limit N]",
    summary: "revisions, newest first: who, when, why, what changed",
    detail: "Shows the last 10 revisions unless `--limit` (up to 1000) says otherwise. With a \
service, only revisions that changed it.",
    example: "history staging ms-users --limit 20",
    parse: |args| Ok(Box::new(parse(args)?)),
};

const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 1000;

/// A parsed `history` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    pub env: Name,
    pub service: Option<Name>,
    pub limit: u32,
}

pub fn parse(mut args: Args) -> Result<History, ParseError> {
    let limit = args.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let env = args.required("an environment, e.g. `history staging`")?;
    let env = Name::parse(&env).map_err(|e| args.error(format!("environment: {e}")))?;
    let service = args
        .next()
        .map(|s| Name::parse(&s).map_err(|e| args.error(format!("service: {e}"))))
        .transpose()?;
    args.finish()?;
    Ok(History {
        env,
        service,
        limit,
    })
}

impl History {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        ctx.environment(&self.env)?;
        ctx.require(Permission::read())?;
        let revisions = ctx
            .store
            .history(&self.env, self.service.as_ref(), self.limit + 1)
            .await?;
        if let Some(service) = &self.service
            && revisions.is_empty()
        {
            let (_, doc) = ctx.head(&self.env).await?;
            known_service(ctx, &doc, &self.env, service)?;
        }
        let more = revisions.len() > self.limit as usize;
        let rows: Vec<Vec<String>> = revisions
            .iter()
            .take(self.limit as usize)
            .map(|rev| {
                vec![
                    rev.label(),
                    render::time(rev.at),
                    rev.author.to_string(),
                    render::changes(&rev.changes, 3),
                    rev.reason.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let subject = match &self.service {
            Some(service) => format!("{}.{service}", self.env),
            None => self.env.to_string(),
        };
        if rows.is_empty() {
            return Ok(Reply::ok(format!("{subject} has no revisions yet")));
        }
        let shown = rows.len();
        let mut reply = Reply::ok(format!(
            "{subject}: {} revision{}, newest first",
            shown,
            super::env::plural(shown)
        ))
        .table(&["revision", "when", "who", "changes", "reason"], rows);
        if more {
            let service = self
                .service
                .as_ref()
                .map(|s| format!(" {s}"))
                .unwrap_or_default();
            reply = reply.text("Older revisions exist.").next(
                "More",
                format!(
                    "history {}{service} --limit {}",
                    self.env,
                    (self.limit * 5).min(MAX_LIMIT)
                ),
            );
        }
        Ok(reply)
    }
}

#[async_trait::async_trait]
impl Run for History {
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
    fn parses_service_and_limit_in_any_order() {
        let Some(h) = parse("history --limit 5 staging ms-users")
            .ok()
            .and_then(|c| c.get::<History>().cloned())
        else {
            panic!()
        };
        assert_eq!(
            (h.env.as_str(), h.service.unwrap().as_str(), h.limit),
            ("staging", "ms-users", 5)
        );
        let Some(h) = parse("history staging")
            .ok()
            .and_then(|c| c.get::<History>().cloned())
        else {
            panic!()
        };
        assert_eq!(h.limit, 10);
    }

    #[test]
    fn rejects_bad_limits() {
        for bad in [
            "history staging --limit 0",
            "history staging --limit x",
            "history staging --limit",
            "history staging --limit 5000",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
