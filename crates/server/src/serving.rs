//! A server's handler with what every server needs beside it: the
//! `--stats` ticker and, with `--threads`, the coordination between
//! reactors (shutdown requests relayed to every reactor, connections
//! handed over by an acceptor thread; per-worker figures are gathered for
//! the stats line and `/metrics`).
//!
//! # How current the per-worker figures are
//!
//! Each reactor thread publishes its [`Stats`] to [`Group::board`]. With
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

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reactor::{CloseReason, Handler, Io, Stats, TimerId, Token, Waker};

use crate::stats_line::StatsTicker;

/// How often, at most, a worker publishes its figures when `--stats` is
/// off (see the module docs).
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// The latest published figures of each reactor of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Board {
    /// By worker id.
    pub workers: Vec<Stats>,
    /// The acceptor thread's, with `--accept dispatch` (once published).
    pub acceptor: Option<Stats>,
}

impl Board {
    /// The process total: every worker's and the acceptor's.
    pub fn total(&self) -> Stats {
        let mut total = self.acceptor.unwrap_or_default();
        for stats in &self.workers {
            total.add(stats);
        }
        total
    }
}

/// What the reactors of one server share.
#[derive(Default)]
pub struct Group {
    /// Every reactor's waker, by worker id (an acceptor thread last).
    pub wakers: OnceLock<Vec<Waker>>,
    /// Shutdown requests so far (a second one forces the exit); see
    /// [`Group::request_shutdown`].
    pub shutdowns: AtomicUsize,
    /// Each reactor's latest published counters, for the stats line and
    /// `/metrics`; see [`Group::publish`].
    pub board: Mutex<Board>,
    /// Connections handed to each worker by an acceptor thread, not yet
    /// adopted. The acceptor wakes a worker only when its inbox goes from
    /// empty to non-empty: one eventfd write per burst, not per connection.
    pub inboxes: Vec<Mutex<Inbox>>,
    /// Connections open on each worker (for least-connections balancing).
    pub worker_conns: Vec<AtomicUsize>,
}

/// One worker's queue of handed-over connections.
#[derive(Default)]
pub struct Inbox {
    fds: VecDeque<OwnedFd>,
    /// The worker has exited: nothing put here would ever be adopted.
    closed: bool,
}

impl Group {
    /// A group of `workers` reactors.
    pub fn new(workers: usize) -> Group {
        Group {
            board: Mutex::new(Board {
                workers: vec![Stats::default(); workers],
                acceptor: None,
            }),
            inboxes: (0..workers).map(|_| Mutex::new(Inbox::default())).collect(),
            worker_conns: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            ..Group::default()
        }
    }

    /// Hands `fd` to worker `worker`, waking it if its inbox was empty. The
    /// connection counts as the worker's from now on, so least-connections
    /// sees connections still in flight.
    ///
    /// # Errors
    /// The worker has exited ([`Group::close_inbox`]): `fd` comes back.
    pub fn hand_over(&self, worker: usize, fd: OwnedFd) -> Result<(), OwnedFd> {
        let was_empty = {
            let mut inbox = self.inbox(worker);
            if inbox.closed {
                return Err(fd);
            }
            self.worker_conns[worker].fetch_add(1, Ordering::Relaxed);
            let was_empty = inbox.fds.is_empty();
            inbox.fds.push_back(fd);
            was_empty
        };
        if was_empty {
            self.wake(worker);
        }
        Ok(())
    }

    /// Called by worker `worker`'s thread when it exits: later hand-overs
    /// to it fail, and connections still queued are closed. (During a
    /// shutdown the acceptor may hand one over after a worker with nothing
    /// left to drain has gone; it must not wait there unserved.)
    pub fn close_inbox(&self, worker: usize) {
        let left = {
            let mut inbox = self.inbox(worker);
            inbox.closed = true;
            std::mem::take(&mut inbox.fds)
        };
        self.worker_conns[worker].fetch_sub(left.len(), Ordering::Relaxed);
    }

    fn inbox(&self, worker: usize) -> std::sync::MutexGuard<'_, Inbox> {
        self.inboxes[worker]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Asks every reactor of the group to shut down: the first request
    /// drains, the second forces the exit. Each acts on it in its next
    /// `on_wake`.
    pub fn request_shutdown(&self) {
        self.shutdowns.fetch_add(1, Ordering::AcqRel);
        for waker in self.wakers.get().into_iter().flatten() {
            let _ = waker.wake();
        }
    }

    /// Wakes worker `worker` (its `on_wake` runs soon on its thread).
    pub fn wake(&self, worker: usize) {
        if let Some(waker) = self.wakers.get().and_then(|w| w.get(worker)) {
            let _ = waker.wake();
        }
    }

    /// How many workers (acceptor thread not counted).
    pub fn workers(&self) -> usize {
        self.inboxes.len()
    }

    /// Publishes reactor `id`'s counters: a worker's, or (`id` past the
    /// last worker) the acceptor thread's. Only that reactor's thread
    /// publishes them, so each entry only moves forward.
    pub fn publish(&self, id: usize, stats: Stats) {
        let mut board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        match board.workers.get_mut(id) {
            Some(slot) => *slot = stats,
            None => board.acceptor = Some(stats),
        }
    }

    /// A copy of the board.
    pub fn board(&self) -> Board {
        self.board.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Forwards every callback to `inner`, except the ticker's own timer and,
/// in a group, signals and the wake-ups that relay them.
pub struct Serving<H> {
    pub inner: H,
    pub ticker: Option<StatsTicker>,
    /// With `--threads`: this worker's id and the group.
    pub group: Option<(usize, Arc<Group>)>,
    /// The publish timer's period ([`PUBLISH_EVERY`]; shorter in tests).
    pub publish_every: Duration,
    /// The armed publish timer, if any.
    publish: Option<Publish>,
    /// Shutdown requests this worker has acted on.
    seen_shutdowns: usize,
}

/// An armed publish timer, and the reactor's event count when it was
/// armed (to tell, when it fires, whether anything else happened).
struct Publish {
    timer: TimerId,
    events_at_arm: u64,
}

impl<H> Serving<H> {
    pub fn new(inner: H, group: Option<(usize, Arc<Group>)>) -> Serving<H> {
        Serving {
            inner,
            ticker: None,
            group,
            publish_every: PUBLISH_EVERY,
            publish: None,
            seen_shutdowns: 0,
        }
    }

    fn worker_count(&self) -> Option<&AtomicUsize> {
        let (id, group) = self.group.as_ref()?;
        group.worker_conns.get(*id)
    }

    /// Takes the connections an acceptor thread handed to this worker.
    fn adopt_handed_over(&mut self, io: &mut Io)
    where
        H: Handler,
    {
        let Some((id, group)) = &self.group else {
            return;
        };
        if *id >= group.workers() {
            return;
        }
        let fds = std::mem::take(&mut group.inbox(*id).fds);
        for fd in fds {
            match io.adopt(fd) {
                // Adopted during a drain, it joined the drain (closed, or
                // lingering until the peer's FIN): not a connection to
                // serve. Its close is reported, which counts it down.
                Ok(_) if io.is_draining() => {}
                // Handed-over connections have no listener here: the
                // connection's own token stands in for it. (Counted in
                // `worker_conns` at hand-over already.)
                Ok(conn) => self.inner.on_accept(io, conn, conn),
                Err(e) => {
                    count_down(self.worker_count());
                    tracing::warn!("cannot adopt a connection: {e}");
                }
            }
        }
    }

    fn catch_up_shutdowns(&mut self, io: &mut Io) {
        let Some((_, group)) = &self.group else {
            return;
        };
        let requested = group.shutdowns.load(Ordering::Acquire);
        while self.seen_shutdowns < requested {
            self.seen_shutdowns += 1;
            io.shutdown();
        }
    }

    fn tick(&mut self, io: &mut Io) {
        let Some(ticker) = &mut self.ticker else {
            return;
        };
        let Some((id, group)) = &self.group else {
            ticker.tick(io);
            return;
        };
        group.publish(*id, io.stats());
        if *id != 0 {
            ticker.rearm(io);
            return;
        }
        let board = group.board();
        ticker.tick_workers(io, board.total(), &board.workers);
    }

    /// Called on every callback: arms the publish timer if a group needs
    /// this reactor's figures and none is armed (with `--stats` the ticker
    /// publishes). Cheap when armed: the first test fails.
    #[inline]
    fn note_activity(&mut self, io: &mut Io) {
        if self.publish.is_none() && self.ticker.is_none() && self.group.is_some() {
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
        if let Some((id, group)) = &self.group {
            group.publish(*id, stats);
        }
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
        if let Some(count) = self.worker_count() {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.on_accept(io, listener, conn);
    }

    fn on_accepted_fd(&mut self, io: &mut Io, listener: Token, fd: OwnedFd) -> Option<OwnedFd> {
        self.note_activity(io);
        self.inner.on_accepted_fd(io, listener, fd)
    }

    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        self.note_activity(io);
        self.inner.on_connect(io, conn);
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        self.note_activity(io);
        self.inner.on_data(io, conn, data)
    }

    fn on_eof(&mut self, io: &mut Io, conn: Token) {
        self.note_activity(io);
        self.inner.on_eof(io, conn);
    }

    fn on_flushed(&mut self, io: &mut Io, conn: Token) {
        self.note_activity(io);
        self.inner.on_flushed(io, conn);
    }

    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        self.note_activity(io);
        count_down(self.worker_count());
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

    fn on_signal(&mut self, io: &mut Io, signal: i32) {
        self.note_activity(io);
        match &self.group {
            // In a group every reactor drains, whichever reads a signal.
            // (`serve_threads` reads them on its own thread, see
            // `threads/watcher.rs`.)
            Some((_, group)) => {
                group.request_shutdown();
                self.catch_up_shutdowns(io);
            }
            None => self.inner.on_signal(io, signal),
        }
    }

    fn on_wake(&mut self, io: &mut Io) {
        self.note_activity(io);
        // Adopt first: a connection handed over before the shutdown was
        // asked for is drained like one accepted before it (its handler
        // sees it, then the drain closes it once flushed), not refused.
        self.adopt_handed_over(io);
        self.catch_up_shutdowns(io);
        self.inner.on_wake(io);
    }
}

fn count_down(count: Option<&AtomicUsize>) {
    if let Some(count) = count {
        count.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor::{Config, Exit, Reactor};
    use std::io::Read;
    use std::time::Instant;

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

    /// Runs a one-worker group's reactor with `probe` until `stop`; gives
    /// the group's board and the reactor's own final counters.
    fn run(probe: Probe, stop: Duration) -> (Board, Stats, u64) {
        let group = Arc::new(Group::new(1));
        let mut serving = Serving::new(probe, Some((0, group.clone())));
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

    /// Records what a worker's handler hears of its connections.
    #[derive(Default)]
    struct Seen {
        accepted: usize,
        closes: Vec<CloseReason>,
    }

    impl Handler for Seen {
        fn on_accept(&mut self, _io: &mut Io, _listener: Token, _conn: Token) {
            self.accepted += 1;
        }

        fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
            data.len()
        }

        fn on_close(&mut self, _io: &mut Io, _conn: Token, reason: CloseReason) {
            self.closes.push(reason);
        }

        fn on_timer(&mut self, io: &mut Io, _timer: TimerId, _data: u64) {
            // The watchdog.
            io.stop();
        }
    }

    /// A connected pair over loopback: the server side, non-blocking as
    /// an acceptor hands it over, and the client.
    fn accepted_pair() -> (OwnedFd, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).unwrap();
        (server.into(), client)
    }

    /// Regression (issue 14, `--accept dispatch` hung on shutdown): a
    /// worker with no connection that found a handed-over connection and
    /// the shutdown in one wake-up drained first (nothing to drain, so no
    /// deadline) and then adopted the connection, which nothing marked to
    /// close: the worker never exited. The inbox is filled and the
    /// shutdown asked for before the worker runs, so its first wake-up
    /// sees both.
    #[test]
    fn a_connection_handed_over_with_the_shutdown_is_drained() {
        let group = Arc::new(Group::new(1));
        let serving = Serving::new(Seen::default(), Some((0, group.clone())));
        let mut reactor = Reactor::new(Config::default(), serving).expect("reactor");
        let _ = group.wakers.set(vec![reactor.io().waker()]);
        let (fd, mut client) = accepted_pair();
        group.hand_over(0, fd).expect("worker 0 is running");
        group.request_shutdown();
        // Far beyond the drain; stops the reactor if it hangs.
        reactor.io().add_timer(Duration::from_secs(10), STOP);

        let started = Instant::now();
        assert_eq!(reactor.run().expect("run"), Exit::Graceful);
        // Idle, it closes at once: no waiting for the drain timeout (5 s).
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let seen = &reactor.handler().inner;
        assert_eq!(seen.accepted, 1, "handed over before the shutdown: served");
        assert_eq!(seen.closes, [CloseReason::Shutdown]);
        assert_eq!(group.worker_conns[0].load(Ordering::Relaxed), 0);
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).expect("EOF from the drain");
        assert!(rest.is_empty());
    }

    #[test]
    fn a_closed_inbox_gives_connections_back_and_closes_those_queued() {
        let group = Group::new(2);
        let (queued, mut client) = accepted_pair();
        group.hand_over(1, queued).expect("open inbox");
        assert_eq!(group.worker_conns[1].load(Ordering::Relaxed), 1);
        group.close_inbox(1);
        assert_eq!(group.worker_conns[1].load(Ordering::Relaxed), 0);
        // The queued connection was closed: its client sees EOF.
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(client.read(&mut [0; 8]).expect("EOF"), 0);
        let (late, _client) = accepted_pair();
        assert!(group.hand_over(1, late).is_err(), "worker 1 has exited");
        assert_eq!(group.worker_conns[1].load(Ordering::Relaxed), 0);
        let (other, _client) = accepted_pair();
        assert!(group.hand_over(0, other).is_ok());
    }

    #[test]
    fn the_board_keeps_workers_and_the_acceptor_apart() {
        let group = Group::new(2);
        let stats = |accepted| Stats {
            accepted,
            busy_ns: 10,
            ..Stats::default()
        };
        group.publish(1, stats(5));
        group.publish(2, stats(0)); // the acceptor: past the last worker
        let board = group.board();
        assert_eq!(board.workers, vec![Stats::default(), stats(5)]);
        assert_eq!(board.acceptor, Some(stats(0)));
        assert_eq!(board.total().accepted, 5);
        assert_eq!(board.total().busy_ns, 20);
    }
}
