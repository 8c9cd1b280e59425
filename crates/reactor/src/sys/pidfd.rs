//! Child processes as descriptors (pidfd_open(2)): a pidfd polls readable
//! once its process has exited, so a child's end is an epoll event like
//! any other, with no SIGCHLD handler to install and no race with the
//! reuse of its pid (the pidfd names that process, not whoever gets its
//! number next). Linux 5.3 for `pidfd_open`, 5.4 for `waitid(P_PIDFD)`.

use std::io;
use std::os::fd::{AsFd as _, OwnedFd};
use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

use rustix::process::{
    pidfd_open, pidfd_send_signal, waitid, Pid, PidfdFlags, Signal, WaitId, WaitIdOptions,
};

/// A child process and the pidfd that names it.
pub(crate) struct ChildFd {
    pub(crate) pid: u32,
    pub(crate) fd: OwnedFd,
}

impl ChildFd {
    /// A pidfd for process `pid` (close-on-exec, as every pidfd is).
    ///
    /// # Errors
    /// `ESRCH` if there is no such process; `ENOSYS` before Linux 5.3.
    pub(crate) fn open(pid: u32) -> io::Result<ChildFd> {
        let raw = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("pid {pid}")))?;
        let fd = pidfd_open(raw, PidfdFlags::empty())?;
        Ok(ChildFd { pid, fd })
    }

    /// See [`try_reap`].
    pub(crate) fn try_reap(&self) -> io::Result<Option<ExitStatus>> {
        try_reap(&self.fd)
    }

    /// See [`kill`].
    pub(crate) fn kill(&self) -> io::Result<()> {
        kill(&self.fd)
    }
}

/// Reaps the process of `pidfd` if it has exited (it must be a child of
/// this process): its exit status, or `None` while it runs.
///
/// # Errors
/// `ECHILD` if it is not a child, or was reaped already.
fn try_reap(pidfd: &OwnedFd) -> io::Result<Option<ExitStatus>> {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
    let Some(status) = waitid(WaitId::PidFd(pidfd.as_fd()), options)? else {
        return Ok(None);
    };
    // `waitid` reports the end as siginfo's code and status; `ExitStatus`
    // (whose `Display` says "exit status: 2" or "signal: 9 (SIGKILL)")
    // is built from the `waitpid` encoding of the same facts.
    let raw = if let Some(code) = status.exit_status() {
        (code & 0xff) << 8
    } else if let Some(signal) = status.terminating_signal() {
        signal | if status.dumped() { 0x80 } else { 0 }
    } else {
        return Ok(None);
    };
    Ok(Some(ExitStatus::from_raw(raw)))
}

/// Sends SIGKILL to the process of `pidfd` (a no-op once it has exited
/// but is not reaped yet; `ESRCH` once reaped).
fn kill(pidfd: &OwnedFd) -> io::Result<()> {
    Ok(pidfd_send_signal(pidfd, Signal::KILL)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn reap_within(pidfd: &OwnedFd) -> ExitStatus {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(status) = try_reap(pidfd).expect("waitid") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the child did not end"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    // Reaped through their pidfds, which is what is tested.
    #[allow(clippy::zombie_processes)]
    fn a_child_exit_status_and_signal_are_reported_and_it_is_reaped() {
        let child = Command::new("sh").args(["-c", "exit 2"]).spawn().unwrap();
        let pidfd = ChildFd::open(child.id()).unwrap().fd;
        assert_eq!(reap_within(&pidfd).code(), Some(2));
        // Reaped: nothing is left to wait for.
        assert!(try_reap(&pidfd).is_err());

        let child = Command::new("sleep").arg("60").spawn().unwrap();
        let pidfd = ChildFd::open(child.id()).unwrap().fd;
        assert_eq!(try_reap(&pidfd).unwrap(), None, "still running");
        kill(&pidfd).unwrap();
        let status = reap_within(&pidfd);
        assert_eq!(status.signal(), Some(9), "{status}");
        assert!(!std::path::Path::new(&format!("/proc/{}", child.id())).exists());
    }
}
