//! Durations in `ferry.toml` (`timeout = "60s"`), parsed with the same rules as in chat, so
//! that a bad one is reported with its line by the TOML parser.

use crate::domain::parse_duration;
use std::time::Duration;

/// A duration written as text in the config: `30s`, `5m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn from_secs(secs: u64) -> HumanDuration {
        HumanDuration(Duration::from_secs(secs))
    }
}

impl TryFrom<String> for HumanDuration {
    type Error = crate::domain::DurationError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        parse_duration(&text).map(HumanDuration)
    }
}
