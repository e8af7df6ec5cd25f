//! `promote`: copy the promotable keys (by default `version`) of the source environment's
//! services into the destination, as one new revision of the destination. It does not apply
//! anything: converging the destination does.
//!
//! ```text
//! promote <src> <dst> [<service>…] [-- reason]
//! ```

use super::args::Args;
use super::context::{Context, Written};
use super::env::known_service;
use super::error::{CommandError, ParseError, UserError};
use super::{Info, Reply};
use crate::domain::{Name, Value};
use crate::policy::{Verb, on};

pub const INFO: Info = Info {
    name: "promote",
    usage: "promote <src> <dst> [<service>…] [-- reason]",
    summary: "copy versions from one environment into another (one new revision of dst)",
    detail: "Copies only the promotable keys (`version`, or the source's `promote_keys`) of every \
service of src, or of the services named, into dst. Services missing in dst are created with \
those keys. Needs `promote:<dst>`; dst must be listed in src's `promote_to`. Converge dst to apply it.",
};

/// A parsed `promote` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promote {
    pub src: Name,
    pub dst: Name,
    /// Empty: every service of src.
    pub services: Vec<Name>,
    pub reason: Option<String>,
}

pub fn parse(mut args: Args) -> Result<Promote, ParseError> {
    let name = |args: &Args, text: String, what: &str| {
        Name::parse(&text).map_err(|e| args.error(format!("{what}: {e}")))
    };
    let src = args.required("the source environment, e.g. `promote staging production`")?;
    let src = name(&args, src, "source")?;
    let dst = args.required("the destination environment, e.g. `promote staging production`")?;
    let dst = name(&args, dst, "destination")?;
    let mut services = Vec::new();
    for service in args.rest()? {
        services.push(name(&args, service, "service")?);
    }
    if src == dst {
        return Err(args.error(format!("`{src}` cannot be promoted into itself")));
    }
    let reason = args.finish()?;
    Ok(Promote {
        src,
        dst,
        services,
        reason,
    })
}

impl Promote {
    pub async fn execute(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let (src, dst) = (&self.src, &self.dst);
        let src_config = ctx.environment(src)?;
        ctx.environment(dst)?;
        ctx.require(on(Verb::Promote, dst))?;
        if !src_config.promote_to.iter().any(|t| t.get_ref() == dst) {
            let targets: Vec<String> = src_config
                .promote_to
                .iter()
                .map(|t| t.get_ref().to_string())
                .collect();
            let allowed = if targets.is_empty() {
                "nowhere".to_string()
            } else {
                targets.join(", ")
            };
            return Err(CommandError::Refused(
                UserError::new(format!(
                    "{src} does not promote to {dst}: it promotes to {allowed}"
                ))
                .try_instead(format!(
                    "add \"{dst}\" to promote_to in [environments.{src}] of the config"
                )),
            ));
        }
        ctx.ensure_unlocked(dst).await?;
        let source = ctx.store.head(src).await?.ok_or_else(|| {
            CommandError::Invalid(
                UserError::new(format!("{src} has no revisions to promote"))
                    .try_instead(format!("env {src}")),
            )
        })?;
        for service in &self.services {
            known_service(ctx, &source.document, src, service)?;
        }
        let keys = &src_config.promote_keys;
        let services: Vec<&Name> = if self.services.is_empty() {
            source.document.services.keys().collect()
        } else {
            self.services.iter().collect()
        };
        let origin = source.meta.label();
        let reason = self
            .reason
            .clone()
            .unwrap_or_else(|| format!("promoted from {origin}"));
        let written = ctx
            .write(dst, Some(reason), |doc| {
                let mut doc = doc.clone();
                for service in &services {
                    for key in keys {
                        if let Some(value) = source.document.get(service, key) {
                            let value = Value::parse(key, value).map_err(|e| {
                                CommandError::Invalid(UserError::new(format!(
                                    "{src}.{service}.{key}: {e}"
                                )))
                            })?;
                            doc.set(service, key, value);
                        }
                    }
                }
                Ok(doc)
            })
            .await?;
        Ok(match written {
            Written::Revision(rev) => {
                let changes = &rev.meta.changes;
                let mut reply = if changes.len() == 1 {
                    Reply::ok(format!(
                        "{}: {} (promoted from {origin})",
                        rev.meta.label(),
                        changes[0].summary()
                    ))
                } else {
                    let mut reply = Reply::ok(format!(
                        "{}: {} keys promoted from {origin}",
                        rev.meta.label(),
                        changes.len()
                    ));
                    for change in changes {
                        reply = reply.text(change.summary());
                    }
                    reply
                };
                if self.reason.is_some() {
                    reply = reply.text(format!(
                        "Reason: {}",
                        rev.meta.reason.as_deref().unwrap_or_default()
                    ));
                }
                reply.next("Next", format!("converge {dst}"))
            }
            Written::Unchanged(_) => Reply::ok(format!(
                "{dst} already has the versions of {origin}; nothing changed"
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::command::{Command, parse};

    #[test]
    fn parses_services_and_reason() {
        let Ok(Command::Promote(p)) =
            parse("promote staging production ms-users ms-billing -- release 42")
        else {
            panic!()
        };
        assert_eq!((p.src.as_str(), p.dst.as_str()), ("staging", "production"));
        assert_eq!(p.services.len(), 2);
        assert_eq!(p.reason.as_deref(), Some("release 42"));
    }

    #[test]
    fn needs_two_different_environments() {
        assert!(parse("promote staging").is_err());
        assert!(
            parse("promote staging staging")
                .unwrap_err()
                .message
                .contains("itself")
        );
        assert!(parse("promote staging Prod").is_err());
    }
}
