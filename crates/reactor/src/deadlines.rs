//! Deadlines: the idle, write, soft-output-limit and linger timers of a
//! connection, the drain of a graceful shutdown, and the end of a bounded
//! run (`Reactor::run_until`).
//!
//! Connection deadlines are lazy: activity only stamps the connection
//! (`Conn::last_activity`, `Conn::last_write_progress`), and a timer that
//! fires compares against the stamp, closing the connection or setting the
//! timer again for the real deadline. Activity never touches the timer
//! queue.

use std::time::Instant;

use crate::close_reason::CloseReason;
use crate::conn::Entry;
use crate::io::{Exit, Io, RunState, TimerKind};
use crate::timer::TimerId;
use crate::token::Token;

impl Io {
    /// A reactor timer fired (every kind but `User`, which goes to the
    /// handler).
    pub(crate) fn expire(&mut self, kind: TimerKind, now: Instant) {
        match kind {
            TimerKind::User(_) => {}
            TimerKind::ResumeAccept(listener) => self.resume_accept(listener),
            TimerKind::DrainDeadline => self.drain_deadline(),
            TimerKind::Idle(token) => self.idle_check(token, now),
            TimerKind::Write(token) => self.write_check(token, now),
            TimerKind::Linger(token) => self.linger_expired(token),
            TimerKind::SoftLimit(token) => self.soft_limit_check(token, now),
            TimerKind::RunDeadline => self.state = RunState::Stopped(Exit::Deadline),
            TimerKind::Handshake(token) => self.handshake_expired(token),
        }
    }

    /// The handshake deadline passed: a connection still handshaking is
    /// closed (one that finished cancelled its timer then).
    fn handshake_expired(&mut self, token: Token) {
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        conn.handshake_timer = None;
        if conn.transport.as_ref().is_some_and(|t| !t.is_established()) {
            self.close_with(token, CloseReason::HandshakeTimeout);
        }
    }

    /// Sets the deadline of `Reactor::run_until`: a timer like any other,
    /// so the run's own loop pays nothing for it, and an idle reactor
    /// sleeps until it (through the timerfd) instead of polling the clock.
    pub(crate) fn set_run_deadline(&mut self, deadline: Instant) -> TimerId {
        self.timers.insert(deadline, TimerKind::RunDeadline)
    }

    /// Starts a graceful shutdown: listeners are closed, connections stop
    /// being read and close once their output is flushed (but those
    /// spared by [`Io::spare_at_shutdown`]), and
    /// [`Reactor::run`](crate::Reactor::run) returns [`Exit::Graceful`] when
    /// none is left or when `Config::drain_timeout` passes, which also
    /// bounds connections adopted during the drain. A second call during
    /// the drain stops at once ([`Exit::Forced`]).
    pub fn shutdown(&mut self) {
        match self.state {
            // A shutdown asked for while leaving drains as usual: what
            // is left is closed once flushed.
            RunState::Running | RunState::Leaving => {}
            RunState::Draining => {
                self.state = RunState::Stopped(Exit::Forced);
                return;
            }
            RunState::Stopped(_) => return,
        }
        self.state = RunState::Draining;
        let mut spared = std::mem::take(&mut self.spared);
        spared.sort_unstable();
        for token in self.entries.tokens() {
            match self.entries.get(token) {
                Some(Entry::Listener(_)) => self.close_listener(token),
                Some(Entry::Conn(_)) if spared.binary_search(&token).is_err() => {
                    self.close_when_flushed_with(token, CloseReason::Shutdown);
                }
                Some(Entry::Conn(_)) | None => {}
            }
        }
        // Set even with no connection left: one may still join the drain
        // (`Io::adopt`), and it must not keep the reactor from exiting.
        self.timers.insert(
            Instant::now() + self.config.drain_timeout,
            TimerKind::DrainDeadline,
        );
    }

    /// Leaves `token` open at the next [`Io::shutdown`]: it is served as
    /// usual until the handler closes it, and the drain deadline closes it
    /// if it is still open then. For work in flight that needs more than a
    /// flush to end: a proxy's exchange waiting for its upstream (the
    /// client and the upstream connection both). Call it just before the
    /// shutdown, e.g. from `Handler::on_shutdown`; a shutdown already
    /// under way is not affected.
    pub fn spare_at_shutdown(&mut self, token: Token) {
        if matches!(self.state, RunState::Running | RunState::Leaving) {
            self.spared.push(token);
        }
    }

    /// Stops accepting, keeps serving: the other half of a graceful
    /// restart, once another process serves the same listening sockets.
    /// Every listener leaves the epoll set but stays open until the
    /// reactor is dropped (its socket is shared with the new process:
    /// closing this copy would lose nothing, but nothing is gained
    /// either). Connections are served as before, and
    /// [`Reactor::run`](crate::Reactor::run) returns [`Exit::Graceful`]
    /// when none is left, or when `Config::drain_timeout` passes (which
    /// closes those left). Unlike [`Io::shutdown`], nothing is closed
    /// now: echo and chat clients stay until they leave; a protocol with
    /// keep-alive checks [`Io::is_leaving`] to close after its next
    /// answer. A shutdown during it drains as usual; a second call does
    /// nothing.
    pub fn stop_accepting(&mut self) {
        if self.state != RunState::Running {
            return;
        }
        self.state = RunState::Leaving;
        for token in self.entries.tokens() {
            if let Some(Entry::Listener(l)) = self.entries.get_mut(token) {
                if !l.paused {
                    let _ = self.epoll.delete(&l.fd);
                    self.stats.epoll_ctls += 1;
                }
                // Paused for good: `resume_accept` only resumes while
                // running, and `accept` skips a paused listener whose
                // event came in the same batch.
                l.paused = true;
            }
        }
        self.timers.insert(
            Instant::now() + self.config.drain_timeout,
            TimerKind::DrainDeadline,
        );
    }

    /// Closes every connection still draining when the deadline passes.
    pub(crate) fn drain_deadline(&mut self) {
        for token in self.entries.tokens() {
            self.close_with(token, CloseReason::DrainTimeout);
        }
    }

    /// The idle timer of `token` fired: close the connection if it has
    /// really been idle that long, or set the timer again for the deadline
    /// its last activity gives. Activity itself never touches the timer.
    pub(crate) fn idle_check(&mut self, token: Token, now: Instant) {
        let timeout = self.config.idle_timeout;
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        conn.idle_timer = None;
        let deadline = conn.last_activity + timeout;
        if deadline <= now {
            self.close_with(token, CloseReason::IdleTimeout);
        } else {
            conn.idle_timer = Some(self.timers.insert(deadline, TimerKind::Idle(token)));
        }
    }

    /// The write timer of `token` fired: close the connection if output
    /// has waited that long without the peer taking any, forget the timer
    /// if nothing is pending, or set it again.
    pub(crate) fn write_check(&mut self, token: Token, now: Instant) {
        let timeout = self.config.write_timeout;
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        conn.write_timer = None;
        if conn.pending_output() == 0 {
            return;
        }
        let deadline = conn.last_write_progress + timeout;
        if deadline <= now {
            self.close_with(token, CloseReason::WriteTimeout);
        } else {
            conn.write_timer = Some(self.timers.insert(deadline, TimerKind::Write(token)));
        }
    }

    /// Whether `pending` bytes of output break a connection's limits: over
    /// the hard limit at once, or over the soft limit for longer than
    /// allowed (as Redis's client-output-buffer-limit). Updates the
    /// connection's soft-limit clock, and starts its timer: unlike Redis,
    /// where a pub/sub client that stops reading still has output added,
    /// a peer that stops reading here is soon not read either
    /// (backpressure), so no further send would come to check the limit.
    pub(crate) fn over_output_limit(&mut self, token: Token, pending: usize) -> bool {
        let config = &self.config;
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return false;
        };
        if config.output_hard_limit > 0 && pending > config.output_hard_limit {
            return true;
        }
        if config.output_soft_limit == 0 || pending <= config.output_soft_limit {
            conn.over_soft_since = None;
            return false;
        }
        let since = *conn.over_soft_since.get_or_insert(self.now);
        if conn.soft_timer.is_none() {
            let deadline = since + config.output_soft_time;
            conn.soft_timer = Some(self.timers.insert(deadline, TimerKind::SoftLimit(token)));
        }
        self.now.saturating_duration_since(since) > config.output_soft_time
    }

    /// The soft-limit timer of `token` fired: close the connection if its
    /// output has stayed above the soft limit that long, forget the timer
    /// if it went back below, or set it again (it went below and back above
    /// since the timer was set).
    pub(crate) fn soft_limit_check(&mut self, token: Token, now: Instant) {
        let soft_time = self.config.output_soft_time;
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        conn.soft_timer = None;
        let Some(since) = conn.over_soft_since else {
            return;
        };
        let deadline = since + soft_time;
        if deadline <= now {
            self.close_with(token, CloseReason::OutputLimit);
        } else {
            conn.soft_timer = Some(self.timers.insert(deadline, TimerKind::SoftLimit(token)));
        }
    }

    /// The lingering close of `token` ran out of time.
    pub(crate) fn linger_expired(&mut self, token: Token) {
        if let Some(Entry::Conn(conn)) = self.entries.get_mut(token) {
            conn.linger_timer = None;
            let reason = conn.closing.unwrap_or(CloseReason::Local);
            self.close_with(token, reason);
        }
    }
}
