//! Helpers shared by the integration tests: fixtures that stand up real dependencies (a scratch
//! PostgreSQL database) and tear them down. Nothing here asserts ferry's behaviour; the tests do.

pub mod fake_discord;
pub mod fake_slack;
pub mod pg;
