//! `env[.service[.key]]`: the one place where a dotted path typed by a user is split. After this
//! only typed names move through ferry.

use super::{KeyPath, Name, NameError};
use std::fmt;

/// What a command points at: an environment, one of its services, or one key of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub env: Name,
    pub service: Option<Name>,
    pub key: Option<KeyPath>,
}

/// Why a path was rejected, naming the part that was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("environment: {0}")]
    Env(NameError),
    #[error("service: {0}")]
    Service(NameError),
    #[error("key: {0}")]
    Key(NameError),
}

impl Target {
    /// Splits `staging.ms-users.config.LOG_LEVEL` into environment, service and key.
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        let mut parts = text.splitn(3, '.');
        let env = Name::parse(parts.next().unwrap_or_default()).map_err(TargetError::Env)?;
        let service = parts
            .next()
            .map(|s| Name::parse(s).map_err(TargetError::Service))
            .transpose()?;
        let key = parts
            .next()
            .map(|k| KeyPath::parse(k).map_err(TargetError::Key))
            .transpose()?;
        Ok(Target { env, service, key })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.env)?;
        if let Some(service) = &self.service {
            write!(f, ".{service}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ".{key}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_env_service_and_nested_key() {
        let t = Target::parse("staging.ms-users.config.LOG_LEVEL").unwrap();
        assert_eq!(t.env.as_str(), "staging");
        assert_eq!(t.service.unwrap().as_str(), "ms-users");
        assert_eq!(t.key.unwrap().as_str(), "config.LOG_LEVEL");
        let t = Target::parse("staging").unwrap();
        assert!(t.service.is_none() && t.key.is_none());
    }

    #[test]
    fn names_the_part_that_is_wrong() {
        assert!(matches!(
            Target::parse("Staging!!.ms-users"),
            Err(TargetError::Env(_))
        ));
        assert!(matches!(
            Target::parse("staging.MS"),
            Err(TargetError::Service(_))
        ));
        assert!(matches!(
            Target::parse("staging.ms."),
            Err(TargetError::Key(_))
        ));
        assert!(matches!(Target::parse(""), Err(TargetError::Env(_))));
    }

    #[test]
    fn displays_as_typed() {
        let text = "staging.ms-users.version";
        assert_eq!(Target::parse(text).unwrap().to_string(), text);
    }
}
