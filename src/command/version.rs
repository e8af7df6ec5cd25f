//! `version`: which ferry is answering.

use super::context::Context;
use super::error::CommandError;
use super::registry::{Run, no_args};
use super::{Info, Reply};

pub const INFO: Info = Info {
    name: "version",
    usage: "version",
    summary: "ferry's version",
    detail: "",
    example: "version",
    parse: no_args::<Version>,
};

pub fn execute() -> Reply {
    Reply::ok(format!("ferry {}", env!("CARGO_PKG_VERSION")))
}

/// A parsed `version` (it takes no arguments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Version;

#[async_trait::async_trait]
impl Run for Version {
    async fn execute(&self, _ctx: &Context<'_>) -> Result<Reply, CommandError> {
        Ok(execute())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
