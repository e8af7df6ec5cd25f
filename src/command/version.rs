//! `version`: which ferry is answering.

use super::{Info, Reply};

pub const INFO: Info = Info {
    name: "version",
    usage: "version",
    summary: "ferry's version",
    detail: "",
};

pub fn execute() -> Reply {
    Reply::ok(format!("ferry {}", env!("CARGO_PKG_VERSION")))
}
