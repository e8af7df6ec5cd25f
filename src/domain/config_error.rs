//! Configuration errors: which file, which line, what was wrong and the nearest valid name.

use super::nearest;
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
        let line = err
            .span()
            .map(|span| line_of(text, refine(text, span.start, err.message())));
        ConfigError::new(file, line, explain(err.message()))
    }
}

/// Errors inside a buffered table (a `[deployers.*]` table, whose `kind` picks the type) are
/// reported by the parser at the table's header. When the message quotes the offending key or
/// value, point at its first appearance in that table instead.
fn refine(text: &str, at: usize, message: &str) -> usize {
    let Some(quoted) = message.split('`').nth(1).filter(|q| !q.is_empty()) else {
        return at;
    };
    let table_start = text[..(at + 1).min(text.len())]
        .rfind("\n[")
        .map_or(0, |i| i + 1);
    if !text[table_start..].starts_with('[') {
        return at;
    }
    let body_start = text[table_start..]
        .find('\n')
        .map_or(text.len(), |i| table_start + i + 1);
    let body_end = text[body_start..]
        .find("\n[")
        .map_or(text.len(), |i| body_start + i);
    let body = &text[body_start..body_end];
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let is_key =
            trimmed.starts_with(quoted) && trimmed[quoted.len()..].trim_start().starts_with('=');
        if is_key || line.contains(&format!("\"{quoted}\"")) {
            return body_start + offset;
        }
        offset += line.len();
    }
    at
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
    fn errors_in_buffered_tables_point_at_the_offending_line() {
        let text = "[bot]\nname = \"x\"\n\n[deployers.local]\nkind = \"command\"\ntimeout = \"6x\"\nprogrm = \"y\"\n";
        let header = text.find("[deployers").unwrap();
        assert_eq!(
            line_of(text, refine(text, header, "`6x` is not a duration")),
            6
        );
        assert_eq!(
            line_of(
                text,
                refine(text, header, "unknown field `progrm`, expected")
            ),
            7
        );
        assert_eq!(
            line_of(text, refine(text, header, "missing field `program`")),
            4
        );
    }

    #[test]
    fn lines_are_one_based() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
