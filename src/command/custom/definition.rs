//! The file format of a user-defined command and its checks: one `commands/*.toml` file read
//! with `deny_unknown_fields` into a validated `Definition`, every error naming the file and
//! the line of the offending value. Every file is validated when ferry starts (and by
//! `check-config`).
//!
//! ```toml
//! # commands/ship.toml
//! pattern = "ship {service} {version} to {env}"
//! help = """
//! Set a service's version in an environment and deploy it.
//! (Further lines are shown by `help ship`.)"""
//! permission = "write:{env}"
//! steps = [
//!   "env {env}.{service}.version {version} -- {reason}",
//!   "converge {env}",
//! ]
//! ```
//!
//! ```toml
//! # commands/smoke.toml
//! pattern = "smoke {env}"
//! help = "Smoke-test an environment."
//! permission = "read"
//! program = "scripts/smoke.sh"    # relative to the commands folder, or absolute
//! args = ["{env}"]                # each template is exactly one argument
//! timeout = "2m"                  # default 60s
//! ```
//!
//! Keys (any other key is an error naming the nearest valid one):
//!
//! - `pattern`: the command's words. The first is the command's name: a literal, written like
//!   an environment name (`[a-z0-9][a-z0-9-]*`), and not the name of a built-in command or of
//!   another file's command. Every other word is either a literal that must be typed as written
//!   (case does not matter) or a `{param}` (`[a-z][a-z0-9_]*`) that matches exactly one word.
//! - `help`: the first line is the summary `help` lists; `help <name>` shows all of it.
//! - `permission`: what the user must hold before anything runs: `read`, or a verb (`write`,
//!   `converge`, `promote`, `rollback`, `approve`, `force`) with an environment, literal or a
//!   parameter: `write:staging`, `converge:{env}`.
//! - Either `steps`: built-in commands run in order as the same user, each checking its own
//!   permissions too (so a user-defined command never grants more than its steps would), stopping
//!   at the first that fails or is refused;
//! - or `program`, `args`, `timeout`: a program run directly (never through a shell) in the
//!   commands folder, with `args` as its argv, `FERRY_PARAM_<NAME>` for every parameter,
//!   `FERRY_COMMAND`, `FERRY_ACTOR` (`shell:alice`), `FERRY_REASON` and `FERRY_CONFIG_DIR` (the
//!   folder of `ferry.toml`) in its environment, killed with everything it started at the
//!   timeout. Exit status 0 is success; the reply shows the tail of its output. Its
//!   environment is cleared but for PATH, HOME, LANG, LC_ALL, TZ, TMPDIR, USER, the variables
//!   above and those `pass_env = ["AWS_PROFILE"]` names.
//!
//! Templates (steps and args) use `{param}` for a pattern parameter, `{reason}` for the text
//! typed after `--` (or, when none was typed, the command line itself, so that revisions made by
//! a step say which command made them), and `{{` / `}}` for literal braces: the template
//! language of deployers and preflight checks (`domain::Template`). In a step, `{reason}`
//! may only appear after a standalone `--`, where it is free text and cannot become arguments. A
//! user may type a reason only for commands that use `{reason}`.
//!
//! Typed values are checked before anything runs: one word of letters, digits and
//! `. _ - + : / @ = ,` (no spaces, quotes or shell characters; not starting with `-`, so that it
//! cannot be taken for an option; no `..`), at most 256 bytes. Parameters named `env` or
//! `service`, and those used as the permission's environment, must be valid names
//! (`[a-z0-9][a-z0-9-]*`), and an `{env}` must be a configured environment.

use super::REASON;
use super::pattern::{PatternWord, parse_pattern};
use super::program::DEFAULT_TIMEOUT;
use crate::command::{COMMANDS, lexer};
use crate::domain::{ConfigError, HumanDuration};
use crate::domain::{Name, Template, TemplateError, nearest, render_duration};
use crate::policy::Verb;
use crate::process::check_env_name;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Stands in for `{reason}` when checking where a step puts it; a private-use character, so
/// that it never occurs in a step's own text and the lexer accepts it.
const REASON_MARK: &str = "\u{E000}";

/// One file, validated.
#[derive(Debug)]
pub(super) struct Definition {
    pub(super) name: String,
    /// The pattern's words after the name.
    pub(super) words: Vec<PatternWord>,
    pub(super) help: String,
    pub(super) permission: PermissionTemplate,
    pub(super) action: Action,
    /// Whether a template uses `{reason}` (only then may the user type one).
    pub(super) uses_reason: bool,
    /// The file it came from, for `help` and duplicate errors.
    pub(super) file: String,
}

/// The required permission, its environment possibly a parameter filled in when invoked.
#[derive(Debug)]
pub(super) struct PermissionTemplate {
    pub(super) verb: Verb,
    pub(super) env: Option<EnvRef>,
}

/// `write:staging` or `write:{env}`.
#[derive(Debug)]
pub(super) enum EnvRef {
    Literal(Name),
    Param(String),
}

/// What a definition runs, before the values are known.
#[derive(Debug)]
pub(super) enum Action {
    Steps(Vec<Template>),
    Program {
        path: PathBuf,
        shown: String,
        args: Vec<Template>,
        pass_env: Vec<String>,
        cwd: PathBuf,
        timeout: Duration,
    },
}

/// The file as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    pattern: Spanned<String>,
    help: Spanned<String>,
    permission: Spanned<String>,
    steps: Option<Spanned<Vec<Spanned<String>>>>,
    program: Option<Spanned<String>>,
    args: Option<Spanned<Vec<Spanned<String>>>>,
    timeout: Option<Spanned<HumanDuration>>,
    pass_env: Option<Spanned<Vec<Spanned<String>>>>,
}

impl Definition {
    /// Parses and validates one file; also returns the byte offset of the pattern, where a
    /// clash with another file's command name is reported.
    pub(super) fn parse(
        label: &str,
        text: &str,
        dir: &Path,
    ) -> Result<(Definition, usize), ConfigError> {
        let raw: RawCommand =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(label, text, &e))?;
        let at = |at: usize, message: String| ConfigError::at(label, text, at, message);
        let pattern_at = raw.pattern.span().start;
        let (name, words) =
            parse_pattern(raw.pattern.get_ref()).map_err(|e| at(pattern_at, e.to_string()))?;
        let params: Vec<&str> = words
            .iter()
            .filter_map(|w| match w {
                PatternWord::Param(p) => Some(p.as_str()),
                PatternWord::Literal(_) => None,
            })
            .collect();

        let help = raw.help.get_ref().trim().to_string();
        if help.is_empty() {
            return Err(at(
                raw.help.span().start,
                "`help` is empty: say in one line what the command does".into(),
            ));
        }
        let permission = parse_permission(raw.permission.get_ref(), &params)
            .map_err(|e| at(raw.permission.span().start, e.to_string()))?;

        let action = match (raw.steps, raw.program) {
            (Some(_), Some(program)) => {
                return Err(at(
                    program.span().start,
                    "give either `steps` (built-in commands to run in order) or `program` (a program to run), not both".into(),
                ));
            }
            (None, None) => {
                return Err(at(
                    pattern_at,
                    "nothing to run: add `steps` (built-in commands to run in order) or `program` (a program to run)".into(),
                ));
            }
            (Some(steps), None) => {
                for (key, span) in [
                    ("args", raw.args.as_ref().map(|a| a.span())),
                    ("timeout", raw.timeout.as_ref().map(|t| t.span())),
                    ("pass_env", raw.pass_env.as_ref().map(|p| p.span())),
                ] {
                    if let Some(span) = span {
                        return Err(at(
                            span.start,
                            format!("`{key}` only applies to a `program`, not to `steps`"),
                        ));
                    }
                }
                let steps_at = steps.span().start;
                let steps = steps.into_inner();
                if steps.is_empty() {
                    return Err(at(
                        steps_at,
                        "`steps` is empty: list at least one built-in command".into(),
                    ));
                }
                let mut templates = Vec::new();
                for step in steps {
                    let step_at = step.span().start;
                    let template = parse_step(step.get_ref(), &params)
                        .map_err(|e| at(step_at, e.to_string()))?;
                    templates.push(template);
                }
                Action::Steps(templates)
            }
            (None, Some(program)) => {
                let program_at = program.span().start;
                let shown = program.into_inner();
                let path = check_program(&shown, dir).map_err(|e| at(program_at, e.to_string()))?;
                let mut args = Vec::new();
                for arg in raw.args.map(Spanned::into_inner).unwrap_or_default() {
                    let arg_at = arg.span().start;
                    let template = parse_template(arg.get_ref(), &params)
                        .map_err(|m| at(arg_at, format!("argument `{}`: {m}", arg.get_ref())))?;
                    args.push(template);
                }
                let mut pass_env = Vec::new();
                for name in raw.pass_env.map(Spanned::into_inner).unwrap_or_default() {
                    check_env_name(name.get_ref())
                        .map_err(|m| at(name.span().start, format!("pass_env: {m}")))?;
                    pass_env.push(name.into_inner());
                }
                Action::Program {
                    path,
                    shown,
                    args,
                    pass_env,
                    cwd: dir.to_path_buf(),
                    timeout: raw.timeout.map_or(DEFAULT_TIMEOUT, |t| t.into_inner().0),
                }
            }
        };

        if let Action::Steps(steps) = &action {
            // A parameter no step or permission uses is almost certainly a typo in a step.
            for param in &params {
                let in_permission = matches!(&permission.env, Some(EnvRef::Param(p)) if p == param);
                if !in_permission && !steps.iter().any(|s| s.uses(param)) {
                    return Err(at(
                        pattern_at,
                        format!(
                            "parameter `{{{param}}}` is not used by any step or the permission"
                        ),
                    ));
                }
            }
        }
        let uses_reason = match &action {
            Action::Steps(templates)
            | Action::Program {
                args: templates, ..
            } => templates.iter().any(|t| t.uses(REASON)),
        };
        let definition = Definition {
            name,
            words,
            help,
            permission,
            action,
            uses_reason,
            file: label.to_string(),
        };
        Ok((definition, pattern_at))
    }

    /// `ship <service> <version> to <env> [-- reason]`, in the style of the built-ins' usage.
    pub(super) fn usage(&self) -> String {
        let mut usage = self.name.clone();
        for word in &self.words {
            match word {
                PatternWord::Literal(l) => write!(usage, " {l}"),
                PatternWord::Param(p) => write!(usage, " <{p}>"),
            }
            .expect("writing to a String cannot fail");
        }
        if self.uses_reason {
            usage.push_str(" [-- reason]");
        }
        usage
    }

    pub(super) fn summary(&self) -> &str {
        self.help.lines().next().unwrap_or_default().trim()
    }

    pub(super) fn long_help(&self) -> String {
        let mut out = format!("{}\n{}\n", self.usage(), self.help);
        let permission = match &self.permission.env {
            None => self.permission.verb.as_str().to_string(),
            Some(EnvRef::Literal(env)) => format!("{}:{env}", self.permission.verb.as_str()),
            Some(EnvRef::Param(p)) => format!("{}:<{p}>", self.permission.verb.as_str()),
        };
        let _ = writeln!(out, "Needs the `{permission}` permission.");
        match &self.action {
            Action::Steps(steps) => {
                let _ = writeln!(
                    out,
                    "Runs these built-in commands in order, as you, stopping at the first that fails:"
                );
                for (i, step) in steps.iter().enumerate() {
                    let _ = writeln!(out, "  {}. {}", i + 1, as_usage(step));
                }
            }
            Action::Program {
                shown,
                args,
                timeout,
                ..
            } => {
                let argv: Vec<String> = args.iter().map(as_usage).collect();
                let _ = writeln!(
                    out,
                    "Runs `{shown}{}{}` (no shell; stopped after {}).",
                    if argv.is_empty() { "" } else { " " },
                    argv.join(" "),
                    render_duration(*timeout)
                );
            }
        }
        let _ = write!(out, "Defined in {}.", self.file);
        out
    }
}

/// Why a part of a definition (its permission, a step, the program, an argument) is wrong;
/// reported at that part's line in the file, so each says what to write instead.
#[derive(Debug, thiserror::Error)]
enum DefinitionError {
    /// `why` is the one thing wrong with the permission `text`.
    #[error(
        "`{text}` is not a permission a command can require: {why} (e.g. `read`, `write:staging`, `converge:{{env}}`)"
    )]
    Permission { text: String, why: String },
    /// `hint` suggests the nearest parameter or lists the declared ones.
    #[error("`{{{param}}}` is not a parameter of the pattern: {hint}")]
    Undeclared { param: String, hint: String },
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// What is wrong with the step `text`.
    #[error("step `{text}`: {source}")]
    Step {
        text: String,
        source: Box<DefinitionError>,
    },
    #[error("step `{0}` starts with a parameter: a step starts with a built-in command")]
    StepStartsWithParam(String),
    /// `hint` is `: did you mean …?` or ` (see `help`)`.
    #[error("`{first}` is not a built-in command{hint}")]
    NotBuiltIn { first: String, hint: String },
    /// The lexer's or the command parser's own words, with the usage line when it has one.
    #[error("{0}")]
    Unparsable(String),
    #[error("`{{{REASON}}}` must come after a standalone `--`, where it is free text")]
    ReasonPlacement,
    #[error("`program` is empty")]
    ProgramEmpty,
    #[error("program `{program}` ({}): {source}", .path.display())]
    ProgramUnreadable {
        program: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("program `{program}` ({}) is not a file", .path.display())]
    NotAFile { program: String, path: PathBuf },
    #[error("program `{program}` ({}) is not executable: `chmod +x` it", .path.display())]
    NotExecutable { program: String, path: PathBuf },
}

impl DefinitionError {
    /// `error` as found in the step `text`.
    fn in_step(text: &str, error: DefinitionError) -> DefinitionError {
        DefinitionError::Step {
            text: text.to_string(),
            source: Box::new(error),
        }
    }
}

/// `read`, `write:staging` or `converge:{env}`.
fn parse_permission(text: &str, params: &[&str]) -> Result<PermissionTemplate, DefinitionError> {
    let verbs: Vec<&str> = Verb::ALL.iter().map(|v| v.as_str()).collect();
    let bad = |why: String| DefinitionError::Permission {
        text: text.to_string(),
        why,
    };
    let (verb_text, env_text) = match text.split_once(':') {
        Some((v, e)) => (v, Some(e)),
        None => (text, None),
    };
    let verb = Verb::ALL
        .into_iter()
        .find(|v| v.as_str() == verb_text)
        .ok_or_else(|| {
            let hint = nearest(verb_text, verbs.iter().copied())
                .map(|n| format!("did you mean `{n}`? "))
                .unwrap_or_default();
            bad(format!("{hint}the verbs are {}", verbs.join(", ")))
        })?;
    let env = match env_text {
        None => None,
        Some("*") | Some("") => {
            return Err(bad(
                "name one environment, literally or as a parameter, not a pattern".into(),
            ));
        }
        Some(e) => match e.strip_prefix('{').and_then(|e| e.strip_suffix('}')) {
            Some(param) if params.contains(&param) => Some(EnvRef::Param(param.to_string())),
            Some(param) => return Err(undeclared(param, params)),
            None => Some(EnvRef::Literal(
                Name::parse(e).map_err(|e| bad(e.to_string()))?,
            )),
        },
    };
    Ok(PermissionTemplate { verb, env })
}

/// Parses a step and checks what can be checked before any value is known: its parameters, that
/// it starts with a built-in command, that it lexes, and where `{reason}` lands.
fn parse_step(text: &str, params: &[&str]) -> Result<Template, DefinitionError> {
    let in_step = |e| DefinitionError::in_step(text, e);
    let template = parse_template(text, params).map_err(in_step)?;
    let first = text.split_whitespace().next().unwrap_or_default();
    if first.contains('{') {
        return Err(DefinitionError::StepStartsWithParam(text.to_string()));
    }
    if !COMMANDS.iter().any(|c| c.name == first) {
        let hint = nearest(first, COMMANDS.iter().map(|c| c.name))
            .map(|n| format!(": did you mean `{n}`?"))
            .unwrap_or_else(|| " (see `help`)".into());
        return Err(in_step(DefinitionError::NotBuiltIn {
            first: first.to_string(),
            hint,
        }));
    }
    // Sample values are plain words like the ones users may type; the reason gets a marker so
    // that we can see where the lexer puts it.
    let sample = template.render(|name| {
        if name == REASON {
            REASON_MARK.to_string()
        } else {
            "x".to_string()
        }
    });
    let line = lexer::lex(&sample).map_err(|e| in_step(DefinitionError::Unparsable(e.message)))?;
    if line.words.iter().any(|w| w.text.contains(REASON_MARK)) {
        return Err(in_step(DefinitionError::ReasonPlacement));
    }
    if template.is_literal() {
        crate::command::parse(text).map_err(|e| {
            let usage = e
                .try_instead
                .map(|u| format!(" (usage: {u})"))
                .unwrap_or_default();
            in_step(DefinitionError::Unparsable(format!("{}{usage}", e.message)))
        })?;
    }
    Ok(template)
}

/// Resolves `program` against the commands folder and checks it can be run.
fn check_program(program: &str, dir: &Path) -> Result<PathBuf, DefinitionError> {
    if program.trim().is_empty() {
        return Err(DefinitionError::ProgramEmpty);
    }
    let path = dir.join(program);
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(source) => {
            return Err(DefinitionError::ProgramUnreadable {
                program: program.to_string(),
                path,
                source,
            });
        }
    };
    if !meta.is_file() {
        return Err(DefinitionError::NotAFile {
            program: program.to_string(),
            path,
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(DefinitionError::NotExecutable {
                program: program.to_string(),
                path,
            });
        }
    }
    Ok(path)
}

fn undeclared(param: &str, params: &[&str]) -> DefinitionError {
    let hint = match nearest(param, params.iter().copied()) {
        Some(best) => format!("did you mean `{{{best}}}`?"),
        None if params.is_empty() => "the pattern declares none".to_string(),
        None => format!(
            "the pattern declares {}",
            params
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    DefinitionError::Undeclared {
        param: param.to_string(),
        hint,
    }
}

/// Parses a step or an argument, whose placeholders must be the pattern's parameters or
/// `{reason}`.
fn parse_template(text: &str, params: &[&str]) -> Result<Template, DefinitionError> {
    let template = Template::parse(text)?;
    if let Some(unknown) = template
        .placeholders()
        .find(|p| *p != REASON && !params.contains(p))
    {
        return Err(undeclared(unknown, params));
    }
    Ok(template)
}

/// The template in the style of usage lines: `converge <env>`.
fn as_usage(template: &Template) -> String {
    template.render(|name| format!("<{name}>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_params_once_and_keep_escaped_braces() {
        let t = parse_template("a {x}-{{y}}", &["x"]).unwrap();
        assert_eq!(t.render(|_| "{x}".to_string()), "a {x}-{y}");
        assert!(
            parse_template("{nope}", &["x"])
                .unwrap_err()
                .to_string()
                .contains("not a parameter")
        );
        assert!(parse_template("{x", &["x"]).is_err());
        assert!(parse_template("x}", &["x"]).is_err());
    }

    #[test]
    fn the_reason_must_land_after_a_standalone_double_dash() {
        assert!(parse_step("env {e}.a.version 1 -- {reason}", &["e"]).is_ok());
        assert!(parse_step("env {e}.a.version {reason}", &["e"]).is_err());
        assert!(parse_step("env {e}.a.greeting \"x -- {reason}\"", &["e"]).is_err());
    }

    #[test]
    fn literal_steps_are_parsed_when_loaded() {
        assert!(parse_step("converge staging", &[]).is_ok());
        assert!(parse_step("converge staging --forse", &[]).is_err());
        let e = parse_step("conver {e}", &["e"]).unwrap_err().to_string();
        assert!(e.contains("did you mean `converge`"), "{e}");
    }
}
