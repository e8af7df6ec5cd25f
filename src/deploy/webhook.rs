//! The `webhook` deployer: POSTs a JSON payload signed with HMAC-SHA256 (`sha256=<hex>` in the
//! signature header, secret from an environment variable); 2xx means accepted. Connection
//! errors and 5xx are retried with exponential backoff and jitter; 4xx never is. With a status
//! URL (configured, or `status_url` in the response), verification polls it until it reports
//! success or failure.
//!
//! What a receiver can make ferry do is bounded: redirects are never followed (a 307 would
//! re-send the signed body elsewhere, a 302 turn the deploy into a body-less GET), so any 3xx
//! is a failure; bodies are read up to 1 MiB; a `status_url` the receiver returns is polled only
//! on the webhook's own origin or one listed in `status_origins`. URLs are shown without
//! credentials or query (`redact_url`).

use super::url::{error_text, origin, redact_url};
use super::{BuildError, DeployError, DeployRequest, Deployer, DeployerKind, Live, Template};
use crate::domain::HumanDuration;
use crate::domain::Name;
use crate::process::tail;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// Per request.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Polled with GET until it reports `{"status": "success" | "failure" | "pending"}`;
    /// templates as for the command deployer (`{deploy}`, `{service}`, …).
    pub status_url: Option<String>,
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    /// Retries after the first attempt, on connection errors and 5xx.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Origins (`https://status.example.com`) besides the webhook URL's own on which a
    /// `status_url` returned by the receiver may be polled; others are refused, so that a
    /// receiver cannot point ferry at another host.
    #[serde(default)]
    pub status_origins: Vec<String>,
}

impl DeployerKind for WebhookConfig {
    const KIND: &'static str = "webhook";

    fn build(&self, _: &Path) -> Result<Arc<dyn Deployer>, BuildError> {
        Ok(Arc::new(WebhookDeployer::new(self)?))
    }
}

fn default_signature_header() -> String {
    "X-Ferry-Signature-256".to_string()
}

fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration::from_secs(2)
}

fn default_retries() -> u32 {
    3
}

/// The running `webhook` deployer.
pub struct WebhookDeployer {
    client: reqwest::Client,
    url: String,
    /// `url` as messages show it (no credentials, no query).
    shown: String,
    /// Where a returned status URL may point: the webhook's origin and `status_origins`.
    status_origins: Vec<String>,
    secret_env: Option<String>,
    signature_header: String,
    status_url: Option<Template>,
    poll_interval: Duration,
    retries: u32,
    /// Status URLs returned by the receiver, per (env, service, deploy), for `verify`.
    returned_status: Mutex<HashMap<(String, String, i64), String>>,
}

/// First backoff; doubles per retry.
const BACKOFF_BASE: Duration = Duration::from_millis(200);

/// The largest response body read from a receiver or a status URL: ample for JSON answers,
/// and a receiver cannot make ferry hold more.
const MAX_BODY: usize = 1024 * 1024;

impl WebhookDeployer {
    pub fn new(config: &WebhookConfig) -> Result<WebhookDeployer, BuildError> {
        let shown = redact_url(&config.url);
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            return Err(BuildError::UrlScheme { shown });
        }
        let url = reqwest::Url::parse(&config.url).map_err(|e| BuildError::BadUrl {
            shown: shown.clone(),
            reason: e.to_string(),
        })?;
        let mut status_origins = vec![origin(&url)];
        for allowed in &config.status_origins {
            let parsed = reqwest::Url::parse(allowed)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            match parsed {
                Some(u) => status_origins.push(origin(&u)),
                None => {
                    return Err(BuildError::NotAnOrigin {
                        shown: redact_url(allowed),
                    });
                }
            }
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout.0)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BuildError::HttpClient(error_text(e)))?;
        let status_url = config
            .status_url
            .as_deref()
            .map(Template::parse)
            .transpose()
            .map_err(|e| {
                let text = config.status_url.as_deref().unwrap_or_default();
                BuildError::StatusUrlTemplate(e.to_string().replace(text, &redact_url(text)))
            })?;
        // The configured status URL's origin is the config author's: trusted, but fixed. A
        // placeholder in it would let a value typed in chat choose the host that is polled.
        if let Some(text) = config.status_url.as_deref() {
            let authority = text
                .split_once("://")
                .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
                .unwrap_or_default();
            let parsed = reqwest::Url::parse(text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            match parsed {
                Some(u) if !authority.contains('{') => status_origins.push(origin(&u)),
                _ => {
                    return Err(BuildError::StatusUrlOrigin {
                        shown: redact_url(text),
                    });
                }
            }
        }
        Ok(WebhookDeployer {
            client,
            url: config.url.clone(),
            shown,
            status_origins,
            secret_env: config.secret_env.clone(),
            signature_header: config.signature_header.clone(),
            status_url,
            poll_interval: config.poll_interval.0,
            retries: config.retries,
            returned_status: Mutex::new(HashMap::new()),
        })
    }

    fn secret(&self) -> Result<Option<Vec<u8>>, DeployError> {
        match &self.secret_env {
            None => Ok(None),
            Some(var) => match std::env::var(var) {
                Ok(secret) if !secret.is_empty() => Ok(Some(secret.into_bytes())),
                _ => Err(DeployError::new(format!(
                    "the webhook secret variable {var} is not set"
                ))),
            },
        }
    }

    /// The status URL a receiver returned, resolved against the webhook URL, if it is on an
    /// allowed origin; the error says why not.
    fn returned_status_url(&self, returned: &str) -> Result<String, DeployError> {
        self.allowed_status_url(returned, "the receiver returned a status_url")
    }

    /// `url` resolved against the webhook URL, if it is on an allowed origin; `what` names
    /// where it came from in the error.
    fn allowed_status_url(&self, returned: &str, what: &str) -> Result<String, DeployError> {
        let base = reqwest::Url::parse(&self.url).map_err(|e| DeployError::new(e.to_string()))?;
        let url = base.join(returned).map_err(|e| {
            DeployError::new(format!(
                "{what} that is not a URL ({e}); nothing was polled"
            ))
        })?;
        let at = origin(&url);
        if self.status_origins.contains(&at) {
            Ok(url.to_string())
        } else {
            Err(DeployError::new(format!(
                "{what} on {at}, which is not the webhook's origin; it was not polled: if that host is trusted, add it to the deployer's `status_origins` (like `status_origins = [\"{at}\"]`)"
            )))
        }
    }

    fn key(request: &DeployRequest) -> (String, String, i64) {
        (
            request.env.to_string(),
            request.service.to_string(),
            request.deploy_id,
        )
    }
}

/// `sha256=<hex>` of `body` under `secret`: what receivers check.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn payload(request: &DeployRequest) -> serde_json::Value {
    let spec: serde_json::Map<String, serde_json::Value> = request
        .spec
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::json!({
        "env": request.env.as_str(),
        "service": request.service.as_str(),
        "version": request.version(),
        "revision": request.revision,
        "deploy_id": request.deploy_id,
        "actor": request.actor.identity(),
        "spec": spec,
    })
}

/// Why a response body was not read; messages put it after "answered <status> with a".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("response body larger than 1 MiB")]
    TooLarge,
    /// The connection failed mid-body: reqwest's error without the URL (it may hold a token).
    #[error("{0}")]
    Read(String),
}

/// Reads a response body of at most `MAX_BODY` bytes, stopping as soon as it is larger: what
/// every HTTP answer ferry reads (webhooks, status URLs, preflight checks) goes through.
pub async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BodyError::Read(error_text(e)))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What a 3xx answer says, naming only the origin of its `Location` (its query may hold a
/// token).
fn redirect_error(shown: &str, response: &reqwest::Response, what: &str) -> String {
    let target = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| response.url().join(l).ok())
        .map_or("a redirect without a Location".to_string(), |u| {
            format!("a redirect to {}", origin(&u))
        });
    format!(
        "{shown} answered {}, {target}; ferry does not follow redirects (they would send the request elsewhere): set {what} to the address that answers directly",
        response.status()
    )
}

fn backoff(retry: u32) -> Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()) % 100)
        .unwrap_or(0);
    BACKOFF_BASE * 2u32.saturating_pow(retry.min(6)) + Duration::from_millis(jitter)
}

#[async_trait::async_trait]
impl Deployer for WebhookDeployer {
    async fn apply(&self, request: &DeployRequest) -> Result<String, DeployError> {
        let body =
            serde_json::to_vec(&payload(request)).map_err(|e| DeployError::new(e.to_string()))?;
        let secret = self.secret()?;
        let mut last_error = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt - 1)).await;
            }
            let mut post = self
                .client
                .post(&self.url)
                .header("Content-Type", "application/json")
                .header("X-Ferry-Deploy", request.deploy_id.to_string())
                .body(body.clone());
            if let Some(secret) = &secret {
                post = post.header(&self.signature_header, signature(secret, &body));
            }
            let response = match post.send().await {
                Ok(r) => r,
                Err(e) => {
                    last_error = format!("cannot reach {}: {}", self.shown, error_text(e));
                    continue;
                }
            };
            let status = response.status();
            if status.is_redirection() {
                return Err(DeployError::new(format!(
                    "{}; not retried",
                    redirect_error(&self.shown, &response, "`url`")
                )));
            }
            let body = read_body(response).await.map_err(|e| {
                DeployError::new(format!("{} answered {status} with a {e}", self.shown))
            })?;
            let text = String::from_utf8_lossy(&body);
            if status.is_success() {
                if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body)
                    && let Some(url) = json.get("status_url").and_then(|u| u.as_str())
                {
                    self.returned_status
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(Self::key(request), url.to_string());
                }
                return Ok(format!("{} accepted the deploy ({status})", self.shown));
            }
            last_error = format!("{} answered {status}", self.shown);
            if status.is_client_error() {
                return Err(DeployError {
                    message: format!("{last_error}; not retried"),
                    output: tail(&text),
                });
            }
        }
        Err(DeployError::new(format!(
            "{last_error} (after {} attempts)",
            self.retries + 1
        )))
    }

    async fn verify(&self, request: &DeployRequest, timeout: Duration) -> Result<(), DeployError> {
        let returned = self
            .returned_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&Self::key(request));
        let url = match (returned, &self.status_url) {
            (Some(url), _) => self.returned_status_url(&url)?,
            // Values are percent-encoded, and the URL must stay on an allowed origin like a
            // returned one: a value typed in chat cannot point the poll elsewhere.
            (None, Some(template)) => {
                let url = template
                    .expand_url(request)
                    .map_err(|e| DeployError::new(e.to_string()))?;
                self.allowed_status_url(&url, "the configured status_url gave a URL")?
            }
            (None, None) => return Ok(()),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = "no answer yet".to_string();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let polled = match tokio::time::timeout(left, self.client.get(&url).send()).await {
                Ok(result) => result,
                Err(_) => {
                    return Err(DeployError::new(format!(
                        "not healthy in time (last status: {last}; the status URL did not answer)"
                    )));
                }
            };
            let shown = redact_url(&url);
            match polled {
                Ok(response) if response.status().is_redirection() => {
                    return Err(DeployError::new(format!(
                        "status URL {}",
                        redirect_error(&shown, &response, "the status URL")
                    )));
                }
                Ok(response) if response.status().is_client_error() => {
                    return Err(DeployError::new(format!(
                        "status URL {shown} answered {}",
                        response.status()
                    )));
                }
                Ok(response) => {
                    let status = response.status();
                    let body = read_body(response).await.map_err(|e| {
                        DeployError::new(format!("status URL {shown} answered {status} with a {e}"))
                    })?;
                    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let state = json
                        .get("status")
                        .and_then(|s| s.as_str())
                        .unwrap_or("")
                        .to_lowercase();
                    let message = json
                        .get("message")
                        .and_then(|s| s.as_str())
                        .unwrap_or_default()
                        .to_string();
                    match state.as_str() {
                        "success" | "succeeded" | "healthy" | "done" => return Ok(()),
                        "failure" | "failed" | "error" => {
                            return Err(DeployError {
                                message: format!("the receiver reports failure: {message}"),
                                output: tail(&message),
                            });
                        }
                        _ => {
                            last = format!(
                                "{status}: {}",
                                if state.is_empty() {
                                    "pending".to_string()
                                } else {
                                    state
                                }
                            )
                        }
                    }
                }
                Err(e) => last = error_text(e),
            }
            if tokio::time::Instant::now() + self.poll_interval >= deadline {
                return Err(DeployError::new(format!(
                    "not healthy in time (last status: {last})"
                )));
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    async fn observe(&self, _: &Name, _: &Name) -> Result<Live, DeployError> {
        Ok(Live::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn signature_matches_a_known_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
