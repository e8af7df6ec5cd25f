//! Asking the engine to deploy and turning what it did into a reply: shared by `converge`,
//! approvals and `rollback`, so that a deploy is asked for and reads the same whichever
//! command started it.

use super::context::Context;
use super::error::{CommandError, UserError};
use super::{Reply, render};
use crate::config::EnvironmentConfig;
use crate::domain::{Actor, DeployKind, DeployStatus, Name};
use crate::engine::{ConvergeOutcome, ConvergeRequest, EngineError, Expected};
use crate::store::StoreError;
use std::collections::BTreeSet;

/// The reply for a finished converge of `env`.
pub fn converge_reply(env: &Name, outcome: ConvergeOutcome) -> Reply {
    match outcome {
        ConvergeOutcome::UpToDate { revision, orphaned } => {
            let mut reply = Reply::ok(format!("{env}@{revision} is up to date: nothing to deploy"));
            if !orphaned.is_empty() {
                let names: Vec<&str> = orphaned.iter().map(Name::as_str).collect();
                reply = reply.text(format!(
                    "Not in desired state but deployed earlier (left running): {}",
                    names.join(", ")
                ));
            }
            reply
        }
        ConvergeOutcome::Deployed(report) => {
            let rows = report
                .steps
                .iter()
                .map(|s| {
                    vec![
                        s.service.to_string(),
                        s.version.clone().unwrap_or_default(),
                        s.status.as_str().to_string(),
                        render::millis(s.millis),
                        s.detail.clone(),
                    ]
                })
                .collect();
            let label = format!("{}@{}", report.env, report.revision);
            let mut reply = match (&report.status, &report.failure) {
                (DeployStatus::Succeeded, _) => Reply::ok(format!(
                    "{label} deployed (deploy #{}): {}",
                    report.deploy, report.summary
                )),
                (_, Some(failure)) => Reply::failed(format!(
                    "deploy #{} of {label} failed: {}: {}",
                    report.deploy, failure.service, failure.message
                )),
                (status, None) => {
                    Reply::failed(format!("deploy #{} of {label} {status}", report.deploy))
                }
            };
            reply = reply.table(&["service", "version", "result", "took", "detail"], rows);
            if let Some(failure) = &report.failure {
                if !failure.output.is_empty() {
                    reply = reply.text(format!("Output of {} (last lines):", failure.service));
                    for line in failure.output.lines() {
                        reply = reply.text(format!("  {line}"));
                    }
                }
                if !report.rolled_back.is_empty() {
                    let names: Vec<&str> = report.rolled_back.iter().map(Name::as_str).collect();
                    reply = reply.text(format!(
                        "Auto-rollback restored the previous version of {}.",
                        names.join(", ")
                    ));
                }
                for (service, why) in &report.not_restored {
                    reply =
                        reply.text(format!("Auto-rollback could not restore {service}: {why}."));
                }
                reply = reply.next(
                    "To go back to the last good revision",
                    format!("rollback {env}"),
                );
                reply.alert = Some((
                    env.clone(),
                    format!("Deploy failure in {env}: {}", reply.headline),
                ));
            }
            reply
        }
    }
}

/// A converge that could not run, as the user should read it.
pub fn engine_error(env: &Name, error: EngineError) -> CommandError {
    match error {
        EngineError::Busy(running) => CommandError::Refused(
            UserError::new(format!(
                "{env} is already being deployed: deploy #{} of {env}@{} by {}, started {}",
                running.id,
                running.revision,
                running.actor,
                render::time(running.started)
            ))
            .try_instead(format!(
                "deploys {env} (and converge again when it has finished)"
            )),
        ),
        EngineError::Preflight {
            name,
            message,
            output,
        } => {
            let mut text =
                format!("preflight check `{name}` failed, so {env} was not deployed: {message}");
            if !output.is_empty() {
                text.push_str(&format!("\n{output}"));
            }
            CommandError::Invalid(
                UserError::new(text).try_instead(format!("converge {env} once the check passes")),
            )
        }
        EngineError::NoDeployer(_, deployer) => CommandError::Invalid(
            UserError::new(format!(
                "{env} uses deployer `{deployer}`, which is not configured"
            ))
            .try_instead("ferry check-config"),
        ),
        EngineError::NoRevision(_) => CommandError::Invalid(
            UserError::new(format!("{env} has no revisions to deploy"))
                .try_instead(format!("env {env}.<service>.version <version> --new")),
        ),
        EngineError::Stale { expected, why, .. } => CommandError::Invalid(
            UserError::new(format!(
                "nothing was deployed: {env}@{expected} is no longer what would deploy ({why})"
            ))
            .try_instead(format!("plan {env}, then converge {env} (to ask again)")),
        ),
        EngineError::LeaseLost(deploy) => CommandError::Interrupted(
            UserError::new(format!(
                "deploy #{deploy} of {env} was stopped: another ferry process found it unresponsive and marked it interrupted, so it recorded nothing more; what it deployed before stopping is not recorded as applied"
            ))
            .try_instead(format!("status {env} (to see what runs), then converge {env}")),
        ),
        EngineError::Store(StoreError::LeaseLost(deploy)) => {
            engine_error(env, EngineError::LeaseLost(deploy))
        }
        EngineError::Store(e) => CommandError::Store(e),
    }
}

/// What a command asks to deploy, beyond the environment and its configuration.
pub struct Ask<'a> {
    /// Who the deploy is recorded for: the one who asked, also when someone else approved.
    pub actor: &'a Actor,
    /// Redeploy every service, not only those that differ.
    pub force: bool,
    pub kind: DeployKind,
    /// The revision (and plan) the deploy is bound to, or nothing.
    pub expect: Option<Expected>,
    /// Deploy only these services, whatever else differs.
    pub only: Option<BTreeSet<Name>>,
}

/// The one place a command's context becomes a `ConvergeRequest`, so that every way of
/// deploying (converge, an approval, a rollback) reports progress and finds preflight
/// programs alike.
pub fn converge_request<'a>(
    ctx: &'a Context<'_>,
    env: &'a Name,
    config: &'a EnvironmentConfig,
    ask: Ask<'a>,
) -> ConvergeRequest<'a> {
    ConvergeRequest {
        env,
        rollout: config.rollout(),
        base_dir: &ctx.config.base_dir,
        actor: ask.actor,
        force: ask.force,
        kind: ask.kind,
        events: ctx.events,
        expect: ask.expect,
        only: ask.only,
    }
}

/// Converges `env` for `actor` and renders the outcome: what `converge` does once policy said yes, and what an
/// approved request runs (bound by `expect` to the revision and plan that were approved).
pub async fn converge_as(
    ctx: &Context<'_>,
    env: &Name,
    config: &EnvironmentConfig,
    actor: &Actor,
    force: bool,
    expect: Option<Expected>,
) -> Result<Reply, CommandError> {
    let ask = Ask {
        actor,
        force,
        kind: DeployKind::Converge,
        expect,
        only: None,
    };
    let outcome = ctx
        .engine
        .converge(&converge_request(ctx, env, config, ask))
        .await
        .map_err(|e| engine_error(env, e))?;
    Ok(converge_reply(env, outcome))
}
