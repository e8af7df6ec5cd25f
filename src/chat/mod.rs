//! Chat transports: where commands come from and replies go. Addressing (is this message for
//! ferry?) and rendering a `Reply` for each platform live here and only here. Transports know
//! nothing of SQL or deployers.

pub mod addressing;
pub mod conversation;
#[cfg(feature = "discord")]
pub mod discord;
pub mod markdown;
pub mod names;
pub mod shell;
#[cfg(feature = "slack")]
pub mod slack;
pub mod text;

use crate::app::App;
use std::sync::Arc;
use std::time::Duration;

/// How long one chat API call (post, edit, lookup) may take before ferry gives up on it.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// `call` bounded by `limit`: a call that hangs becomes an error naming `what`.
pub async fn timed<T, E: std::fmt::Display>(
    what: &str,
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("{what} did not answer within {limit:?}")),
    }
}

/// Why a transport stopped or could not start.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// A token's environment variable is not set: a configuration error.
    #[error(
        "environment variable {0} is not set: it must hold the token (the config names the variable, never the token)"
    )]
    MissingSecret(String),
    /// The platform refused the credentials.
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Failed(String),
}

/// A chat platform (or the shell) ferry listens on.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    fn name(&self) -> &'static str;

    /// Receives commands and replies until `shutdown` turns true.
    async fn run(
        &self,
        app: Arc<App>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), TransportError>;
}

/// The value of the environment variable `var`, which must be set and non-empty.
pub fn secret_from_env(var: &str) -> Result<String, TransportError> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => {
            crate::logging::register_secret(value.trim());
            Ok(value.trim().to_string())
        }
        _ => Err(TransportError::MissingSecret(var.to_string())),
    }
}

/// Resolves when `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
