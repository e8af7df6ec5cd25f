//! The vocabulary of ferry as pure types and functions: names, key paths, values, desired-state
//! documents, revisions, change sets, locks, audit entries and the template language of
//! program arguments.
//!
//! Nothing here performs I/O or knows about tokio, SQL or a chat platform; every other layer
//! moves these types around. A tidy test (`tests/tidy.rs`) keeps it that way.

mod actor;
mod approval;
mod audit;
mod change;
mod config_error;
mod deploy;
mod document;
mod duration;
mod lock;
mod name;
mod plan;
mod revision;
mod suggest;
mod target;
mod template;
mod value;

pub use actor::{Actor, Origin};
pub use approval::{ApprovalRequest, ApprovalStatus, NewApproval};
pub use audit::{AuditEntry, AuditFilter, NewAuditEntry, Outcome};
pub use change::{Change, diff};
pub use config_error::{ConfigError, line_of};
pub use deploy::{
    AppliedService, Deploy, DeployKind, DeployStatus, NewDeploy, Pin, ProcessGroup, Step,
    StepStatus,
};
pub use document::{Document, DocumentError, ServiceSpec};
pub use duration::{DurationError, HumanDuration, parse_duration, render_duration};
pub use lock::Lock;
pub use name::{KeyPath, Name, NameError};
pub use plan::{Plan, PlanStep, matches, plan, plan_with, waves};
pub use revision::{NewRevision, Revision, RevisionMeta};
pub use suggest::nearest;
pub use target::{Target, TargetError};
pub use template::{ArgError, LooksLikeOption, Template, TemplateError, refuse_option};
pub use value::{MAX_VALUE_BYTES, Value, ValueError};

/// Milliseconds since the Unix epoch. The domain takes time as a number handed in by a clock,
/// so that every rule about time can be tested with a fixed one.
pub type Millis = i64;
