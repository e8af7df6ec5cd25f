//! What every command that deploys checks and says about freeze windows: `converge` and an
//! approved request are refused inside one unless forced by someone holding `force:<env>`,
//! and an override is recorded in the reply and announced.

use super::Reply;
use super::context::Context;
use super::error::{CommandError, UserError};
use crate::config::EnvironmentConfig;
use crate::domain::Name;
use crate::policy::{Verb, frozen, on};

/// Refuses a converge inside a freeze window unless `--force` by someone holding
/// `force:<env>`; then returns the note to record and announce.
pub fn check_freeze(
    ctx: &Context<'_>,
    env: &Name,
    config: &EnvironmentConfig,
    force: bool,
) -> Result<Option<String>, CommandError> {
    let Some((window, ends)) = frozen(&config.freeze, ctx.now()) else {
        return Ok(None);
    };
    let until = format!("{} ({})", window.local(ends), super::render::time(ends));
    if !force {
        return Err(CommandError::Refused(
            UserError::new(format!(
                "{env} is frozen ({}) until {until}: converges are refused",
                window.describe()
            ))
            .try_instead(format!(
                "converge {env} after the freeze, or `converge {env} --force` (needs force:{env}; audited and announced)"
            )),
        ));
    }
    ctx.require(on(Verb::Force, env))?;
    Ok(Some(format!(
        "{} overrode the freeze of {env} ({}, until {until})",
        ctx.actor,
        window.describe()
    )))
}

/// Adds the freeze override to the reply and to what the transports announce.
pub fn with_override(mut reply: Reply, env: &Name, note: Option<String>) -> Reply {
    if let Some(note) = note {
        reply.alert = Some((
            env.clone(),
            format!("Forced deploy during a freeze: {note}. {}", reply.headline),
        ));
        reply = reply.text(format!("Freeze overridden: {note}."));
    }
    reply
}
