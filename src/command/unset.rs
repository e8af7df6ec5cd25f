//! `unset`: remove a key or a whole service (one new revision).
//!
//! ```text
//! unset <env>.<service>[.<key>] [--yes] [-- reason]
//! ```
//! Removing a whole service of a protected environment asks to be repeated with `--yes`.

use super::args::Args;
use super::context::{Context, Written};
use super::env::known_service;
use super::error::{CommandError, ParseError, UserError};
use super::registry::Run;
use super::render;
use super::{Info, Reply};
use crate::domain::Name;
use crate::domain::Target;
use crate::policy::{Verb, on};

pub const INFO: Info = Info {
    name: "unset",
    usage: "unset <env>.<service>[.<key>] [--yes] [-- reason]",
    summary: "remove a key or a whole service (one new revision)",
    detail: "`unset staging.ms-billing.image` removes one key; `unset staging.ms-billing` removes \
the service from staging's desired state (on a protected environment, add `--yes`).",
    example: "unset staging.ms-users.image",
    parse: |args| Ok(Box::new(parse(args)?)),
};

/// A parsed `unset` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unset {
    pub target: Target,
    /// Confirms removing a whole service of a protected environment.
    pub yes: bool,
    pub reason: Option<String>,
}

pub fn parse(mut args: Args) -> Result<Unset, ParseError> {
    let yes = args.flag("--yes");
    let path = args.required("what to remove, e.g. `unset staging.ms-users.image`")?;
    let target = Target::parse(&path).map_err(|e| args.error(e.to_string()))?;
    if target.service.is_none() {
        return Err(args.error(format!(
            "name a service or a key: `unset {path}` would remove the whole environment"
        )));
    }
    let reason = args.finish()?;
    Ok(Unset {
        target,
        yes,
        reason,
    })
}

impl Unset {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let env = &self.target.env;
        let protected = ctx.environment(env)?.protected;
        ctx.require(on(Verb::Write, env))?;
        ctx.ensure_unlocked(env).await?;
        if protected && self.target.key.is_none() && !self.yes {
            return Err(CommandError::Invalid(
                UserError::new(format!(
                    "this removes service {} and all its keys from {env}, a protected environment: repeat it with --yes to go ahead",
                    self.target.service.as_ref().map(|s| s.as_str()).unwrap_or_default()
                ))
                .try_instead(format!("{} --yes", ctx.text)),
            ));
        }
        let Some(service) = &self.target.service else {
            return Err(CommandError::Invalid(UserError::new(
                "name a service or a key",
            )));
        };
        let key = self.target.key.as_ref();
        let written = ctx
            .write(env, self.reason.clone(), |doc| {
                let spec = known_service(ctx, doc, env, service)?;
                if let Some(key) = key
                    && !spec.contains_key(key)
                {
                    return Err(CommandError::Invalid(
                        UserError::new(format!("{env}.{service} has no key `{key}`"))
                            .try_instead(format!("env {env}.{service}")),
                    ));
                }
                let mut doc = doc.clone();
                doc.unset(service, key);
                Ok(doc)
            })
            .await?;
        Ok(match written {
            Written::Revision(rev) => {
                let what = match key {
                    Some(key) => format!("removed {service}.{key}"),
                    None => format!("removed service {service}"),
                };
                Reply::ok(format!("{}: {what}", rev.meta.label()))
                    .text(render::changes(&rev.meta.changes, 10))
            }
            Written::Unchanged(_) => Reply::ok(format!(
                "{} has nothing to remove; nothing changed",
                self.target
            )),
        })
    }
}

#[async_trait::async_trait]
impl Run for Unset {
    fn env(&self) -> Option<&Name> {
        Some(&self.target.env)
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
    fn parses_key_and_service_forms() {
        let Some(u) = parse("unset staging.ms-billing.image -- cleanup")
            .ok()
            .and_then(|c| c.get::<Unset>().cloned())
        else {
            panic!()
        };
        assert_eq!(u.target.key.unwrap().as_str(), "image");
        assert_eq!(u.reason.as_deref(), Some("cleanup"));
        assert!(parse("unset staging.ms-billing").is_ok_and(|c| c.get::<Unset>().is_some()));
    }

    #[test]
    fn yes_confirms() {
        let Some(u) = parse("unset production.ms-users --yes")
            .ok()
            .and_then(|c| c.get::<Unset>().cloned())
        else {
            panic!()
        };
        assert!(u.yes);
    }

    #[test]
    fn refuses_to_remove_a_whole_environment() {
        let err = parse("unset staging").unwrap_err();
        assert!(err.message.contains("whole environment"));
        assert!(parse("unset").is_err());
    }
}
