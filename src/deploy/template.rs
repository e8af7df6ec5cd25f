//! Argument templates of the `command` deployer: `{env}`, `{service}`, `{version}`,
//! `{revision}`, `{deploy}`, `{host}` and `{key.NAME}`. Each template expands to exactly one
//! argument: values are never split or passed through a shell.

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

    /// The argument for `request` (on `host`, when fanning out).
    pub fn expand(
        &self,
        request: &DeployRequest,
        host: Option<&str>,
    ) -> Result<String, TemplateError> {
        self.expand_with(request, host, |v| v.to_string())
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
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Env => out.push_str(&value(request.env.as_str())),
                Part::Service => out.push_str(&value(request.service.as_str())),
                Part::Version => out.push_str(&value(request.version().unwrap_or_default())),
                Part::Revision => out.push_str(&request.revision.to_string()),
                Part::Deploy => out.push_str(&request.deploy_id.to_string()),
                Part::Host => out.push_str(&value(host.unwrap_or_default())),
                Part::Key(key) => match request.spec.get(key) {
                    Some(v) => out.push_str(&value(v)),
                    None => {
                        return Err(TemplateError::MissingKey(
                            format!("{}.{}", request.env, request.service),
                            key.to_string(),
                        ));
                    }
                },
            }
        }
        Ok(out)
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
