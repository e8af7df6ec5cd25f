//! Telling a crashed deploy from a slow one. A running deploy records its owner
//! (`host/pid`) and heartbeats; another process treats it as dead when the heartbeat is older
//! than the lease, or at once when the owner is a process on this host that no longer exists
//! (`kill -9`).

use super::Engine;
use crate::domain::{Deploy, Millis, Name};
use crate::store::StoreError;

/// This process: `host/pid`.
pub fn owner_id() -> String {
    format!("{}/{}", hostname(), std::process::id())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether the process `owner` names is known to be gone.
fn owner_is_gone(owner: &str, own: &str) -> bool {
    let Some((host, pid)) = owner.rsplit_once('/') else {
        return false;
    };
    let Some((own_host, _)) = own.rsplit_once('/') else {
        return false;
    };
    if host != own_host || owner == own {
        return false;
    }
    match pid.parse::<u32>() {
        Ok(pid) => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => false,
    }
}

impl Engine {
    /// Whether the running deploy `deploy` is dead at `now`.
    pub fn is_dead(&self, deploy: &Deploy, now: Millis) -> bool {
        now - deploy.heartbeat > self.lease.as_millis() as i64
            || owner_is_gone(&deploy.owner, &self.owner)
    }

    /// Marks the running deploy of `env` interrupted if its process is dead, and returns it.
    /// Every command that shows deploys calls this first, so a crash is reported by the next
    /// ferry process that looks and never blocks the next converge.
    pub async fn reap(&self, env: &Name) -> Result<Option<Deploy>, StoreError> {
        let now = self.clock.now();
        let Some(running) = self.store.running_deploy(env).await? else {
            return Ok(None);
        };
        if !self.is_dead(&running, now) {
            return Ok(None);
        }
        let summary = format!(
            "interrupted: the process running it ({}) stopped; {} of {} services had finished",
            running.owner,
            running.steps.len(),
            running.planned.len()
        );
        if self
            .store
            .interrupt_deploy(running.id, running.heartbeat, &summary, now)
            .await?
        {
            tracing::warn!(env = %env, deploy = running.id, owner = %running.owner, "marked a dead deploy interrupted");
            return Ok(Some(running));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_process_on_this_host_is_gone() {
        let own = owner_id();
        let host = own.rsplit_once('/').unwrap().0;
        assert!(!owner_is_gone(&own, &own));
        assert!(owner_is_gone(&format!("{host}/999999999"), &own));
        assert!(!owner_is_gone(&format!("{host}/1"), &own));
        assert!(!owner_is_gone("elsewhere/999999999", &own));
        assert!(!owner_is_gone("garbage", &own));
    }
}
