//! Preflight checks: a program or a webhook that must pass before a converge starts ("the
//! image tag exists", "CI is green for this version"), like hubot-deploy's required contexts.

use super::EngineError;
use crate::domain::HumanDuration;
use crate::domain::{
    KeyPath, LooksLikeOption, Name, PlanStep, Template, TemplateError, refuse_option,
};
use crate::process::{Invocation, SpawnHook, run, tail};
use std::path::Path;

/// One `preflight = [{ … }]` entry of an environment: exactly one of `program` or `url`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreflightCheck {
    /// Shown when it fails.
    pub name: String,
    /// Run with `args` (`{env}` and `{revision}` are replaced) and `FERRY_ENV`,
    /// `FERRY_REVISION`, `FERRY_SERVICES` (`svc=version …`); exit 0 passes.
    pub program: Option<String>,
    #[serde(default, deserialize_with = "templates")]
    pub args: Vec<String>,
    /// POSTed `{"env", "revision", "services": [{"service", "version"}]}`; 2xx passes.
    pub url: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

/// Why a check's argument cannot be filled in; it fails the check with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum CheckArgError {
    #[error("argument `{template}`: {source}")]
    Template {
        template: String,
        source: TemplateError,
    },
    #[error(
        "{}",
        refuse_option(
            &format!("{{{}}}", .0.placeholder),
            &.0.value,
            "give the argument a literal prefix in the check's `args` (like `--env={env}`)",
        )
    )]
    Option(LooksLikeOption),
}

/// One argument of a check's program: `{env}` and `{revision}` replaced; any other placeholder
/// is passed as written, since a check has no service or key to fill it with. Refused, like
/// every program argument, when a replaced value would start the argument with `-` (an option);
/// neither an environment name nor a revision can today, but the rule holds for every program
/// ferry starts.
fn preflight_arg(template: &str, env: &Name, revision: u64) -> Result<String, CheckArgError> {
    let template = Template::parse(template).map_err(|source| CheckArgError::Template {
        template: template.to_string(),
        source,
    })?;
    let value = |name: &str| match name {
        "env" => env.to_string(),
        "revision" => revision.to_string(),
        other => format!("{{{other}}}"),
    };
    template.render_arg(value).map_err(CheckArgError::Option)
}

/// Checks every argument's braces when the config is read, not at the first converge.
fn templates<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let args = <Vec<String> as serde::Deserialize>::deserialize(d)?;
    for arg in &args {
        Template::parse(arg)
            .map_err(|e| serde::de::Error::custom(format!("argument `{arg}`: {e}")))?;
    }
    Ok(args)
}

fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(60)
}

impl PreflightCheck {
    /// Runs the check for converging `env` to `revision` with `steps`.
    pub async fn run(
        &self,
        env: &Name,
        revision: u64,
        steps: &[PlanStep],
        base_dir: &Path,
    ) -> Result<(), EngineError> {
        let fail = |message: String, output: String| EngineError::Preflight {
            name: self.name.clone(),
            message,
            output,
        };
        let versions: Vec<(String, String)> = steps
            .iter()
            .map(|s| {
                (
                    s.service.to_string(),
                    s.to.get(&KeyPath::version()).cloned().unwrap_or_default(),
                )
            })
            .collect();
        match (&self.program, &self.url) {
            (Some(program), None) => {
                let args = self
                    .args
                    .iter()
                    .map(|a| preflight_arg(a, env, revision))
                    .collect::<Result<_, _>>()
                    .map_err(|e: CheckArgError| fail(e.to_string(), String::new()))?;
                let services: Vec<String> =
                    versions.iter().map(|(s, v)| format!("{s}={v}")).collect();
                let inv = Invocation {
                    program: base_dir.join(program),
                    args,
                    env: vec![
                        ("FERRY_ENV".into(), env.to_string()),
                        ("FERRY_REVISION".into(), revision.to_string()),
                        ("FERRY_SERVICES".into(), services.join(" ")),
                    ],
                    pass_env: Vec::new(),
                    cwd: base_dir.to_path_buf(),
                    timeout: self.timeout.0,
                    on_spawn: SpawnHook::default(),
                };
                let out = run(&inv).await.map_err(|e| fail(e.message, e.output))?;
                if out.success() {
                    Ok(())
                } else {
                    Err(fail(
                        format!(
                            "exited with status {}",
                            out.code.map_or("(signal)".into(), |c| c.to_string())
                        ),
                        tail(&out.combined),
                    ))
                }
            }
            (None, Some(url)) => {
                let services: Vec<serde_json::Value> = versions
                    .iter()
                    .map(|(s, v)| serde_json::json!({ "service": s, "version": v }))
                    .collect();
                let body = serde_json::json!({ "env": env.as_str(), "revision": revision, "services": services });
                // Shown without credentials or query; a redirect is a failure, not followed.
                let shown = crate::deploy::redact_url(url);
                let client = reqwest::Client::builder()
                    .timeout(self.timeout.0)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| fail(e.without_url().to_string(), String::new()))?;
                let response = client.post(url).json(&body).send().await.map_err(|e| {
                    fail(
                        format!("cannot reach {shown}: {}", e.without_url()),
                        String::new(),
                    )
                })?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    // Capped like every answer ferry reads; only its tail is shown.
                    let text = crate::deploy::read_body(response)
                        .await
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_else(|e| e.to_string());
                    Err(fail(format!("{shown} answered {status}"), tail(&text)))
                }
            }
            _ => Err(fail(
                "a check needs exactly one of `program` or `url`".into(),
                String::new(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages a failing argument gives the check, word for word.
    #[test]
    fn argument_errors_read_as_before() {
        let env = Name::parse("staging").unwrap();
        assert_eq!(
            preflight_arg("--env={env}", &env, 3).unwrap(),
            "--env=staging"
        );
        assert_eq!(
            preflight_arg("{env", &env, 3).unwrap_err().to_string(),
            format!("argument `{{env`: {}", TemplateError::Unclosed)
        );
        let option = CheckArgError::Option(LooksLikeOption {
            placeholder: "env".into(),
            value: "-x".into(),
        });
        assert_eq!(
            option.to_string(),
            "value of {env} (`-x`) starts with '-', which the program would read as an option, so nothing was run; give the argument a literal prefix in the check's `args` (like `--env={env}`)"
        );
    }
}
