//! The one wrapper around every server's handler, with what every server
//! needs beside it: its place in the [`Group`] of reactors (shutdown
//! requests relayed to every reactor, connections handed over by an
//! acceptor thread, per-worker figures gathered for the stats line and
//! `/metrics`), the `--stats` ticker, and the test stall hook
//! (`threads/stall.rs`). Every [`Handler`] method is forwarded here and
//! only here, so a new one cannot be dropped by one of several wrappers.
//!
//! # How current the per-worker figures are
//!
//! Each reactor thread publishes its [`Stats`](reactor::Stats) to [`Group::board`](crate::group::Group::board). With
//! `--stats` it does so on every tick. Without, a publish timer is armed
//! lazily: the first handler callback after a publish arms it for
//! [`PUBLISH_EVERY`] (1 s); when it fires the figures are published, and
//! it is armed again only if anything else woke the reactor meanwhile. So
//! a busy worker publishes once a second, an idle one never wakes for it,
//! and a board entry is at most [`PUBLISH_EVERY`] behind the worker's last
//! handler callback (plus at most one period of callback-free work, such
//! as output draining, that follows it). The worker answering a `/metrics`
//! request publishes its live figures first, so a series never goes
//! backwards between scrapes answered by different workers.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reactor::{CloseReason, Handler, Io, TimerId, Token};

use crate::group::Group;
use crate::metrics::endpoint::Endpoint;
use crate::metrics::Render;
use crate::serve::Notify;
use crate::stats_line::StatsTicker;
use crate::threads::stall::StallHook;

mod handover;

/// How often, at most, a worker publishes its figures when `--stats` is
/// off (see the module docs).
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// A server's handler as one reactor of a group runs it: every callback
/// goes to `inner`, except the ticker's and the publish timer's own, and
/// signals and the wake-ups that relay them, which the group acts on.
pub struct Serving<H> {
    pub inner: H,
    /// This reactor's id in the group: a worker's, or (past the last
    /// worker) the acceptor thread's.
    id: usize,
    group: Arc<Group>,
    pub ticker: Option<StatsTicker>,
    /// The test stall hook, until this worker's first connection.
    stall: Option<(Arc<StallHook>, Notify)>,
    /// The group has other reactors that need this one's figures.
    shares: bool,
    /// The publish timer's period ([`PUBLISH_EVERY`]; shorter in tests).
    pub publish_every: Duration,
    /// The armed publish timer, if any.
    publish: Option<Publish>,
    /// Shutdown requests this reactor has acted on.
    seen_shutdowns: usize,
    /// `--metrics` (worker 0's): its listener's connections are answered
    /// here and never reach `inner`.
    metrics: Option<Endpoint>,
    /// The inbound connections counted in this worker's `worker_conns`
    /// (by slot), so that a close counts down only what was counted up:
    /// outbound connections (the proxy's upstreams, chat's Redis links)
    /// never were, and counting them down wrapped the count below zero.
    counted: Vec<Option<Token>>,
}

/// An armed publish timer, and the reactor's event count when it was
/// armed (to tell, when it fires, whether anything else happened).
struct Publish {
    timer: TimerId,
    events_at_arm: u64,
}

impl<H: Handler> Serving<H> {
    /// `inner` as reactor `id` of `group`.
    pub fn new(inner: H, id: usize, group: Arc<Group>) -> Serving<H> {
        // Alone, a worker's figures are read from its own reactor (stats
        // line, `/metrics`): nothing to publish.
        let shares = group.workers() > 1 || id >= group.workers();
        Serving {
            inner,
            id,
            group,
            ticker: None,
            stall: None,
            shares,
            publish_every: PUBLISH_EVERY,
            publish: None,
            seen_shutdowns: 0,
            metrics: None,
            counted: Vec::new(),
        }
    }

    /// Serves `--metrics` with `render`, once its listener is registered
    /// (`Serving::metrics_listener`).
    pub fn with_metrics(mut self, render: Option<Render>) -> Serving<H> {
        self.metrics = render.map(Endpoint::new);
        self
    }

    /// The metrics listener's token, once registered.
    pub(crate) fn metrics_listener(&mut self, listener: reactor::Token) {
        if let Some(metrics) = &mut self.metrics {
            metrics.listener = Some(listener);
        }
    }

    /// Whether `conn` is a metrics connection: one test of a field when
    /// none is open, the case of almost every callback.
    #[inline(always)]
    fn is_scrape(&self, conn: Token) -> bool {
        match &self.metrics {
            Some(metrics) => metrics.open() && metrics.owns(conn),
            None => false,
        }
    }

    #[cold]
    #[inline(never)]
    fn scrape(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        match &self.metrics {
            Some(metrics) => metrics.on_data(io, conn, data, &self.group, self.id),
            None => data.len(),
        }
    }

    /// Arms the test stall hook (`threads/stall.rs`), which tells `notify`
    /// when it stalls and resumes.
    pub fn with_stall(mut self, hook: Option<Arc<StallHook>>, notify: Notify) -> Serving<H> {
        self.stall = hook.map(|hook| (hook, notify));
        self
    }

    fn is_worker(&self) -> bool {
        self.id < self.group.workers()
    }

    fn worker_count(&self) -> Option<&AtomicUsize> {
        self.group.worker_conns.get(self.id)
    }

    /// The handler hears of a connection; the stall hook goes first, once.
    fn accepted(&mut self, io: &mut Io, listener: Token, conn: Token)
    where
        H: Handler,
    {
        if let Some((hook, notify)) = self.stall.take() {
            hook.first_connection(self.id, &notify);
        }
        self.inner.on_accept(io, listener, conn);
    }

    fn catch_up_shutdowns(&mut self, io: &mut Io) {
        let requested = self.group.shutdowns.load(Ordering::Acquire);
        while self.seen_shutdowns < requested {
            self.seen_shutdowns += 1;
            if !io.is_draining() {
                self.inner.on_shutdown(io);
            }
            io.shutdown();
        }
    }

    fn tick(&mut self, io: &mut Io) {
        let Some(ticker) = &mut self.ticker else {
            return;
        };
        if !self.shares {
            ticker.tick(io);
            return;
        }
        self.group.publish(self.id, io.stats());
        if self.id != 0 {
            ticker.rearm(io);
            return;
        }
        let board = self.group.board();
        ticker.tick_workers(io, board.total(), &board.workers);
    }

    /// Called on every callback: arms the publish timer if the group needs
    /// this reactor's figures and none is armed (with `--stats` the ticker
    /// publishes). Cheap: alone (one worker) the first test fails, armed
    /// the second (with `shares` last, a lone worker paid all three on
    /// every request: 5 instructions per echo).
    #[inline]
    fn note_activity(&mut self, io: &mut Io) {
        if self.shares && self.publish.is_none() && self.ticker.is_none() {
            self.arm_publish(io);
        }
    }

    fn arm_publish(&mut self, io: &mut Io) {
        self.publish = Some(Publish {
            timer: io.add_timer(self.publish_every, 0),
            events_at_arm: io.stats().events,
        });
    }

    fn publish_now(&mut self, io: &mut Io) {
        let Some(publish) = self.publish.take() else {
            return;
        };
        let stats = io.stats();
        self.group.publish(self.id, stats);
        // Any event besides this timer's own since arming: publish again
        // next period, which also catches work done without a callback.
        // Otherwise stop until the next callback: an idle reactor stays
        // asleep.
        if stats.events > publish.events_at_arm + 1 {
            self.arm_publish(io);
        }
    }
}

impl<H: Handler> Handler for Serving<H> {
    fn on_accept(&mut self, io: &mut Io, listener: Token, conn: Token) {
        self.note_activity(io);
        if let Some(metrics) = &mut self.metrics {
            if metrics.accepted(listener, conn) {
                return;
            }
        }
        if let Some(count) = self.worker_count() {
            count.fetch_add(1, Ordering::Relaxed);
            self.mark_counted(conn);
        }
        self.accepted(io, listener, conn);
    }

    fn on_accepted_fd(&mut self, io: &mut Io, listener: Token, fd: OwnedFd) -> Option<OwnedFd> {
        self.note_activity(io);
        if self
            .metrics
            .as_ref()
            .is_some_and(|m| m.listener == Some(listener))
        {
            return Some(fd);
        }
        self.inner.on_accepted_fd(io, listener, fd)
    }

    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        self.note_activity(io);
        self.inner.on_connect(io, conn);
    }

    fn on_established(&mut self, io: &mut Io, conn: Token) {
        self.note_activity(io);
        self.inner.on_established(io, conn);
    }

    // Inline: the wrapper of every request; as a call it cost about 10
    // instructions per echo (`bench/instructions.sh`).
    #[inline]
    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        self.note_activity(io);
        if self.is_scrape(conn) {
            return self.scrape(io, conn, data);
        }
        self.inner.on_data(io, conn, data)
    }

    fn on_eof(&mut self, io: &mut Io, conn: Token) {
        self.note_activity(io);
        if self.is_scrape(conn) {
            io.close_when_flushed(conn);
            return;
        }
        self.inner.on_eof(io, conn);
    }

    fn on_flushed(&mut self, io: &mut Io, conn: Token) {
        self.note_activity(io);
        if self.is_scrape(conn) {
            return;
        }
        self.inner.on_flushed(io, conn);
    }

    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        self.note_activity(io);
        if self.is_scrape(conn) {
            if let Some(metrics) = &mut self.metrics {
                metrics.closed(conn);
            }
            return;
        }
        self.count_closed(conn);
        self.inner.on_close(io, conn, reason);
    }

    fn on_timer(&mut self, io: &mut Io, timer: TimerId, data: u64) {
        if self.ticker.as_ref().is_some_and(|t| t.owns(timer)) {
            self.tick(io);
        } else if self.publish.as_ref().is_some_and(|p| p.timer == timer) {
            self.publish_now(io);
        } else {
            self.note_activity(io);
            self.inner.on_timer(io, timer, data);
        }
    }

    fn on_signal(&mut self, io: &mut Io, _signal: i32) {
        // Every reactor of the group drains, whichever reads a signal.
        // (`serve` reads them on its own thread, see `threads/watcher.rs`;
        // a reactor reads one only if its caller watches signals there.)
        self.note_activity(io);
        self.group.request_shutdown();
        self.catch_up_shutdowns(io);
    }

    fn on_wake(&mut self, io: &mut Io) {
        self.note_activity(io);
        // Adopt first: a connection handed over before the shutdown was
        // asked for is drained like one accepted before it (its handler
        // sees it, then the drain closes it once flushed), not refused.
        self.adopt_handed_over(io);
        self.catch_up_leaving(io);
        self.catch_up_shutdowns(io);
        self.inner.on_wake(io);
    }

    fn on_child_exit(&mut self, io: &mut Io, pid: u32, status: std::process::ExitStatus) {
        self.note_activity(io);
        self.inner.on_child_exit(io, pid, status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Board;
    use reactor::{Config, Reactor, Stats};

    /// The publish period in these tests.
    const PERIOD: Duration = Duration::from_millis(20);

    /// Timer data: activity (`BUSY`), or the end of the run (`STOP`).
    const BUSY: u64 = 1;
    const STOP: u64 = 2;

    /// Fires `busy` activity timers `gap` apart, then stops at `stop`;
    /// remembers the reactor's wake-ups at its last activity.
    struct Probe {
        busy: u32,
        gap: Duration,
        waits_at_last_busy: u64,
    }

    impl Handler for Probe {
        fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
            data.len()
        }

        fn on_timer(&mut self, io: &mut Io, _timer: TimerId, data: u64) {
            match data {
                BUSY => {
                    self.waits_at_last_busy = io.stats().epoll_waits;
                    self.busy -= 1;
                    if self.busy > 0 {
                        io.add_timer(self.gap, BUSY);
                    }
                }
                _ => io.stop(),
            }
        }
    }

    /// Runs worker 0 of a two-worker group with `probe` until `stop`;
    /// gives the group's board and the reactor's own final counters.
    fn run(probe: Probe, stop: Duration) -> (Board, Stats, u64) {
        let group = Arc::new(Group::new(2));
        let mut serving = Serving::new(probe, 0, group.clone());
        serving.publish_every = PERIOD;
        let mut reactor = Reactor::new(Config::default(), serving).expect("reactor");
        reactor.io().add_timer(Duration::ZERO, BUSY);
        reactor.io().add_timer(stop, STOP);
        reactor.run().expect("run");
        let stats = reactor.io().stats();
        let last_busy = reactor.handler().inner.waits_at_last_busy;
        (group.board(), stats, last_busy)
    }

    #[test]
    fn an_idle_worker_publishes_once_then_sleeps() {
        // One burst of activity, then 300 ms (15 periods) of nothing.
        let probe = Probe {
            busy: 1,
            gap: Duration::ZERO,
            waits_at_last_busy: 0,
        };
        let (board, stats, _) = run(probe, Duration::from_millis(300));
        // Published at the timer's wake-up, the second of the run.
        assert_eq!(board.workers[0].epoll_waits, 2, "{board:?}");
        assert_eq!(board.workers[0].accepted, 0);
        // Wake-ups: the activity, the publish, the stop. A timer that kept
        // ticking while idle would add one every period.
        assert!(stats.epoll_waits <= 4, "{} wake-ups", stats.epoll_waits);
    }

    #[test]
    fn a_busy_worker_publishes_after_its_last_activity() {
        // Activity every 7 ms for about 70 ms, spanning several periods.
        let probe = Probe {
            busy: 10,
            gap: Duration::from_millis(7),
            waits_at_last_busy: 0,
        };
        let (board, stats, last_busy) = run(probe, Duration::from_millis(300));
        let published = board.workers[0].epoll_waits;
        assert!(
            published > last_busy,
            "board ({published} wake-ups) misses the last activity (at {last_busy})"
        );
        assert!(stats.epoll_waits < 30, "{} wake-ups", stats.epoll_waits);
        assert_eq!(board.acceptor, None);
    }
}
