//! When a connection has timed out, and what the requests it leaves
//! unanswered add to the report: the sweep that closes timed-out
//! connections, the tally of requests still in flight at the end, and of
//! chat deliveries lost.
//!
//! Echo and HTTP runs do not drain after the window: a server that stopped
//! answering would hold the run up, and replies measured after the window
//! would not belong to it. What is still in flight is reported instead
//! (`unanswered`), and what each request had waited enters the latency as
//! a lower bound, as does the wait of a request lost to a timeout:
//! otherwise a server that goes silent shows only the latency of the
//! replies it gave before (coordinated omission in a closed loop).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reactor::{Io, Token};

use super::{conn_mut, ChatShared, Conn, Link, Worker};
use crate::chat::ChatClient;
use crate::client::Client;
use crate::recorder::Recorder;

impl<C: Client> Worker<C> {
    pub(super) fn sweep_period(&self) -> Duration {
        let shortest = self.spec().timeout.min(self.spec().connect_timeout);
        (shortest / 4).max(Duration::from_millis(10))
    }

    /// Closes connections that timed out: a connect (and its TLS
    /// handshake) not complete within `--connect-timeout` (the reactor's
    /// handshake timer, set to it, usually closes a handshake first); requests, or a chat join, without progress for
    /// `--timeout`.
    pub(super) fn sweep(&mut self, io: &mut Io) {
        let now = Instant::now();
        let expired: Vec<Token> = self
            .conns
            .iter()
            .flatten()
            .filter(|c| self.timed_out(c, now))
            .map(|c| c.token)
            .collect();
        for token in expired {
            self.error(|e| e.timeouts += 1);
            if conn_mut(&mut self.conns, token).is_some_and(|c| never_answered(c)) {
                self.result.never_answered += 1;
            }
            if conn_mut(&mut self.conns, token).is_some_and(|c| c.link == Link::Handshaking) {
                self.result.handshakes.timeouts += 1;
            }
            if let (Some(conn), true) =
                (conn_mut(&mut self.conns, token), self.window.is_recording())
            {
                conn.in_flight.record_waits(now, &mut self.result.recorder);
            }
            // A connect that timed out is not retried (as a refused one is
            // not): on_close replaces only connections that had connected.
            io.close(token);
        }
    }

    fn timed_out(&self, c: &Conn<C>, now: Instant) -> bool {
        let spec = self.spec();
        if c.link.is_opening() {
            now.saturating_duration_since(c.opened_at) > spec.connect_timeout
        } else if !c.client.is_ready() {
            c.in_flight.idle(now) > spec.timeout
        } else {
            c.in_flight.stalled(now).is_some_and(|s| s > spec.timeout)
        }
    }

    /// Echo and HTTP, at the end: requests still in flight are unanswered;
    /// a connection already without progress for `--timeout` has timed
    /// out, as the next sweep would have found.
    pub(super) fn tally_unanswered(&mut self) {
        let now = Instant::now();
        let timeout = self.spec().timeout;
        let mut timeouts = 0;
        for conn in self.conns.iter().flatten() {
            if conn.in_flight.stalled(now).is_some_and(|s| s > timeout) {
                timeouts += 1;
                if never_answered(conn) {
                    self.result.never_answered += 1;
                }
            }
            if self.window.is_recording() {
                conn.in_flight
                    .record_unanswered(now, &mut self.result.recorder);
            }
        }
        for _ in 0..timeouts {
            self.error(|e| e.timeouts += 1);
        }
    }
}

/// A connection that timed out was never answered: it connected, and not
/// a byte came back. On loopback that is mostly a connection the kernel
/// completed into a full accept queue, which the server never accepted
/// (see `netstat`): the handshake succeeds, the request is queued, and
/// nothing reads it.
fn never_answered<C: Client>(c: &Conn<C>) -> bool {
    c.link == Link::Up && !c.answered
}

/// Chat, at the end: each delivery `client` is owed (of what `sent` counts)
/// and never received waited at least since its sender's latest message,
/// which is recorded as a lower bound of its latency. `now` is in
/// nanoseconds since the run's epoch.
pub(super) fn record_lost_deliveries(
    recorder: &mut Recorder,
    chat: &ChatShared,
    client: &ChatClient,
    sent: &[u64],
    now: u64,
) {
    for (sender, lost) in client.lost_by_sender(sent) {
        // Stored before the count in `sent` (read first, with Acquire): a
        // stamp at least as late as every message counted there.
        let due = chat.last_due[sender as usize].load(Ordering::Relaxed);
        let wait = Duration::from_nanos(now.saturating_sub(due));
        recorder.record_lower_bound(wait, wait, lost);
    }
}
