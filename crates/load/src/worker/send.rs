//! Sending requests: the closed loop keeps `--pipeline` requests in flight
//! on each connection; the open loop sends on a fixed schedule, whatever
//! the replies do, round-robin over ready connections. Both draw from the
//! `--requests` count when there is one.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reactor::{Io, Token};

use super::{conn_mut, Link, Phase, Worker, TIMER_PACE};
use crate::client::Client;
use crate::spec::Stop;

/// Open-loop sends issued in one timer callback before yielding to the
/// loop, so a schedule that fell behind cannot starve reading.
const MAX_SENDS_PER_TICK: usize = 4096;

/// Open loop: this thread's share of the schedule. Slot `k` is due `k /
/// rate` seconds after the start, whatever happened to the slots before.
pub(super) struct Schedule {
    /// Requests per second this thread carries (0: none, e.g. a chat
    /// thread without senders).
    rate: f64,
    start: Instant,
    /// The next slot.
    slot: u64,
}

impl Schedule {
    pub(super) fn new(rate: f64, now: Instant) -> Schedule {
        Schedule {
            rate,
            start: now,
            slot: 0,
        }
    }

    /// This thread has slots to send.
    pub(super) fn is_carried(&self) -> bool {
        self.rate > 0.0
    }

    pub(super) fn start(&mut self, now: Instant) {
        self.start = now;
    }

    /// When the next slot is due.
    fn due(&self) -> Instant {
        self.start + Duration::from_secs_f64(self.slot as f64 / self.rate)
    }
}

impl<C: Client> Worker<C> {
    /// Claims one request under `--requests`; always true for timed runs.
    fn claim(&mut self) -> bool {
        let Stop::Requests(n) = self.spec().stop else {
            return true;
        };
        if self.requests_exhausted {
            return false;
        }
        if self.shared.claimed.fetch_add(1, Ordering::Relaxed) < n {
            true
        } else {
            self.requests_exhausted = true;
            false
        }
    }

    /// Sends `count` requests on `token` in one write, stamped with their
    /// intended send time.
    fn send(&mut self, io: &mut Io, token: Token, intended: Instant, count: usize) -> bool {
        let Some(conn) = conn_mut(&mut self.conns, token) else {
            return false;
        };
        self.out.clear();
        conn.client
            .append_requests(&mut self.out, count, intended, &self.shared);
        let recording = self.window.is_recording();
        if recording {
            self.window_sent += count as u64;
        }
        if C::REPLIES {
            let now = Instant::now();
            for _ in 0..count {
                conn.in_flight.push(intended, now);
            }
            self.in_flight += count as u64;
        }
        let len = self.out.len() as u64;
        if io.send(token, &self.out) && recording {
            self.result.recorder.bytes_out += len;
        }
        true
    }

    /// Closed loop: keeps `pipeline` requests in flight on `token`, all
    /// that are missing sent in one write.
    pub(super) fn fill_pipeline(&mut self, io: &mut Io, token: Token) {
        if self.spec().rate.is_some() || self.phase == Phase::Done {
            return;
        }
        let pipeline = self.spec().pipeline;
        // Requests wait until every thread's connections are open (see
        // `start_requests`): a single-threaded server that accepts one
        // connection per pass of its event loop (nginx, `multi_accept
        // off`) slows its accepting in proportion to the load the first
        // connections put on it. At 10,000 connections x 16 in flight
        // nginx accepted ~25 a second, its accept queue overflowed, and
        // the connect phase never ended. With `--new-conn-per-request` the
        // churn of connections would not let it end either.
        let held = matches!(self.phase, Phase::Connecting | Phase::Connected);
        let Some(conn) = self.conn(token) else { return };
        if held || conn.link != Link::Up || !conn.client.takes_requests() {
            return;
        }
        let missing = pipeline.saturating_sub(conn.in_flight.len());
        let mut claimed = 0;
        while claimed < missing && self.claim() {
            claimed += 1;
        }
        if claimed > 0 {
            self.send(io, token, Instant::now(), claimed);
        }
        if claimed < missing {
            self.check_requests_done(io);
        }
    }

    /// Closed loop: every thread's connections are open (the run
    /// starts); every connection fills its pipeline.
    pub(super) fn start_requests(&mut self, io: &mut Io) {
        if self.spec().rate.is_some() {
            return;
        }
        let up: Vec<Token> = self
            .conns
            .iter()
            .flatten()
            .filter(|c| c.link == Link::Up)
            .map(|c| c.token)
            .collect();
        for token in up {
            self.fill_pipeline(io, token);
        }
    }

    /// Open loop: sends every request whose slot on the schedule is due,
    /// round-robin over ready connections, and re-arms for the next.
    pub(super) fn pace(&mut self, io: &mut Io) {
        if !self.phase.is_sending() || !self.schedule.is_carried() {
            return;
        }
        let now = Instant::now();
        let mut sent = 0;
        loop {
            let due = self.schedule.due();
            if due > now {
                io.add_timer(due - now, TIMER_PACE);
                return;
            }
            if sent == MAX_SENDS_PER_TICK {
                io.add_timer(Duration::ZERO, TIMER_PACE);
                return;
            }
            if !self.claim() {
                self.check_requests_done(io);
                return;
            }
            self.schedule.slot += 1;
            sent += 1;
            if self.ready.is_empty() {
                // No connection to carry this slot: it is missed, and
                // counted as lost rather than silently skipped.
                self.result.lost += 1;
                continue;
            }
            let token = self.ready[self.schedule.slot as usize % self.ready.len()];
            if !self.send(io, token, due, 1) {
                // Its connection was displaced to `closing`: the slot is
                // missed, and counted.
                self.result.lost += 1;
            }
        }
    }

    /// `--requests`: the run ends when the count is used up and every
    /// request of this thread answered.
    pub(super) fn check_requests_done(&mut self, io: &mut Io) {
        if self.requests_exhausted && self.in_flight == 0 {
            self.end(io);
        }
    }
}
