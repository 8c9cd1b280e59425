//! What the reactors of one server share: their wakers, the shutdown
//! requests, each one's published figures (the [`Board`]) and, under
//! `--accept dispatch`, the inboxes of connections handed to workers.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use reactor::{Stats, Waker};

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
    /// A graceful restart's hand-over ([`Group::stop_accepting`]):
    /// [`SERVING`], [`ACCEPTOR_LEAVES`] or [`ALL_LEAVE`].
    pub leaving: AtomicUsize,
}

/// [`Group::leaving`]: every reactor accepts.
pub const SERVING: usize = 0;
/// [`Group::leaving`]: the acceptor thread stops accepting first; it
/// moves the group on to [`ALL_LEAVE`] once it has, so that no connection
/// it accepts reaches a worker that has already left.
pub const ACCEPTOR_LEAVES: usize = 1;
/// [`Group::leaving`]: every reactor stops accepting and serves on.
pub const ALL_LEAVE: usize = 2;

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

    /// Takes the connections handed to worker `worker` so far.
    pub(crate) fn take_handed_over(&self, worker: usize) -> VecDeque<OwnedFd> {
        std::mem::take(&mut self.inbox(worker).fds)
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

    /// Every reactor stops accepting and serves its connections until they
    /// are gone ([`reactor::Io::stop_accepting`]): another process serves
    /// the same sockets now. With an acceptor thread, it stops first (and
    /// then the workers, see [`ACCEPTOR_LEAVES`]).
    pub fn stop_accepting(&self) {
        let wakers = self.wakers.get().map_or(0, Vec::len);
        if wakers > self.workers() {
            self.leaving.store(ACCEPTOR_LEAVES, Ordering::Release);
            self.wake(self.workers());
        } else {
            self.leaving.store(ALL_LEAVE, Ordering::Release);
            for worker in 0..self.workers() {
                self.wake(worker);
            }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Duration;

    /// A connected pair over loopback: the server side, non-blocking as
    /// an acceptor hands it over, and the client.
    pub(crate) fn accepted_pair() -> (OwnedFd, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).unwrap();
        (server.into(), client)
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
