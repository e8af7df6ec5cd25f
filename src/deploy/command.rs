//! The `command` deployer: runs a configured program with argv templates and `FERRY_*`
//! environment variables, in the config file's folder. Values are passed as arguments and
//! environment variables, never through a shell. With `hosts`, it runs once per host in
//! rolling batches; the first batch is the canary, and a failing batch stops the rest. A value
//! that would start an argument with `-` is refused before anything runs (see `template.rs`).

use super::{BuildError, DeployError, DeployRequest, Deployer, DeployerKind, Live, Template};
use crate::domain::HumanDuration;
use crate::domain::Name;
use crate::process::{Invocation, check_env_name, run, tail};
use futures_util::future::join_all;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// `[deployers.<name>] kind = "command"`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// The program to run; relative paths resolve against the config file's folder.
    pub program: String,
    /// Argument templates: `{env}`, `{service}`, `{version}`, `{revision}`, `{key.NAME}`.
    #[serde(default)]
    pub args: Vec<String>,
    /// How long one run may take before its whole process group is killed.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Exit 0 = healthy; retried until the environment's `verify_timeout`.
    pub verify_program: Option<String>,
    #[serde(default)]
    pub verify_args: Vec<String>,
    /// Prints the live version (empty output: not running).
    pub observe_program: Option<String>,
    #[serde(default)]
    pub observe_args: Vec<String>,
    /// Fan-out: run once per host (`{host}`, `FERRY_HOST`), in rolling batches, first batch a canary.
    /// A host may not start with `-`, which a program would read as an option.
    #[serde(default, deserialize_with = "hosts")]
    pub hosts: Vec<String>,
    /// Hosts per rolling batch.
    #[serde(default = "one")]
    pub batch_size: usize,
    /// Variables of ferry's environment the programs inherit besides PATH, HOME, LANG, LC_ALL,
    /// TZ, TMPDIR and USER; everything else (chat tokens, secrets) is withheld.
    #[serde(default, deserialize_with = "pass_env")]
    pub pass_env: Vec<String>,
}

fn hosts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let hosts = <Vec<String> as serde::Deserialize>::deserialize(d)?;
    for host in &hosts {
        check_host(host).map_err(serde::de::Error::custom)?;
    }
    Ok(hosts)
}

fn pass_env<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = <Vec<String> as serde::Deserialize>::deserialize(d)?;
    for name in &names {
        check_env_name(name).map_err(|e| serde::de::Error::custom(format!("pass_env: {e}")))?;
    }
    Ok(names)
}

/// A `hosts` entry that cannot be a fan-out target; refused when the config is read and again
/// when a deployer is built from a config assembled in code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("hosts: a host is empty: write its name, like `web1.internal`")]
    Empty,
    #[error(
        "hosts: host `{0}` starts with '-', which the programs would read as an option: write the host's name, like `web1.internal`"
    )]
    LooksLikeOption(String),
    /// The host as written, control characters escaped.
    #[error(
        "hosts: host `{0}` contains a control character: write the host's name, like `web1.internal`"
    )]
    ControlCharacter(String),
}

/// Why `host` cannot be a fan-out target, if it cannot.
fn check_host(host: &str) -> Result<(), HostError> {
    if host.trim().is_empty() {
        return Err(HostError::Empty);
    }
    if host.starts_with('-') {
        return Err(HostError::LooksLikeOption(host.to_string()));
    }
    if host.chars().any(char::is_control) {
        return Err(HostError::ControlCharacter(
            host.escape_default().to_string(),
        ));
    }
    Ok(())
}

impl DeployerKind for CommandConfig {
    const KIND: &'static str = "command";

    fn build(&self, base_dir: &Path) -> Result<Arc<dyn Deployer>, BuildError> {
        Ok(Arc::new(CommandDeployer::new(self, base_dir)?))
    }
}

fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(600)
}

fn one() -> usize {
    1
}

/// A program and its argument templates.
#[derive(Debug, Clone)]
struct Program {
    path: PathBuf,
    args: Vec<Template>,
}

impl Program {
    fn new(program: &str, args: &[String], base_dir: &Path) -> Result<Program, BuildError> {
        let path = base_dir.join(program);
        let args = args
            .iter()
            .map(|a| Template::parse(a))
            .collect::<Result<_, _>>()?;
        Ok(Program { path, args })
    }
}

/// The running `command` deployer.
#[derive(Debug, Clone)]
pub struct CommandDeployer {
    deploy: Program,
    verify: Option<Program>,
    observe: Option<Program>,
    timeout: Duration,
    hosts: Vec<String>,
    batch_size: usize,
    pass_env: Vec<String>,
    cwd: PathBuf,
}

/// Pause between health checks while verifying.
const VERIFY_INTERVAL: Duration = Duration::from_millis(500);

impl CommandDeployer {
    pub fn new(config: &CommandConfig, base_dir: &Path) -> Result<CommandDeployer, BuildError> {
        if config.batch_size == 0 {
            return Err(BuildError::ZeroBatchSize);
        }
        for host in &config.hosts {
            check_host(host)?;
        }
        for name in &config.pass_env {
            check_env_name(name)?;
        }
        let optional = |program: &Option<String>, args: &[String]| {
            program
                .as_deref()
                .map(|p| Program::new(p, args, base_dir))
                .transpose()
        };
        Ok(CommandDeployer {
            deploy: Program::new(&config.program, &config.args, base_dir)?,
            verify: optional(&config.verify_program, &config.verify_args)?,
            observe: optional(&config.observe_program, &config.observe_args)?,
            timeout: config.timeout.0,
            hosts: config.hosts.clone(),
            batch_size: config.batch_size,
            pass_env: config.pass_env.clone(),
            cwd: base_dir.to_path_buf(),
        })
    }

    fn invocation(
        &self,
        program: &Program,
        request: &DeployRequest,
        host: Option<&str>,
        timeout: Duration,
    ) -> Result<Invocation, DeployError> {
        let args = program
            .args
            .iter()
            .map(|t| {
                t.expand(request, host)
                    .map_err(|e| DeployError::new(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut env = vec![
            ("FERRY_ENV".to_string(), request.env.to_string()),
            ("FERRY_SERVICE".to_string(), request.service.to_string()),
            (
                "FERRY_VERSION".to_string(),
                request.version().unwrap_or_default().to_string(),
            ),
            ("FERRY_REVISION".to_string(), request.revision.to_string()),
            ("FERRY_DEPLOY".to_string(), request.deploy_id.to_string()),
            ("FERRY_ACTOR".to_string(), request.actor.identity()),
        ];
        if let Some(host) = host {
            env.push(("FERRY_HOST".to_string(), host.to_string()));
        }
        for (key, value) in &request.spec {
            // A seed file could still hold two keys for one variable; never pick one silently.
            if let Some(other) = key.collides_with(request.spec.keys()) {
                return Err(DeployError::new(format!(
                    "keys `{other}` and `{key}` of {}.{} would both be FERRY_KEY_{}; remove one (`unset {}.{}.{other}`)",
                    request.env,
                    request.service,
                    key.env_var_suffix(),
                    request.env,
                    request.service
                )));
            }
            env.push((format!("FERRY_KEY_{}", key.env_var_suffix()), value.clone()));
        }
        Ok(Invocation {
            program: program.path.clone(),
            args,
            env,
            pass_env: self.pass_env.clone(),
            cwd: self.cwd.clone(),
            timeout,
            on_spawn: request.on_spawn.clone(),
        })
    }

    /// The hosts to run on: `[None]` without fan-out.
    fn targets(&self) -> Vec<Option<&str>> {
        if self.hosts.is_empty() {
            vec![None]
        } else {
            self.hosts.iter().map(|h| Some(h.as_str())).collect()
        }
    }

    async fn apply_on(
        &self,
        request: &DeployRequest,
        host: Option<&str>,
    ) -> Result<String, DeployError> {
        let inv = self.invocation(&self.deploy, request, host, self.timeout)?;
        let out = run(&inv).await.map_err(|e| on_host(e.into(), host))?;
        if out.success() {
            Ok(tail(&out.combined))
        } else {
            let how = match out.code {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".to_string(),
            };
            Err(on_host(
                DeployError {
                    message: format!("the deploy program {how}"),
                    output: tail(&out.combined),
                },
                host,
            ))
        }
    }

    async fn verify_on(
        &self,
        program: &Program,
        request: &DeployRequest,
        host: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Result<(), DeployError> {
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let inv =
                self.invocation(program, request, host, left.max(Duration::from_millis(100)))?;
            let last = match run(&inv).await {
                Ok(out) if out.success() => return Ok(()),
                Ok(out) => DeployError {
                    message: format!(
                        "the health check exited with status {}",
                        out.code.map_or("(signal)".to_string(), |c| c.to_string())
                    ),
                    output: tail(&out.combined),
                },
                Err(e) => e.into(),
            };
            if tokio::time::Instant::now() + VERIFY_INTERVAL >= deadline {
                return Err(on_host(
                    DeployError {
                        message: format!("not healthy in time: {}", last.message),
                        output: last.output,
                    },
                    host,
                ));
            }
            tokio::time::sleep(VERIFY_INTERVAL).await;
        }
    }
}

fn on_host(mut e: DeployError, host: Option<&str>) -> DeployError {
    if let Some(host) = host {
        e.message = format!("on {host}: {}", e.message);
    }
    e
}

#[async_trait::async_trait]
impl Deployer for CommandDeployer {
    async fn apply(&self, request: &DeployRequest) -> Result<String, DeployError> {
        let targets = self.targets();
        let mut outputs = Vec::new();
        for (i, batch) in targets.chunks(self.batch_size).enumerate() {
            let results = join_all(batch.iter().map(|host| self.apply_on(request, *host))).await;
            let mut failed = None;
            for result in results {
                match result {
                    Ok(out) => outputs.push(out),
                    Err(e) => failed = failed.or(Some(e)),
                }
            }
            if let Some(mut e) = failed {
                let done = (i + 1) * self.batch_size;
                let left = targets.len().saturating_sub(done);
                if left > 0 {
                    let which = if i == 0 {
                        "the canary batch"
                    } else {
                        "a batch"
                    };
                    e.message = format!(
                        "{} ({which} failed; {left} remaining host{} not deployed)",
                        e.message,
                        if left == 1 { "" } else { "s" }
                    );
                }
                return Err(e);
            }
        }
        Ok(outputs.join("\n"))
    }

    async fn verify(&self, request: &DeployRequest, timeout: Duration) -> Result<(), DeployError> {
        let Some(program) = &self.verify else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + timeout;
        for host in self.targets() {
            self.verify_on(program, request, host, deadline).await?;
        }
        Ok(())
    }

    async fn observe(&self, env: &Name, service: &Name) -> Result<Live, DeployError> {
        let Some(program) = &self.observe else {
            return Ok(Live::Unknown);
        };
        let request = DeployRequest {
            env: env.clone(),
            service: service.clone(),
            spec: Default::default(),
            revision: 0,
            deploy_id: 0,
            actor: crate::domain::Actor::ferry(),
            on_spawn: Default::default(),
        };
        let host = self.targets()[0];
        let inv = self.invocation(program, &request, host, Duration::from_secs(30))?;
        let out = run(&inv).await?;
        if !out.success() {
            return Err(DeployError {
                message: "the observe program failed".into(),
                output: tail(&out.combined),
            });
        }
        Ok(
            match out
                .stdout
                .lines()
                .next()
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                Some(version) => Live::Running {
                    version: version.to_string(),
                },
                None => Live::NotRunning,
            },
        )
    }
}
