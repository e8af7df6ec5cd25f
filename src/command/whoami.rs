//! `whoami`: the asker's identity, roles and permissions.

use super::context::Context;
use super::error::CommandError;
use super::registry::{Run, no_args};
use super::{Info, Reply};

pub const INFO: Info = Info {
    name: "whoami",
    usage: "whoami",
    summary: "your identity, roles and permissions",
    detail: "Identities are `<platform>:<user id>`; `[users]` in the config maps them to roles.",
    example: "whoami",
    parse: no_args::<Whoami>,
};

pub fn execute(ctx: &Context<'_>) -> Result<Reply, CommandError> {
    let identity = ctx.actor.identity();
    let roles = ctx.config.policy.roles_of(&identity);
    let grants: Vec<String> = ctx
        .config
        .policy
        .grants_of(&identity)
        .iter()
        .map(|g| g.to_string())
        .collect();
    let or_none = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    Ok(Reply::ok(format!("You are {} ({identity})", ctx.actor))
        .text(format!("Roles: {}", or_none(roles)))
        .text(format!("Permissions: {}", or_none(grants))))
}

/// A parsed `whoami` (it takes no arguments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Whoami;

#[async_trait::async_trait]
impl Run for Whoami {
    async fn execute(&self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        execute(ctx)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
