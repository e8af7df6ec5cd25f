//! `status`: desired vs applied vs live per service, drift, the running deploy, lock and pin.
//!
//! ```text
//! status <env>
//! ```

use super::args::Args;
use super::context::{Context, describe_lock};
use super::error::{CommandError, ParseError};
use super::registry::Run;
use super::{Info, Reply, render};
use crate::deploy::Live;
use crate::domain::{KeyPath, Name, ServiceSpec};
use crate::policy::Permission;
use std::collections::{BTreeMap, BTreeSet};

pub const INFO: Info = Info {
    name: "status",
    usage: "status <env>",
    summary: "desired vs applied vs live per service, drift, running deploy",
    detail: "Desired is the head revision; applied is what each service last ran successfully; \
live is what the deployer observes now. Live differing from applied is drift.",
    example: "status staging",
    parse: |args| Ok(Box::new(parse(args)?)),
};

/// A parsed `status` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub env: Name,
}

pub fn parse(mut args: Args) -> Result<Status, ParseError> {
    let env = args.required("an environment, e.g. `status staging`")?;
    let env = Name::parse(&env).map_err(|e| args.error(format!("environment: {e}")))?;
    args.finish()?;
    Ok(Status { env })
}

fn version(spec: Option<&ServiceSpec>) -> String {
    spec.and_then(|s| s.get(&KeyPath::version()))
        .cloned()
        .unwrap_or_else(|| "-".to_string())
}

impl Status {
    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let env = &self.env;
        let config = ctx.environment(env)?;
        ctx.require(Permission::read())?;
        let activity = ctx.engine.activity(env).await?;
        let (head, desired) = ctx.head(env).await?;
        let applied: BTreeMap<Name, _> = ctx
            .store
            .applied(env)
            .await?
            .into_iter()
            .map(|a| (a.service.clone(), a))
            .collect();
        let services: BTreeSet<&Name> = desired.services.keys().chain(applied.keys()).collect();
        let lives = ctx
            .engine
            .live(env, config.deployer.get_ref(), services.iter().copied())
            .await;
        let (mut pending, mut drifted) = (0, 0);
        let mut rows = Vec::new();
        for (service, live) in services.iter().zip(lives) {
            let want = desired.service(service);
            let have = applied.get(*service);
            let applied_version = version(have.map(|a| &a.spec));
            let mut state = Vec::new();
            match (want, have) {
                (Some(w), Some(h)) if *w == h.spec => {}
                (Some(_), _) => {
                    pending += 1;
                    state.push("not yet applied".to_string());
                }
                (None, Some(_)) => state.push("no longer desired".to_string()),
                (None, None) => {}
            }
            let live_text = match &live {
                Ok(Live::Running { version: v }) => {
                    if have.is_some() && *v != applied_version {
                        drifted += 1;
                        state.push(format!("DRIFT: runs {v}, applied {applied_version}"));
                    }
                    v.clone()
                }
                Ok(Live::NotRunning) => {
                    if have.is_some() {
                        drifted += 1;
                        state.push("DRIFT: not running".to_string());
                    }
                    "not running".to_string()
                }
                Ok(Live::Unknown) => "?".to_string(),
                Err(e) => {
                    state.push(format!("cannot observe: {e}"));
                    "?".to_string()
                }
            };
            let applied_text = match have {
                Some(a) => format!("{applied_version} (@{})", a.revision),
                None => "-".to_string(),
            };
            if state.is_empty() {
                state.push("ok".to_string());
            }
            rows.push(vec![
                service.to_string(),
                version(want),
                applied_text,
                live_text,
                state.join("; "),
            ]);
        }
        let label = head
            .map(|h| format!("{env}@{h}"))
            .unwrap_or_else(|| format!("{env} (no revisions)"));
        let headline = match (pending, drifted) {
            (0, 0) => format!(
                "{label}: {} service{} applied, no drift",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" }
            ),
            _ => format!("{label}: {pending} not yet applied, {drifted} drifted"),
        };
        let mut reply =
            Reply::ok(headline).table(&["service", "desired", "applied", "live", "state"], rows);
        if let Some(dead) = activity.interrupted {
            reply = reply.text(format!(
                "Deploy #{} was interrupted: the process running it stopped.",
                dead.id
            ));
        }
        if let Some(running) = activity.running {
            reply = reply.text(format!(
                "Deploying now: deploy #{} of {env}@{} by {}, started {}.",
                running.id,
                running.revision,
                running.actor,
                render::time(running.started)
            ));
        }
        if let Some(lock) = ctx
            .store
            .lock(env)
            .await?
            .filter(|l| l.is_active(ctx.now()))
        {
            reply = reply.text(format!("{env} is {}.", describe_lock(&lock)));
        }
        if let Some(pin) = ctx.store.pin(env).await? {
            reply = reply.text(format!(
                "Pinned at {env}@{} by {} ({}): promotions into {env} are refused until `unpin {env}`.",
                pin.revision, pin.by, pin.reason
            ));
        }
        if pending > 0 {
            reply = reply.next("Apply it", format!("converge {env}"));
        }
        Ok(reply)
    }
}

#[async_trait::async_trait]
impl Run for Status {
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
