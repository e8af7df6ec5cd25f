//! `promote`: copy the promotable keys (by default `version`) of the source environment's
//! services into the destination, as one new revision of the destination. It does not apply
//! anything: converging the destination does.
//!
//! ```text
//! promote <src> <dst> [<service>…] [--force] [-- reason]
//! ```
//! Only versions proven upstream move: each must be applied (deployed and verified healthy) in
//! the source, for at least the source's `soak` time. `--force` overrides that, for someone
//! holding `force:<dst>`. A destination pinned by a rollback refuses promotions.

use super::args::Args;
use super::context::{Context, Written};
use super::env::known_service;
use super::error::{CommandError, ParseError, UserError};
use super::registry::Run;
use super::{Info, Reply, render};
use crate::config::EnvironmentConfig;
use crate::domain::{Document, KeyPath, Name, Value};
use crate::policy::{Verb, on};
use std::collections::BTreeMap;

pub const INFO: Info = Info {
    name: "promote",
    usage: "promote <src> <dst> [<service>…] [--force] [-- reason]",
    summary: "copy versions from one environment into another (one new revision of dst)",
    detail: "Copies only the promotable keys (`version`, or the source's `promote_keys`) of every \
service of src, or of the services named, into dst. Services missing in dst are created with \
those keys. Needs `promote:<dst>`; dst must be listed in src's `promote_to`. Versions must be \
applied and healthy in src (and past its `soak`); `--force` (needs `force:<dst>`) overrides. \
Converge dst to apply it.",
    example: "promote staging production ms-users",
    parse: |args| Ok(Box::new(parse(args)?)),
};

/// A parsed `promote` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promote {
    pub src: Name,
    pub dst: Name,
    /// Empty: every service of src.
    pub services: Vec<Name>,
    /// Promote even versions not proven in src.
    pub force: bool,
    pub reason: Option<String>,
}

pub fn parse(mut args: Args) -> Result<Promote, ParseError> {
    let force = args.flag("--force");
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
        force,
        reason,
    })
}

impl Promote {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
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
        if self.force {
            ctx.require(on(Verb::Force, dst))?;
        }
        ctx.ensure_unlocked(dst).await?;
        if let Some(pin) = ctx.store.pin(dst).await? {
            return Err(CommandError::Refused(
                UserError::new(format!(
                    "{dst} is pinned at {dst}@{} by {} since {} ({}): promotions into it are refused",
                    pin.revision,
                    pin.by,
                    render::time(pin.at),
                    pin.reason
                ))
                .try_instead(format!("unpin {dst} (once the fix is ready), then promote again")),
            ));
        }
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
        if !self.force {
            let (_, target) = ctx.head(dst).await?;
            let unproven = unproven(
                ctx,
                src,
                src_config,
                &source.document,
                &services,
                keys,
                &target,
            )
            .await?;
            if let Some(first) = unproven.first() {
                let mut error = UserError::new(format!(
                    "{first}, so it cannot be promoted to {dst} yet"
                ))
                .try_instead(format!(
                    "converge {src}, then promote again (or `{} --force`, which needs force:{dst})",
                    ctx.text
                ));
                for more in &unproven[1..] {
                    error.message.push_str(&format!("; also {more}"));
                }
                return Err(CommandError::Refused(error));
            }
        }
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

/// Why each version that would change in `target` is not proven in `src`: not applied there,
/// or applied for less than the source's soak time.
async fn unproven(
    ctx: &Context<'_>,
    src: &Name,
    src_config: &EnvironmentConfig,
    source: &Document,
    services: &[&Name],
    keys: &[KeyPath],
    target: &Document,
) -> Result<Vec<String>, CommandError> {
    let applied: BTreeMap<Name, _> = ctx
        .store
        .applied(src)
        .await?
        .into_iter()
        .map(|a| (a.service.clone(), a))
        .collect();
    let version = KeyPath::version();
    let mut reasons = Vec::new();
    for service in services {
        let Some(wanted) = source.get(service, &version) else {
            continue;
        };
        let moves = keys
            .iter()
            .any(|k| source.get(service, k) != target.get(service, k));
        if !keys.contains(&version) || !moves {
            continue;
        }
        match applied.get(*service) {
            None => reasons.push(format!(
                "{src}'s {service} {wanted} is not applied yet ({src} has never deployed {service})"
            )),
            Some(a) => {
                let running = a
                    .spec
                    .get(&version)
                    .map(String::as_str)
                    .unwrap_or("no version");
                if running != wanted {
                    reasons.push(format!(
                        "{src}'s {service} {wanted} is not applied yet ({src} runs {running})"
                    ));
                } else if let Some(soak) = src_config.soak {
                    let age = ctx.now() - a.at;
                    let needed = soak.0.as_millis() as i64;
                    if age < needed {
                        reasons.push(format!(
                            "{src}'s {service} {wanted} is unproven: applied {} ago, {src} needs {} of soak",
                            crate::domain::render_duration(std::time::Duration::from_millis(age.max(0) as u64)),
                            crate::domain::render_duration(soak.0)
                        ));
                    }
                }
            }
        }
    }
    Ok(reasons)
}

#[async_trait::async_trait]
impl Run for Promote {
    fn env(&self) -> Option<&Name> {
        Some(&self.dst)
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
    fn parses_services_and_reason() {
        let Some(p) = parse("promote staging production ms-users ms-billing -- release 42")
            .ok()
            .and_then(|c| c.get::<Promote>().cloned())
        else {
            panic!()
        };
        assert_eq!((p.src.as_str(), p.dst.as_str()), ("staging", "production"));
        assert_eq!(p.services.len(), 2);
        assert_eq!(p.reason.as_deref(), Some("release 42"));
    }

    #[test]
    fn force_is_a_flag() {
        let Some(p) = parse("promote staging production --force")
            .ok()
            .and_then(|c| c.get::<Promote>().cloned())
        else {
            panic!()
        };
        assert!(p.force && p.services.is_empty());
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
