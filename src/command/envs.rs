//! `envs`: every environment with its head revision, lock and rules.

use super::context::{Context, describe_lock};
use super::error::CommandError;
use super::{Info, Reply};
use crate::policy::Permission;

pub const INFO: Info = Info {
    name: "envs",
    usage: "envs",
    summary: "list environments: head revision, lock, protection",
    detail: "One line per configured environment.",
};

pub async fn execute(ctx: &Context<'_>) -> Result<Reply, CommandError> {
    ctx.require(Permission::read())?;
    let now = ctx.now();
    let mut rows = Vec::new();
    for (name, env) in &ctx.config.environments {
        let head = ctx.store.head(name).await?;
        let revision = head
            .map(|h| h.meta.label())
            .unwrap_or_else(|| "(none)".to_string());
        let lock = match ctx.store.lock(name).await? {
            Some(lock) if lock.is_active(now) => describe_lock(&lock),
            _ => String::new(),
        };
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
        rows.push(vec![name.to_string(), revision, rules.join(", "), lock]);
    }
    let count = rows.len();
    Ok(
        Reply::ok(format!("{count} environment{}", super::env::plural(count)))
            .table(&["environment", "desired", "rules", "lock"], rows),
    )
}
