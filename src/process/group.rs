//! The process group of a started program: telling the caller its id (`SpawnHook`), killing
//! the whole group, and on Linux having the program die with ferry.

use std::sync::Arc;
use tokio::process::Command;

/// Called with the process group id of each program right after it starts, so that whoever
/// runs a deploy can record the group and kill it after a crash (the group outlives a killed
/// ferry when the program's own children keep running).
#[derive(Clone, Default)]
pub struct SpawnHook(Option<Arc<dyn Fn(u32) + Send + Sync>>);

impl SpawnHook {
    pub fn new(hook: impl Fn(u32) + Send + Sync + 'static) -> SpawnHook {
        SpawnHook(Some(Arc::new(hook)))
    }

    /// Calls the hook, if there is one, with `pgid`.
    pub fn call(&self, pgid: u32) {
        if let Some(hook) = &self.0 {
            hook(pgid);
        }
    }
}

impl std::fmt::Debug for SpawnHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "SpawnHook(set)",
            None => "SpawnHook(none)",
        })
    }
}

/// Kills the process group on drop unless disarmed (`.0 = None`) after a normal exit.
pub(super) struct GroupGuard(pub(super) Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

/// On Linux, asks the kernel to SIGKILL the child when ferry goes (even by `kill -9`), so that
/// a deploy never runs on unsupervised. Only the program itself is covered; what it started
/// stays in its process group, which `SpawnHook` lets the caller record and kill.
#[cfg(target_os = "linux")]
pub(super) fn die_with_parent(command: &mut Command) {
    // SAFETY: getpid(2) has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the forked child before exec and calls only prctl(2) and
    // getppid(2), which are async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // ferry may have died between fork and prctl: then nothing would ever signal.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn die_with_parent(_: &mut Command) {}

pub(super) fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a negative pid signals the process group `pid` leads; it was
        // created for this child by `process_group(0)`, so nothing else is in it.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}
