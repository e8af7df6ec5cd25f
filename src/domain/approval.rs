//! Approval requests: a converge of an environment with `approvals = N` waits for N other
//! people holding `approve:<env>`. A request is bound to the revision and plan it showed.

use super::{Actor, Millis, Name};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    Pending,
    /// Approved and the converge ran.
    Executed,
    Denied,
    /// Its time ran out before enough approvals came.
    Expired,
    /// Desired state (or what is applied) moved after it was made.
    Stale,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Executed => "executed",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Stale => "stale",
        }
    }

    pub fn parse(text: &str) -> Option<ApprovalStatus> {
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Executed,
            ApprovalStatus::Denied,
            ApprovalStatus::Expired,
            ApprovalStatus::Stale,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A request about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApproval {
    pub env: Name,
    pub revision: u64,
    /// The plan shown to the requester, one line per service: what approvers approve.
    pub plan: String,
    /// `Plan::digest` of that plan: the exact specs the approved converge may deploy.
    pub digest: String,
    pub force: bool,
    pub requester: Actor,
    pub created: Millis,
    pub expires: Millis,
    pub needed: u32,
}

/// A recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub id: i64,
    pub request: NewApproval,
    pub status: ApprovalStatus,
    /// Distinct approvers so far.
    pub approvers: Vec<Actor>,
    /// Who closed it and why (denials).
    pub decided_by: Option<String>,
    pub reason: Option<String>,
}
