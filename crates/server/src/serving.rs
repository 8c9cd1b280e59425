//! A server's handler with what every server needs beside it: the
//! `--stats` ticker and, with `--threads`, the coordination between
//! reactors (one receives the signals and tells the others; per-worker
//! figures are gathered for the stats line).

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use reactor::{CloseReason, Handler, Io, Stats, TimerId, Token, Waker};

use crate::stats_line::StatsTicker;

/// What the reactors of one server share.
#[derive(Default)]
pub struct Group {
    /// Every reactor's waker, by worker id (an acceptor thread last).
    pub wakers: OnceLock<Vec<Waker>>,
    /// Shutdown requests so far (a second one forces the exit).
    pub shutdowns: AtomicUsize,
    /// Each worker's latest counters, for the stats line.
    pub board: Mutex<Vec<Stats>>,
    /// Connections handed to each worker by an acceptor thread, not yet
    /// adopted. The acceptor wakes a worker only when its inbox goes from
    /// empty to non-empty: one eventfd write per burst, not per connection.
    pub inboxes: Vec<Mutex<VecDeque<OwnedFd>>>,
    /// Connections open on each worker (for least-connections balancing).
    pub worker_conns: Vec<AtomicUsize>,
}

impl Group {
    /// A group of `workers` reactors.
    pub fn new(workers: usize) -> Group {
        Group {
            board: Mutex::new(vec![Stats::default(); workers]),
            inboxes: (0..workers).map(|_| Mutex::new(VecDeque::new())).collect(),
            worker_conns: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            ..Group::default()
        }
    }

    /// Hands `fd` to worker `worker`, waking it if its inbox was empty. The
    /// connection counts as the worker's from now on, so least-connections
    /// sees connections still in flight.
    pub fn hand_over(&self, worker: usize, fd: OwnedFd) {
        self.worker_conns[worker].fetch_add(1, Ordering::Relaxed);
        let was_empty = {
            let mut inbox = self.inboxes[worker]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let was_empty = inbox.is_empty();
            inbox.push_back(fd);
            was_empty
        };
        if was_empty {
            self.wake(worker);
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

    fn wake_others(&self, me: usize) {
        for (id, waker) in self.wakers.get().into_iter().flatten().enumerate() {
            if id != me {
                let _ = waker.wake();
            }
        }
    }
}

/// Forwards every callback to `inner`, except the ticker's own timer and,
/// in a group, signals and the wake-ups that relay them.
pub struct Serving<H> {
    pub inner: H,
    pub ticker: Option<StatsTicker>,
    /// With `--threads`: this worker's id and the group.
    pub group: Option<(usize, Arc<Group>)>,
    /// Shutdown requests this worker has acted on.
    seen_shutdowns: usize,
}

impl<H> Serving<H> {
    pub fn new(inner: H, group: Option<(usize, Arc<Group>)>) -> Serving<H> {
        Serving {
            inner,
            ticker: None,
            group,
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
        let Some(inbox) = group.inboxes.get(*id) else {
            return;
        };
        let fds: Vec<OwnedFd> = inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for fd in fds {
            match io.adopt(fd) {
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
        let mut board = group.board.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = board.get_mut(*id) {
            *slot = io.stats();
        }
        if *id != 0 {
            drop(board);
            ticker.rearm(io);
            return;
        }
        let mut total = Stats::default();
        for stats in board.iter() {
            total.add(stats);
        }
        let conns: Vec<u64> = board.iter().map(|s| s.active).collect();
        drop(board);
        let max = conns.iter().copied().max().unwrap_or(0);
        let min = conns.iter().copied().min().unwrap_or(0);
        let per_worker: Vec<String> = conns.iter().map(u64::to_string).collect();
        let skew = if min > 0 {
            format!("{:.2}", max as f64 / min as f64)
        } else if max > 0 {
            "inf".to_string()
        } else {
            "1.00".to_string()
        };
        let suffix = format!(" | workers {} (skew {skew})", per_worker.join("/"));
        ticker.tick_with(io, total, &suffix);
    }
}

impl<H: Handler> Handler for Serving<H> {
    fn on_accept(&mut self, io: &mut Io, listener: Token, conn: Token) {
        if let Some(count) = self.worker_count() {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.on_accept(io, listener, conn);
    }

    fn on_accepted_fd(&mut self, io: &mut Io, listener: Token, fd: OwnedFd) -> Option<OwnedFd> {
        self.inner.on_accepted_fd(io, listener, fd)
    }

    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        self.inner.on_connect(io, conn);
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        self.inner.on_data(io, conn, data)
    }

    fn on_eof(&mut self, io: &mut Io, conn: Token) {
        self.inner.on_eof(io, conn);
    }

    fn on_flushed(&mut self, io: &mut Io, conn: Token) {
        self.inner.on_flushed(io, conn);
    }

    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        count_down(self.worker_count());
        self.inner.on_close(io, conn, reason);
    }

    fn on_timer(&mut self, io: &mut Io, timer: TimerId, data: u64) {
        if self.ticker.as_ref().is_some_and(|t| t.owns(timer)) {
            self.tick(io);
        } else {
            self.inner.on_timer(io, timer, data);
        }
    }

    fn on_signal(&mut self, io: &mut Io, signal: i32) {
        match &self.group {
            Some((id, group)) => {
                // One reactor reads the signals; every reactor drains.
                group.shutdowns.fetch_add(1, Ordering::AcqRel);
                group.wake_others(*id);
                self.catch_up_shutdowns(io);
            }
            None => self.inner.on_signal(io, signal),
        }
    }

    fn on_wake(&mut self, io: &mut Io) {
        self.catch_up_shutdowns(io);
        self.adopt_handed_over(io);
        self.inner.on_wake(io);
    }
}

fn count_down(count: Option<&AtomicUsize>) {
    if let Some(count) = count {
        count.fetch_sub(1, Ordering::Relaxed);
    }
}
