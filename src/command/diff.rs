//! `diff`: key-by-key difference between two revisions of one environment, or between two
//! environments' desired states.
//!
//! ```text
//! diff <env>                  head against its parent
//! diff <env> <rev>            <rev> against head
//! diff <env> <revA> <revB>    revA against revB      (revisions as 12, @12 or staging@12)
//! diff <envA> <envB>          heads of two environments
//! ```

use super::args::Args;
use super::context::Context;
use super::error::{CommandError, ParseError, UserError};
use super::registry::Run;
use super::{Info, Reply};
use crate::domain::{Document, Name, diff};
use crate::policy::Permission;

pub const INFO: Info = Info {
    name: "diff",
    usage: "diff <env> [<revA> [<revB>]] | diff <envA> <envB>",
    summary: "key-by-key difference between revisions or environments",
    detail: "`diff staging` shows what the last revision changed; `diff staging 12` compares \
staging@12 with the head; `diff staging 12 15` two revisions; `diff staging production` two \
environments' desired states.",
    example: "diff staging production",
    parse: |args| Ok(Box::new(parse(args)?)),
};

/// A parsed `diff` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    /// Two revisions of one environment; `None` is the head (`from: None` with `to: None` is
    /// the head against its parent).
    Revisions {
        env: Name,
        from: Option<u64>,
        to: Option<u64>,
    },
    /// The heads of two environments.
    Environments { a: Name, b: Name },
}

pub fn parse(mut args: Args) -> Result<Diff, ParseError> {
    let first = args.required("an environment, e.g. `diff staging production`")?;
    let env = Name::parse(&first).map_err(|e| args.error(format!("environment: {e}")))?;
    let second = args.next();
    let third = args.next();
    args.clone().finish()?;
    let revision = |text: &str| -> Result<u64, ParseError> {
        let number = match text.split_once('@') {
            Some((prefix, n)) if prefix.is_empty() || prefix == env.as_str() => n,
            Some(_) => {
                return Err(args.error(format!("`{text}` is a revision of another environment")));
            }
            None => text,
        };
        match number.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(args.error(format!("`{text}` is not a revision number"))),
        }
    };
    let looks_like_revision =
        |t: &str| t.contains('@') || t.starts_with(|c: char| c.is_ascii_digit());
    match (second, third) {
        (None, _) => Ok(Diff::Revisions {
            env,
            from: None,
            to: None,
        }),
        (Some(b), None) if !looks_like_revision(&b) => {
            let b = Name::parse(&b).map_err(|e| args.error(format!("environment: {e}")))?;
            Ok(Diff::Environments { a: env, b })
        }
        (Some(from), to) => {
            let from = revision(&from)?;
            let to = to.map(|t| revision(&t)).transpose()?;
            Ok(Diff::Revisions {
                env,
                from: Some(from),
                to,
            })
        }
    }
}

impl Diff {
    /// The first environment named.
    pub fn env(&self) -> &Name {
        match self {
            Diff::Revisions { env, .. } => env,
            Diff::Environments { a, .. } => a,
        }
    }

    async fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        ctx.require(Permission::read())?;
        let (left, right) = match &self {
            Diff::Environments { a, b } => {
                ctx.environment(a)?;
                ctx.environment(b)?;
                (side(ctx, a, None).await?, side(ctx, b, None).await?)
            }
            Diff::Revisions {
                env,
                from: None,
                to: None,
            } => {
                ctx.environment(env)?;
                let head = side(ctx, env, None).await?;
                let parent = match head
                    .number
                    .and_then(|n| n.checked_sub(1))
                    .filter(|n| *n >= 1)
                {
                    Some(parent) => side(ctx, env, Some(parent)).await?,
                    None => Side {
                        label: format!("{env}@0 (empty)"),
                        number: None,
                        document: Document::default(),
                    },
                };
                (parent, head)
            }
            Diff::Revisions { env, from, to } => {
                ctx.environment(env)?;
                (side(ctx, env, *from).await?, side(ctx, env, *to).await?)
            }
        };
        let changes = diff(&left.document, &right.document);
        if changes.is_empty() {
            return Ok(Reply::ok(format!(
                "{} and {} have the same desired state",
                left.label, right.label
            )));
        }
        let rows = changes
            .iter()
            .map(|c| {
                let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_string());
                vec![
                    format!("{}.{}", c.service, c.key),
                    show(&c.old),
                    show(&c.new),
                ]
            })
            .collect();
        let n = changes.len();
        Ok(Reply::ok(format!(
            "{} → {}: {n} key{} differ{}",
            left.label,
            right.label,
            super::env::plural(n),
            if n == 1 { "s" } else { "" }
        ))
        .table(&["key", &left.label, &right.label], rows))
    }
}

/// One side of a diff.
struct Side {
    label: String,
    number: Option<u64>,
    document: Document,
}

async fn side(ctx: &Context<'_>, env: &Name, number: Option<u64>) -> Result<Side, CommandError> {
    let revision = match number {
        None => ctx.store.head(env).await?,
        Some(n) => Some(ctx.store.revision(env, n).await?.ok_or_else(|| {
            CommandError::Invalid(
                UserError::new(format!("{env} has no revision {n}"))
                    .try_instead(format!("history {env}")),
            )
        })?),
    };
    Ok(match revision {
        Some(rev) => Side {
            label: rev.meta.label(),
            number: Some(rev.meta.number),
            document: rev.document,
        },
        None => Side {
            label: format!("{env} (no revisions)"),
            number: None,
            document: Document::default(),
        },
    })
}

#[async_trait::async_trait]
impl Run for Diff {
    fn env(&self) -> Option<&Name> {
        Some(self.env())
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
    use super::Diff;
    use crate::command::parse;

    fn diff(text: &str) -> Diff {
        match parse(text).map(|c| c.get::<Diff>().cloned()) {
            Ok(Some(d)) => d,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn tells_revisions_from_environments() {
        assert!(matches!(
            diff("diff staging"),
            Diff::Revisions {
                from: None,
                to: None,
                ..
            }
        ));
        assert!(matches!(
            diff("diff staging 3"),
            Diff::Revisions {
                from: Some(3),
                to: None,
                ..
            }
        ));
        assert!(matches!(
            diff("diff staging @3 staging@5"),
            Diff::Revisions {
                from: Some(3),
                to: Some(5),
                ..
            }
        ));
        assert!(matches!(
            diff("diff staging production"),
            Diff::Environments { .. }
        ));
    }

    #[test]
    fn rejects_foreign_and_bad_revisions() {
        for bad in [
            "diff staging production@3",
            "diff staging 0",
            "diff staging 3 x",
            "diff staging 1 2 3",
            "diff",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
