//! Which environment variables a started program sees: the small set it inherits from ferry,
//! and the check on the names a config may add with `pass_env`.

/// Variables a program inherits from ferry's environment without being asked for: what a
/// program needs to find tools and behave like it does in a login shell, and nothing that
/// could hold a secret. ferry's own environment holds chat tokens and webhook secrets, and the
/// tail of a program's output is posted to chat, so everything else must be named in
/// `pass_env`. Inherited `FERRY_*` variables (such as `FERRY_CONFIG`) are not passed either:
/// a program sees only the `FERRY_*` variables ferry sets for it.
pub const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"];

/// A name `pass_env` cannot list: callers add where it was written (`pass_env: …`) and keep
/// the name for their own messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an environment variable name: use letters, digits and `_`, not starting with a digit (e.g. `AWS_PROFILE`)"
)]
pub struct EnvNameError(pub String);

/// Why `name` cannot be listed in `pass_env`, if it cannot: an environment variable name is
/// letters, digits and `_`, not starting with a digit.
pub fn check_env_name(name: &str) -> Result<(), EnvNameError> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(EnvNameError(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_checked() {
        for ok in ["AWS_PROFILE", "_X", "a1"] {
            assert!(check_env_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A=B", "A B"] {
            let e = check_env_name(bad).unwrap_err().to_string();
            assert!(e.contains("not an environment variable name"), "{e}");
        }
    }
}
