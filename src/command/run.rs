//! Running one command line end to end: parse, execute, record the attempt in the audit trail,
//! and tell a lock holder about their locks that lapsed.

use super::{Context, Reply, parse};
use crate::domain::{MAX_VALUE_BYTES, NewAuditEntry};

/// Runs `ctx.text` and returns the reply. Never fails: every error becomes a reply that says
/// what was wrong, and every attempt is audited.
pub async fn run(ctx: &Context<'_>) -> Reply {
    let (mut reply, env) = match ctx.commands.parse(ctx.text) {
        // A user-defined command (`commands/*.toml`); built-in names cannot be taken by them.
        Some(Err(e)) => (Reply::from_error(&e.into()), None),
        Some(Ok(invocation)) => {
            let env = invocation.env().cloned();
            let result = match &env {
                Some(env) => ctx.ensure_channel(env),
                None => Ok(()),
            };
            let result = match result {
                Ok(()) => invocation.execute(ctx).await,
                Err(e) => Err(e),
            };
            (result.unwrap_or_else(|e| failure(&e)), env)
        }
        None => match parse(ctx.text) {
            Err(e) => (Reply::from_error(&e.into()), None),
            Ok(command) => {
                let env = command.audited_env(ctx.store).await;
                let result = command.execute(ctx).await;
                (result.unwrap_or_else(|e| failure(&e)), env)
            }
        },
    };
    let entry = NewAuditEntry {
        at: ctx.now(),
        actor: ctx.actor.clone(),
        platform: ctx.origin.platform.clone(),
        channel: ctx.origin.channel.clone(),
        env,
        text: audit_text(ctx.text),
        outcome: reply.outcome,
        detail: reply.headline.clone(),
    };
    if let Err(e) = ctx.store.record_audit(entry).await {
        tracing::error!(error = %e, "could not record the audit entry");
        reply = reply.text(format!("Warning: this command could not be audited ({e})."));
    }
    match ctx
        .store
        .take_lapsed_locks(&ctx.actor.identity(), ctx.now())
        .await
    {
        Ok(lapsed) => {
            for lock in lapsed {
                reply = reply.text(format!(
                    "Note: your lock on {} lapsed at {}.",
                    lock.env,
                    lock.expires.map(super::render::time).unwrap_or_default()
                ));
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not check for lapsed locks"),
    }
    reply
}

/// The reply for a command that ended in an error; store failures are also logged.
fn failure(error: &super::CommandError) -> Reply {
    if let super::CommandError::Store(store) = error {
        tracing::error!(error = %store, "store failure while running a command");
    }
    Reply::from_error(error)
}

/// The command text as recorded: capped, with control characters shown as `\u{…}` escapes.
fn audit_text(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if out.len() >= MAX_VALUE_BYTES {
            out.push_str(&format!("… ({} bytes in all)", text.len()));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::audit_text;

    #[test]
    fn audit_text_escapes_control_characters_and_caps_length() {
        assert_eq!(audit_text("env a\u{7}b é"), "env a\\u{7}b é");
        let long = "x".repeat(10_000);
        let recorded = audit_text(&long);
        assert!(recorded.len() < 4200 && recorded.ends_with("(10000 bytes in all)"));
    }
}
