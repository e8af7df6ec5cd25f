//! `envs`: every environment at a glance: desired and applied revision, pending changes and
//! drift, the last deploy, lock, pin and rules.

use super::context::{Context, describe_lock};
use super::error::CommandError;
use super::registry::{Run, no_args};
use super::{Info, Reply, render};
use crate::deploy::Live;
use crate::domain::{DeployStatus, KeyPath, Name};
use crate::policy::Permission;
use std::collections::{BTreeMap, BTreeSet};

pub const INFO: Info = Info {
    name: "envs",
    usage: "envs",
    summary: "every environment: desired and applied revision, drift, last deploy, lock, pin",
    detail: "One line per configured environment. `applied` is the revision of the last \
successful deploy; `state` counts services not yet applied and services whose live version \
differs from the applied one (drift).",
    example: "envs",
    parse: no_args::<Envs>,
};

pub async fn execute(ctx: &Context<'_>) -> Result<Reply, CommandError> {
    ctx.require(Permission::read())?;
    let now = ctx.now();
    let mut rows = Vec::new();
    for (name, env) in &ctx.config.environments {
        let (head, desired) = ctx.head(name).await?;
        let applied: BTreeMap<Name, _> = ctx
            .store
            .applied(name)
            .await?
            .into_iter()
            .map(|a| (a.service.clone(), a))
            .collect();
        let deploys = ctx.engine.deploys(name, 20).await?;
        let applied_rev = deploys
            .iter()
            .find(|d| d.status == DeployStatus::Succeeded)
            .map(|d| format!("{name}@{}", d.revision));
        let pending = desired
            .services
            .iter()
            .filter(|(s, spec)| applied.get(*s).map(|a| &a.spec) != Some(*spec))
            .count();
        let observed: BTreeSet<&Name> = applied.keys().collect();
        let lives = ctx
            .engine
            .live(name, env.deployer.get_ref(), observed.iter().copied())
            .await;
        let drifted = observed
            .iter()
            .zip(lives)
            .filter(|(service, live)| {
                let want = applied[**service].spec.get(&KeyPath::version());
                match live {
                    Ok(Live::Running { version }) => want != Some(version),
                    Ok(Live::NotRunning) => true,
                    _ => false,
                }
            })
            .count();
        let mut state = Vec::new();
        if pending > 0 {
            state.push(format!("{pending} not yet applied"));
        }
        if drifted > 0 {
            state.push(format!("{drifted} drifted"));
        }
        if state.is_empty() {
            state.push(if applied.is_empty() {
                "never deployed".to_string()
            } else {
                "up to date".to_string()
            });
        }
        let last = deploys
            .first()
            .map(|d| format!("#{} {} {}", d.id, d.status, render::time(d.started)))
            .unwrap_or_default();
        let mut holds = Vec::new();
        if let Some(lock) = ctx.store.lock(name).await?.filter(|l| l.is_active(now)) {
            holds.push(describe_lock(&lock));
        }
        if let Some(pin) = ctx.store.pin(name).await? {
            holds.push(format!("pinned at @{} by {}", pin.revision, pin.by));
        }
        let mut rules = Vec::new();
        if env.protected {
            rules.push("protected".to_string());
        }
        if env.approvals > 0 {
            rules.push(format!(
                "{} approval{}",
                env.approvals,
                super::env::plural(env.approvals as usize)
            ));
        }
        if !env.promote_to.is_empty() {
            let targets: Vec<String> = env
                .promote_to
                .iter()
                .map(|t| t.get_ref().to_string())
                .collect();
            rules.push(format!("promotes to {}", targets.join(", ")));
        }
        rows.push(vec![
            name.to_string(),
            head.map(|h| format!("{name}@{h}"))
                .unwrap_or_else(|| "(none)".to_string()),
            applied_rev.unwrap_or_else(|| "-".to_string()),
            state.join(", "),
            last,
            holds.join("; "),
            rules.join(", "),
        ]);
    }
    let count = rows.len();
    Ok(
        Reply::ok(format!("{count} environment{}", super::env::plural(count))).table(
            &[
                "environment",
                "desired",
                "applied",
                "state",
                "last deploy",
                "lock/pin",
                "rules",
            ],
            rows,
        ),
    )
}

/// A parsed `envs` (it takes no arguments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envs;

#[async_trait::async_trait]
impl Run for Envs {
    async fn execute(&self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        execute(ctx).await
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
