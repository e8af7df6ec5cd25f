//! Chat transports: where commands come from and replies go. Addressing (is this message for
//! ferry?) and rendering a `Reply` for each platform live here and only here. Transports know
//! nothing of SQL or deployers.

pub mod addressing;
pub mod shell;
pub mod text;
