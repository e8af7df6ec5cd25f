//! Patterns and typed values: parsing a command's `pattern` into its name, literal words and
//! `{param}`s, and matching the words a user typed to the parameters, each value checked to be
//! one plain word before anything runs.

use super::REASON;
use crate::command::COMMANDS;
use crate::domain::Name;

/// Longest typed parameter value: ample for versions, digests and image references.
const MAX_PARAM_BYTES: usize = 256;
/// Longest parameter name, so that `FERRY_PARAM_<NAME>` stays reasonable.
const MAX_PARAM_NAME: usize = 32;
/// Parameters whose values are always environment or service names.
const NAME_PARAMS: &[&str] = &["env", "service"];

/// A word of a pattern after the name.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PatternWord {
    /// Must be typed as written (stored lower-case; compared ignoring case).
    Literal(String),
    /// Matches exactly one typed word.
    Param(String),
}

/// The parameters' values in pattern order, and the words as matched, one space between them.
pub(super) struct Matched {
    pub params: Vec<(String, String)>,
    pub line: String,
}

/// Why the words typed do not fit a command's pattern; shown above its usage line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum MatchError {
    /// `what` is `<param>` or a `literal` in backquotes.
    #[error("missing {0}")]
    Missing(String),
    #[error("expected `{literal}` where `{typed}` is")]
    Expected { literal: String, typed: String },
    #[error("`{typed}` is not a valid <{param}>: {why}")]
    BadValue {
        typed: String,
        param: String,
        why: ValueError,
    },
    #[error("unexpected `{extra}`{}", if *.takes_reason { " (put a reason after `--`)" } else { "" })]
    Unexpected { extra: String, takes_reason: bool },
}

/// Why a typed value cannot fill a parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ValueError {
    #[error("it is empty")]
    Empty,
    #[error("it is longer than {MAX_PARAM_BYTES} bytes")]
    TooLong,
    #[error("a value must not start with `-`, so that it cannot be taken for an option")]
    LooksLikeOption,
    /// The character as shown: in backquotes, or `U+0020` for blanks and control characters.
    #[error("{0} is not allowed; use one word of letters, digits and `. _ - + : / @ = ,`")]
    Character(String),
    #[error("`..` is not allowed, so that a value used in a path cannot climb out of it")]
    DotDot,
    /// Not a valid environment or service name; the name check's own words.
    #[error("{0}")]
    Name(String),
}

/// Why a `pattern` cannot be a command's pattern; reported at its line in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum PatternError {
    #[error("the pattern is empty: start it with the command's name, e.g. `smoke {{env}}`")]
    Empty,
    #[error("the pattern `{0}` starts with a parameter: start it with the command's name")]
    StartsWithParam(String),
    #[error("`{0}` is not a valid command name: use lower-case letters, digits and `-`")]
    BadName(String),
    #[error("`{0}` is a built-in command; a user-defined command needs a name of its own")]
    BuiltIn(String),
    #[error(
        "`{{{0}}}` is not a valid parameter: use lower-case letters, digits and `_`, starting with a letter, at most {MAX_PARAM_NAME} characters"
    )]
    BadParam(String),
    #[error(
        "`{{{REASON}}}` is the text typed after `--`, not a parameter: remove it from the pattern and use it in a step or an argument"
    )]
    Reason,
    #[error("the parameter `{{{0}}}` appears twice in the pattern")]
    Twice(String),
    #[error("`{0}`: a parameter is a whole word, `{{name}}`, and matches one typed word")]
    PartParam(String),
    #[error(
        "`{0}` cannot be a word of a pattern: use letters, digits and `. _ - + : / @ = ,`, not starting with `-`"
    )]
    BadWord(String),
}

/// Matches the words typed after the command's `name` against `words`. `is_name` says which
/// other parameters must be valid names (the permission's environment); `takes_reason` only
/// adds a hint when a word too many was typed.
pub(super) fn match_words<'a>(
    name: &str,
    words: &[PatternWord],
    typed: impl IntoIterator<Item = &'a str>,
    is_name: impl Fn(&str) -> bool,
    takes_reason: bool,
) -> Result<Matched, MatchError> {
    let mut given = typed.into_iter();
    let mut params = Vec::new();
    let mut line = vec![name.to_string()];
    for word in words {
        let Some(g) = given.next() else {
            let what = match word {
                PatternWord::Param(p) => format!("<{p}>"),
                PatternWord::Literal(l) => format!("`{l}`"),
            };
            return Err(MatchError::Missing(what));
        };
        match word {
            PatternWord::Literal(l) if g.to_lowercase() != *l => {
                return Err(MatchError::Expected {
                    literal: l.clone(),
                    typed: g.to_string(),
                });
            }
            PatternWord::Literal(_) => {}
            PatternWord::Param(p) => {
                let must_be_name = NAME_PARAMS.contains(&p.as_str()) || is_name(p);
                check_value(g, must_be_name).map_err(|why| MatchError::BadValue {
                    typed: g.to_string(),
                    param: p.clone(),
                    why,
                })?;
                params.push((p.clone(), g.to_string()));
            }
        }
        line.push(g.to_string());
    }
    if let Some(extra) = given.next() {
        return Err(MatchError::Unexpected {
            extra: extra.to_string(),
            takes_reason,
        });
    }
    Ok(Matched {
        params,
        line: line.join(" "),
    })
}

/// Splits a pattern into its name and the words after it.
pub(super) fn parse_pattern(pattern: &str) -> Result<(String, Vec<PatternWord>), PatternError> {
    let mut parts = pattern.split_whitespace();
    let Some(first) = parts.next() else {
        return Err(PatternError::Empty);
    };
    if first.contains('{') {
        return Err(PatternError::StartsWithParam(pattern.to_string()));
    }
    let name = Name::parse(first).map_err(|_| PatternError::BadName(first.to_string()))?;
    if COMMANDS.iter().any(|c| c.name == name.as_str()) {
        return Err(PatternError::BuiltIn(name.to_string()));
    }
    let mut words = Vec::new();
    for word in parts {
        if let Some(inner) = word.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            check_param_name(inner)?;
            if inner == REASON {
                return Err(PatternError::Reason);
            }
            if words.contains(&PatternWord::Param(inner.to_string())) {
                return Err(PatternError::Twice(inner.to_string()));
            }
            words.push(PatternWord::Param(inner.to_string()));
        } else if word.contains(['{', '}']) {
            return Err(PatternError::PartParam(word.to_string()));
        } else if word.starts_with('-') || !word.chars().all(value_char) {
            return Err(PatternError::BadWord(word.to_string()));
        } else {
            words.push(PatternWord::Literal(word.to_lowercase()));
        }
    }
    Ok((name.to_string(), words))
}

fn check_param_name(name: &str) -> Result<(), PatternError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_PARAM_NAME;
    if ok {
        Ok(())
    } else {
        Err(PatternError::BadParam(name.to_string()))
    }
}

/// Whether `c` may appear in a typed value or a pattern literal: nothing a shell, the command
/// lexer or a key path would read specially.
fn value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ".-_+:/@=,".contains(c)
}

/// Why `value` cannot fill a parameter, if it cannot.
fn check_value(value: &str, is_name: bool) -> Result<(), ValueError> {
    if value.is_empty() {
        return Err(ValueError::Empty);
    }
    if value.len() > MAX_PARAM_BYTES {
        return Err(ValueError::TooLong);
    }
    if value.starts_with('-') {
        return Err(ValueError::LooksLikeOption);
    }
    if let Some(c) = value.chars().find(|&c| !value_char(c)) {
        let shown = if c.is_whitespace() || c.is_control() {
            format!("U+{:04X}", c as u32)
        } else {
            format!("`{c}`")
        };
        return Err(ValueError::Character(shown));
    }
    if value.contains("..") {
        return Err(ValueError::DotDot);
    }
    if is_name {
        Name::parse(value).map_err(|e| ValueError::Name(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_single_plain_words() {
        for ok in ["3.5.7", "1.0.0-rc.1+build.5", "reg/x:1@sha256:ab", "a=b,c"] {
            assert!(check_value(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "", "$(x)", "a\"b", "--flag", "-x", "a b", "`x`", "a;b", "é", "a/../b",
        ] {
            assert!(check_value(bad, false).is_err(), "{bad}");
        }
        assert!(check_value("Staging", true).is_err());
    }

    /// The messages users see above the usage line, word for word.
    #[test]
    fn match_errors_read_as_before() {
        let (name, words) = parse_pattern("smoke {env} now").unwrap();
        let err = |typed: &str, reason| {
            match_words(&name, &words, typed.split_whitespace(), |_| false, reason)
                .err()
                .unwrap()
                .to_string()
        };
        assert_eq!(err("", false), "missing <env>");
        assert_eq!(err("staging", false), "missing `now`");
        assert_eq!(
            err("staging later", false),
            "expected `now` where `later` is"
        );
        assert_eq!(
            err("staging now x", true),
            "unexpected `x` (put a reason after `--`)"
        );
        assert_eq!(err("staging now x", false), "unexpected `x`");
        assert_eq!(
            err("-x now", false),
            "`-x` is not a valid <env>: a value must not start with `-`, so that it cannot be taken for an option"
        );
        assert_eq!(
            parse_pattern("smoke {a b}").unwrap_err().to_string(),
            "`{a`: a parameter is a whole word, `{name}`, and matches one typed word"
        );
        assert_eq!(
            parse_pattern("smoke {reason}").unwrap_err().to_string(),
            "`{reason}` is the text typed after `--`, not a parameter: remove it from the pattern and use it in a step or an argument"
        );
    }
}
