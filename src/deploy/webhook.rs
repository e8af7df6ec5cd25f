//! The `webhook` deployer: POSTs a JSON payload signed with HMAC-SHA256; 2xx means accepted.

use crate::config::HumanDuration;

/// `[deployers.<name>] kind = "webhook"`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Environment variable holding the HMAC secret (never the secret itself).
    pub secret_env: Option<String>,
    /// Header carrying `sha256=<hex>` of the body.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Polled with GET until it reports success or failure.
    pub status_url: Option<String>,
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_signature_header() -> String {
    "X-Ferry-Signature-256".to_string()
}

fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(300)
}

fn default_retries() -> u32 {
    3
}
