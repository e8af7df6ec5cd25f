//! The one template language of ferry: text with `{name}` placeholders, used for deployer
//! arguments and URLs, preflight checks' arguments and user-defined commands' steps and
//! arguments. `{{` and `}}` are literal braces. Which names exist is the caller's business:
//! this parses, lists the placeholders, renders them from a lookup, and applies the rule every
//! program argument obeys: a value that would start an argument with `-` is refused (the program
//! would read it as an option), unless literal text comes before the placeholder.

/// A parsed template: literal text and placeholders, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Placeholder(String),
}

/// Why a template's braces do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("a `}}` without its `{{` (write `}}}}` for a literal brace)")]
    Unopened,
    #[error("a `{{` is not closed (write `{{{{` for a literal brace)")]
    Unclosed,
}

/// A placeholder whose value would start a program's argument with `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LooksLikeOption {
    /// The placeholder's name, without braces.
    pub placeholder: String,
    pub value: String,
}

/// Why a program's argument could not be rendered: the lookup failed, or a value would be
/// read as an option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError<E> {
    Lookup(E),
    LooksLikeOption(LooksLikeOption),
}

/// Why a value cannot start an argument, in the words every caller uses: `what` names the value
/// (`staging.web.image`, `{reason}`), `fix` says what to change instead.
pub fn refuse_option(what: &str, value: &str, fix: &str) -> String {
    format!(
        "value of {what} (`{value}`) starts with '-', which the program would read as an option, so nothing was run; {fix}"
    )
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(TemplateError::Unopened),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(TemplateError::Unclosed),
                        }
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Placeholder(name));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template(parts))
    }

    /// The placeholders' names in order, for the caller to check against the names it knows.
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Placeholder(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Whether `{name}` appears.
    pub fn uses(&self, name: &str) -> bool {
        self.placeholders().any(|p| p == name)
    }

    /// Whether there is no placeholder at all.
    pub fn is_literal(&self) -> bool {
        self.placeholders().next().is_none()
    }

    /// The text with each placeholder replaced by `value(name)`.
    pub fn render(&self, mut value: impl FnMut(&str) -> String) -> String {
        self.pieces(|name| Ok::<_, std::convert::Infallible>(value(name)))
            .unwrap_or_else(|never| match never {})
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// Like `render`, with a lookup that may fail (a key the spec does not have).
    pub fn try_render<E>(&self, value: impl FnMut(&str) -> Result<String, E>) -> Result<String, E> {
        Ok(self.pieces(value)?.into_iter().map(|(_, v)| v).collect())
    }

    /// One argument of a program's argv: never split, never through a shell. Refused when a
    /// value would start it with `-`; literal text of the template may (its author wrote
    /// `--verbose` on purpose), and a value after literal text (`--image={key.image}`) is part
    /// of one argument. An empty value before a literal `-` leaves the author's dash.
    pub fn render_arg(
        &self,
        mut value: impl FnMut(&str) -> String,
    ) -> Result<String, LooksLikeOption> {
        self.try_render_arg(|name| Ok::<_, std::convert::Infallible>(value(name)))
            .map_err(|e| match e {
                ArgError::Lookup(never) => match never {},
                ArgError::LooksLikeOption(option) => option,
            })
    }

    /// Like `render_arg`, with a lookup that may fail.
    pub fn try_render_arg<E>(
        &self,
        value: impl FnMut(&str) -> Result<String, E>,
    ) -> Result<String, ArgError<E>> {
        let pieces = self.pieces(value).map_err(ArgError::Lookup)?;
        if let Some((Some(name), v)) = pieces.iter().find(|(_, v)| !v.is_empty())
            && v.starts_with('-')
        {
            return Err(ArgError::LooksLikeOption(LooksLikeOption {
                placeholder: name.to_string(),
                value: v.clone(),
            }));
        }
        Ok(pieces.into_iter().map(|(_, v)| v).collect())
    }

    /// Each part with what it renders to, and the placeholder's name for placeholders.
    fn pieces<E>(
        &self,
        mut value: impl FnMut(&str) -> Result<String, E>,
    ) -> Result<Vec<(Option<&str>, String)>, E> {
        self.0
            .iter()
            .map(|part| match part {
                Part::Text(t) => Ok((None, t.clone())),
                Part::Placeholder(name) => Ok((Some(name.as_str()), value(name)?)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(text: &str, value: &str) -> Result<String, LooksLikeOption> {
        Template::parse(text)
            .unwrap()
            .render_arg(|_| value.to_string())
    }

    #[test]
    fn placeholders_render_once_and_escaped_braces_stay() {
        let t = Template::parse("a {x}-{{y}}").unwrap();
        assert_eq!(t.render(|_| "{x}".to_string()), "a {x}-{y}");
        assert_eq!(t.placeholders().collect::<Vec<_>>(), ["x"]);
        assert!(t.uses("x") && !t.uses("y") && !t.is_literal());
        assert!(Template::parse("{{x}}").unwrap().is_literal());
        assert_eq!(Template::parse("{x"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("x}"), Err(TemplateError::Unopened));
    }

    #[test]
    fn a_value_may_not_start_an_argument_with_a_dash() {
        assert_eq!(
            arg("{x}", "--upload-pack=y"),
            Err(LooksLikeOption {
                placeholder: "x".into(),
                value: "--upload-pack=y".into(),
            })
        );
        assert!(arg("{x}:{x}", "-y").is_err());
        // After literal text the value is part of one argument; the text itself may be an option.
        assert_eq!(arg("--x={x}", "-y").unwrap(), "--x=-y");
        assert_eq!(arg("--verbose", "-y").unwrap(), "--verbose");
        // An empty value before a literal dash leaves the author's dash.
        assert_eq!(arg("{x}-y", "").unwrap(), "-y");
        let failed: Result<String, ArgError<&str>> = Template::parse("{x}")
            .unwrap()
            .try_render_arg(|_| Err("missing"));
        assert_eq!(failed, Err(ArgError::Lookup("missing")));
    }
}
