//! User-defined commands: `commands/*.toml`, one command per file, declared without Rust, like
//! hubot scripts or StackStorm aliases. This file is the registry: `CustomCommands` loads the
//! folder and finds the command a typed line names. The file format and its checks are in
//! `definition.rs`, patterns and typed values in `pattern.rs`, a matched line in
//! `invocation.rs`, and running it in `steps.rs` (built-in commands) and `program.rs` (a
//! program).

mod definition;
mod invocation;
mod pattern;
mod program;
mod steps;

pub use invocation::Invocation;

use super::error::ParseError;
use super::lexer;
use crate::domain::ConfigError;
use definition::Definition;
use std::path::Path;
use std::sync::Arc;

/// The placeholder for the reason typed after `--`; not available as a parameter name.
const REASON: &str = "reason";

/// The user-defined commands of one folder. Cheap to clone: the definitions are shared.
#[derive(Debug, Clone, Default)]
pub struct CustomCommands {
    commands: Arc<Vec<Definition>>,
}

impl CustomCommands {
    /// Loads every `*.toml` of `dir`, in file-name order. A missing folder is an empty set, so
    /// that configurations without user-defined commands need nothing; a bad file is an error
    /// naming the file and line.
    /// The user-defined commands `config` names (none for the built-in demo).
    pub fn for_config(config: &crate::config::Config) -> Result<CustomCommands, ConfigError> {
        match &config.commands_dir {
            Some(dir) => CustomCommands::load(dir),
            None => Ok(CustomCommands::empty()),
        }
    }

    pub fn load(dir: &Path) -> Result<CustomCommands, ConfigError> {
        let folder = dir.display().to_string();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CustomCommands::empty());
            }
            Err(e) => {
                return Err(ConfigError::new(
                    &folder,
                    None,
                    format!("cannot read the commands folder: {e}"),
                ));
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| {
                ConfigError::new(
                    &folder,
                    None,
                    format!("cannot read the commands folder: {e}"),
                )
            })?;
            let path = entry.path();
            let visible = !entry.file_name().to_string_lossy().starts_with('.');
            if visible && path.extension().is_some_and(|x| x == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let base = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut commands: Vec<Definition> = Vec::new();
        for path in files {
            let label = path.display().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::new(&label, None, format!("cannot read it: {e}")))?;
            let (definition, name_at) = Definition::parse(&label, &text, &base)?;
            if let Some(other) = commands.iter().find(|c| c.name == definition.name) {
                return Err(ConfigError::at(
                    &label,
                    &text,
                    name_at,
                    format!(
                        "the command `{}` is already defined in {}; give this one another name",
                        definition.name, other.file
                    ),
                ));
            }
            commands.push(definition);
        }
        Ok(CustomCommands {
            commands: Arc::new(commands),
        })
    }

    /// No user-defined commands.
    pub fn empty() -> CustomCommands {
        CustomCommands::default()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// The commands' names, in file order: for "did you mean" suggestions and summaries.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.commands.iter().map(|c| c.name.as_str())
    }

    /// `None` when the first word is not a user-defined command; `Some(Err)` when it is but the
    /// words don't fit (the error shows the pattern as usage).
    pub fn parse(&self, text: &str) -> Option<Result<Invocation, ParseError>> {
        let line = lexer::lex(text);
        let first = match &line {
            Ok(line) => line.words.first()?.text.to_lowercase(),
            Err(_) => text.split_whitespace().next()?.to_lowercase(),
        };
        let definition = self.find(&first)?;
        Some(line.and_then(|line| definition.invoke(line)))
    }

    /// (usage, summary) rows for `help`.
    pub fn help_rows(&self) -> Vec<(String, String)> {
        self.commands
            .iter()
            .map(|c| (c.usage(), c.summary().to_string()))
            .collect()
    }

    /// Long help for `help <name>`: usage, the whole help text, the permission, what it runs and
    /// where it is defined, one item a line.
    pub fn help_for(&self, name: &str) -> Option<String> {
        self.find(&name.to_lowercase()).map(Definition::long_help)
    }

    fn find(&self, name: &str) -> Option<&Definition> {
        self.commands.iter().find(|c| c.name == name)
    }
}
