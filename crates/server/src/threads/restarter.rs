//! The old process's side of a graceful restart, run by the watcher on the
//! main thread (`watcher.rs`): on SIGHUP, start the new process with the
//! listening sockets and a readiness socket; when it reports ready, tell
//! systemd its pid, acknowledge, and make every reactor stop accepting;
//! if it dies first (its pidfd, watched on the watcher's reactor, reports
//! the exit at once with its status or signal, and the reactor reaps it)
//! or misses the deadline (killed), go on serving and say why. Design:
//! docs/operations.md.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::Instant;

use reactor::{Io, TimerId, Token};

use crate::group::Group;
use crate::restart::{fd_list, RestartPlan, LISTEN_FDS_VAR, READY_FD_VAR};
use crate::serve::{Notice, Notify};
use crate::systemd::{monotonic_usec, Notifier};

/// Timer data of the restart deadline in the watcher.
pub(crate) const RESTART_DEADLINE: u64 = 1;

/// What the watcher needs for restarts.
pub(crate) struct Restarter {
    pub name: String,
    pub plan: Option<RestartPlan>,
    /// Duplicates of every distinct listening socket, in hand-over order.
    pub listeners: Vec<OwnedFd>,
    /// A duplicate of the `--metrics` listener, handed over too.
    pub metrics: Option<OwnedFd>,
    pub notify: Notify,
    pub systemd: Option<Arc<Notifier>>,
    pub state: State,
}

pub(crate) enum State {
    Serving,
    /// A new process is starting.
    Starting(Pending),
    /// The new process (this pid) serves; this one has stopped accepting.
    HandedOver(u32),
}

pub(crate) struct Pending {
    /// The new process, watched through its pidfd (`Io::watch_child`).
    child: u32,
    /// The readiness socket, registered in the watcher's reactor; its
    /// EOF says nothing (a process the child started may hold it open,
    /// or the child may close it and live on): the pidfd says the child
    /// died, and the deadline that it never became ready.
    conn: Token,
    deadline: TimerId,
    started: Instant,
}

impl Restarter {
    fn say(&self, line: &str) {
        let line = format!("tenk {} restart: {line}", self.name);
        tracing::info!("{line}");
        (self.notify)(Notice::Restart(&line));
    }

    pub(crate) fn handed_over(&self) -> bool {
        matches!(self.state, State::HandedOver(_))
    }

    /// SIGHUP.
    pub(crate) fn on_hangup(&mut self, io: &mut Io) {
        let pid = std::process::id();
        match &self.state {
            State::Starting(p) => {
                let child = p.child;
                return self.say(&format!(
                    "SIGHUP ignored: a restart is under way (new process {child})"
                ));
            }
            State::HandedOver(_) => {
                return self.say(&format!(
                    "SIGHUP ignored: this process ({pid}) has handed over and is draining"
                ))
            }
            State::Serving => {}
        }
        let Some(plan) = &self.plan else {
            return self.say("SIGHUP ignored: restarts are off");
        };
        let (program, fallback) = plan.program_now();
        if let Some(why) = fallback {
            self.say(&why);
        }
        if let Some(systemd) = &self.systemd {
            systemd.notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
        }
        match self.start(io, &program) {
            Ok(pending) => {
                self.say(&format!(
                    "started {} as process {} (this one is {pid})",
                    program.display(),
                    pending.child
                ));
                self.state = State::Starting(pending);
            }
            Err(e) => {
                self.say(&format!(
                    "cannot start {}: {e}; still serving",
                    program.display()
                ));
                self.back_to_ready();
            }
        }
    }

    fn start(&self, io: &mut Io, program: &std::path::Path) -> std::io::Result<Pending> {
        let plan = self.plan.as_ref().expect("a plan");
        let (ours, theirs) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let raw: Vec<_> = self.listeners.iter().map(AsRawFd::as_raw_fd).collect();
        let mut command = Command::new(program);
        command
            .args(&plan.args)
            .env(
                LISTEN_FDS_VAR,
                fd_list(&raw, self.metrics.as_ref().map(AsRawFd::as_raw_fd)),
            )
            .env(READY_FD_VAR, theirs.as_raw_fd().to_string())
            // Meant for this process only: the new one learns its sockets
            // from TENK_LISTEN_FDS, and is watched once it is the main pid.
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_FDNAMES")
            .env_remove("WATCHDOG_PID");
        let mut inherited: Vec<std::os::fd::BorrowedFd<'_>> = self
            .listeners
            .iter()
            .chain(&self.metrics)
            .map(std::os::fd::AsFd::as_fd)
            .collect();
        let theirs = OwnedFd::from(theirs);
        inherited.push(std::os::fd::AsFd::as_fd(&theirs));
        let mut child = reactor::sys::inherit::spawn_with_fds(&mut command, &inherited)?;
        drop(inherited);
        drop(theirs);
        // From here the reactor reaps the child (`Child` is dropped
        // without a wait); until it watches it, a failure kills and reaps
        // it here.
        if let Err(e) = io.watch_child(child.id()) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                e.kind(),
                format!("cannot watch it: {e}"),
            ));
        }
        let child = child.id();
        let conn = match io.adopt(OwnedFd::from(ours)) {
            Ok(conn) => conn,
            Err(e) => {
                let _ = io.kill_child(child);
                return Err(e);
            }
        };
        Ok(Pending {
            child,
            conn,
            deadline: io.add_timer(plan.timeout, RESTART_DEADLINE),
            started: Instant::now(),
        })
    }

    /// Bytes on a connection of the watcher: the readiness byte.
    pub(crate) fn on_data(&mut self, io: &mut Io, group: &Group, conn: Token, data: &[u8]) {
        let State::Starting(p) = &self.state else {
            return;
        };
        if p.conn != conn || data.is_empty() {
            return;
        }
        let child = p.child;
        let State::Starting(p) = std::mem::replace(&mut self.state, State::HandedOver(child))
        else {
            unreachable!()
        };
        io.cancel_timer(p.deadline);
        if let Some(systemd) = &self.systemd {
            systemd.notify(&format!("MAINPID={child}"));
        }
        // After MAINPID, so that the new process's READY=1 follows it.
        io.send(conn, b"A");
        io.close_when_flushed(conn);
        group.stop_accepting();
        self.say(&format!(
            "process {child} serves after {:.0} ms; this one ({}) stops accepting and drains",
            p.started.elapsed().as_secs_f64() * 1e3,
            std::process::id()
        ));
    }

    /// A child watched by the watcher's reactor ended (and was reaped):
    /// the new process of the restart under way, before it was ready; the
    /// one that took over (this one drains on); or one killed earlier (at
    /// its deadline, or at a shutdown).
    pub(crate) fn on_child_exit(&mut self, io: &mut Io, pid: u32, status: ExitStatus) {
        let how = ended(status);
        match &self.state {
            State::Starting(p) if p.child == pid => {
                let State::Starting(p) = std::mem::replace(&mut self.state, State::Serving) else {
                    unreachable!()
                };
                io.cancel_timer(p.deadline);
                io.close(p.conn);
                let hint = if status.code().is_some() {
                    " (its own error, if any, is above: it shares this process's stderr)"
                } else {
                    ""
                };
                self.say(&format!(
                    "new process {pid} {how} before it was ready{hint}; still serving"
                ));
                self.back_to_ready();
            }
            State::HandedOver(new) if *new == pid => {
                tracing::warn!(
                    "tenk {} restart: process {pid}, which took over, {how}; this one only drains",
                    self.name
                );
            }
            _ => self.say(&format!("process {pid}, killed before it was ready, {how}")),
        }
    }

    /// A restart deadline passed: the current restart's, or (ignored) a
    /// stale one.
    pub(crate) fn on_deadline(&mut self, io: &mut Io, timer: TimerId) {
        if !matches!(&self.state, State::Starting(p) if p.deadline == timer) {
            return;
        }
        let State::Starting(p) = std::mem::replace(&mut self.state, State::Serving) else {
            unreachable!()
        };
        let child = p.child;
        io.close(p.conn);
        // Reaped, and its end logged, when its pidfd reports it.
        let killed = io.kill_child(child);
        let timeout = self.plan.as_ref().map(|p| p.timeout).unwrap_or_default();
        self.say(&format!(
            "process {child} was not ready within {timeout:?}; killed{}; still serving",
            killed
                .err()
                .map(|e| format!(" (failed: {e})"))
                .unwrap_or_default()
        ));
        self.back_to_ready();
    }

    /// A shutdown signal: a new process still starting is killed (asked to
    /// stop, the service stops, and the old process alone drains).
    pub(crate) fn on_shutdown(&mut self, io: &mut Io) {
        if !matches!(self.state, State::Starting(_)) {
            return;
        }
        if let State::Starting(p) = std::mem::replace(&mut self.state, State::Serving) {
            io.cancel_timer(p.deadline);
            io.close(p.conn);
            let child = p.child;
            // Reaped when its pidfd reports the end, if the watcher still
            // runs; otherwise by whoever inherits it when this one exits.
            let _ = io.kill_child(child);
            self.say(&format!(
                "shutting down: process {child} killed before it was ready"
            ));
        }
    }

    fn back_to_ready(&self) {
        if let Some(systemd) = &self.systemd {
            systemd.notify("READY=1");
        }
    }
}

/// How a child ended, for a log line: "exited with status 2", "was
/// killed by signal 9 (SIGKILL)".
fn ended(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(signal) => {
            let name = signal_name(signal)
                .map(|s| format!(" (SIG{s})"))
                .unwrap_or_default();
            let core = if status.core_dumped() {
                ", core dumped"
            } else {
                ""
            };
            format!("was killed by signal {signal}{name}{core}")
        }
        None => format!("ended ({status})"),
    }
}

/// The names of the signals that end processes, signal(7).
fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "HUP",
        2 => "INT",
        3 => "QUIT",
        4 => "ILL",
        6 => "ABRT",
        7 => "BUS",
        8 => "FPE",
        9 => "KILL",
        10 => "USR1",
        11 => "SEGV",
        12 => "USR2",
        13 => "PIPE",
        14 => "ALRM",
        15 => "TERM",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_says_its_status_or_its_signal() {
        assert_eq!(ended(ExitStatus::from_raw(2 << 8)), "exited with status 2");
        assert_eq!(
            ended(ExitStatus::from_raw(9)),
            "was killed by signal 9 (SIGKILL)"
        );
        assert_eq!(
            ended(ExitStatus::from_raw(11 | 0x80)),
            "was killed by signal 11 (SIGSEGV), core dumped"
        );
        assert_eq!(ended(ExitStatus::from_raw(40)), "was killed by signal 40");
    }
}
