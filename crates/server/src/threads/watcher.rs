//! The main thread's part while the reactor threads run: it reads the
//! signals and relays each shutdown to every reactor of the group, until
//! the last thread has exited; it runs graceful restarts (SIGHUP,
//! `restarter.rs`) and systemd's watchdog.
//!
//! A reactor thread cannot do this job: it stops reading its signalfd when
//! its own drain ends. Under `--accept dispatch` the acceptor has no
//! connection to drain and ended at once; under `reuseport` and
//! `exclusive` worker 0 ended as soon as its own connections were
//! flushed. A second signal then reached no thread at all (blocked
//! everywhere, read by no one) while another worker went on draining, and
//! the forced exit it asks for never came (issue 14).

use std::io;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reactor::signal::{SignalSet, SIGHUP};
use reactor::{Config, Handler, Io, Reactor, TimerId, Token, Waker};

use crate::group::Group;
use crate::threads::restarter::{Restarter, RESTART_DEADLINE};

/// Timer data of the systemd watchdog's period.
const WATCHDOG: u64 = 2;

/// A reactor of its own (an epoll with the signalfd and an eventfd, no
/// connection) for the main thread.
pub struct Watcher {
    reactor: Reactor<Relay>,
    running: Arc<Running>,
}

/// Reactor threads not yet exited, and the watcher's waker to tell it.
struct Running {
    threads: AtomicUsize,
    waker: Waker,
}

/// Held by each reactor thread for its whole life (dropped on return or
/// panic alike): closes a worker's inbox, then counts the thread out and
/// wakes the watcher.
pub struct Departure<'a> {
    running: Arc<Running>,
    inbox: Option<(&'a Group, usize)>,
}

impl Drop for Departure<'_> {
    fn drop(&mut self) {
        if let Some((group, worker)) = self.inbox {
            group.close_inbox(worker);
        }
        self.running.threads.fetch_sub(1, Ordering::AcqRel);
        let _ = self.running.waker.wake();
    }
}

impl Watcher {
    /// A watcher for `threads` reactor threads of `group`, reading
    /// `signals` if any. Created before the threads, so a failure leaves
    /// nothing to stop.
    ///
    /// # Errors
    /// Those of creating a reactor and of `signalfd`.
    pub(crate) fn new(
        signals: Option<&SignalSet>,
        group: Arc<Group>,
        threads: usize,
        restarter: Restarter,
    ) -> io::Result<Self> {
        // Its one connection, a restart's readiness socket, is bounded by
        // the restart deadline, not by an idle timeout.
        let config = Config {
            idle_timeout: std::time::Duration::ZERO,
            ..Config::default()
        };
        let mut reactor = Reactor::new(
            config,
            Relay {
                group,
                running: None,
                restarter,
            },
        )?;
        if let Some(signals) = signals {
            reactor.io().watch_signals(signals)?;
        }
        let running = Arc::new(Running {
            threads: AtomicUsize::new(threads),
            waker: reactor.io().waker(),
        });
        reactor.handler().running = Some(running.clone());
        let (relay, io) = reactor.parts();
        relay.arm_watchdog(io);
        Ok(Watcher { reactor, running })
    }

    /// The guard a reactor thread holds; `worker` is its id, `None` for
    /// the acceptor thread.
    pub fn departure<'a>(&self, group: &'a Group, worker: Option<usize>) -> Departure<'a> {
        Departure {
            running: self.running.clone(),
            inbox: worker.map(|w| (group, w)),
        }
    }

    /// Relays signals until every reactor thread has exited.
    ///
    /// # Errors
    /// A fatal `epoll_wait` error; the caller must then stop the threads.
    /// Returns whether this process handed its sockets over to a new one
    /// (then it must not remove the pid file).
    pub fn run(mut self) -> io::Result<bool> {
        self.reactor.run()?;
        Ok(self.reactor.handler().restarter.handed_over())
    }
}

struct Relay {
    group: Arc<Group>,
    running: Option<Arc<Running>>,
    restarter: Restarter,
}

impl Relay {
    /// systemd's watchdog, every half period (sd_watchdog_enabled(3)).
    /// Sent by this loop, it proves that signals are read and restarts can
    /// run, not that every worker is responsive (docs/operations.md).
    fn arm_watchdog(&mut self, io: &mut Io) {
        let period = self.restarter.systemd.as_ref().and_then(|s| s.watchdog);
        if let Some(period) = period {
            io.add_timer(period / 2, WATCHDOG);
        }
    }
}

impl Handler for Relay {
    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        // The one connection: a restart's readiness socket.
        self.restarter.on_data(io, &self.group, conn, data);
        data.len()
    }

    fn on_child_exit(&mut self, io: &mut Io, pid: u32, status: ExitStatus) {
        self.restarter.on_child_exit(io, pid, status);
    }

    fn on_timer(&mut self, io: &mut Io, timer: TimerId, data: u64) {
        match data {
            RESTART_DEADLINE => self.restarter.on_deadline(io, timer),
            WATCHDOG if !self.restarter.handed_over() => {
                if let Some(systemd) = &self.restarter.systemd {
                    systemd.notify("WATCHDOG=1");
                }
                self.arm_watchdog(io);
            }
            _ => {}
        }
    }

    fn on_signal(&mut self, io: &mut Io, signal: i32) {
        if signal == SIGHUP {
            return self.restarter.on_hangup(io);
        }
        self.restarter.on_shutdown(io);
        // No restart now: this process's copies of the listening sockets
        // go, so that they close with the workers' (a shutdown refuses
        // new connections).
        self.restarter.listeners.clear();
        self.restarter.metrics = None;
        // Once handed over, systemd's main pid is the new process: this
        // one's stop is none of its business.
        if self.group.shutdowns.load(Ordering::Acquire) == 0 && !self.restarter.handed_over() {
            if let Some(systemd) = &self.restarter.systemd {
                systemd.notify("STOPPING=1");
            }
        }
        self.group.request_shutdown();
    }

    fn on_wake(&mut self, io: &mut Io) {
        // A departure's wake-up may come before `run`: the eventfd keeps
        // it, so none is missed.
        if self
            .running
            .as_ref()
            .is_some_and(|r| r.threads.load(Ordering::Acquire) == 0)
        {
            io.stop();
        }
    }
}
