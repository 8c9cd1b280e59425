//! How a reactor behaves: trigger mode, budgets, watermarks, limits.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use crate::transport::TransportFactory;

/// How connections are registered with epoll.
///
/// Listeners are always level-triggered, and so are the reactor's own
/// timerfd, signalfd and eventfd; this chooses the mode for connections.
/// See `docs/epoll-strategy.md` for the trade-offs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// `EPOLLET`: registered once for IN|OUT|RDHUP and never modified. A
    /// connection stopped by the read budget goes on the ready-again list,
    /// because no new edge will come for bytes already queued.
    Edge,
    /// The kernel re-reports a ready fd on every wait. Interest follows the
    /// connection's state (EPOLLOUT only while output is pending; EPOLLIN
    /// dropped under backpressure and after EOF, or the loop would spin).
    Level,
    /// `EPOLLONESHOT`: each event disarms the registration; the reactor
    /// re-arms it with `EPOLL_CTL_MOD` after handling it.
    OneShot,
}

impl Trigger {
    /// The mode's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Edge => "edge",
            Trigger::Level => "level",
            Trigger::OneShot => "oneshot",
        }
    }
}

/// Reactor settings. `Config::default()` suits a server of up to tens of
/// thousands of connections.
#[derive(Clone, Debug)]
pub struct Config {
    /// Trigger mode for connections.
    pub trigger: Trigger,
    /// Events taken from one `epoll_wait`.
    pub max_events: usize,
    /// Bytes read from one connection per pass before others get a turn.
    pub read_budget: usize,
    /// Connections accepted per listener wake-up, so an accept flood cannot
    /// starve established connections.
    pub accept_batch: usize,
    /// Pending output above which a connection stops being read.
    pub high_watermark: usize,
    /// Pending output at or below which reading resumes.
    pub low_watermark: usize,
    /// Unconsumed input a protocol may leave buffered before the connection
    /// is closed with [`CloseReason::InputLimit`](crate::CloseReason::InputLimit).
    pub max_input: usize,
    /// Open connections (inbound and outbound) beyond which new inbound
    /// connections are accepted and closed at once.
    pub max_conns: usize,
    /// Reactors (threads) that share one `max_conns` share this count of
    /// their open connections; `None` counts this reactor's alone.
    pub shared_conns: Option<Arc<AtomicUsize>>,
    /// How long a graceful shutdown waits for pending output to flush.
    pub drain_timeout: Duration,
    /// How long accepting stays paused after EMFILE/ENFILE before retrying.
    pub accept_retry: Duration,
    /// Size of the per-reactor scratch buffer every read lands in.
    pub scratch_size: usize,
    /// A connection with no traffic either way for this long is closed
    /// ([`CloseReason::IdleTimeout`](crate::CloseReason::IdleTimeout)).
    /// Zero disables it.
    pub idle_timeout: Duration,
    /// A connection with output pending and none of it taken by the peer
    /// for this long is closed
    /// ([`CloseReason::WriteTimeout`](crate::CloseReason::WriteTimeout)).
    /// Zero disables it.
    pub write_timeout: Duration,
    /// Pending output beyond which a connection is closed at once
    /// ([`CloseReason::OutputLimit`](crate::CloseReason::OutputLimit)).
    /// Zero disables it.
    pub output_hard_limit: usize,
    /// Pending output a connection may stay above for at most
    /// `output_soft_time` before it is closed. Zero disables it.
    pub output_soft_limit: usize,
    /// How long a connection may stay above `output_soft_limit`.
    pub output_soft_time: Duration,
    /// Lingering close: a graceful close (shutdown, or
    /// [`Io::close_when_flushed`](crate::Io::close_when_flushed)) of a
    /// connection with unread input sends FIN (`shutdown(SHUT_WR)`) and
    /// discards input until the peer closes or this passes. Closing with
    /// unread input would make the kernel send RST and drop output the
    /// peer has not read yet. Zero closes at once.
    pub linger_timeout: Duration,
    /// TCP keepalive on accepted connections, to find peers that vanished
    /// without a FIN or RST (a host powered off, a cable pulled, a NAT
    /// entry dropped). `None` (the default) leaves the kernel's setting:
    /// off. A dead peer is then closed with
    /// [`CloseReason::Error`](crate::CloseReason::Error)`(ETIMEDOUT)`.
    /// Useful where `idle_timeout` is off or long: a live but silent peer
    /// answers the probes and is kept.
    pub keepalive: Option<Keepalive>,
    /// The transport (e.g. TLS) of every inbound connection; `None` (the
    /// default) serves plain TCP. Outbound connections choose their own
    /// ([`Io::connect_with`](crate::Io::connect_with)).
    pub transport: Option<Arc<dyn TransportFactory>>,
    /// A connection with a transport whose handshake has not finished this
    /// long after it opened is closed
    /// ([`CloseReason::HandshakeTimeout`](crate::CloseReason::HandshakeTimeout)).
    /// Zero disables it.
    pub handshake_timeout: Duration,
}

/// TCP keepalive settings (`SO_KEEPALIVE`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`,
/// `TCP_KEEPCNT`; tcp(7)). A connection with nothing sent or received for
/// `idle` gets a probe every `interval`; after `count` unanswered probes
/// the kernel fails the socket with `ETIMEDOUT`. The kernel counts in whole
/// seconds: a fraction of a second is rounded up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Silence before the first probe (1 s to 32,767 s).
    pub idle: Duration,
    /// Between probes (1 s to 32,767 s).
    pub interval: Duration,
    /// Unanswered probes before the connection is declared dead (1 to 127).
    pub count: u32,
}

impl Keepalive {
    /// How long after its last sign of life a dead peer is found, at most:
    /// `idle + interval * count`.
    pub fn dead_after(&self) -> Duration {
        self.idle + self.interval * self.count
    }
}

impl Default for Keepalive {
    /// 60 s idle, then 6 probes 10 s apart: a dead peer is found within
    /// 2 minutes, where the kernel's own default (7,200 s, 75 s, 9) takes
    /// 2 h 11 min, and a peer out of reach for up to a minute (a phone
    /// changing networks) survives. An idle connection costs one probe
    /// and its ACK a minute; 60 s is also under the idle timeouts of
    /// common NATs and cloud load balancers (4 min and more), so the
    /// probes keep their mappings open.
    fn default() -> Keepalive {
        Keepalive {
            idle: Duration::from_secs(60),
            interval: Duration::from_secs(10),
            count: 6,
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            trigger: Trigger::Edge,
            max_events: 1024,
            read_budget: 64 * 1024,
            accept_batch: 64,
            high_watermark: 256 * 1024,
            low_watermark: 64 * 1024,
            max_input: 1024 * 1024,
            max_conns: 10_000,
            shared_conns: None,
            drain_timeout: Duration::from_secs(5),
            accept_retry: Duration::from_millis(100),
            scratch_size: 64 * 1024,
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            output_hard_limit: 32 * 1024 * 1024,
            output_soft_limit: 8 * 1024 * 1024,
            output_soft_time: Duration::from_secs(60),
            linger_timeout: Duration::from_secs(5),
            keepalive: None,
            transport: None,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}
