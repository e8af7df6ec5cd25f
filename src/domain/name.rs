//! Validated names: environments and services (`[a-z0-9][a-z0-9-]{0,62}`) and key paths
//! (`version`, `config.LOG_LEVEL`). A value of these types is known to be safe to put in a file
//! name, an environment variable name or a command-line argument.

use std::fmt;

/// Longest environment or service name, as for a DNS label.
const MAX_NAME: usize = 63;
/// Deepest key path accepted (`a.b.c.d`); deeper nesting is almost certainly a typo.
const MAX_KEY_DEPTH: usize = 4;

/// Why a name or key path was rejected; the text is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error(
        "`{0}` is not a valid name: use lower-case letters, digits and `-`, starting with a letter or digit, at most 63 characters"
    )]
    Invalid(String),
    #[error(
        "`{0}` is not a valid key: use letters, digits, `_` and `-` in up to 4 dot-separated parts, each at most 63 characters"
    )]
    InvalidKey(String),
}

/// The name of an environment or a service.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// Checks `text` against `[a-z0-9][a-z0-9-]{0,62}`.
    pub fn parse(text: &str) -> Result<Name, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        let mut chars = text.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if first_ok && rest_ok && text.len() <= MAX_NAME {
            Ok(Name(text.to_string()))
        } else {
            Err(NameError::Invalid(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Name::parse(&text)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key inside a service's spec: `version`, `image`, or a nested `config.LOG_LEVEL`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct KeyPath(String);

impl KeyPath {
    /// The key every deployer understands: the artifact tag.
    pub fn version() -> KeyPath {
        KeyPath("version".to_string())
    }

    /// Checks each dot-separated part against `[A-Za-z0-9_][A-Za-z0-9_-]{0,62}`.
    pub fn parse(text: &str) -> Result<KeyPath, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        let parts: Vec<&str> = text.split('.').collect();
        let part_ok = |p: &&str| {
            !p.is_empty()
                && p.len() <= MAX_NAME
                && !p.starts_with('-')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if parts.len() <= MAX_KEY_DEPTH && parts.iter().all(part_ok) {
            Ok(KeyPath(text.to_string()))
        } else {
            Err(NameError::InvalidKey(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of `keys` other than this one that maps to the same `FERRY_KEY_<KEY>`
    /// variable (`config.MODE` and `config.mode`, `log-level` and `log_level`): such keys
    /// cannot both be handed to a program, so a service may hold only one of them.
    pub fn collides_with<'k>(
        &self,
        mut keys: impl Iterator<Item = &'k KeyPath>,
    ) -> Option<&'k KeyPath> {
        let mine = self.env_var_suffix();
        keys.find(|k| *k != self && k.env_var_suffix() == mine)
    }

    /// `config.LOG_LEVEL` → `CONFIG_LOG_LEVEL`, for `FERRY_KEY_<KEY>` environment variables.
    pub fn env_var_suffix(&self) -> String {
        self.0
            .chars()
            .map(|c| match c {
                '.' | '-' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect()
    }
}

impl TryFrom<String> for KeyPath {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        KeyPath::parse(&text)
    }
}

impl From<KeyPath> for String {
    fn from(key: KeyPath) -> String {
        key.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_dns_label_rule() {
        for ok in ["staging", "ms-users", "a", "0day", &"a".repeat(63)] {
            assert!(Name::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Staging",
            "-x",
            "a_b",
            "a.b",
            "staging!!",
            &"a".repeat(64),
            "é",
        ] {
            assert!(Name::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_paths_allow_nesting_and_upper_case() {
        for ok in ["version", "config.LOG_LEVEL", "a.b.c.d", "x-y_z"] {
            assert!(KeyPath::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "x.", "a..b", "a.b.c.d.e", "-x", "a b", "$(x)"] {
            assert!(KeyPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_var_suffix_is_upper_snake_case() {
        let key = KeyPath::parse("config.log-level").unwrap();
        assert_eq!(key.env_var_suffix(), "CONFIG_LOG_LEVEL");
    }
}
