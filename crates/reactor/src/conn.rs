//! What the reactor keeps per registered socket, and the epoll interest
//! that follows from it.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::Instant;

use rustix::event::epoll::EventFlags;

use crate::buffer::Buffer;
use crate::close_reason::CloseReason;
use crate::config::Trigger;
use crate::output::Output;
use crate::timer::TimerId;
use crate::transport::Transport;

/// A slab entry: a listening socket or a connection.
// Listeners are a handful and connections are thousands: boxing `Conn` to
// shrink listener slots would cost every connection an allocation and a
// pointer chase.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Entry {
    Listener(Listener),
    Conn(Conn),
}

pub(crate) struct Listener {
    pub(crate) fd: OwnedFd,
    /// Deregistered after EMFILE/ENFILE until the retry timer fires, and
    /// until the re-add succeeds.
    pub(crate) paused: bool,
    /// Re-adds to the epoll set that failed in a row (each is retried).
    pub(crate) failed_resumes: u32,
    /// Registered with `EPOLLEXCLUSIVE` (shared with other reactors).
    pub(crate) exclusive: bool,
    /// Its connections skip `Config::transport` ([`Io::listen_plain`](crate::Io::listen_plain)).
    pub(crate) plain: bool,
    /// Bound with `SO_REUSEPORT`: at shutdown it leaves the epoll set but
    /// stays open until the reactor is dropped, because closing a
    /// reuseport socket resets the connections queued on it, which the
    /// kernel would otherwise have handed to a sibling.
    pub(crate) reuseport: bool,
}

impl Listener {
    /// The interest it is registered with. EPOLLEXCLUSIVE cannot be
    /// changed with EPOLL_CTL_MOD, so pausing is delete and re-add.
    pub(crate) fn interest(&self) -> EventFlags {
        if self.exclusive {
            EventFlags::IN | EventFlags::EXCLUSIVE
        } else {
            EventFlags::IN
        }
    }
}

/// One connection. Without pending input or output it holds no heap
/// memory: both buffers are `None` and come from the pool only when needed.
pub(crate) struct Conn {
    pub(crate) fd: OwnedFd,
    /// Bytes the protocol has not consumed yet.
    pub(crate) input: Option<Buffer>,
    /// Bytes the kernel has not accepted yet.
    pub(crate) output: Output,
    /// The interest last given to epoll.
    pub(crate) registered: EventFlags,
    /// One-shot mode: the registration is armed (no event since last MOD).
    pub(crate) armed: bool,
    /// An outbound connect is in progress.
    pub(crate) connecting: bool,
    /// Backpressure: output is above the high watermark.
    pub(crate) read_paused: bool,
    /// Reading was turned away by backpressure when input may have been
    /// waiting (an event came, or a full read was cut short): in edge mode
    /// no new edge will report that input, so the connection is read again
    /// when backpressure ends. Without it, the socket was drained when
    /// reading paused, and resuming costs nothing (no read to find EAGAIN).
    pub(crate) read_missed: bool,
    /// The protocol holds reading ([`Io::pause_reading`](crate::Io::pause_reading)):
    /// e.g. a proxy whose other side cannot take more.
    pub(crate) held: bool,
    /// `read` returned 0.
    pub(crate) peer_eof: bool,
    /// epoll reported RDHUP or HUP: the peer's FIN is queued behind any
    /// unread bytes. Kept because in edge mode a read stopped by the budget
    /// or by backpressure resumes from the ready-again list, with no event,
    /// and must still read past a short read to the EOF: no new edge will
    /// report a FIN already reported.
    pub(crate) hangup: bool,
    /// Close once output is flushed, with this reason; reads stop.
    pub(crate) closing: Option<CloseReason>,
    /// Pass number in which the connection was put on the ready-again
    /// list; 0 when it is not on it. Any read clears it (see
    /// `Reactor::read`), so an entry of the list whose pass differs is one
    /// a read has already served.
    pub(crate) ready_pass: u64,
    /// Last time bytes moved either way. Activity only writes this field;
    /// the idle timer compares against it when it fires (lazy re-arm).
    pub(crate) last_activity: Instant,
    /// Last time the peer took output, or output became pending.
    pub(crate) last_write_progress: Instant,
    /// The idle timer queued for this connection (cancelled on close, so
    /// churn leaves no dead timers behind).
    pub(crate) idle_timer: Option<TimerId>,
    /// The write-timeout timer, queued while output is pending.
    pub(crate) write_timer: Option<TimerId>,
    /// Lingering close: FIN sent, input read and discarded until the peer
    /// closes (reason in `closing`).
    pub(crate) lingering: bool,
    /// The lingering close's deadline.
    pub(crate) linger_timer: Option<TimerId>,
    /// Linger on close even if no input is waiting at that moment
    /// ([`Io::close_lingering`](crate::Io::close_lingering)).
    pub(crate) must_linger: bool,
    /// On `Io::unflushed`: shared messages were queued this pass.
    pub(crate) unflushed: bool,
    /// Since when pending output has been above the soft limit.
    pub(crate) over_soft_since: Option<Instant>,
    /// The soft-limit timer, queued once output goes above the soft limit
    /// (lazy, as the write timer): a peer that stops reading stops the
    /// protocol's sends too (backpressure), so a check made only when
    /// output is added would never come.
    pub(crate) soft_timer: Option<TimerId>,
    /// The layer between socket and protocol (TLS), if any: `input` and
    /// `output` then hold plaintext, and the transport the wire bytes it
    /// sealed and has not written yet.
    pub(crate) transport: Option<Box<dyn Transport>>,
    /// The handshake deadline, queued while the transport's handshake runs.
    pub(crate) handshake_timer: Option<TimerId>,
    /// The client's address as a transport learned it (PROXY protocol),
    /// when the socket's peer is a balancer. Boxed: most connections have
    /// none, and a `SocketAddr` would grow every connection by 32 bytes.
    pub(crate) client_addr: Option<Box<SocketAddr>>,
}

impl Conn {
    pub(crate) fn new(fd: OwnedFd, connecting: bool, now: Instant) -> Conn {
        Conn {
            fd,
            input: None,
            output: Output::default(),
            registered: EventFlags::empty(),
            armed: false,
            connecting,
            read_paused: false,
            read_missed: false,
            held: false,
            peer_eof: false,
            hangup: false,
            closing: None,
            ready_pass: 0,
            last_activity: now,
            last_write_progress: now,
            idle_timer: None,
            lingering: false,
            linger_timer: None,
            must_linger: false,
            write_timer: None,
            over_soft_since: None,
            unflushed: false,
            soft_timer: None,
            transport: None,
            handshake_timer: None,
            client_addr: None,
        }
    }

    /// Output not yet taken by the kernel: queued (plaintext, with a
    /// transport) and sealed by the transport but not written.
    #[inline]
    pub(crate) fn pending_output(&self) -> usize {
        match &self.transport {
            None => self.output.len(),
            Some(transport) => self.output.len() + usize::from(transport.wants_write()),
        }
    }

    /// Whether a write can make progress once the socket has room: some
    /// output is pending and, with a transport, either sealed already or
    /// sealable (the handshake is done). Output queued during a handshake
    /// waits for it, and asking for EPOLLOUT then would spin in level mode.
    pub(crate) fn wants_write(&self) -> bool {
        match &self.transport {
            None => !self.output.is_empty(),
            Some(transport) => {
                transport.wants_write() || (!self.output.is_empty() && transport.is_established())
            }
        }
    }

    /// Whether reading this connection can make progress now.
    pub(crate) fn wants_read(&self) -> bool {
        !self.connecting
            && !self.read_paused
            && !self.held
            && !self.peer_eof
            && (self.closing.is_none() || self.lingering)
    }

    /// The interest this connection should be registered with.
    ///
    /// Edge mode registers everything once: an edge-triggered EPOLLOUT
    /// fires only when the send buffer turns writable after being full, so
    /// it costs nothing while output flows, and the registration never needs
    /// an `epoll_ctl` in steady state. Level and one-shot modes must follow
    /// the state: a level-triggered EPOLLIN left on a paused or EOF'd socket,
    /// or EPOLLOUT with nothing to write, reports again on every wait and
    /// makes the loop spin.
    pub(crate) fn interest(&self, trigger: Trigger) -> EventFlags {
        if trigger == Trigger::Edge {
            return EventFlags::IN | EventFlags::OUT | EventFlags::RDHUP | EventFlags::ET;
        }
        let mut flags = EventFlags::empty();
        if self.wants_read() {
            flags |= EventFlags::IN | EventFlags::RDHUP;
        }
        if self.connecting || self.wants_write() {
            flags |= EventFlags::OUT;
        }
        if trigger == Trigger::OneShot {
            flags |= EventFlags::ONESHOT;
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        Conn::new(a.into(), false, Instant::now())
    }

    fn with_output(mut c: Conn) -> Conn {
        let mut pool = crate::buffer::BufferPool::new(16, 1);
        c.output.push_bytes(b"pending", &mut pool);
        c
    }

    #[test]
    fn edge_interest_never_changes() {
        let mut c = with_output(conn());
        c.read_paused = true;
        c.peer_eof = true;
        let all = EventFlags::IN | EventFlags::OUT | EventFlags::RDHUP | EventFlags::ET;
        assert_eq!(c.interest(Trigger::Edge), all);
        assert_eq!(conn().interest(Trigger::Edge), all);
    }

    #[test]
    fn level_interest_follows_state() {
        let read = EventFlags::IN | EventFlags::RDHUP;
        let c = conn();
        assert_eq!(
            c.interest(Trigger::Level),
            read,
            "idle: read only, no OUT spin"
        );
        let mut c = with_output(conn());
        assert_eq!(c.interest(Trigger::Level), read | EventFlags::OUT);
        c.read_paused = true;
        assert_eq!(
            c.interest(Trigger::Level),
            EventFlags::OUT,
            "backpressure drops IN"
        );
        c.read_paused = false;
        c.peer_eof = true;
        assert_eq!(
            c.interest(Trigger::Level),
            EventFlags::OUT,
            "after EOF: IN would spin"
        );
        let mut c = conn();
        c.connecting = true;
        assert_eq!(
            c.interest(Trigger::Level),
            EventFlags::OUT,
            "connect completes on OUT"
        );
    }

    #[test]
    fn oneshot_interest_is_level_plus_oneshot() {
        let c = with_output(conn());
        assert_eq!(
            c.interest(Trigger::OneShot),
            EventFlags::IN | EventFlags::RDHUP | EventFlags::OUT | EventFlags::ONESHOT
        );
    }

    #[test]
    fn closing_stops_reads() {
        let mut c = conn();
        assert!(c.wants_read());
        c.closing = Some(CloseReason::Local);
        assert!(!c.wants_read());
    }
}
