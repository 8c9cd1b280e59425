//! The old process's side of a graceful restart, run by the watcher on the
//! main thread (`watcher.rs`): on SIGHUP, start the new process with the
//! listening sockets and a readiness socket; when it reports ready, tell
//! systemd its pid, acknowledge, and make every reactor stop accepting;
//! if it dies first (its end of the readiness socket closes: the EOF is
//! the child's death, as a pidfd would report it) or misses the deadline
//! (killed), go on serving and say why. Design: docs/operations.md.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command};
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
    pub notify: Notify,
    pub systemd: Option<Arc<Notifier>>,
    pub state: State,
}

pub(crate) enum State {
    Serving,
    /// A new process is starting.
    Starting(Pending),
    /// The new process serves; this one has stopped accepting.
    HandedOver,
}

pub(crate) struct Pending {
    child: Child,
    /// The readiness socket, registered in the watcher's reactor.
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
        matches!(self.state, State::HandedOver)
    }

    /// SIGHUP.
    pub(crate) fn on_hangup(&mut self, io: &mut Io) {
        let pid = std::process::id();
        match &self.state {
            State::Starting(p) => {
                let child = p.child.id();
                return self.say(&format!(
                    "SIGHUP ignored: a restart is under way (new process {child})"
                ));
            }
            State::HandedOver => {
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
                    pending.child.id()
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
            .env(LISTEN_FDS_VAR, fd_list(&raw))
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
            .map(std::os::fd::AsFd::as_fd)
            .collect();
        let theirs = OwnedFd::from(theirs);
        inherited.push(std::os::fd::AsFd::as_fd(&theirs));
        let child = reactor::sys::inherit::spawn_with_fds(&mut command, &inherited)?;
        drop(inherited);
        // Only the child holds its end now: its death closes it.
        drop(theirs);
        let conn = match io.adopt(OwnedFd::from(ours)) {
            Ok(conn) => conn,
            Err(e) => {
                kill(child);
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
        let State::Starting(p) = std::mem::replace(&mut self.state, State::HandedOver) else {
            unreachable!()
        };
        io.cancel_timer(p.deadline);
        let child = p.child.id();
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

    /// A connection of the watcher closed: before readiness, the child
    /// died or closed its end.
    pub(crate) fn on_close(&mut self, io: &mut Io, conn: Token) {
        let State::Starting(p) = &self.state else {
            return;
        };
        if p.conn != conn {
            return;
        }
        let State::Starting(p) = std::mem::replace(&mut self.state, State::Serving) else {
            unreachable!()
        };
        io.cancel_timer(p.deadline);
        let child = p.child.id();
        let status = kill(p.child);
        self.say(&format!(
            "process {child} failed before it was ready ({status}); still serving"
        ));
        self.back_to_ready();
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
        let child = p.child.id();
        io.close(p.conn);
        let status = kill(p.child);
        let timeout = self.plan.as_ref().map(|p| p.timeout).unwrap_or_default();
        self.say(&format!(
            "process {child} was not ready within {timeout:?}; killed ({status}); still serving"
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
            let child = p.child.id();
            let status = kill(p.child);
            self.say(&format!(
                "shutting down: process {child} killed before it was ready ({status})"
            ));
        }
    }

    fn back_to_ready(&self) {
        if let Some(systemd) = &self.systemd {
            systemd.notify("READY=1");
        }
    }
}

/// Kills `child` (harmless if it has exited) and reaps it; says how it
/// ended.
fn kill(mut child: Child) -> String {
    let _ = child.kill();
    match child.wait() {
        Ok(status) => status.to_string(),
        Err(e) => format!("cannot reap it: {e}"),
    }
}
