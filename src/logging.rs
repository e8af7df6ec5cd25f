//! ferry's log output on stderr, which never carries a secret: every line (ferry's own and its
//! dependencies', e.g. slack-morphism logging the Socket Mode URL at ERROR when a connection
//! fails) passes through `redact`, which hides Socket Mode tickets (`ticket=…`), anything shaped
//! like a Slack token (`xoxb-…`, `xapp-…`) and every token ferry read from the environment.
//! Redacting the text rather than silencing those libraries keeps their diagnostics.

use std::borrow::Cow;
use std::io::Write;
use std::sync::RwLock;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `secret` (a token read from the environment) so that no log line shows it.
pub fn register_secret(secret: &str) {
    if secret.len() < 8 {
        return; // too short to be a token, and replacing it would garble logs
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_string());
    }
}

/// `text` with secrets replaced by `[redacted]`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for secret in SECRETS.read().unwrap_or_else(|p| p.into_inner()).iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
        }
    }
    for marker in [
        "ticket=", "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxe-", "xapp-",
    ] {
        if out.contains(marker) {
            out = Cow::Owned(hide_after(&out, marker));
        }
    }
    out
}

/// Replaces what follows each `marker` (up to a delimiter) by `[redacted]`; a `ticket=` keeps
/// its name, a token is replaced whole.
fn hide_after(text: &str, marker: &str) -> String {
    let keep_marker = marker.ends_with('=');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at]);
        if keep_marker {
            out.push_str(marker);
        }
        let value = &rest[at + marker.len()..];
        let end = value
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '%')))
            .unwrap_or(value.len());
        out.push_str(REDACTED);
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// Writes each formatted log line to stderr, redacted.
#[derive(Clone, Copy, Default)]
pub struct RedactedStderr;

impl Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedStderr;

    fn make_writer(&'a self) -> RedactedStderr {
        RedactedStderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_and_tokens_are_hidden() {
        register_secret("s3cret-discord-token.abc");
        assert_eq!(
            redact("Unable to connect ws://h/link?ticket=fake-ticket-7&app_id=A1: 401"),
            "Unable to connect ws://h/link?ticket=[redacted]&app_id=A1: 401"
        );
        assert_eq!(
            redact("token xoxb-1-abc and xapp-1-A0-2-def, s3cret-discord-token.abc"),
            "token [redacted] and [redacted], [redacted]"
        );
        assert_eq!(redact("nothing here"), "nothing here");
    }
}
