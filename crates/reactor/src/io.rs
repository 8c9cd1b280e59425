//! `Io`: everything a protocol can ask of its reactor.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::epoll::EventFlags;
use tracing::error;

use crate::buffer::BufferPool;
use crate::close_reason::CloseReason;
use crate::config::Config;
use crate::conn::Entry;
use crate::slab::Slab;
use crate::stats::Stats;
use crate::sys::epoll::Epoll;
use crate::sys::pidfd::ChildFd;
use crate::sys::signal::{SignalFd, SignalSet};
use crate::sys::socket;
use crate::sys::timerfd::TimerFd;
use crate::timer::{TimerId, TimerQueue};
use crate::token::Token;
use crate::transport::{PreambleCounts, TransportCounts};
use crate::waker::{Wake, Waker};

mod pass;

/// epoll user data of the reactor's own descriptors. Connection tokens
/// never reach these: a slab index of `u32::MAX - 4` would need billions of
/// descriptors.
pub(crate) const TIMERFD_DATA: u64 = u64::MAX;
pub(crate) const SIGNALFD_DATA: u64 = u64::MAX - 1;
pub(crate) const EVENTFD_DATA: u64 = u64::MAX - 2;
/// Every watched child's pidfd (`child.rs`): a handful at most, all
/// checked when one polls readable.
pub(crate) const CHILD_DATA: u64 = u64::MAX - 3;

/// Buffers kept in the pool for reuse.
const POOL_MAX_FREE: usize = 256;
/// Initial capacity of a pooled buffer.
const POOL_BUFFER_SIZE: usize = 4096;

/// What a reactor timer does when it fires.
pub(crate) enum TimerKind {
    User(u64),
    ResumeAccept(Token),
    DrainDeadline,
    /// A connection's idle deadline, as of when the timer was set; the
    /// real one is `last_activity + idle_timeout` (lazy re-arm).
    Idle(Token),
    /// A connection's write deadline, likewise lazy.
    Write(Token),
    /// The end of a lingering close.
    Linger(Token),
    /// A connection's soft output limit deadline, lazy: the real one is
    /// `over_soft_since + output_soft_time`.
    SoftLimit(Token),
    /// The deadline of `Reactor::run_until`.
    RunDeadline,
    /// A connection's transport handshake deadline.
    Handshake(Token),
}

/// Where the reactor is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunState {
    Running,
    /// [`Io::stop_accepting`]: listeners out of the epoll set, connections
    /// served as before; the run ends when none is left (or at the drain
    /// deadline). A graceful restart's old process runs this way.
    Leaving,
    Draining,
    Stopped(Exit),
}

/// How [`Reactor::run`](crate::Reactor::run) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// A graceful shutdown finished: every connection flushed and closed
    /// (or cut at the drain deadline).
    Graceful,
    /// A second shutdown request during the drain: stopped at once.
    Forced,
    /// [`Io::stop`] or [`Waker::stop`] was called.
    Stopped,
    /// The deadline given to
    /// [`Reactor::run_until`](crate::Reactor::run_until) passed first
    /// ([`Reactor::run`](crate::Reactor::run) never returns it).
    Deadline,
}

/// The reactor's state, handed to every [`Handler`](crate::Handler)
/// callback: registrations, buffers, timers, statistics.
pub struct Io {
    pub(crate) epoll: Epoll,
    pub(crate) entries: Slab<Entry>,
    /// Open connections (entries that are not listeners).
    pub(crate) conns: usize,
    pub(crate) config: Config,
    /// Every read lands here first; only unconsumed bytes are copied out.
    pub(crate) scratch: Vec<u8>,
    /// Plaintext a transport made of the wire bytes in `scratch`: only
    /// connections with a transport use it (grown on first use).
    pub(crate) plain: Vec<u8>,
    /// File bytes read to be sealed by a transport (grown on first use).
    pub(crate) file_buf: Vec<u8>,
    pub(crate) pool: BufferPool,
    pub(crate) timers: TimerQueue<TimerKind>,
    pub(crate) timerfd: TimerFd,
    /// The deadline the timerfd is armed for, if any.
    pub(crate) timer_armed: Option<Instant>,
    pub(crate) signalfd: Option<SignalFd>,
    pub(crate) children: Vec<ChildFd>,
    pub(crate) wake: Arc<Wake>,
    /// The ready-again list (edge mode): connections owed a read with no
    /// edge to come for it. Stopped by the read budget, resuming from
    /// backpressure, or starting a lingering close; served on a later pass
    /// (`Reactor::serve_ready_again`), with a zero `epoll_wait` timeout
    /// while the list is not empty. Each entry carries the pass it was
    /// queued in, and counts only while it matches `Conn::ready_pass`: a
    /// read for an event takes the connection off the list (it clears
    /// `ready_pass`), and an entry left behind is dropped when reached.
    pub(crate) ready: Vec<(Token, u64)>,
    /// Passes of the loop so far; tags entries of `ready`.
    pub(crate) pass: u64,
    /// Closes not yet reported to the handler.
    pub(crate) closed: Vec<(Token, CloseReason)>,
    /// The connection whose event is being handled: its interest is synced
    /// once, at the end, instead of after every send.
    pub(crate) dispatching: Option<Token>,
    pub(crate) stats: Stats,
    pub(crate) state: RunState,
    /// Connections given shared messages this pass, written at its end.
    pub(crate) unflushed: Vec<Token>,
    /// Connections the next [`Io::shutdown`] leaves open
    /// ([`Io::spare_at_shutdown`]).
    pub(crate) spared: Vec<Token>,
    /// The time at the start of the current pass, read once per wake-up
    /// (as nginx's cached time): activity stamps use it, not a clock call
    /// per read.
    pub(crate) now: Instant,
    /// A descriptor held in reserve so that, at the descriptor limit, a
    /// connection beyond `max_conns` can still be accepted and closed
    /// instead of left in the backlog (see `Reactor::on_acceptable`).
    pub(crate) spare_fd: Option<OwnedFd>,
}

impl Io {
    pub(crate) fn new(config: Config) -> io::Result<Io> {
        let epoll = Epoll::new()?;
        let timerfd = TimerFd::new()?;
        epoll.add(&timerfd, TIMERFD_DATA, EventFlags::IN)?;
        let wake = Arc::new(Wake::new()?);
        epoll.add(&*wake, EVENTFD_DATA, EventFlags::IN)?;
        Ok(Io {
            epoll,
            entries: Slab::new(),
            conns: 0,
            scratch: vec![0; config.scratch_size.max(1)],
            plain: Vec::new(),
            file_buf: Vec::new(),
            config,
            pool: BufferPool::new(POOL_BUFFER_SIZE, POOL_MAX_FREE),
            timers: TimerQueue::new(),
            timerfd,
            timer_armed: None,
            signalfd: None,
            children: Vec::new(),
            wake,
            ready: Vec::new(),
            pass: 1,
            closed: Vec::new(),
            dispatching: None,
            stats: Stats {
                epoll_ctls: 2,
                ..Stats::default()
            },
            state: RunState::Running,
            now: Instant::now(),
            unflushed: Vec::new(),
            spared: Vec::new(),
            spare_fd: socket::spare_fd().ok(),
        })
    }

    /// The settings this reactor runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The handshake counters of the configured transport
    /// ([`Config::transport`]), shared by every reactor using it: `None`
    /// without a transport, or with one that keeps none.
    pub fn transport_counts(&self) -> Option<TransportCounts> {
        self.config.transport.as_ref()?.counts()
    }

    /// The preamble counters (PROXY protocol headers) of the configured
    /// transport, shared by every reactor using it: `None` without one.
    pub fn preamble_counts(&self) -> Option<PreambleCounts> {
        self.config.transport.as_ref()?.preamble_counts()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            active: self.conns as u64,
            ..self.stats
        };
        stats.passes.sum_ns = stats.busy_ns;
        stats
    }

    /// When the current pass of the loop began: the clock is read once per
    /// wake-up, right after `epoll_wait` returns (as nginx's cached time),
    /// so callbacks can stamp events or tell when once-a-second work is
    /// due without a clock read of their own per event.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Open connections, inbound and outbound.
    pub fn connection_count(&self) -> usize {
        self.conns
    }

    /// Whether `max_conns` is reached (over every reactor sharing the
    /// count, if one is shared).
    pub(crate) fn at_capacity(&self) -> bool {
        let open = match &self.config.shared_conns {
            Some(shared) => shared.load(Ordering::Relaxed),
            None => self.conns,
        };
        open >= self.config.max_conns
    }

    /// Whether a graceful shutdown is under way.
    pub fn is_draining(&self) -> bool {
        self.state == RunState::Draining
    }

    /// Whether this reactor stopped accepting to hand its listeners over
    /// ([`Io::stop_accepting`]): still serving, but a protocol with
    /// keep-alive should close each connection after its next answer.
    pub fn is_leaving(&self) -> bool {
        self.state == RunState::Leaving
    }

    /// A handle other threads use to wake or stop this reactor.
    pub fn waker(&self) -> Waker {
        Waker::new(self.wake.clone())
    }

    /// The local address of a listener or connection (to learn the port
    /// the kernel picked for port 0).
    ///
    /// # Errors
    /// `NotFound` for a stale token; otherwise those of `getsockname`.
    pub fn local_addr(&self, token: Token) -> io::Result<SocketAddr> {
        match self.entries.get(token) {
            Some(Entry::Listener(l)) => socket::local_addr(&l.fd),
            Some(Entry::Conn(c)) => socket::local_addr(&c.fd),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    /// The peer address of a connection (for access logs).
    ///
    /// # Errors
    /// `NotFound` for a stale token or a listener; otherwise those of
    /// `getpeername` (e.g. `ENOTCONN` once the peer has gone).
    pub fn peer_addr(&self, token: Token) -> io::Result<SocketAddr> {
        match self.entries.get(token) {
            Some(Entry::Conn(c)) => socket::peer_addr(&c.fd),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }

    /// The client's address: the one a transport learned (the source of a
    /// PROXY protocol header, when a balancer in front sent one), else the
    /// socket's peer.
    ///
    /// # Errors
    /// Those of [`peer_addr`](Io::peer_addr).
    pub fn client_addr(&self, token: Token) -> io::Result<SocketAddr> {
        match self.entries.get(token) {
            Some(Entry::Conn(c)) => match &c.client_addr {
                Some(addr) => Ok(**addr),
                None => socket::peer_addr(&c.fd),
            },
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }

    /// Schedules a call of [`Handler::on_timer`](crate::Handler::on_timer)
    /// with `data` after `after`. Timers cost no wake-up until the earliest
    /// one is due: the reactor's one timerfd is armed for that deadline.
    pub fn add_timer(&mut self, after: Duration, data: u64) -> TimerId {
        self.timers
            .insert(Instant::now() + after, TimerKind::User(data))
    }

    /// Cancels a timer; `false` if it already fired or was cancelled.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.timers.cancel(timer).is_some()
    }

    /// Reads the signals of `set` (which must have been blocked with
    /// [`signal::block`](crate::signal::block)) through a signalfd in the
    /// epoll set; each is reported by
    /// [`Handler::on_signal`](crate::Handler::on_signal).
    ///
    /// # Errors
    /// Those of `signalfd` and `epoll_ctl`.
    pub fn watch_signals(&mut self, set: &SignalSet) -> io::Result<()> {
        let signalfd = SignalFd::new(set)?;
        self.epoll.add(&signalfd, SIGNALFD_DATA, EventFlags::IN)?;
        self.stats.epoll_ctls += 1;
        self.signalfd = Some(signalfd);
        Ok(())
    }

    /// Stops the reactor after the current callback: `run` returns
    /// [`Exit::Stopped`] without flushing anything.
    pub fn stop(&mut self) {
        self.state = RunState::Stopped(Exit::Stopped);
    }

    pub(crate) fn ctl_add(
        &mut self,
        fd: &OwnedFd,
        token: Token,
        flags: EventFlags,
    ) -> io::Result<()> {
        self.stats.epoll_ctls += 1;
        self.epoll.add(fd, token.to_u64(), flags)
    }

    /// Whether `run` must stop: `stop`, a forced shutdown, or the end of a
    /// drain. `stop` takes effect after the current callback: the rest of
    /// the pass (ready-again list, due timers) must not run after it.
    #[inline]
    pub(crate) fn stopped(&self) -> bool {
        matches!(self.state, RunState::Stopped(_))
    }

    /// How `run` ends now, if it does: stopped, or a drain with no
    /// connection left.
    #[inline]
    pub(crate) fn exit(&mut self) -> Option<Exit> {
        if matches!(self.state, RunState::Draining | RunState::Leaving) && self.conns == 0 {
            self.state = RunState::Stopped(Exit::Graceful);
        }
        match self.state {
            RunState::Stopped(exit) => Some(exit),
            _ => None,
        }
    }
}

/// What the user data of an epoll event names.
pub(crate) enum Target {
    Timers,
    Signals,
    Wake,
    Children,
    Listener(Token),
    Conn(Token),
    /// A connection closed earlier in the same batch (section 3 of
    /// `docs/epoll-strategy.md`): the event is dropped.
    Stale,
}
