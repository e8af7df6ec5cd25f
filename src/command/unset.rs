//! `unset`: remove a key or a whole service (one new revision).
//!
//! ```text
//! unset <env>.<service>[.<key>] [-- reason]
//! ```

use super::args::Args;
use super::context::{Context, Written};
use super::env::known_service;
use super::error::{CommandError, ParseError, UserError};
use super::render;
use super::{Info, Reply};
use crate::domain::Target;
use crate::policy::{Verb, on};

pub const INFO: Info = Info {
    name: "unset",
    usage: "unset <env>.<service>[.<key>] [-- reason]",
    summary: "remove a key or a whole service (one new revision)",
    detail: "`unset staging.ms-billing.image` removes one key; `unset staging.ms-billing` removes \
the service from staging's desired state.",
};

/// A parsed `unset` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unset {
    pub target: Target,
    pub reason: Option<String>,
}

pub fn parse(mut args: Args) -> Result<Unset, ParseError> {
    let path = args.required("what to remove, e.g. `unset staging.ms-users.image`")?;
    let target = Target::parse(&path).map_err(|e| args.error(e.to_string()))?;
    if target.service.is_none() {
        return Err(args.error(format!(
            "name a service or a key: `unset {path}` would remove the whole environment"
        )));
    }
    let reason = args.finish()?;
    Ok(Unset { target, reason })
}

impl Unset {
    pub async fn execute(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let env = &self.target.env;
        ctx.environment(env)?;
        ctx.require(on(Verb::Write, env))?;
        ctx.ensure_unlocked(env).await?;
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

#[cfg(test)]
mod tests {
    use crate::command::{Command, parse};

    #[test]
    fn parses_key_and_service_forms() {
        let Ok(Command::Unset(u)) = parse("unset staging.ms-billing.image -- cleanup") else {
            panic!()
        };
        assert_eq!(u.target.key.unwrap().as_str(), "image");
        assert_eq!(u.reason.as_deref(), Some("cleanup"));
        assert!(matches!(
            parse("unset staging.ms-billing"),
            Ok(Command::Unset(_))
        ));
    }

    #[test]
    fn refuses_to_remove_a_whole_environment() {
        let err = parse("unset staging").unwrap_err();
        assert!(err.message.contains("whole environment"));
        assert!(parse("unset").is_err());
    }
}
