//! Values typed in chat. A value is text with a length cap and no control characters; the
//! `version` key is stricter because it ends up in image references and file names.

use super::KeyPath;

/// Largest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Longest artifact tag, as for a container image tag.
const MAX_VERSION_BYTES: usize = 128;

/// Why a value was rejected; the text is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("the value is empty")]
    Empty,
    #[error("the value is {0} bytes long; the limit is {MAX_VALUE_BYTES}")]
    TooLong(usize),
    #[error("the value contains a control or invisible character ({0})")]
    ControlCharacter(String),
    #[error(
        "`{0}` is not a valid version: use letters, digits, `.`, `_`, `+` and `-`, starting with a letter or digit, at most 128 characters"
    )]
    InvalidVersion(String),
}

/// A validated value of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value(String);

impl Value {
    /// Validates `text` as a value for `key`.
    pub fn parse(key: &KeyPath, text: &str) -> Result<Value, ValueError> {
        if text.is_empty() {
            return Err(ValueError::Empty);
        }
        if text.len() > MAX_VALUE_BYTES {
            return Err(ValueError::TooLong(text.len()));
        }
        if let Some(c) = text.chars().find(|c| c.is_control() || is_invisible(*c)) {
            return Err(ValueError::ControlCharacter(format!("U+{:04X}", c as u32)));
        }
        if key.as_str() == "version" && !is_version(text) {
            return Err(ValueError::InvalidVersion(text.to_string()));
        }
        Ok(Value(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Invisible formatting characters (bidi overrides, zero-width spaces) that would make a value
/// display differently from what it is.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

fn is_version(text: &str) -> bool {
    text.len() <= MAX_VERSION_BYTES
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> KeyPath {
        KeyPath::parse(k).unwrap()
    }

    #[test]
    fn versions_are_artifact_tags() {
        assert!(Value::parse(&key("version"), "3.5.7").is_ok());
        assert!(Value::parse(&key("version"), "1.0.0-rc.1+build.5").is_ok());
        for bad in ["1.2.1;touch", "$(touch", "-1", "a b", ".1"] {
            assert_eq!(
                Value::parse(&key("version"), bad),
                Err(ValueError::InvalidVersion(bad.into()))
            );
        }
    }

    #[test]
    fn other_keys_take_any_printable_text_up_to_the_cap() {
        assert!(Value::parse(&key("config.GREETING"), "hello; world $(x)").is_ok());
        let long = "x".repeat(MAX_VALUE_BYTES + 1);
        assert_eq!(
            Value::parse(&key("image"), &long),
            Err(ValueError::TooLong(MAX_VALUE_BYTES + 1))
        );
        assert!(matches!(
            Value::parse(&key("image"), "a\u{7}b"),
            Err(ValueError::ControlCharacter(_))
        ));
        assert_eq!(Value::parse(&key("image"), ""), Err(ValueError::Empty));
    }
}
