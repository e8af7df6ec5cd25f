//! `env`: show desired state, or set one key (one new revision).
//!
//! ```text
//! env <env>[.<service>[.<key>]]                          show
//! env <env>.<service>.<key> <value> [--new] [-- reason]  set
//! ```
//! Setting a key of a service the environment does not have is refused unless `--new` says
//! the service is meant to be created: a typo must not create a phantom service.

use super::args::Args;
use super::context::{Context, Written};
use super::error::{CommandError, ParseError, UserError, invalid};
use super::registry::Run;
use super::{Info, Reply};
use crate::domain::{Document, KeyPath, Name, Target, Value, nearest};
use crate::policy::{Permission, Verb, on};

pub const INFO: Info = Info {
    name: "env",
    usage: "env <env>[.<service>[.<key>]] [<value> [--new] [-- reason]]",
    summary: "show desired state, or set a key (one new revision)",
    detail: "`env staging` shows every service, `env staging.ms-users` one service, \
`env staging.ms-users.version` one key. `env staging.ms-users.version 3.5.7 -- hotfix` sets a key \
and records the reason. Nested keys use dots: `env staging.ms-users.config.LOG_LEVEL debug`. \
Quote values with spaces. Add `--new` to create a service the environment does not have yet.",
    example: "env staging.ms-users.version 3.5.7 -- hotfix",
    parse: |args| Ok(Box::new(parse(args)?)),
};

/// A parsed `env` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub target: Target,
    /// `Some` to set the target key to this value.
    pub value: Option<Value>,
    pub new_service: bool,
    pub reason: Option<String>,
}

pub fn parse(mut args: Args) -> Result<Env, ParseError> {
    let new_service = args.flag("--new");
    let path = args.required("an environment, e.g. `env staging`")?;
    let target = Target::parse(&path).map_err(|e| args.error(e.to_string()))?;
    let value = match args.next() {
        None => None,
        Some(text) => {
            let key = match (&target.service, &target.key) {
                (Some(_), Some(key)) => key.clone(),
                _ => {
                    return Err(args.error(format!(
                        "to set a value, name the key: `{}` is not <env>.<service>.<key>",
                        target
                    )));
                }
            };
            Some(Value::parse(&key, &text).map_err(|e| args.error(format!("{key}: {e}")))?)
        }
    };
    if value.is_none() && new_service {
        return Err(args.error("`--new` only applies when setting a value"));
    }
    let reason = args.finish()?;
    if value.is_none() && reason.is_some() {
        return Err(ParseError::with_usage(
            "a reason (after `--`) only applies when setting a value",
            INFO.usage,
        ));
    }
    Ok(Env {
        target,
        value,
        new_service,
        reason,
    })
}

impl Env {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        ctx.environment(&self.target.env)?;
        match self.value.clone() {
            None => self.show(ctx).await,
            Some(value) => self.set(ctx, value).await,
        }
    }

    async fn show(&self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        ctx.require(Permission::read())?;
        let env = &self.target.env;
        let (head, doc) = ctx.head(env).await?;
        let Some(head) = head else {
            return Ok(Reply::ok(format!("{env} has no revisions yet")).next(
                "Next",
                format!("env {env}.<service>.version <version> --new"),
            ));
        };
        let label = format!("{env}@{head}");
        let Some(service) = &self.target.service else {
            let mut rows = Vec::new();
            for (name, spec) in &doc.services {
                for (i, (key, value)) in spec.iter().enumerate() {
                    let shown = if i == 0 {
                        name.to_string()
                    } else {
                        String::new()
                    };
                    rows.push(vec![shown, key.to_string(), value.clone()]);
                }
            }
            let count = doc.services.len();
            return Ok(
                Reply::ok(format!("{label}: {count} service{}", plural(count)))
                    .table(&["service", "key", "value"], rows),
            );
        };
        let spec = known_service(ctx, &doc, env, service)?;
        match &self.target.key {
            None => {
                let rows = spec
                    .iter()
                    .map(|(k, v)| vec![k.to_string(), v.clone()])
                    .collect();
                Ok(Reply::ok(format!("{label} {service}")).table(&["key", "value"], rows))
            }
            Some(key) => match spec.get(key) {
                Some(value) => Ok(Reply::ok(format!("{label} {service}.{key} = {value}"))),
                None => Err(unknown_key(ctx, spec.keys(), env, service, key)),
            },
        }
    }

    async fn set(&self, ctx: &Context<'_>, value: Value) -> Result<Reply, CommandError> {
        let env = &self.target.env;
        let (Some(service), Some(key)) = (&self.target.service, &self.target.key) else {
            return invalid("to set a value, name the key: <env>.<service>.<key>");
        };
        ctx.require(on(Verb::Write, env))?;
        ctx.ensure_unlocked(env).await?;
        let new_service = self.new_service;
        let written = ctx
            .write(env, self.reason.clone(), |doc| {
                if !new_service {
                    known_service(ctx, doc, env, service)?;
                }
                let existing = doc.service(service).map(|spec| spec.keys());
                if let Some(other) = existing.and_then(|keys| key.collides_with(keys)) {
                    return Err(CommandError::Invalid(
                        UserError::new(format!(
                            "{env}.{service} already has `{other}`, which deploy programs receive as the same variable as `{key}` (FERRY_KEY_{}); a service holds only one of them",
                            key.env_var_suffix()
                        ))
                        .try_instead(format!("env {env}.{service}.{other} {}", value.as_str())),
                    ));
                }
                let mut doc = doc.clone();
                doc.set(service, key, value.clone());
                Ok(doc)
            })
            .await?;
        Ok(match written {
            Written::Revision(rev) => {
                let change = rev
                    .meta
                    .changes
                    .first()
                    .map(|c| c.summary())
                    .unwrap_or_default();
                let mut reply = Reply::ok(format!("{}: {change}", rev.meta.label()));
                if let Some(reason) = &rev.meta.reason {
                    reply = reply.text(format!("Reason: {reason}"));
                }
                reply
            }
            Written::Unchanged(head) => Reply::ok(format!(
                "{env}.{service}.{key} is already {}{}; nothing changed",
                value.as_str(),
                head.map(|h| format!(" ({env}@{h})")).unwrap_or_default()
            )),
        })
    }
}

/// The spec of `service` in `doc`, or an error naming the nearest service.
pub fn known_service<'d>(
    ctx: &Context<'_>,
    doc: &'d Document,
    env: &Name,
    service: &Name,
) -> Result<&'d crate::domain::ServiceSpec, CommandError> {
    doc.service(service).ok_or_else(|| {
        let names: Vec<&str> = doc.services.keys().map(Name::as_str).collect();
        let list = if names.is_empty() {
            "none yet".to_string()
        } else {
            names.join(", ")
        };
        let error = match nearest(service.as_str(), names.iter().copied()) {
            Some(best) => UserError::new(format!(
                "{env} has no service `{service}`: did you mean `{best}`? (services: {list})"
            ))
            .try_instead(super::context::replace_word(
                ctx.text,
                service.as_str(),
                best,
            )),
            None => UserError::new(format!(
                "{env} has no service `{service}` (services: {list})"
            ))
            .try_instead(
                if ctx.text.starts_with("env ") && ctx.text.split_whitespace().count() > 2 {
                    format!("{} --new (to create it)", ctx.text)
                } else {
                    format!("env {env}")
                },
            ),
        };
        CommandError::Invalid(error)
    })
}

fn unknown_key<'k>(
    ctx: &Context<'_>,
    keys: impl Iterator<Item = &'k KeyPath>,
    env: &Name,
    service: &Name,
    key: &KeyPath,
) -> CommandError {
    let names: Vec<&str> = keys.map(KeyPath::as_str).collect();
    let list = names.join(", ");
    let error = match nearest(key.as_str(), names.iter().copied()) {
        Some(best) => UserError::new(format!(
            "{env}.{service} has no key `{key}`: did you mean `{best}`? (keys: {list})"
        ))
        .try_instead(super::context::replace_word(ctx.text, key.as_str(), best)),
        None => UserError::new(format!("{env}.{service} has no key `{key}` (keys: {list})"))
            .try_instead(format!("env {env}.{service}")),
    };
    CommandError::Invalid(error)
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[async_trait::async_trait]
impl Run for Env {
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

    fn env(text: &str) -> super::Env {
        match parse(text).map(|c| c.get::<Env>().cloned()) {
            Ok(Some(e)) => e,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn show_forms() {
        assert!(env("env staging").value.is_none());
        assert_eq!(
            env("env staging.ms-users").target.service.unwrap().as_str(),
            "ms-users"
        );
        assert_eq!(
            env("ENV staging.ms-users.version")
                .target
                .key
                .unwrap()
                .as_str(),
            "version"
        );
    }

    #[test]
    fn set_with_reason_and_new() {
        let e = env("env staging.ms-users.version 3.5.7 --new -- hotfix INC-1");
        assert_eq!(e.value.unwrap().as_str(), "3.5.7");
        assert!(e.new_service);
        assert_eq!(e.reason.as_deref(), Some("hotfix INC-1"));
        let e = env(r#"env staging.ms-users.config.GREETING "hello world""#);
        assert_eq!(e.value.unwrap().as_str(), "hello world");
    }

    #[test]
    fn bad_forms_explain_themselves() {
        for (text, needle) in [
            ("env", "missing an environment"),
            ("env staging 3.5.7", "name the key"),
            (
                "env staging.ms-users.version 1.0 extra",
                "unexpected `extra`",
            ),
            (
                "env staging.ms-users.version $(touch pwned)",
                "not a valid version",
            ),
            ("env Staging!!.ms-users.version 1.0", "not a valid name"),
            (
                "env staging.ms-users.version 1.0 --force",
                "`--force` is not an option",
            ),
            ("env staging -- why", "reason"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.message.contains(needle), "{text}: {}", err.message);
            assert!(err.try_instead.is_some(), "{text} has no suggestion");
        }
    }
}
