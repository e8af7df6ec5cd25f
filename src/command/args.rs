//! A command's arguments while it parses them: options first (`--limit 5`, `--force`), then
//! positional words, then a check that nothing unexpected is left over.

use super::error::ParseError;
use super::lexer::Word;

/// The words after the command name.
#[derive(Debug, Clone)]
pub struct Args {
    words: Vec<Word>,
    /// The free text after a standalone `--`.
    pub reason: Option<String>,
    /// The command's usage line, for error messages.
    usage: &'static str,
}

impl Args {
    pub fn new(words: Vec<Word>, reason: Option<String>, usage: &'static str) -> Args {
        Args {
            words,
            reason,
            usage,
        }
    }

    /// The command's usage line.
    pub fn usage(&self) -> &'static str {
        self.usage
    }

    /// An error that shows this command's usage.
    pub fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError::with_usage(message, self.usage)
    }

    /// Removes `--name` if present.
    pub fn flag(&mut self, name: &str) -> bool {
        match self.words.iter().position(|w| !w.quoted && w.text == name) {
            Some(i) => {
                self.words.remove(i);
                true
            }
            None => false,
        }
    }

    /// Removes `--name VALUE` (or `--name=VALUE`) and returns the value.
    pub fn option(&mut self, name: &str) -> Result<Option<String>, ParseError> {
        let prefix = format!("{name}=");
        if let Some(i) = self
            .words
            .iter()
            .position(|w| !w.quoted && w.text.starts_with(&prefix))
        {
            let word = self.words.remove(i);
            return Ok(Some(word.text[prefix.len()..].to_string()));
        }
        let Some(i) = self.words.iter().position(|w| !w.quoted && w.text == name) else {
            return Ok(None);
        };
        if i + 1 >= self.words.len() {
            return Err(self.error(format!("`{name}` needs a value")));
        }
        self.words.remove(i);
        Ok(Some(self.words.remove(i).text))
    }

    /// `--limit N` with bounds; `default` when absent.
    pub fn limit(&mut self, default: u32, max: u32) -> Result<u32, ParseError> {
        match self.option("--limit")? {
            None => Ok(default),
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(self.error(format!("`--limit {text}` must be a number from 1 to {max}"))),
            },
        }
    }

    /// The next positional word, if any.
    pub fn next(&mut self) -> Option<String> {
        self.reject_unknown_option().ok()?;
        (!self.words.is_empty()).then(|| self.words.remove(0).text)
    }

    /// The next positional word, or an error saying what was missing.
    pub fn required(&mut self, what: &str) -> Result<String, ParseError> {
        self.reject_unknown_option()?;
        self.next()
            .ok_or_else(|| self.error(format!("missing {what}")))
    }

    /// Every remaining positional word.
    pub fn rest(&mut self) -> Result<Vec<String>, ParseError> {
        self.reject_unknown_option()?;
        Ok(self.words.drain(..).map(|w| w.text).collect())
    }

    /// Checks that every word was used.
    pub fn finish(mut self) -> Result<Option<String>, ParseError> {
        self.reject_unknown_option()?;
        match self.words.first() {
            None => Ok(self.reason),
            Some(word) => Err(self.error(format!(
                "unexpected `{}` (quote values that contain spaces; put a reason after `--`)",
                word.text
            ))),
        }
    }

    fn reject_unknown_option(&mut self) -> Result<(), ParseError> {
        match self
            .words
            .iter()
            .find(|w| !w.quoted && w.text.starts_with("--"))
        {
            Some(word) => Err(self.error(format!("`{}` is not an option here", word.text))),
            None => Ok(()),
        }
    }
}
