//! Live counters of one reactor.

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
    /// Times a connection was stopped by the per-pass read budget and
    /// served again on the next pass (edge mode's ready-again list).
    pub budget_stops: u64,
    /// Times a connection stopped reading because its pending output passed
    /// the high watermark.
    pub backpressure_pauses: u64,
}

impl Stats {
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
        }
    }
}
