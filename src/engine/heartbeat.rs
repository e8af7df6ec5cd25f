//! Keeping a running deploy's lease alive, and knowing at once when it is gone.

use super::Engine;

/// Aborts a task when dropped.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Engine {
    /// Keeps the lease alive while the deploy runs, and says (through `lost`) when it is gone:
    /// another process marked the deploy interrupted, or no beat was confirmed for nearly a
    /// whole lease. Others may reap a deploy whose last stamped beat is a lease old, so the
    /// owner stops one beat interval before that, measured from when its last confirmed beat
    /// was sent (not answered), on a timer of its own that a hanging store cannot delay.
    pub(super) fn spawn_heartbeat(
        &self,
        deploy: i64,
        lost: tokio::sync::watch::Sender<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let clock = self.clock.clone();
        let lease = self.lease;
        let every = lease / 5;
        tokio::spawn(async move {
            let mut confirmed = tokio::time::Instant::now();
            loop {
                let deadline = confirmed + lease.saturating_sub(every);
                let stop = |why: &str| {
                    tracing::error!(deploy, "{why}; stopping the deploy");
                    let _ = lost.send(true);
                };
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {
                        return stop("no heartbeat was confirmed for nearly a whole lease");
                    }
                    () = tokio::time::sleep(every) => {}
                }
                let stamped = tokio::time::Instant::now();
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {
                        return stop("no heartbeat was confirmed for nearly a whole lease");
                    }
                    beat = store.heartbeat_deploy(deploy, clock.now()) => match beat {
                        Ok(true) => confirmed = stamped,
                        Ok(false) => {
                            return stop("this deploy was marked interrupted by another process");
                        }
                        Err(e) => tracing::warn!(deploy, error = %e, "heartbeat failed"),
                    },
                }
            }
        })
    }
}
