//! Live counters of one reactor.

use crate::histogram::Histogram;

/// Counters a reactor keeps as it runs, readable at any time through
/// [`Io::stats`](crate::Io::stats). All counts are totals since start except
/// `active`, the connections open now.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Inbound connections accepted and registered.
    pub accepted: u64,
    /// Outbound connections whose connect completed.
    pub connected: u64,
    /// Connections (inbound and outbound) open now.
    pub active: u64,
    /// Connections closed, for any reason.
    pub closed: u64,
    /// Connections accepted and closed at once because `max_conns` was reached.
    pub rejected: u64,
    /// Times accepting was paused because the process or system ran out of
    /// descriptors (EMFILE/ENFILE) or memory.
    pub accept_pauses: u64,
    /// Bytes read from connections.
    pub bytes_in: u64,
    /// Bytes written to connections.
    pub bytes_out: u64,
    /// `read` calls on connections (including those returning EAGAIN or 0).
    pub reads: u64,
    /// `send` calls on connections.
    pub writes: u64,
    /// `epoll_wait` calls that returned (wake-ups).
    pub epoll_waits: u64,
    /// `epoll_ctl` calls of every kind (ADD, MOD, DEL).
    pub epoll_ctls: u64,
    /// Events returned by `epoll_wait`.
    pub events: u64,
    /// Events dropped because their token was stale (the connection had
    /// closed, perhaps earlier in the same batch).
    pub stale_events: u64,
    /// Times a read stopped at the per-pass read budget with bytes perhaps
    /// left, in every mode: edge mode then serves the connection from the
    /// ready-again list, level and one-shot leave it to the kernel to
    /// report again.
    pub budget_stops: u64,
    /// Times a connection stopped reading because its pending output passed
    /// the high watermark.
    pub backpressure_pauses: u64,
    /// `timerfd_settime` calls: per-connection deadlines are re-armed
    /// lazily, so activity does not add to this.
    pub timer_arms: u64,
    /// Nanoseconds spent outside `epoll_wait`: from each wake-up to the end
    /// of its pass (dispatch, ready-again list, timers, flushes), summed.
    /// Divided by wall time it is the thread's busy share. Costs no clock
    /// read of its own in most passes: the pass's end is the read that
    /// checks the due timers (vDSO, no syscall), read again only if a
    /// timer fired or the unflushed list was written after it; an idle
    /// reactor has no passes, so measuring adds no wake-up.
    pub busy_ns: u64,
    /// Each pass's busy time (the parts of `busy_ns`), in a histogram:
    /// one bucket bump per pass, on the clock read `busy_ns` needs anyway.
    pub passes: Histogram,
    /// Transport handshakes completed (connections with a transport only).
    pub handshakes: u64,
    /// Closes by cause.
    pub closes: CloseCounts,
}

/// Connections closed, by cause.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct CloseCounts {
    /// The peer closed (EOF) or reset the connection.
    pub client: u64,
    /// Closed after no traffic for the idle timeout.
    pub idle_timeout: u64,
    /// Closed because the peer stopped taking output.
    pub write_timeout: u64,
    /// Closed for exceeding the output (or input) buffer limit.
    pub buffer_limit: u64,
    /// Closed by a socket error or a failed connect.
    pub error: u64,
    /// Closed by the protocol, or by a shutdown.
    pub local: u64,
    /// Closed because the transport rejected the peer's bytes (a failed
    /// TLS handshake, a corrupt record).
    pub handshake_failed: u64,
    /// Closed because the transport's handshake took too long.
    pub handshake_timeout: u64,
}

impl CloseCounts {
    pub(crate) fn count(&mut self, reason: crate::CloseReason) {
        use crate::CloseReason as R;
        match reason {
            R::PeerClosed | R::Reset => self.client += 1,
            R::IdleTimeout => self.idle_timeout += 1,
            R::WriteTimeout => self.write_timeout += 1,
            R::OutputLimit | R::InputLimit => self.buffer_limit += 1,
            R::Error(_) | R::ConnectFailed(_) => self.error += 1,
            R::Local | R::Shutdown | R::DrainTimeout => self.local += 1,
            R::Transport => self.handshake_failed += 1,
            R::HandshakeTimeout => self.handshake_timeout += 1,
        }
    }

    /// The counts accumulated since `earlier`.
    pub fn since(&self, earlier: &CloseCounts) -> CloseCounts {
        CloseCounts {
            client: self.client - earlier.client,
            idle_timeout: self.idle_timeout - earlier.idle_timeout,
            write_timeout: self.write_timeout - earlier.write_timeout,
            buffer_limit: self.buffer_limit - earlier.buffer_limit,
            error: self.error - earlier.error,
            local: self.local - earlier.local,
            handshake_failed: self.handshake_failed - earlier.handshake_failed,
            handshake_timeout: self.handshake_timeout - earlier.handshake_timeout,
        }
    }
}

impl Stats {
    /// Adds another reactor's counters (for a total over threads).
    pub fn add(&mut self, other: &Stats) {
        let mut total = *self;
        total.accepted += other.accepted;
        total.connected += other.connected;
        total.active += other.active;
        total.closed += other.closed;
        total.rejected += other.rejected;
        total.accept_pauses += other.accept_pauses;
        total.bytes_in += other.bytes_in;
        total.bytes_out += other.bytes_out;
        total.reads += other.reads;
        total.writes += other.writes;
        total.epoll_waits += other.epoll_waits;
        total.epoll_ctls += other.epoll_ctls;
        total.events += other.events;
        total.stale_events += other.stale_events;
        total.budget_stops += other.budget_stops;
        total.backpressure_pauses += other.backpressure_pauses;
        total.timer_arms += other.timer_arms;
        total.busy_ns += other.busy_ns;
        total.passes.add(&other.passes);
        total.handshakes += other.handshakes;
        let (c, o) = (&mut total.closes, &other.closes);
        c.client += o.client;
        c.idle_timeout += o.idle_timeout;
        c.write_timeout += o.write_timeout;
        c.buffer_limit += o.buffer_limit;
        c.error += o.error;
        c.local += o.local;
        c.handshake_failed += o.handshake_failed;
        c.handshake_timeout += o.handshake_timeout;
        *self = total;
    }

    /// The counters accumulated since `earlier` (`active` is taken as is).
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            accepted: self.accepted - earlier.accepted,
            connected: self.connected - earlier.connected,
            active: self.active,
            closed: self.closed - earlier.closed,
            rejected: self.rejected - earlier.rejected,
            accept_pauses: self.accept_pauses - earlier.accept_pauses,
            bytes_in: self.bytes_in - earlier.bytes_in,
            bytes_out: self.bytes_out - earlier.bytes_out,
            reads: self.reads - earlier.reads,
            writes: self.writes - earlier.writes,
            epoll_waits: self.epoll_waits - earlier.epoll_waits,
            epoll_ctls: self.epoll_ctls - earlier.epoll_ctls,
            events: self.events - earlier.events,
            stale_events: self.stale_events - earlier.stale_events,
            budget_stops: self.budget_stops - earlier.budget_stops,
            backpressure_pauses: self.backpressure_pauses - earlier.backpressure_pauses,
            timer_arms: self.timer_arms - earlier.timer_arms,
            busy_ns: self.busy_ns - earlier.busy_ns,
            passes: self.passes.since(&earlier.passes),
            handshakes: self.handshakes - earlier.handshakes,
            closes: self.closes.since(&earlier.closes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(base: u64) -> Stats {
        let mut s = Stats {
            accepted: base + 1,
            active: base + 2,
            events: base + 3,
            epoll_waits: base + 4,
            timer_arms: base + 5,
            busy_ns: base + 6,
            ..Stats::default()
        };
        s.closes.local = base + 7;
        s
    }

    #[test]
    fn add_sums_every_counter_including_busy_time() {
        let mut total = sample(10);
        total.add(&sample(100));
        assert_eq!(total.busy_ns, 16 + 106);
        assert_eq!(total.accepted, 11 + 101);
        assert_eq!(total.active, 12 + 102);
        assert_eq!(total.closes.local, 17 + 107);
    }

    #[test]
    fn since_subtracts_counters_but_keeps_active() {
        let delta = sample(100).since(&sample(10));
        assert_eq!(delta.busy_ns, 90);
        assert_eq!(delta.events, 90);
        assert_eq!(delta.active, 102);
        assert_eq!(delta.closes.local, 90);
    }
}
