//! Progress of a deploy as it happens, for transports to render live (the shell prints each;
//! chat platforms edit one message).

use crate::domain::{DeployStatus, Name};
use tokio::sync::mpsc::UnboundedSender;

/// Where a converge publishes its progress.
pub type EventSink = UnboundedSender<DeployEvent>;

/// One thing that happened during a deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployEvent {
    Started {
        deploy: i64,
        env: Name,
        revision: u64,
        services: usize,
        waves: usize,
    },
    ServiceStarted {
        service: Name,
        version: Option<String>,
    },
    ServiceSucceeded {
        service: Name,
        version: Option<String>,
        millis: i64,
    },
    ServiceFailed {
        service: Name,
        message: String,
    },
    WaveDone {
        wave: usize,
        waves: usize,
    },
    RollingBack {
        services: Vec<Name>,
    },
    Finished {
        status: DeployStatus,
        summary: String,
    },
}

impl DeployEvent {
    /// One line of plain text: what a shell prints.
    pub fn line(&self) -> String {
        let version =
            |v: &Option<String>| v.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
        match self {
            DeployEvent::Started {
                deploy,
                env,
                revision,
                services,
                waves,
            } => format!(
                "deploy #{deploy}: {env}@{revision}, {services} service{} in {waves} wave{}",
                if *services == 1 { "" } else { "s" },
                if *waves == 1 { "" } else { "s" }
            ),
            DeployEvent::ServiceStarted {
                service,
                version: v,
            } => format!("  {service}{}: deploying", version(v)),
            DeployEvent::ServiceSucceeded {
                service,
                version: v,
                millis,
            } => {
                format!(
                    "  {service}{}: healthy ({:.1}s)",
                    version(v),
                    *millis as f64 / 1000.0
                )
            }
            DeployEvent::ServiceFailed { service, message } => {
                format!("  {service}: FAILED: {message}")
            }
            DeployEvent::WaveDone { wave, waves } => format!("  wave {wave}/{waves} done"),
            DeployEvent::RollingBack { services } => {
                let names: Vec<&str> = services.iter().map(Name::as_str).collect();
                format!("  rolling back {}", names.join(", "))
            }
            DeployEvent::Finished { status, summary } => format!("deploy {status}: {summary}"),
        }
    }
}

/// Publishes `event` if anyone listens; a gone listener must not stop a deploy.
pub fn publish(sink: Option<&EventSink>, event: DeployEvent) {
    if let Some(sink) = sink {
        let _ = sink.send(event);
    }
}
