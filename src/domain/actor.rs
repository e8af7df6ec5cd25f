//! Who typed a command and where: identities are `<platform>:<user id>` (`shell:alice`,
//! `slack:U024BE7LH`), which is what `[users]` in the config maps to roles.

use std::fmt;

/// A person (or ferry itself) acting on the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Actor {
    /// `shell`, `slack`, `discord`, or `ferry` for ferry's own writes (seeding).
    pub platform: String,
    /// The platform's stable user id.
    pub id: String,
    /// The name to show people; may change, so never used for permissions.
    pub display: String,
}

impl Actor {
    pub fn new(platform: &str, id: &str, display: &str) -> Actor {
        Actor {
            platform: platform.into(),
            id: id.into(),
            display: display.into(),
        }
    }

    /// The actor for writes ferry makes on its own, such as seeding an environment.
    pub fn ferry() -> Actor {
        Actor::new("ferry", "ferry", "ferry")
    }

    /// `shell:alice`: the key of `[users]`.
    pub fn identity(&self) -> String {
        format!("{}:{}", self.platform, self.id)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// Where a command came from: the platform and, on chat platforms, the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub platform: String,
    pub channel: Option<String>,
}

impl Origin {
    pub fn shell() -> Origin {
        Origin {
            platform: "shell".into(),
            channel: None,
        }
    }
}
