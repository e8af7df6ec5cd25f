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
    /// What people call the channel (`#deploys`), for replies and the audit trail.
    pub channel: Option<String>,
    /// Unambiguous names of the same channel that channel bindings may use: its id
    /// (`C024BE91L`, `123456789012345678`) and, on Discord, `<server id>/#<name>`.
    pub channel_ids: Vec<String>,
}

impl Origin {
    pub fn shell() -> Origin {
        Origin {
            platform: "shell".into(),
            channel: None,
            channel_ids: Vec::new(),
        }
    }

    /// Every `<platform>:<channel>` this origin answers to in a channel binding.
    pub fn bindings(&self) -> Vec<String> {
        let name = self.channel.as_deref().unwrap_or("direct message");
        std::iter::once(name)
            .chain(self.channel_ids.iter().map(String::as_str))
            .map(|c| format!("{}:{c}", self.platform))
            .collect()
    }
}
