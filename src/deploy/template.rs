//! Argument templates of the `command` deployer: `{env}`, `{service}`, `{version}`,
//! `{revision}`, `{deploy}`, `{host}` and `{key.NAME}`. Each template expands to exactly one
//! argument: values are never split or passed through a shell. A value that would start an
//! argument with `-` is refused: the program would read it as an option (`--upload-pack=…`).
//! Placing the placeholder after literal text (`--image={key.image}`) makes it safe.

use super::DeployRequest;
use crate::domain::KeyPath;

/// A parsed template: literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Env,
    Service,
    Version,
    Revision,
    Deploy,
    Host,
    Key(KeyPath),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "`{0}`: unknown placeholder `{{{1}}}` (use {{env}}, {{service}}, {{version}}, {{revision}}, {{deploy}}, {{host}} or {{key.NAME}})"
    )]
    Unknown(String, String),
    #[error("`{0}`: a `{{` is not closed")]
    Unclosed(String),
    #[error("{0} has no key `{1}`")]
    MissingKey(String, String),
    /// A substituted value would start an argument with `-` (the message says which and how
    /// to fix it).
    #[error("{0}")]
    LooksLikeOption(String),
}

/// Why a value cannot start an argument: `what` names the value (`staging.web.image`), `fix`
/// says what to change instead.
pub fn refuse_option(what: &str, value: &str, fix: &str) -> String {
    format!(
        "value of {what} (`{value}`) starts with '-', which the program would read as an option, so nothing was run; {fix}"
    )
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| TemplateError::Unclosed(text.to_string()))?;
            let name = &after[..close];
            parts.push(match name {
                "env" => Part::Env,
                "service" => Part::Service,
                "version" => Part::Version,
                "revision" => Part::Revision,
                "deploy" => Part::Deploy,
                "host" => Part::Host,
                _ => match name.strip_prefix("key.").map(KeyPath::parse) {
                    Some(Ok(key)) => Part::Key(key),
                    _ => return Err(TemplateError::Unknown(text.to_string(), name.to_string())),
                },
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template(parts))
    }

    /// The argument for `request` (on `host`, when fanning out). Refused when a substituted
    /// value would make the argument start with `-`; literal text of the template may (the
    /// config's author wrote `--verbose` on purpose).
    pub fn expand(
        &self,
        request: &DeployRequest,
        host: Option<&str>,
    ) -> Result<String, TemplateError> {
        let pieces = self.pieces(request, host, &|v: &str| v.to_string())?;
        if let Some((part, value)) = pieces.iter().find(|(_, v)| !v.is_empty())
            && value.starts_with('-')
            && !matches!(part, Part::Text(_))
        {
            return Err(TemplateError::LooksLikeOption(option_message(
                part, value, request,
            )));
        }
        Ok(pieces.into_iter().map(|(_, v)| v).collect())
    }

    /// A URL for `request`: substituted values are percent-encoded, so that a value holding
    /// `/`, `?` or `#` cannot change the URL's shape.
    pub fn expand_url(&self, request: &DeployRequest) -> Result<String, TemplateError> {
        self.expand_with(request, None, percent_encode)
    }

    fn expand_with(
        &self,
        request: &DeployRequest,
        host: Option<&str>,
        value: impl Fn(&str) -> String,
    ) -> Result<String, TemplateError> {
        Ok(self
            .pieces(request, host, &value)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Each part with what it expands to.
    fn pieces(
        &self,
        request: &DeployRequest,
        host: Option<&str>,
        value: &dyn Fn(&str) -> String,
    ) -> Result<Vec<(&Part, String)>, TemplateError> {
        let mut out = Vec::with_capacity(self.0.len());
        for part in &self.0 {
            let text = match part {
                Part::Text(t) => t.clone(),
                Part::Env => value(request.env.as_str()),
                Part::Service => value(request.service.as_str()),
                Part::Version => value(request.version().unwrap_or_default()),
                Part::Revision => request.revision.to_string(),
                Part::Deploy => request.deploy_id.to_string(),
                Part::Host => value(host.unwrap_or_default()),
                Part::Key(key) => match request.spec.get(key) {
                    Some(v) => value(v),
                    None => {
                        return Err(TemplateError::MissingKey(
                            format!("{}.{}", request.env, request.service),
                            key.to_string(),
                        ));
                    }
                },
            };
            out.push((part, text));
        }
        Ok(out)
    }
}

/// What to say when `part`'s `value` would start an argument with `-`.
fn option_message(part: &Part, value: &str, request: &DeployRequest) -> String {
    let prefix = "or give the argument a literal prefix in the deployer's config";
    let key = |key: &str, placeholder: &str| {
        let path = format!("{}.{}.{key}", request.env, request.service);
        let fix = format!(
            "set a value that does not start with '-' (`env {path} <value>`), {prefix} (like `--<option>={placeholder}`)"
        );
        refuse_option(&path, value, &fix)
    };
    match part {
        Part::Key(k) => key(k.as_str(), &format!("{{key.{k}}}")),
        Part::Version => key("version", "{version}"),
        Part::Host => refuse_option(
            "{host}",
            value,
            &format!(
                "rename the host in the deployer's `hosts`, {prefix} (like `--host={{host}}`)"
            ),
        ),
        Part::Env => refuse_option("{env}", value, prefix),
        Part::Service => refuse_option("{service}", value, prefix),
        Part::Revision => refuse_option("{revision}", value, prefix),
        Part::Deploy => refuse_option("{deploy}", value, prefix),
        Part::Text(_) => refuse_option("the template", value, prefix),
    }
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, Name};

    fn request() -> DeployRequest {
        let mut spec = crate::domain::ServiceSpec::new();
        spec.insert(KeyPath::version(), "3.5.7; rm -rf /".to_string());
        spec.insert(KeyPath::parse("image").unwrap(), "reg/x".to_string());
        DeployRequest {
            env: Name::parse("staging").unwrap(),
            service: Name::parse("ms-users").unwrap(),
            spec,
            revision: 42,
            deploy_id: 7,
            actor: Actor::new("shell", "alice", "alice"),
            on_spawn: Default::default(),
        }
    }

    #[test]
    fn expands_placeholders_into_one_argument() {
        let t =
            Template::parse("{key.image}:{version}@{env}/{service}#{revision}-{deploy}").unwrap();
        assert_eq!(
            t.expand(&request(), None).unwrap(),
            "reg/x:3.5.7; rm -rf /@staging/ms-users#42-7"
        );
        assert_eq!(
            Template::parse("--host={host}")
                .unwrap()
                .expand(&request(), Some("web1"))
                .unwrap(),
            "--host=web1"
        );
    }

    #[test]
    fn a_value_starting_an_argument_with_a_dash_is_refused() {
        let mut r = request();
        r.spec.insert(
            KeyPath::parse("image").unwrap(),
            "--upload-pack=touch /tmp/pwned".to_string(),
        );
        for text in ["{key.image}", "{key.image}:{version}"] {
            let e = Template::parse(text)
                .unwrap()
                .expand(&r, None)
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                "value of staging.ms-users.image (`--upload-pack=touch /tmp/pwned`) starts with '-', \
                 which the program would read as an option, so nothing was run; set a value that \
                 does not start with '-' (`env staging.ms-users.image <value>`), or give the \
                 argument a literal prefix in the deployer's config (like `--<option>={key.image}`)"
            );
        }
        // After a literal prefix the value is part of one argument, not an option.
        assert_eq!(
            Template::parse("--image={key.image}")
                .unwrap()
                .expand(&r, None)
                .unwrap(),
            "--image=--upload-pack=touch /tmp/pwned"
        );
        // The template's own text may be an option.
        assert_eq!(
            Template::parse("--verbose")
                .unwrap()
                .expand(&r, None)
                .unwrap(),
            "--verbose"
        );
        // An empty value before a literal `-` leaves the literal's dash, written by the author.
        r.spec
            .insert(KeyPath::parse("image").unwrap(), String::new());
        assert_eq!(
            Template::parse("{key.image}-x")
                .unwrap()
                .expand(&r, None)
                .unwrap(),
            "-x"
        );
        // {host} (and every other placeholder) is checked the same way.
        let e = Template::parse("{host}")
            .unwrap()
            .expand(&request(), Some("-oProxyCommand=x"))
            .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "value of {host} (`-oProxyCommand=x`) starts with '-', which the program would read as an option"
            ),
            "{e}"
        );
    }

    #[test]
    fn url_expansion_encodes_values() {
        let t = Template::parse("http://h/status/{key.image}?v={version}").unwrap();
        assert_eq!(
            t.expand_url(&request()).unwrap(),
            "http://h/status/reg%2Fx?v=3.5.7%3B%20rm%20-rf%20%2F"
        );
    }

    #[test]
    fn rejects_unknown_placeholders_and_missing_keys() {
        assert!(matches!(
            Template::parse("{nope}"),
            Err(TemplateError::Unknown(..))
        ));
        assert!(matches!(
            Template::parse("{env"),
            Err(TemplateError::Unclosed(_))
        ));
        let t = Template::parse("{key.replicas}").unwrap();
        assert!(matches!(
            t.expand(&request(), None),
            Err(TemplateError::MissingKey(..))
        ));
    }
}
