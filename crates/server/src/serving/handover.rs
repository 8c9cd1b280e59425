//! A worker's connection count and the hand-over from an acceptor thread:
//! which connections are counted in
//! [`Group::worker_conns`](crate::group::Group::worker_conns) (and so
//! counted down at their close), adopting the connections handed over,
//! and the acceptor's and workers' leaving in turn at shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};

use reactor::{Handler, Io, Token};

use super::Serving;
use crate::group;

impl<H: Handler> Serving<H> {
    /// Remembers that `conn` is in this worker's connection count.
    pub(super) fn mark_counted(&mut self, conn: Token) {
        let slot = conn.index();
        if self.counted.len() <= slot {
            self.counted.resize(slot + 1, None);
        }
        self.counted[slot] = Some(conn);
    }

    /// Counts `conn` down if it was counted up.
    pub(super) fn count_closed(&mut self, conn: Token) {
        let slot = conn.index();
        if self.counted.get(slot) == Some(&Some(conn)) {
            self.counted[slot] = None;
            count_down(self.worker_count());
        }
    }

    /// Takes the connections an acceptor thread handed to this worker.
    pub(super) fn adopt_handed_over(&mut self, io: &mut Io)
    where
        H: Handler,
    {
        if !self.is_worker() {
            return;
        }
        for fd in self.group.take_handed_over(self.id) {
            match io.adopt(fd) {
                // Adopted during a drain, it joined the drain (closed, or
                // lingering until the peer's FIN): not a connection to
                // serve. Its close is reported, which counts it down.
                Ok(conn) if io.is_draining() => self.mark_counted(conn),
                // Handed-over connections have no listener here: the
                // connection's own token stands in for it. (Counted in
                // `worker_conns` at hand-over already.)
                Ok(conn) => {
                    self.mark_counted(conn);
                    self.accepted(io, conn, conn);
                }
                Err(e) => {
                    count_down(self.worker_count());
                    tracing::warn!("cannot adopt a connection: {e}");
                }
            }
        }
    }

    /// Acts on [`Group::stop_accepting`](crate::group::Group::stop_accepting): the acceptor thread stops, then
    /// moves the workers on; a worker stops once they are moved on.
    pub(super) fn catch_up_leaving(&mut self, io: &mut Io) {
        let phase = self.group.leaving.load(Ordering::Acquire);
        if self.is_worker() {
            if phase >= group::ALL_LEAVE {
                io.stop_accepting();
            }
        } else if phase == group::ACCEPTOR_LEAVES {
            io.stop_accepting();
            // Every connection this thread accepted is in an inbox now
            // (hand-overs are synchronous): a worker that sees the new
            // phase sees them too, and adopts them before it can leave.
            self.group
                .leaving
                .store(group::ALL_LEAVE, Ordering::Release);
            for worker in 0..self.group.workers() {
                self.group.wake(worker);
            }
        }
    }
}

pub(super) fn count_down(count: Option<&AtomicUsize>) {
    if let Some(count) = count {
        count.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::tests::accepted_pair;
    use crate::group::Group;
    use reactor::{CloseReason, Config, Exit, Reactor, TimerId};
    use std::io::Read;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Timer data: the end of the run.
    const STOP: u64 = 2;

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
        let serving = Serving::new(Seen::default(), 0, group.clone());
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

    /// Connects once to a listener of its own (the outbound side of a
    /// proxy or of chat's Redis link) and accepts it; stops when both
    /// sides have closed.
    #[derive(Default)]
    struct Outbound {
        closes: usize,
    }

    impl Handler for Outbound {
        fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
            io.close(conn);
        }

        fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
            data.len()
        }

        fn on_close(&mut self, io: &mut Io, _conn: Token, _reason: CloseReason) {
            self.closes += 1;
            if self.closes == 2 {
                io.stop();
            }
        }

        fn on_timer(&mut self, io: &mut Io, _timer: TimerId, _data: u64) {
            io.stop();
        }
    }

    /// Regression: every close counted this worker's connections down,
    /// outbound ones too, which were never counted up: the count wrapped
    /// below zero, and `--balance least-connections` sent every new
    /// connection elsewhere (the proxy, chat with `--redis`).
    #[test]
    fn an_outbound_connection_is_not_counted_down() {
        let group = Arc::new(Group::new(2));
        let serving = Serving::new(Outbound::default(), 0, group.clone());
        let mut reactor = Reactor::new(Config::default(), serving).expect("reactor");
        let io = reactor.io();
        let listener = io.listen("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = io.local_addr(listener).unwrap();
        io.connect(addr, None).unwrap();
        io.add_timer(Duration::from_secs(10), STOP);
        assert_eq!(reactor.run().expect("run"), Exit::Stopped);
        assert_eq!(reactor.handler().inner.closes, 2, "both sides closed");
        assert_eq!(group.worker_conns[0].load(Ordering::Relaxed), 0);
    }
}
