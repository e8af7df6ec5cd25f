//! The placeholders of the `command` and `webhook` deployers over the one template language
//! (`domain::Template`): `{env}`, `{service}`, `{version}`, `{revision}`, `{deploy}`, `{host}`
//! and `{key.NAME}`. Each argument template expands to exactly one argument: values are never
//! split or passed through a shell. A value that would start an argument with `-` is refused:
//! the program would read it as an option (`--upload-pack=…`). Placing the placeholder after
//! literal text (`--image={key.image}`) makes it safe. URL templates percent-encode values.

use super::DeployRequest;
use crate::domain::{self, ArgError, KeyPath, LooksLikeOption, refuse_option};

/// A parsed template whose placeholders are all the deployer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(domain::Template);

/// A placeholder a deployer fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placeholder {
    Env,
    Service,
    Version,
    Revision,
    Deploy,
    Host,
    Key(KeyPath),
}

impl Placeholder {
    fn parse(name: &str) -> Option<Placeholder> {
        Some(match name {
            "env" => Placeholder::Env,
            "service" => Placeholder::Service,
            "version" => Placeholder::Version,
            "revision" => Placeholder::Revision,
            "deploy" => Placeholder::Deploy,
            "host" => Placeholder::Host,
            _ => Placeholder::Key(KeyPath::parse(name.strip_prefix("key.")?).ok()?),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "`{0}`: unknown placeholder `{{{1}}}` (use {{env}}, {{service}}, {{version}}, {{revision}}, {{deploy}}, {{host}} or {{key.NAME}})"
    )]
    Unknown(String, String),
    #[error("`{0}`: a `{{` is not closed (write `{{{{` for a literal brace)")]
    Unclosed(String),
    #[error("`{0}`: a `}}` without its `{{` (write `}}}}` for a literal brace)")]
    Unopened(String),
    #[error("{0} has no key `{1}`")]
    MissingKey(String, String),
    /// A substituted value would start an argument with `-` (the message says which and how
    /// to fix it).
    #[error("{0}")]
    LooksLikeOption(String),
    /// A value that URL parsing would read as a path step (`.`, `..`): percent-encoding
    /// cannot stop it walking up the path.
    #[error("the value `{0}` cannot go into a URL: `.` and `..` would change its path")]
    DotSegment(String),
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let template = domain::Template::parse(text).map_err(|e| match e {
            domain::TemplateError::Unclosed => TemplateError::Unclosed(text.to_string()),
            domain::TemplateError::Unopened => TemplateError::Unopened(text.to_string()),
        })?;
        if let Some(unknown) = template
            .placeholders()
            .find(|name| Placeholder::parse(name).is_none())
        {
            return Err(TemplateError::Unknown(
                text.to_string(),
                unknown.to_string(),
            ));
        }
        Ok(Template(template))
    }

    /// The argument for `request` (on `host`, when fanning out). Refused when a substituted
    /// value would make the argument start with `-`; literal text of the template may (the
    /// config's author wrote `--verbose` on purpose).
    pub fn expand(
        &self,
        request: &DeployRequest,
        host: Option<&str>,
    ) -> Result<String, TemplateError> {
        self.0
            .try_render_arg(|name| value_of(name, request, host, &|v: &str| v.to_string()))
            .map_err(|e| match e {
                ArgError::Lookup(e) => e,
                ArgError::LooksLikeOption(option) => {
                    TemplateError::LooksLikeOption(option_message(&option, request))
                }
            })
    }

    /// A URL for `request`: substituted values are percent-encoded, so that a value holding
    /// `/`, `?` or `#` cannot change the URL's shape.
    pub fn expand_url(&self, request: &DeployRequest) -> Result<String, TemplateError> {
        self.0.try_render(|name| {
            let value = value_of(name, request, None, &percent_encode)?;
            // `%2E` is still a dot to URL parsers, so `..` (in any encoding) is refused.
            if !value.is_empty() && value.replace("%2E", ".").chars().all(|c| c == '.') {
                return Err(TemplateError::DotSegment(value.replace("%2E", ".")));
            }
            Ok(value)
        })
    }
}

/// What placeholder `name` stands for in `request`, passed through `encode` (numbers are not).
fn value_of(
    name: &str,
    request: &DeployRequest,
    host: Option<&str>,
    encode: &dyn Fn(&str) -> String,
) -> Result<String, TemplateError> {
    // Every name was checked when the template was parsed.
    let Some(placeholder) = Placeholder::parse(name) else {
        return Err(TemplateError::Unknown(name.to_string(), name.to_string()));
    };
    Ok(match placeholder {
        Placeholder::Env => encode(request.env.as_str()),
        Placeholder::Service => encode(request.service.as_str()),
        Placeholder::Version => encode(request.version().unwrap_or_default()),
        Placeholder::Revision => request.revision.to_string(),
        Placeholder::Deploy => request.deploy_id.to_string(),
        Placeholder::Host => encode(host.unwrap_or_default()),
        Placeholder::Key(key) => match request.spec.get(&key) {
            Some(v) => encode(v),
            None => {
                return Err(TemplateError::MissingKey(
                    format!("{}.{}", request.env, request.service),
                    key.to_string(),
                ));
            }
        },
    })
}

/// What to say when a placeholder's value would start an argument with `-`.
fn option_message(option: &LooksLikeOption, request: &DeployRequest) -> String {
    let value = option.value.as_str();
    let prefix = "or give the argument a literal prefix in the deployer's config";
    let key = |key: &str, placeholder: &str| {
        let path = format!("{}.{}.{key}", request.env, request.service);
        let fix = format!(
            "set a value that does not start with '-' (`env {path} <value>`), {prefix} (like `--<option>={placeholder}`)"
        );
        refuse_option(&path, value, &fix)
    };
    let shown = format!("{{{}}}", option.placeholder);
    match Placeholder::parse(&option.placeholder) {
        Some(Placeholder::Key(k)) => key(k.as_str(), &format!("{{key.{k}}}")),
        Some(Placeholder::Version) => key("version", &shown),
        Some(Placeholder::Host) => refuse_option(
            &shown,
            value,
            &format!(
                "rename the host in the deployer's `hosts`, {prefix} (like `--host={{host}}`)"
            ),
        ),
        _ => refuse_option(&shown, value, prefix),
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
