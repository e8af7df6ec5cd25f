//! Splitting a command line into words: whitespace-separated, `"double"` or `'single'` quotes
//! (or the typographic quotes keyboards substitute: “…”, ‘…’, „…“, «…») for values with spaces,
//! and `--` before a free-text reason. Control characters and oversize
//! lines are rejected here, before any command sees them.

use super::error::ParseError;
use crate::domain::MAX_VALUE_BYTES;

/// Longest command line accepted: a maximal value plus room for the rest.
pub const MAX_LINE_BYTES: usize = MAX_VALUE_BYTES + 1024;

/// One word; quoted words are never taken for options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub quoted: bool,
}

/// The words of a line and the reason after a standalone `--`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub words: Vec<Word>,
    pub reason: Option<String>,
}

/// Characters that must not appear in commands: control characters, and the invisible
/// formatting ones (bidi overrides, zero-width spaces, byte-order marks) that could make a
/// reply or an audit entry read differently from what it says.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Splits `text` into words.
pub fn lex(text: &str) -> Result<Line, ParseError> {
    if text.len() > MAX_LINE_BYTES {
        return Err(ParseError::with_usage(
            format!(
                "the command is {} bytes long; the limit is {MAX_LINE_BYTES}",
                text.len()
            ),
            "a shorter command (values are limited to 4096 bytes; `help` lists commands)",
        ));
    }
    if let Some(c) = text.chars().find(|c| is_hidden(*c)) {
        let visible: String = text.chars().filter(|c| !is_hidden(*c)).collect();
        let visible = visible.split_whitespace().collect::<Vec<_>>().join(" ");
        return Err(ParseError::with_usage(
            format!(
                "the command contains an invisible or control character (U+{:04X}); type it again without it",
                c as u32
            ),
            if visible.is_empty() {
                "help".to_string()
            } else {
                visible
            },
        ));
    }
    let mut words = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if let Some(closers) = closing_quotes(c) {
            chars.next();
            let mut word = String::new();
            let mut closed = false;
            for (_, d) in chars.by_ref() {
                if closers.contains(&d) {
                    closed = true;
                    break;
                }
                word.push(d);
            }
            if !closed {
                return Err(ParseError::with_usage(
                    format!("a quote ({c}) is not closed"),
                    format!("{text}{}", closers[0]),
                ));
            }
            words.push(Word {
                text: word,
                quoted: true,
            });
            continue;
        }
        let mut end = start;
        while let Some(&(i, d)) = chars.peek() {
            if d.is_whitespace() {
                break;
            }
            end = i + d.len_utf8();
            chars.next();
        }
        let word = &text[start..end];
        if word == "--" {
            let reason = text[end..].trim();
            return Ok(Line {
                words,
                reason: (!reason.is_empty()).then(|| reason.to_string()),
            });
        }
        words.push(Word {
            text: word.to_string(),
            quoted: false,
        });
    }
    Ok(Line {
        words,
        reason: None,
    })
}

/// The characters that close a quote opened by `open`, the usual one first; `None` when `open`
/// starts no quote. Besides `"` and `'`, the typographic quotes that desktop and phone
/// keyboards substitute (“…”, ‘…’, „…“, «…», »…«) are quotes too, so a value typed with them
/// reads the same as with straight ones. A quote only opens at the start of a word, so an
/// apostrophe inside one (don’t) stays text.
fn closing_quotes(open: char) -> Option<&'static [char]> {
    Some(match open {
        '"' => &['"'],
        '\'' => &['\''],
        '\u{201C}' => &['\u{201D}', '\u{201C}', '"'],
        '\u{201D}' => &['\u{201D}'],
        '\u{2018}' => &['\u{2019}', '\u{2018}', '\''],
        '\u{201E}' => &['\u{201C}', '\u{201D}'],
        '\u{201A}' => &['\u{2018}', '\u{2019}'],
        '\u{00AB}' => &['\u{00BB}'],
        '\u{00BB}' => &['\u{00AB}'],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &Line) -> Vec<&str> {
        line.words.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn splits_on_whitespace_and_keeps_quoted_values_whole() {
        let line = lex(r#"env  staging.x.greeting "hello world" "#).unwrap();
        assert_eq!(texts(&line), ["env", "staging.x.greeting", "hello world"]);
        assert!(line.words[2].quoted);
        assert_eq!(texts(&lex("a 'b c' d").unwrap()), ["a", "b c", "d"]);
    }

    #[test]
    fn typographic_quotes_are_quotes() {
        for text in [
            "env a.b.c \u{201C}hello world\u{201D}",
            "env a.b.c \u{2018}hello world\u{2019}",
            "env a.b.c \u{201E}hello world\u{201C}",
            "env a.b.c \u{00AB}hello world\u{00BB}",
            "env a.b.c \u{201D}hello world\u{201D}",
        ] {
            let line = lex(text).unwrap();
            assert_eq!(texts(&line), ["env", "a.b.c", "hello world"], "{text}");
            assert!(line.words[2].quoted);
        }
        assert_eq!(
            texts(&lex("don\u{2019}t stop").unwrap()),
            ["don\u{2019}t", "stop"]
        );
        let err = lex("env a.b.c \u{201C}open").unwrap_err();
        assert_eq!(
            err.try_instead.as_deref(),
            Some("env a.b.c \u{201C}open\u{201D}")
        );
    }

    #[test]
    fn a_double_dash_starts_the_reason() {
        let line = lex("env staging.x.version 1.2 -- hotfix for -- INC-42").unwrap();
        assert_eq!(texts(&line), ["env", "staging.x.version", "1.2"]);
        assert_eq!(line.reason.as_deref(), Some("hotfix for -- INC-42"));
        assert_eq!(lex("envs --").unwrap().reason, None);
    }

    #[test]
    fn rejects_control_characters_unclosed_quotes_and_huge_lines() {
        assert!(lex("env a\u{1b}[31m").is_err());
        assert!(lex("env a\tb").is_err());
        assert!(lex("env \"abc").is_err());
        let hidden = lex("env staging.x.y \u{202E}evil").unwrap_err();
        assert_eq!(hidden.try_instead.as_deref(), Some("env staging.x.y evil"));
        assert!(lex("a\u{200B}b").is_err());
        assert!(lex(&"x".repeat(MAX_LINE_BYTES + 1)).is_err());
    }
}
