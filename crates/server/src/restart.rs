//! Graceful restart, the new process's side and what both sides share:
//! what a restart runs ([`RestartPlan`]), how the listening sockets and
//! the readiness channel cross `exec` (the `TENK_LISTEN_FDS` and
//! `TENK_READY_FD` variables), and how the new process says it serves
//! ([`report_ready`]). The old process's side, in the watcher, is
//! `threads/restarter.rs`; the design is in docs/operations.md.

use std::ffi::OsString;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The listening sockets a new process inherits, by descriptor number,
/// comma-separated, in the order of the old process's listeners: under
/// `--accept reuseport` worker 0's first, then worker 1's…; otherwise the
/// one socket every worker (or the acceptor thread) shares. The
/// `--metrics` listener, if any, is last, named by its role:
/// `TENK_LISTEN_FDS=5,6,metrics:7`.
pub const LISTEN_FDS_VAR: &str = "TENK_LISTEN_FDS";
/// The role of the `--metrics` listener in `TENK_LISTEN_FDS`, and its
/// name in systemd's `LISTEN_FDNAMES` (`FileDescriptorName=metrics`).
pub const METRICS_ROLE: &str = "metrics";
/// The descriptor on which a new process reports that it serves (one
/// byte) and reads the old one's acknowledgement.
pub const READY_FD_VAR: &str = "TENK_READY_FD";

/// How long the new process waits for the old one's acknowledgement of
/// its readiness before serving anyway (the old one acknowledges at once
/// unless it is gone).
const ACK_WAIT: Duration = Duration::from_secs(5);

/// What a restart runs, resolved when the server starts.
#[derive(Clone, Debug)]
pub struct RestartPlan {
    /// The executable's path when this process started.
    pub program: PathBuf,
    /// The arguments after the program name, unchanged.
    pub args: Vec<OsString>,
    /// How long the new process has to become ready before it is killed
    /// and this one goes on serving.
    pub timeout: Duration,
}

impl RestartPlan {
    /// Restarts of this process: its executable (from `/proc/self/exe`,
    /// resolved now) with its own arguments.
    ///
    /// # Errors
    /// `/proc/self/exe` cannot be read.
    pub fn of_this_process(timeout: Duration) -> io::Result<RestartPlan> {
        Ok(RestartPlan {
            program: std::env::current_exe()?,
            args: std::env::args_os().skip(1).collect(),
            timeout,
        })
    }

    /// The executable a restart runs now, and why, if not the one at the
    /// path resolved at start-up. That path first: after an upgrade that
    /// replaced the file, it is the new binary, the point of the restart.
    /// If nothing is there any more, `/proc/self/exe`: this process's own
    /// binary, which the kernel can still run though its file is deleted.
    pub fn program_now(&self) -> (PathBuf, Option<String>) {
        if self.program.is_file() {
            return (self.program.clone(), None);
        }
        let why = format!(
            "{} is gone; running this process's own binary (/proc/self/exe)",
            self.program.display()
        );
        (Path::new("/proc/self/exe").to_path_buf(), Some(why))
    }
}

/// What a new process inherited from the old one.
#[derive(Debug)]
pub struct Inherited {
    /// The listening sockets, in the old process's order.
    pub listeners: Vec<OwnedFd>,
    /// The `--metrics` listener.
    pub metrics: Option<OwnedFd>,
    /// Where to report readiness.
    pub ready: Option<OwnedFd>,
}

/// Takes the sockets a restarting process handed over, if this process
/// is the new one of a restart (`TENK_LISTEN_FDS` is set).
///
/// # Errors
/// A malformed variable, or a descriptor in it that is not open or not a
/// listening socket: the new process must fail (and the old one go on
/// serving), not bind sockets of its own beside the old ones.
pub fn inherited_from_env() -> io::Result<Option<Inherited>> {
    let Some(list) = std::env::var_os(LISTEN_FDS_VAR) else {
        return Ok(None);
    };
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
    let list = list
        .to_str()
        .ok_or_else(|| invalid(format!("{LISTEN_FDS_VAR}: not UTF-8")))?;
    let fds = parse_fd_list(list).map_err(|e| invalid(format!("{LISTEN_FDS_VAR}: {e}")))?;
    let metrics_raw = fds.metrics;
    let fds = fds.serving;
    let ready = match std::env::var(READY_FD_VAR) {
        Ok(text) => {
            let raw: RawFd = text
                .parse()
                .map_err(|_| invalid(format!("{READY_FD_VAR}={text:?}: not a descriptor")))?;
            if fds.contains(&raw) || metrics_raw == Some(raw) {
                return Err(invalid(format!("{READY_FD_VAR}={raw} is a listener too")));
            }
            Some(reactor::sys::inherit::take_inherited(raw)?)
        }
        Err(_) => None,
    };
    let take = |raw| {
        reactor::sys::inherit::take_listener(raw)
            .map_err(|e| io::Error::new(e.kind(), format!("{LISTEN_FDS_VAR}: {e}")))
    };
    let mut listeners = Vec::with_capacity(fds.len());
    for raw in fds {
        listeners.push(take(raw)?);
    }
    let metrics = metrics_raw.map(take).transpose()?;
    Ok(Some(Inherited {
        listeners,
        metrics,
        ready,
    }))
}

/// The descriptors `TENK_LISTEN_FDS` names.
#[derive(Debug, PartialEq, Eq)]
pub struct FdList {
    /// The serving sockets, in order.
    pub serving: Vec<RawFd>,
    /// The `--metrics` listener (`metrics:N`).
    pub metrics: Option<RawFd>,
}

/// `3,4,metrics:5`: descriptor numbers, each once, 3 or more, at least
/// one serving; a role (only `metrics`, once) before a number.
pub fn parse_fd_list(text: &str) -> Result<FdList, String> {
    let mut list = FdList {
        serving: Vec::new(),
        metrics: None,
    };
    let mut seen = Vec::new();
    for part in text.split(',') {
        let (role, number) = match part.split_once(':') {
            Some((role, number)) => (Some(role.trim()), number),
            None => (None, part),
        };
        let fd: RawFd = number
            .trim()
            .parse()
            .map_err(|_| format!("{part:?} is not a descriptor number"))?;
        if fd < 3 {
            return Err(format!("{fd} is stdin, stdout or stderr"));
        }
        if seen.contains(&fd) {
            return Err(format!("{fd} is listed twice"));
        }
        seen.push(fd);
        match role {
            None => list.serving.push(fd),
            Some(METRICS_ROLE) if list.metrics.is_none() => list.metrics = Some(fd),
            Some(METRICS_ROLE) => return Err(format!("{METRICS_ROLE} is listed twice")),
            Some(other) => return Err(format!("{other:?} is not a role (only {METRICS_ROLE})")),
        }
    }
    if list.serving.is_empty() {
        return Err("no serving socket".to_string());
    }
    Ok(list)
}

/// The `TENK_LISTEN_FDS` value naming the serving sockets `fds` and the
/// metrics listener.
pub fn fd_list(fds: &[RawFd], metrics: Option<RawFd>) -> String {
    fds.iter()
        .map(|fd| fd.to_string())
        .chain(metrics.map(|fd| format!("{METRICS_ROLE}:{fd}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// The new process serves: it says so to the old one (one byte) and waits
/// for the acknowledgement, which comes after the old one has told
/// systemd the new main pid, so that this process's `READY=1` follows it.
/// A missing acknowledgement (the old process died) is waited out for at
/// most a few seconds: serving matters more than the order of messages.
///
/// # Errors
/// The write failed: the old process is gone or gave up on this one
/// (its deadline passed), and will not stop accepting.
pub fn report_ready(ready: OwnedFd) -> io::Result<()> {
    let mut stream = UnixStream::from(ready);
    stream.write_all(b"R")?;
    stream.set_read_timeout(Some(ACK_WAIT))?;
    let _ = stream.read(&mut [0u8; 1]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_lists_parse_and_bad_ones_say_why() {
        let serving = |fds: &[RawFd], metrics| FdList {
            serving: fds.to_vec(),
            metrics,
        };
        assert_eq!(parse_fd_list("3,4,10"), Ok(serving(&[3, 4, 10], None)));
        assert_eq!(fd_list(&[3, 4, 10], None), "3,4,10");
        assert_eq!(
            parse_fd_list("3,metrics:7,4"),
            Ok(serving(&[3, 4], Some(7)))
        );
        assert_eq!(fd_list(&[3, 4], Some(7)), "3,4,metrics:7");
        for (bad, why) in [
            ("metrics:3", "no serving socket"),
            ("3,metrics:4,metrics:5", "metrics is listed twice"),
            ("3,metrics:3", "listed twice"),
            ("3,admin:4", "not a role"),
            ("3,metrics:x", "not a descriptor"),
            ("", "not a descriptor"),
            ("3,,4", "not a descriptor"),
            ("x", "not a descriptor"),
            ("2", "stdin, stdout or stderr"),
            ("-1", "stdin, stdout or stderr"),
            ("3,3", "listed twice"),
        ] {
            let err = parse_fd_list(bad).expect_err(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_restart_falls_back_to_its_own_binary_when_the_path_is_gone() {
        let plan = RestartPlan {
            program: PathBuf::from("/nonexistent/tenk"),
            args: Vec::new(),
            timeout: Duration::from_secs(1),
        };
        let (program, why) = plan.program_now();
        assert_eq!(program, Path::new("/proc/self/exe"));
        assert!(why.expect("a reason").contains("/nonexistent/tenk is gone"));
        let here = RestartPlan::of_this_process(Duration::from_secs(1)).unwrap();
        assert_eq!(here.program_now(), (here.program.clone(), None));
    }
}
