//! `Io`: everything a protocol can ask of its reactor.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::epoll::{Event, EventFlags};
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

    /// Waits for events into `events`: blocking, unless the end of the
    /// pass owes work (then with a zero timeout). Returns the wake-up
    /// time, which becomes the pass's clock (`Io::now`), or `None` if a
    /// signal interrupted the wait (retried by the caller, not counted as
    /// a wake-up).
    ///
    /// # Errors
    /// Any other `epoll_wait` failure: the reactor's own epoll descriptor
    /// is broken.
    #[inline(always)]
    pub(crate) fn wait(&mut self, events: &mut Vec<Event>) -> io::Result<Option<Instant>> {
        let timeout = if self.has_deferred_work() {
            Some(Duration::ZERO)
        } else {
            None
        };
        match self.epoll.wait(events, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
            Err(e) => {
                error!("epoll_wait failed: {e}");
                return Err(io::Error::new(e.kind(), format!("epoll_wait failed: {e}")));
            }
        }
        let woke = Instant::now();
        self.now = woke;
        self.stats.epoll_waits += 1;
        self.stats.events += events.len() as u64;
        self.pass += 1;
        Ok(Some(woke))
    }

    /// Counts a pass's busy time: from its wake-up to `end`, in the total
    /// and in the pass histogram. Re-arming the timerfd before the next
    /// wait is left out, to keep to one extra clock read a pass.
    #[inline]
    pub(crate) fn count_busy(&mut self, woke: Instant, end: Instant) {
        let busy =
            u64::try_from(end.saturating_duration_since(woke).as_nanos()).unwrap_or(u64::MAX);
        self.stats.busy_ns += busy;
        // Its sum is `busy_ns`, filled in by `Io::stats`.
        self.stats.passes.count_only(busy);
    }

    /// What an event's user data names.
    #[inline]
    pub(crate) fn target(&mut self, data: u64) -> Target {
        match data {
            TIMERFD_DATA => Target::Timers,
            SIGNALFD_DATA => Target::Signals,
            EVENTFD_DATA => Target::Wake,
            CHILD_DATA => Target::Children,
            _ => {
                let token = Token::from_u64(data);
                match self.entries.get(token) {
                    Some(Entry::Listener(_)) => Target::Listener(token),
                    Some(Entry::Conn(_)) => Target::Conn(token),
                    None => {
                        self.stats.stale_events += 1;
                        Target::Stale
                    }
                }
            }
        }
    }

    /// The timerfd fired: drain it. Due timers are fired at the end of
    /// every pass, whatever woke it.
    #[inline]
    pub(crate) fn timerfd_fired(&mut self) {
        let _ = self.timerfd.drain();
        self.timer_armed = None;
    }

    /// The eventfd fired: drain it (one `on_wake` however many wakes);
    /// `true` if a [`Waker::stop`] came with it.
    #[inline]
    pub(crate) fn drain_wake(&self) -> bool {
        self.wake.drain()
    }

    /// The next signal waiting on the signalfd, if any.
    ///
    /// # Errors
    /// A failed read of the signalfd.
    pub(crate) fn next_signal(&self) -> io::Result<Option<i32>> {
        match &self.signalfd {
            Some(signalfd) => signalfd.read(),
            None => Ok(None),
        }
    }

    /// Whether any timer is queued: with none, the end of a pass skips
    /// its clock read for due timers.
    #[inline]
    pub(crate) fn timer_due(&self, now: Instant) -> bool {
        self.timers.is_due(now)
    }

    /// The next timer due at `now`, if any.
    #[inline]
    pub(crate) fn pop_expired_timer(&mut self, now: Instant) -> Option<(TimerId, TimerKind)> {
        self.timers.pop_expired(now)
    }

    /// Arms the timerfd for the earliest deadline, unless it is already
    /// armed for that deadline or an earlier one (an early expiry costs one
    /// wake-up that re-arms; re-arming on every timer change would cost a
    /// syscall each).
    ///
    /// Inline, the check that it is armed right already alone: it runs
    /// every pass, and rarely finds work.
    #[inline]
    pub(crate) fn arm_timerfd(&mut self) -> io::Result<()> {
        let next = self.timers.next_deadline();
        let armed_right = match (next, self.timer_armed) {
            (None, None) => true,
            (Some(deadline), Some(armed)) => deadline >= armed,
            _ => false,
        };
        if armed_right {
            return Ok(());
        }
        self.rearm_timerfd(next)
    }

    #[inline(never)]
    fn rearm_timerfd(&mut self, next: Option<Instant>) -> io::Result<()> {
        match next {
            None => {
                if self.timer_armed.take().is_some() {
                    self.stats.timer_arms += 1;
                    self.timerfd.disarm()?;
                }
            }
            Some(deadline) => {
                if self.timer_armed.is_none_or(|armed| deadline < armed) {
                    self.stats.timer_arms += 1;
                    self.timerfd
                        .arm(deadline.saturating_duration_since(Instant::now()))?;
                    self.timer_armed = Some(deadline);
                }
            }
        }
        Ok(())
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
