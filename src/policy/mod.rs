//! Who may do what: roles grant permissions (`read`, `write:<env>`, `converge:<env>`,
//! `promote:<dst>`, `rollback:<env>`, `approve:<env>`, `force:<env>`, `*`, `write:*`), users
//! map to roles, and every command states the permission it needs before it runs.
//!
//! Policy knows identities (`shell:alice`) and environment names, never a platform's wire
//! format.

mod freeze;
mod grant;

pub use freeze::{Freeze, FreezeError, RawFreeze, frozen};
pub use grant::{Grant, GrantError, Permission, Verb};

use crate::domain::Name;
use std::collections::BTreeMap;

/// The key of `[users]` whose roles apply to everyone not listed.
pub const DEFAULT_USER: &str = "default";

/// Roles and the users holding them, as configured.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    roles: BTreeMap<String, Vec<Grant>>,
    users: BTreeMap<String, Vec<String>>,
}

/// A refusal: the permission that was missing and the roles the user had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub missing: Permission,
    pub roles: Vec<String>,
}

impl Policy {
    /// `roles`: role → grants; `users`: identity, `<platform>:*` or `default` → role names.
    /// Role names are checked by the config loader, which knows where they were written.
    pub fn new(roles: BTreeMap<String, Vec<Grant>>, users: BTreeMap<String, Vec<String>>) -> Self {
        Policy { roles, users }
    }

    /// Roles of `identity`: its own entry, else its platform's `<platform>:*` entry, else
    /// `default`, else none.
    pub fn roles_of(&self, identity: &str) -> Vec<String> {
        let platform_wide = identity.split_once(':').map(|(p, _)| format!("{p}:*"));
        self.users
            .get(identity)
            .or_else(|| platform_wide.and_then(|key| self.users.get(&key)))
            .or_else(|| self.users.get(DEFAULT_USER))
            .cloned()
            .unwrap_or_default()
    }

    /// Every grant `identity` holds through its roles.
    pub fn grants_of(&self, identity: &str) -> Vec<Grant> {
        self.roles_of(identity)
            .iter()
            .filter_map(|role| self.roles.get(role))
            .flatten()
            .cloned()
            .collect()
    }

    /// Whether `identity` holds `permission`.
    pub fn allows(&self, identity: &str, permission: &Permission) -> bool {
        self.grants_of(identity)
            .iter()
            .any(|g| g.covers(permission))
    }

    /// `Ok` when allowed, else which permission was missing.
    pub fn check(&self, identity: &str, permission: Permission) -> Result<(), Denied> {
        if self.allows(identity, &permission) {
            Ok(())
        } else {
            Err(Denied {
                missing: permission,
                roles: self.roles_of(identity),
            })
        }
    }

    /// Whether a role of this name is defined.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }
}

/// Shorthand for a permission on one environment.
pub fn on(verb: Verb, env: &Name) -> Permission {
    Permission {
        verb,
        env: Some(env.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let grants = |gs: &[&str]| gs.iter().map(|g| Grant::parse(g).unwrap()).collect();
        let roles = BTreeMap::from([
            ("viewer".to_string(), grants(&["read"])),
            (
                "deployer".to_string(),
                grants(&["read", "write:staging", "promote:staging"]),
            ),
            ("oncall".to_string(), grants(&["read", "rollback:*"])),
            ("admin".to_string(), grants(&["*"])),
        ]);
        let users = BTreeMap::from([
            ("shell:alice".to_string(), vec!["deployer".to_string()]),
            ("shell:root".to_string(), vec!["admin".to_string()]),
            ("slack:*".to_string(), vec!["oncall".to_string()]),
            (DEFAULT_USER.to_string(), vec!["viewer".to_string()]),
        ]);
        Policy::new(roles, users)
    }

    fn env(name: &str) -> Name {
        Name::parse(name).unwrap()
    }

    #[test]
    fn exact_grants_apply_to_their_environment_only() {
        let p = policy();
        assert!(p.allows("shell:alice", &on(Verb::Write, &env("staging"))));
        assert!(!p.allows("shell:alice", &on(Verb::Write, &env("production"))));
        assert!(p.allows("shell:alice", &Permission::read()));
    }

    #[test]
    fn wildcards_cover_every_environment_or_everything() {
        let p = policy();
        assert!(p.allows("slack:U1", &on(Verb::Rollback, &env("production"))));
        assert!(!p.allows("slack:U1", &on(Verb::Converge, &env("production"))));
        assert!(p.allows("shell:root", &on(Verb::Approve, &env("anything"))));
    }

    #[test]
    fn unknown_users_get_the_default_roles() {
        let p = policy();
        assert_eq!(p.roles_of("shell:carol"), ["viewer"]);
        let denied = p
            .check("shell:carol", on(Verb::Write, &env("staging")))
            .unwrap_err();
        assert_eq!(denied.missing.to_string(), "write:staging");
        assert_eq!(denied.roles, ["viewer"]);
    }
}
