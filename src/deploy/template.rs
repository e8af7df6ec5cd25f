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
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Env => out.push_str(request.env.as_str()),
                Part::Service => out.push_str(request.service.as_str()),
                Part::Version => out.push_str(request.version().unwrap_or_default()),
                Part::Revision => out.push_str(&request.revision.to_string()),
                Part::Deploy => out.push_str(&request.deploy_id.to_string()),
                Part::Host => out.push_str(host.unwrap_or_default()),
                Part::Key(key) => match request.spec.get(key) {
                    Some(value) => out.push_str(value),
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
