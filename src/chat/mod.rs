//! Chat transports: where commands come from and replies go. Addressing (is this message for
//! ferry?) and rendering a `Reply` for each platform live here and only here. Transports know
//! nothing of SQL or deployers.

pub mod addressing;
pub mod conversation;
pub mod decode;
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
    what: &'static str,
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ChatError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(ChatError::api),
        Err(_) => Err(ChatError::Timeout { what, limit }),
    }
}

/// Why one chat API call (post, edit, name lookup, alert) failed. Such failures are logged and
/// the command goes on, so callers tell a hung call from a refused one only by the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// The call did not answer within its limit; `what` names the platform and call.
    #[error("{what} did not answer within {limit:?}")]
    Timeout { what: &'static str, limit: Duration },
    /// The platform, or the connection to it, failed the call; the client library's words.
    #[error("{0}")]
    Api(String),
    /// As `Api`, for a call whose error text does not say which call it was.
    #[error("{call}: {reason}")]
    Call { call: &'static str, reason: String },
    /// A message id that this platform never gives out (ferry edits only what it posted).
    #[error("bad message id {0}")]
    BadMessageId(String),
    /// An `alert_channel` that cannot name a channel on this platform.
    #[error("{platform} alert channel `{channel}` must be a channel id")]
    BadChannelId {
        platform: &'static str,
        channel: String,
    },
    /// A lookup found something that is not what was asked for (a DM for a server channel).
    #[error("{0}")]
    Unexpected(&'static str),
}

impl ChatError {
    /// A client library's error, in its own words.
    pub fn api(error: impl std::fmt::Display) -> ChatError {
        ChatError::Api(error.to_string())
    }

    /// A client library's error, after the name of the call that failed.
    pub fn call(call: &'static str, error: impl std::fmt::Display) -> ChatError {
        ChatError::Call {
            call,
            reason: error.to_string(),
        }
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

    /// Whether the transport has a live connection to its platform right now, for `/readyz`:
    /// a replica whose token was refused or whose connection is down is not ready.
    fn live(&self) -> Live;

    /// Receives commands and replies until `shutdown` turns true.
    async fn run(
        &self,
        app: Arc<App>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), TransportError>;
}

/// A transport's connection state, shared with the HTTP listener's readiness check.
pub type Live = std::sync::Arc<std::sync::atomic::AtomicBool>;

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
