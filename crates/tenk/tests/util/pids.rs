//! Processes the tests did not spawn themselves: the new process of a
//! graceful restart (a grandchild, found through `--pid-file`), signalled
//! and watched by pid.

use std::path::Path;
use std::time::Duration;

use super::{wait_until, Server, PROMPTLY};

/// The pid in a `--pid-file`, if the file is there and whole.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Waits until the pid file names a process other than `old`; gives it.
pub fn wait_pid_change(path: &Path, old: u32, limit: Duration) -> u32 {
    let mut new = None;
    let changed = wait_until(limit, || {
        new = read_pid(path).filter(|&pid| pid != old);
        new.is_some()
    });
    assert!(changed, "the pid file still names {old} after {limit:?}");
    new.expect("a new pid")
}

/// Whether process `pid` has exited (gone, or a zombie nobody reaped yet).
pub fn has_exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .and_then(|at| stat[at + 1..].split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// Waits for `pid` to exit, failing the test after `limit`.
pub fn wait_exited(pid: u32, limit: Duration, what: &str) {
    assert!(
        wait_until(limit, || has_exited(pid)),
        "{what}: process {pid} still running after {limit:?}"
    );
}

/// Sends `signal` to process `pid`.
pub fn kill(pid: u32, signal: i32) {
    let target = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("pid");
    let sig = rustix::process::Signal::from_named_raw(signal).expect("a named signal");
    rustix::process::kill_process(target, sig)
        .unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
}

/// Kills the process a pid file names when dropped (a test that failed
/// half-way must not leave a restarted server running).
pub struct PidFileGuard<'a>(pub &'a Path);

impl Drop for PidFileGuard<'_> {
    fn drop(&mut self) {
        if let Some(pid) = read_pid(self.0) {
            if !has_exited(pid) {
                kill(pid, libc::SIGKILL);
            }
        }
    }
}

impl Server {
    /// Waits for a stdout line (of this process or of one it restarted
    /// into: they share the pipe) containing `needle`; gives it.
    pub fn wait_line(&self, needle: &str) -> String {
        self.wait_line_within(needle, PROMPTLY)
    }

    pub fn wait_line_within(&self, needle: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no line with {needle:?} within {limit:?}; saw {seen:#?}"),
            }
        }
    }
}
