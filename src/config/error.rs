//! Configuration errors: which file, which line, what was wrong and the nearest valid name.

use crate::domain::nearest;
use std::fmt;

/// A config (or seed) file that cannot be used. Shown as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl ConfigError {
    pub fn new(file: &str, line: Option<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }

    /// An error at byte offset `at` of `text`.
    pub fn at(file: &str, text: &str, at: usize, message: impl Into<String>) -> ConfigError {
        ConfigError::new(file, Some(line_of(text, at)), message)
    }

    /// Turns a TOML parse or deserialization error into one naming the line and, for unknown
    /// keys or kinds, the nearest valid one.
    pub fn from_toml(file: &str, text: &str, err: &toml::de::Error) -> ConfigError {
        let line = err.span().map(|span| line_of(text, span.start));
        ConfigError::new(file, line, explain(err.message()))
    }
}

/// 1-based line of byte offset `at`.
pub fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// serde's "unknown field `x`, expected one of `a`, `b`" becomes "unknown key `x`: did you
/// mean `a`? (valid keys: a, b)".
fn explain(message: &str) -> String {
    let message = message.trim();
    let (what, rest) = if let Some(rest) = message.strip_prefix("unknown field `") {
        ("key", rest)
    } else if let Some(rest) = message.strip_prefix("unknown variant `") {
        ("kind", rest)
    } else {
        return message.to_string();
    };
    let Some((word, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let list = candidates.join(", ");
    match nearest(word, candidates.iter().copied()) {
        Some(best) => format!("unknown {what} `{word}`: did you mean `{best}`? (valid: {list})"),
        None if candidates.is_empty() => {
            format!("unknown {what} `{word}`: no keys are allowed here")
        }
        None => format!("unknown {what} `{word}` (valid: {list})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_get_the_nearest_valid_key() {
        let msg = "unknown field `promte_to`, expected one of `deployer`, `promote_to`";
        assert_eq!(
            explain(msg),
            "unknown key `promte_to`: did you mean `promote_to`? (valid: deployer, promote_to)"
        );
        let msg = "unknown variant `comand`, expected one of `command`, `webhook`, `noop`";
        assert!(explain(msg).contains("did you mean `command`?"));
    }

    #[test]
    fn lines_are_one_based() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
