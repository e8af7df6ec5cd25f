//! Telling a crashed deploy from a slow one. A running deploy records its owner and
//! heartbeats; another process treats it as dead when the heartbeat is older than the lease,
//! or at once when it can prove the owner is gone.
//!
//! Proof needs the owner to be named unambiguously: the host, the boot (`boot_id`), the PID
//! namespace, the PID and the process's start time. Only a process on the same host, boot and
//! PID namespace can look the owner up in `/proc`; it is gone when that PID does not exist, is
//! a zombie, or now belongs to a process that started at another time (a reused PID).
//! Anything less certain (another host or container, an owner recorded in an older format)
//! falls back to heartbeat staleness.
//!
//! Before a dead deploy is marked interrupted, the process groups it started are ended, so the
//! next converge never deploys a service while the previous deploy program still runs.

use super::Engine;
use crate::domain::{Deploy, Millis, Name, ProcessGroup};
use crate::store::StoreError;
use std::time::Duration;

/// How long reaping waits for a dead deploy's programs to exit after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// This process as recorded on the deploys it runs: `host/pid/boot/pidns/start`.
pub fn owner_id() -> String {
    Owner::current().to_string()
}

/// Who runs a deploy, precisely enough to tell whether it is still alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Owner {
    host: String,
    pid: u32,
    /// `/proc/sys/kernel/random/boot_id`: a PID means nothing across reboots.
    boot: String,
    /// The inode of `/proc/self/ns/pid`: a PID means nothing in another PID namespace.
    pidns: String,
    /// Field 22 of `/proc/<pid>/stat`: tells a reused PID from the original process.
    start: u64,
}

impl Owner {
    pub(super) fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            host: read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "localhost".into()),
            pid,
            boot: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
            pidns: pid_namespace().unwrap_or_default(),
            start: stat_of(pid).map(|s| s.start).unwrap_or(0),
        }
    }

    /// Parses what `to_string` wrote; `None` for owners recorded in another format.
    fn parse(text: &str) -> Option<Owner> {
        let mut parts = text.split('/');
        let owner = Owner {
            host: parts.next()?.to_string(),
            pid: parts.next()?.parse().ok()?,
            boot: parts.next()?.to_string(),
            pidns: parts.next()?.to_string(),
            start: parts.next()?.parse().ok()?,
        };
        let known = !owner.boot.is_empty() && !owner.pidns.is_empty() && owner.start > 0;
        (parts.next().is_none() && known).then_some(owner)
    }

    /// Whether `other`'s PIDs can be checked from this process's `/proc`.
    fn shares_pids_with(&self, other: &Owner) -> bool {
        self.host == other.host
            && !self.boot.is_empty()
            && self.boot == other.boot
            && !self.pidns.is_empty()
            && self.pidns == other.pidns
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}/{}",
            self.host, self.pid, self.boot, self.pidns, self.start
        )
    }
}

/// `host/pid` of a recorded owner, for people to read.
pub fn short_owner(owner: &str) -> String {
    let mut parts = owner.split('/');
    match (parts.next(), parts.next()) {
        (Some(host), Some(pid)) => format!("{host}/{pid}"),
        _ => owner.to_string(),
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `4026531836` from the `pid:[4026531836]` link of this process's PID namespace.
fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let link = link.to_string_lossy();
    let inode = link.strip_prefix("pid:[")?.strip_suffix(']')?;
    Some(inode.to_string())
}

/// What `/proc/<pid>/stat` says of a process.
struct Stat {
    state: char,
    pgrp: u32,
    start: u64,
}

impl Stat {
    fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

fn stat_of(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses a `stat` line; the command name may hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the whole line, pgrp 5, starttime 22.
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Whether the process `owner` names is known to be gone, as seen from `own`.
fn owner_is_gone(owner: &str, own: &Owner) -> bool {
    let Some(owner) = Owner::parse(owner) else {
        return false;
    };
    if !own.shares_pids_with(&owner) || owner.pid == own.pid {
        return false;
    }
    match stat_of(owner.pid) {
        None => true,
        Some(stat) => stat.is_zombie() || stat.start != owner.start,
    }
}

/// Live members of process group `group`, or `None` when it cannot be told.
fn members(group: &ProcessGroup) -> Option<Vec<u32>> {
    // A leader still alive with its original start time: the group is certainly the deploy's.
    // Without it the group id cannot have been reused while members remain (Linux keeps a
    // PID number reserved while any process uses it as its group id), unless a new process
    // took the number and made itself a group leader: then its start time differs.
    if let Some(leader) = stat_of(group.pgid)
        && leader.start != group.started
    {
        return Some(Vec::new());
    }
    let entries = std::fs::read_dir("/proc").ok()?;
    Some(
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| stat_of(pid).is_some_and(|s| s.pgrp == group.pgid && !s.is_zombie()))
            .collect(),
    )
}

/// Ends what a dead deploy left running; `true` when nothing of it runs any more.
async fn end_groups(groups: &[ProcessGroup]) -> bool {
    let deadline = tokio::time::Instant::now() + KILL_WAIT;
    loop {
        let mut alive = false;
        for group in groups {
            match members(group) {
                Some(pids) if pids.is_empty() => {}
                Some(_) => {
                    alive = true;
                    // SAFETY: `kill` only sends a signal; it touches no memory of this process.
                    unsafe {
                        libc::kill(-(group.pgid as i32), libc::SIGKILL);
                    }
                }
                None => alive = true,
            }
        }
        if !alive {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Engine {
    /// Whether the running deploy `deploy` is dead at `now`.
    pub fn is_dead(&self, deploy: &Deploy, now: Millis) -> bool {
        now - deploy.heartbeat > self.lease.as_millis() as i64
            || owner_is_gone(&deploy.owner, &self.identity)
    }

    /// Marks the running deploy of `env` interrupted if its process is dead, and returns it.
    /// The engine calls this before it answers anything about deploys, plans or starts a deploy,
    /// so a crash is reported by the next ferry process that looks and never blocks the next
    /// converge. The programs the dead
    /// deploy started are ended first; while any of them cannot be ended, the deploy stays
    /// running (and blocks converges) rather than letting a service be deployed twice at once.
    pub(super) async fn reap(&self, env: &Name) -> Result<Option<Deploy>, StoreError> {
        let now = self.clock.now();
        let Some(running) = self.store.running_deploy(env).await? else {
            return Ok(None);
        };
        if !self.is_dead(&running, now) {
            return Ok(None);
        }
        if !running.processes.is_empty() {
            let local =
                Owner::parse(&running.owner).is_some_and(|o| self.identity.shares_pids_with(&o));
            if local && !end_groups(&running.processes).await {
                tracing::error!(env = %env, deploy = running.id, "the programs of a dead deploy could not be ended; it stays running");
                return Ok(None);
            }
        }
        let summary = format!(
            "interrupted: the process running it ({}) stopped; {} of {} services had finished",
            short_owner(&running.owner),
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

    /// The group `pid` leads, as recorded on a deploy so that a reaper can end it.
    pub(super) fn process_group(pid: u32) -> Option<ProcessGroup> {
        stat_of(pid).map(|s| ProcessGroup {
            pgid: pid,
            started: s.start,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Owner)) -> String {
        let mut owner = Owner::current();
        f(&mut owner);
        owner.to_string()
    }

    #[test]
    fn the_current_process_is_fully_identified() {
        let own = Owner::current();
        assert!(!own.boot.is_empty() && !own.pidns.is_empty() && own.start > 0);
        assert_eq!(Owner::parse(&own.to_string()), Some(own));
    }

    #[test]
    fn only_a_process_provably_gone_is_gone() {
        let own = Owner::current();
        assert!(!owner_is_gone(&own.to_string(), &own));
        // PID 1 runs here, but started at another time than recorded: a reused PID.
        assert!(owner_is_gone(&with(|o| o.pid = 1), &own));
        assert!(owner_is_gone(&with(|o| o.pid = 999_999_999), &own));
        // Alive with the recorded start time.
        let init_start = stat_of(1).unwrap().start;
        assert!(!owner_is_gone(
            &with(|o| {
                o.pid = 1;
                o.start = init_start
            }),
            &own
        ));
        // Another PID namespace, another boot or another host: cannot be told from here.
        assert!(!owner_is_gone(
            &with(|o| {
                o.pid = 999_999_999;
                o.pidns = "1".into()
            }),
            &own
        ));
        assert!(!owner_is_gone(
            &with(|o| {
                o.pid = 999_999_999;
                o.boot = "x".into()
            }),
            &own
        ));
        assert!(!owner_is_gone(
            &with(|o| {
                o.pid = 999_999_999;
                o.host = "elsewhere".into()
            }),
            &own
        ));
        // Older formats and garbage fall back to the heartbeat.
        assert!(!owner_is_gone(&format!("{}/999999999", own.host), &own));
        assert!(!owner_is_gone("garbage", &own));
    }

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line =
            "4242 (a (b) c) S 1 4242 4242 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        let stat = parse_stat(line).unwrap();
        assert_eq!((stat.state, stat.pgrp, stat.start), ('S', 4242, 98765));
        assert!(parse_stat("garbage").is_none());
    }
}
