//! Names looked up on a chat platform (display names, channel names), cached for a while: one
//! lookup per key at a time (a burst of events from one new user makes one call), no lock held
//! across a lookup of another key, each lookup bounded by a timeout, failures not cached, and
//! entries forgotten after a time to live so that a rename is seen.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a looked-up name is trusted.
pub const NAME_TTL: Duration = Duration::from_secs(600);

/// One key's cached name and when it was looked up; its lock is held by the one lookup.
type Slot = Arc<tokio::sync::Mutex<Option<(String, Instant)>>>;

/// A cache of names by key (a user or channel id).
pub struct Names {
    ttl: Duration,
    timeout: Duration,
    /// The map's lock is held only to find or add a key's slot, never across a lookup.
    slots: Mutex<HashMap<String, Slot>>,
}

impl Names {
    pub fn new(ttl: Duration, timeout: Duration) -> Names {
        Names {
            ttl,
            timeout,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The name of `key` if a fresh one is cached; never looks it up, never waits.
    pub fn cached(&self, key: &str) -> Option<String> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()?;
        let entry = slot.try_lock().ok()?;
        entry
            .as_ref()
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(name, _)| name.clone())
    }

    /// The name of `key`: cached if fresh, else from `lookup` (bounded by the timeout; callers
    /// asking for the same key meanwhile wait for that one lookup). `None` when the lookup
    /// failed or timed out; the failure is not remembered.
    pub async fn get<F, Fut>(&self, key: &str, lookup: F) -> Option<String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, super::ChatError>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            // Forget slots nobody is using that hold nothing fresh: failed and expired keys.
            let ttl = self.ttl;
            slots.retain(|k, s| {
                k == key
                    || Arc::strong_count(s) > 1
                    || s.try_lock()
                        .is_ok_and(|v| v.as_ref().is_some_and(|(_, at)| at.elapsed() < ttl))
            });
            slots.entry(key.to_string()).or_default().clone()
        };
        let mut entry = slot.lock().await;
        if let Some((name, at)) = entry.as_ref()
            && at.elapsed() < self.ttl
        {
            return Some(name.clone());
        }
        match tokio::time::timeout(self.timeout, lookup()).await {
            Ok(Ok(name)) => {
                *entry = Some((name.clone(), Instant::now()));
                Some(name)
            }
            Ok(Err(e)) => {
                tracing::warn!(key, error = %e, "name lookup failed");
                None
            }
            Err(_) => {
                tracing::warn!(key, timeout = ?self.timeout, "name lookup timed out");
                None
            }
        }
    }
}
