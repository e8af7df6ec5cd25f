//! Permissions a command needs, and the grant patterns roles hold.

use crate::domain::Name;
use std::fmt;

/// What a permission allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// See desired state, history, diffs, status and audit.
    Read,
    /// Change desired state; take or release locks.
    Write,
    /// Apply desired state.
    Converge,
    /// Copy versions into the (destination) environment.
    Promote,
    /// Restore a previous revision and apply it; granted on its own so on-call need nothing else.
    Rollback,
    /// Approve someone else's converge of a protected environment.
    Approve,
    /// Override a freeze window, someone else's lock, or a promotion rule.
    Force,
}

impl Verb {
    pub const ALL: [Verb; 7] = [
        Verb::Read,
        Verb::Write,
        Verb::Converge,
        Verb::Promote,
        Verb::Rollback,
        Verb::Approve,
        Verb::Force,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Read => "read",
            Verb::Write => "write",
            Verb::Converge => "converge",
            Verb::Promote => "promote",
            Verb::Rollback => "rollback",
            Verb::Approve => "approve",
            Verb::Force => "force",
        }
    }

    fn parse(text: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// A permission a command needs: a verb, on one environment (or on none, for `read`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub verb: Verb,
    pub env: Option<Name>,
}

impl Permission {
    /// Reading anything.
    pub fn read() -> Permission {
        Permission {
            verb: Verb::Read,
            env: None,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.env {
            Some(env) => write!(f, "{}:{env}", self.verb.as_str()),
            None => f.write_str(self.verb.as_str()),
        }
    }
}

/// A pattern a role grants: `*`, `read`, `write:staging`, `write:*`, `*:staging`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Grant {
    /// `None` is every verb.
    verb: Option<Verb>,
    /// `None` is every environment.
    env: Option<Name>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a permission: use `*`, `read`, or one of read, write, converge, promote, rollback, approve, force followed by `:<env>` or `:*` (e.g. `write:staging`)"
)]
pub struct GrantError(pub String);

impl Grant {
    pub fn parse(text: &str) -> Result<Grant, GrantError> {
        let err = || GrantError(text.to_string());
        let (verb, env) = text.split_once(':').unwrap_or((text, "*"));
        let verb = match verb {
            "*" => None,
            v => Some(Verb::parse(v).ok_or_else(err)?),
        };
        let env = match env {
            "*" => None,
            e => Some(Name::parse(e).map_err(|_| err())?),
        };
        Ok(Grant { verb, env })
    }

    /// Whether this grant allows `permission`. A permission without an environment (`read`)
    /// is covered by grants of its verb on any environment pattern.
    pub fn covers(&self, permission: &Permission) -> bool {
        let verb_ok = self.verb.is_none_or(|v| v == permission.verb);
        let env_ok = match (&self.env, &permission.env) {
            (None, _) => true,
            (Some(granted), Some(wanted)) => granted == wanted,
            (Some(_), None) => false,
        };
        verb_ok && env_ok
    }
}

impl TryFrom<String> for Grant {
    type Error = GrantError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Grant::parse(&text)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = self.verb.map_or("*", Verb::as_str);
        match &self.env {
            Some(env) => write!(f, "{verb}:{env}"),
            None if self.verb.is_none() => f.write_str("*"),
            None => write!(f, "{verb}:*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_patterns() {
        for (text, shown) in [
            ("*", "*"),
            ("read", "read:*"),
            ("write:staging", "write:staging"),
            ("rollback:*", "rollback:*"),
            ("*:staging", "*:staging"),
        ] {
            assert_eq!(Grant::parse(text).unwrap().to_string(), shown);
        }
        for bad in ["", "deploy:staging", "write:Staging", "write:", "root"] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
    }
}
