//! `Io`: everything a protocol can ask of its reactor.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::epoll::EventFlags;
use rustix::io::Errno;
use tracing::{debug, warn};

use crate::buffer::BufferPool;
use crate::config::{Config, Trigger};
use crate::conn::{Conn, Entry, Listener};
use crate::handler::CloseReason;
use crate::slab::Slab;
use crate::stats::Stats;
use crate::sys::epoll::Epoll;
use crate::sys::eventfd::EventFd;
use crate::sys::signal::{SignalFd, SignalSet};
use crate::sys::socket;
use crate::sys::timerfd::TimerFd;
use crate::timer::{TimerId, TimerQueue};
use crate::token::Token;
use crate::waker::Waker;

/// epoll user data of the reactor's own descriptors. Connection tokens
/// never reach these: a slab index of `u32::MAX - 3` would need billions of
/// descriptors.
pub(crate) const TIMERFD_DATA: u64 = u64::MAX;
pub(crate) const SIGNALFD_DATA: u64 = u64::MAX - 1;
pub(crate) const EVENTFD_DATA: u64 = u64::MAX - 2;

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
}

/// Where the reactor is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunState {
    Running,
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
    /// [`Io::stop`] was called.
    Stopped,
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
    pub(crate) pool: BufferPool,
    pub(crate) timers: TimerQueue<TimerKind>,
    pub(crate) timerfd: TimerFd,
    /// The deadline the timerfd is armed for, if any.
    pub(crate) timer_armed: Option<Instant>,
    pub(crate) signalfd: Option<SignalFd>,
    pub(crate) eventfd: Arc<EventFd>,
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
        let eventfd = Arc::new(EventFd::new()?);
        epoll.add(&*eventfd, EVENTFD_DATA, EventFlags::IN)?;
        Ok(Io {
            epoll,
            entries: Slab::new(),
            conns: 0,
            scratch: vec![0; config.scratch_size.max(1)],
            config,
            pool: BufferPool::new(POOL_BUFFER_SIZE, POOL_MAX_FREE),
            timers: TimerQueue::new(),
            timerfd,
            timer_armed: None,
            signalfd: None,
            eventfd,
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
            spare_fd: socket::spare_fd().ok(),
        })
    }

    /// The settings this reactor runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        Stats {
            active: self.conns as u64,
            ..self.stats
        }
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

    /// A handle other threads use to wake this reactor.
    pub fn waker(&self) -> Waker {
        Waker::new(self.eventfd.clone())
    }

    /// Listens on `addr` with `SO_REUSEADDR` and the given backlog.
    /// The listener is level-triggered: connections left in the backlog
    /// after one batch of accepts are reported again on the next wait.
    ///
    /// # Errors
    /// Those of `socket`, `bind` (e.g. `AddrInUse`) and `listen`.
    pub fn listen(&mut self, addr: SocketAddr, backlog: i32) -> io::Result<Token> {
        let fd = socket::listen(addr, backlog, false)?;
        self.add_listener(fd, false)
    }

    /// Binds a listening socket for `addr` with `SO_REUSEPORT` as well, so
    /// that several reactors (threads) can each have their own on the same
    /// port, the kernel spreading connections between them. The socket is
    /// returned unregistered: pass it to [`Io::add_listener`].
    ///
    /// # Errors
    /// Those of `socket`, `setsockopt`, `bind` and `listen`.
    pub fn bind_reuseport(addr: SocketAddr, backlog: i32) -> io::Result<OwnedFd> {
        socket::listen(addr, backlog, true)
    }

    /// Binds a plain listening socket, returned unregistered (to share one
    /// socket between reactors with [`Io::add_listener`]).
    ///
    /// # Errors
    /// Those of `socket`, `setsockopt`, `bind` and `listen`.
    pub fn bind(addr: SocketAddr, backlog: i32) -> io::Result<OwnedFd> {
        socket::listen(addr, backlog, false)
    }

    /// Registers a listening socket. With `exclusive`, it is registered
    /// with `EPOLLEXCLUSIVE`: several reactors may register (duplicates
    /// of) the same socket, and the kernel wakes one of them, not all, per
    /// connection (no thundering herd).
    ///
    /// # Errors
    /// Those of `epoll_ctl`.
    pub fn add_listener(&mut self, fd: OwnedFd, exclusive: bool) -> io::Result<Token> {
        let reuseport = socket::is_reuseport(&fd);
        let listener = Listener {
            fd,
            paused: false,
            failed_resumes: 0,
            exclusive,
            reuseport,
        };
        let token = self.entries.next_token();
        self.ctl_add(&listener.fd, token, listener.interest())?;
        Ok(self.entries.insert(Entry::Listener(listener)))
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

    /// Registers a connection accepted elsewhere (by an acceptor thread's
    /// reactor, see [`Handler::on_accepted_fd`](crate::Handler::on_accepted_fd))
    /// and counts it as accepted here. The caller then treats it as a new
    /// connection (e.g. calls its handler's `on_accept`). With a shared
    /// connection count (`Config::shared_conns`) the acceptor counted it
    /// when it handed it over, so the cap holds while it is in flight.
    ///
    /// During a graceful shutdown ([`Io::is_draining`]) the connection
    /// joins the drain as every connection did when it began: it is closed
    /// when flushed, which, with nothing sent yet, is at once (or a
    /// lingering close if input is waiting), and the drain deadline covers
    /// it. The token may then already be stale, and its close is reported
    /// after the current callback: a caller should check `is_draining`
    /// before treating it as a new connection. (Left open, it would keep
    /// a draining reactor running with nothing to end it.)
    ///
    /// # Errors
    /// Those of `epoll_ctl`.
    pub fn adopt(&mut self, fd: OwnedFd) -> io::Result<Token> {
        match self.register_conn(fd, false, true) {
            Ok(token) => {
                self.stats.accepted += 1;
                if self.state != RunState::Running {
                    self.close_when_flushed_with(token, CloseReason::Shutdown);
                }
                Ok(token)
            }
            Err(e) => {
                if let Some(shared) = &self.config.shared_conns {
                    shared.fetch_sub(1, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    /// Starts a non-blocking connect to `addr`, optionally from source
    /// address `source` (which lets a load generator use more than one
    /// source address's worth of ephemeral ports).
    ///
    /// The connection is registered at once; completion is reported by
    /// [`Handler::on_connect`](crate::Handler::on_connect), failure by
    /// `on_close` with [`CloseReason::ConnectFailed`]. Data sent before the
    /// connect completes is buffered.
    ///
    /// # Errors
    /// Immediate failures of `socket`, `bind` or `connect` (e.g.
    /// `ENETUNREACH`, `EADDRNOTAVAIL`).
    pub fn connect(&mut self, addr: SocketAddr, source: Option<IpAddr>) -> io::Result<Token> {
        let fd = socket::connect(addr, source)?;
        let _ = socket::set_nodelay(&fd);
        self.register_conn(fd, true, false)
    }

    /// Registers a connection. `counted`: it is already in the shared
    /// connection count (handed over by an acceptor, which counted it).
    pub(crate) fn register_conn(
        &mut self,
        fd: OwnedFd,
        connecting: bool,
        counted: bool,
    ) -> io::Result<Token> {
        let now = Instant::now();
        let mut conn = Conn::new(fd, connecting, now);
        let flags = conn.interest(self.config.trigger);
        let token = self.entries.next_token();
        self.ctl_add(&conn.fd, token, flags)?;
        conn.registered = flags;
        conn.armed = true;
        if !self.config.idle_timeout.is_zero() {
            let deadline = now + self.config.idle_timeout;
            conn.idle_timer = Some(self.timers.insert(deadline, TimerKind::Idle(token)));
        }
        let inserted = self.entries.insert(Entry::Conn(conn));
        debug_assert_eq!(inserted, token);
        self.conns += 1;
        if let (Some(shared), false) = (&self.config.shared_conns, counted) {
            shared.fetch_add(1, Ordering::Relaxed);
        }
        Ok(token)
    }

    /// Sends `data` on a connection: written at once if nothing is pending,
    /// and only what the kernel does not take is buffered. Above the high
    /// watermark the connection stops being read until the peer catches up.
    ///
    /// Returns `false` if the token is stale or the write failed (the
    /// connection is then closed and `on_close` follows).
    pub fn send(&mut self, token: Token, data: &[u8]) -> bool {
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return false;
        };
        let mut written = 0;
        if conn.output.is_empty() && !conn.connecting {
            while written < data.len() {
                match socket::send(&conn.fd, &data[written..]) {
                    Ok(n) => {
                        self.stats.writes += 1;
                        self.stats.bytes_out += n as u64;
                        conn.last_activity = self.now;
                        written += n;
                        // A short write means the send buffer is full; the
                        // next call would only return EAGAIN.
                        if written < data.len() {
                            break;
                        }
                    }
                    Err(Errno::AGAIN) => {
                        self.stats.writes += 1;
                        break;
                    }
                    Err(Errno::INTR) => continue,
                    Err(errno) => {
                        self.stats.writes += 1;
                        self.close_with(token, CloseReason::from_errno(errno));
                        return false;
                    }
                }
            }
            if written == data.len() {
                return true;
            }
        }
        let was_empty = conn.output.is_empty();
        conn.output.push_bytes(&data[written..], &mut self.pool);
        self.queued(token, was_empty)
    }

    /// Queues a shared message on a connection without copying it: a
    /// protocol that sends one message to many connections encodes it
    /// once, and every connection's queue holds a reference. Writes are
    /// deferred to the end of the loop's pass, so a connection that was
    /// sent several messages in one pass gets them in one gather write.
    ///
    /// Returns `false` if the token is stale or a limit closed the
    /// connection (`on_close` follows).
    pub fn send_shared(&mut self, token: Token, data: &Arc<[u8]>) -> bool {
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return false;
        };
        let was_empty = conn.output.is_empty();
        conn.output.push_shared(data.clone(), 0);
        if !conn.unflushed {
            conn.unflushed = true;
            self.unflushed.push(token);
        }
        self.queued(token, was_empty)
    }

    /// Bookkeeping after output was queued: backpressure, the write
    /// timer, output limits, interest.
    fn queued(&mut self, token: Token, was_empty: bool) -> bool {
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return false;
        };
        let pending = conn.output.len();
        // Output limits bound memory; file ranges hold a descriptor, not
        // their bytes.
        let in_memory = conn.output.memory();
        if pending > self.config.high_watermark && !conn.read_paused {
            conn.read_paused = true;
            self.stats.backpressure_pauses += 1;
        }
        if was_empty {
            // The write clock starts when output starts waiting.
            conn.last_write_progress = self.now;
            if !self.config.write_timeout.is_zero() && conn.write_timer.is_none() {
                let deadline = self.now + self.config.write_timeout;
                conn.write_timer = Some(self.timers.insert(deadline, TimerKind::Write(token)));
            }
        }
        // A connection given shared messages this pass is written, and its
        // interest synced, at the end of the pass (`flush_unflushed`):
        // syncing now would cost, in level and one-shot modes, one
        // EPOLL_CTL_MOD to add EPOLLOUT and another to drop it after that
        // write, per recipient of every fan-out.
        let flushed_at_end_of_pass = conn.unflushed;
        if self.over_output_limit(token, in_memory) {
            self.close_with(token, CloseReason::OutputLimit);
            return false;
        }
        if self.dispatching != Some(token) && !flushed_at_end_of_pass {
            self.sync_interest(token);
        }
        true
    }

    /// Queues `head` (copied; e.g. a response head, empty for none) and
    /// then `len` bytes of `file` from `offset`, sent with `sendfile`
    /// (never read into memory), after everything queued before them; the
    /// file is closed once sent or when the connection closes. Both go out
    /// at the end of the pass. Before a small file (64 KiB at most) the
    /// head goes by `sendmsg` with `MSG_MORE`, so that the kernel fills its
    /// packets with the file's first bytes: one packet, and one wake-up of
    /// the peer, not two. Before a larger one it goes at once, which
    /// measured cheaper (see `output::CORK_MAX`). Large files go out a
    /// chunk per pass, resumed on EPOLLOUT. If the file turns out shorter
    /// than the range (it shrank), the connection is closed with `EIO`:
    /// the promised length can never be delivered.
    ///
    /// Returns `false` if the token is stale (`file` is then closed).
    pub fn send_file(
        &mut self,
        token: Token,
        head: &[u8],
        file: OwnedFd,
        offset: u64,
        len: u64,
    ) -> bool {
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return false;
        };
        let was_empty = conn.output.is_empty();
        conn.output.push_bytes(head, &mut self.pool);
        conn.output.push_file(file, offset, len);
        if !conn.unflushed {
            conn.unflushed = true;
            self.unflushed.push(token);
        }
        self.queued(token, was_empty)
    }

    /// Bytes buffered for a connection that the kernel has not taken yet.
    pub fn pending_output(&self, token: Token) -> usize {
        match self.entries.get(token) {
            Some(Entry::Conn(conn)) => conn.pending_output(),
            _ => 0,
        }
    }

    /// Closes a connection now, discarding pending output.
    pub fn close(&mut self, token: Token) {
        self.close_with(token, CloseReason::Local);
    }

    /// Stops reading and closes the connection once its pending output is
    /// flushed (at once if nothing is pending).
    pub fn close_when_flushed(&mut self, token: Token) {
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        let reason = if conn.peer_eof {
            CloseReason::PeerClosed
        } else {
            CloseReason::Local
        };
        self.close_when_flushed_with(token, reason);
    }

    /// Like [`close_when_flushed`](Io::close_when_flushed), but the close
    /// always lingers (unless the peer already closed its side), even if
    /// no input is waiting when the output is flushed. For a protocol that
    /// refuses a request whose rest may still be on its way (an HTTP 413
    /// decided from the head): the rest would otherwise reach a closed
    /// socket, the kernel would answer with RST, and the peer's upload
    /// would fail before it reads the answer.
    pub fn close_lingering(&mut self, token: Token) {
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        conn.must_linger = true;
        self.close_when_flushed(token);
    }

    pub(crate) fn close_when_flushed_with(&mut self, token: Token, reason: CloseReason) {
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        if conn.pending_output() == 0 {
            self.finish_close(token, reason);
        } else {
            conn.closing = Some(reason);
            if self.dispatching != Some(token) {
                self.sync_interest(token);
            }
        }
    }

    /// Deregisters, closes and forgets a connection; the close is reported
    /// to the handler after the current callback returns.
    pub(crate) fn close_with(&mut self, token: Token, reason: CloseReason) {
        let Some(Entry::Conn(conn)) = self.entries.get(token) else {
            return;
        };
        // Deregister before close: if the descriptor were ever duplicated
        // (a fork, an fd passed on), close alone would leave the
        // registration alive and reporting events for a dead token.
        let _ = self.epoll.delete(&conn.fd);
        self.stats.epoll_ctls += 1;
        self.stats.closes.count(reason);
        if let Some(Entry::Conn(mut conn)) = self.entries.remove(token) {
            conn.output.release(&mut self.pool);
            let timers = [
                conn.idle_timer,
                conn.write_timer,
                conn.linger_timer,
                conn.soft_timer,
            ];
            for timer in timers.into_iter().flatten() {
                self.timers.cancel(timer);
            }
            if let Some(buffer) = conn.input.take() {
                self.pool.give(buffer);
            }
            // `conn.fd` is dropped (closed) here.
        }
        self.reopen_spare_fd();
        self.conns -= 1;
        if let Some(shared) = &self.config.shared_conns {
            shared.fetch_sub(1, Ordering::Relaxed);
        }
        self.stats.closed += 1;
        debug!(?token, ?reason, "closed");
        self.closed.push((token, reason));
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

    /// Starts a graceful shutdown: listeners are closed, connections stop
    /// being read and close once their output is flushed, and
    /// [`Reactor::run`](crate::Reactor::run) returns [`Exit::Graceful`] when
    /// none is left or when `Config::drain_timeout` passes, which also
    /// bounds connections adopted during the drain. A second call during
    /// the drain stops at once ([`Exit::Forced`]).
    pub fn shutdown(&mut self) {
        match self.state {
            RunState::Running => {}
            RunState::Draining => {
                self.state = RunState::Stopped(Exit::Forced);
                return;
            }
            RunState::Stopped(_) => return,
        }
        self.state = RunState::Draining;
        for token in self.entries.tokens() {
            match self.entries.get(token) {
                Some(Entry::Listener(_)) => self.close_listener(token),
                Some(Entry::Conn(_)) => {
                    self.close_when_flushed_with(token, CloseReason::Shutdown);
                }
                None => {}
            }
        }
        // Set even with no connection left: one may still join the drain
        // (`Io::adopt`), and it must not keep the reactor from exiting.
        self.timers.insert(
            Instant::now() + self.config.drain_timeout,
            TimerKind::DrainDeadline,
        );
    }

    /// Stops the reactor after the current callback: `run` returns
    /// [`Exit::Stopped`] without flushing anything.
    pub fn stop(&mut self) {
        self.state = RunState::Stopped(Exit::Stopped);
    }

    pub(crate) fn close_listener(&mut self, token: Token) {
        if let Some(Entry::Listener(listener)) = self.entries.get_mut(token) {
            if !listener.paused {
                let _ = self.epoll.delete(&listener.fd);
                self.stats.epoll_ctls += 1;
            }
            if listener.reuseport {
                // Out of the epoll set, open until the reactor is dropped.
                listener.paused = true;
                return;
            }
            self.entries.remove(token);
        }
    }

    /// Ends a connection whose output is all flushed. A graceful close of
    /// a connection with unread input, or one asked for by
    /// [`close_lingering`](Io::close_lingering), lingers (as nginx's
    /// lingering close): FIN now, input discarded until the peer closes or
    /// `Config::linger_timeout` passes. Closing with unread input would
    /// make the kernel answer with RST, and the peer would lose the output
    /// it had not read yet: the echo of its last bytes, an error status.
    pub(crate) fn finish_close(&mut self, token: Token, reason: CloseReason) {
        let graceful = matches!(reason, CloseReason::Shutdown | CloseReason::Local);
        let linger_timeout = self.config.linger_timeout;
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        let unread = !conn.peer_eof && (conn.must_linger || socket::unread_bytes(&conn.fd) > 0);
        if !graceful || linger_timeout.is_zero() || conn.lingering || !unread {
            self.close_with(token, reason);
            return;
        }
        if socket::shutdown_write(&conn.fd).is_err() {
            self.close_with(token, reason);
            return;
        }
        conn.lingering = true;
        conn.closing = Some(reason);
        conn.read_paused = false;
        let deadline = self.now + linger_timeout;
        conn.linger_timer = Some(self.timers.insert(deadline, TimerKind::Linger(token)));
        // Unread bytes raised their edge long ago: read them next pass.
        if self.config.trigger == Trigger::Edge {
            self.push_ready(token);
        } else if self.dispatching != Some(token) {
            self.sync_interest(token);
        }
    }

    /// The lingering close of `token` ran out of time.
    pub(crate) fn linger_expired(&mut self, token: Token) {
        if let Some(Entry::Conn(conn)) = self.entries.get_mut(token) {
            conn.linger_timer = None;
            let reason = conn.closing.unwrap_or(CloseReason::Local);
            self.close_with(token, reason);
        }
    }

    /// Whether `pending` bytes of output break a connection's limits: over
    /// the hard limit at once, or over the soft limit for longer than
    /// allowed (as Redis's client-output-buffer-limit). Updates the
    /// connection's soft-limit clock, and starts its timer: unlike Redis,
    /// where a pub/sub client that stops reading still has output added,
    /// a peer that stops reading here is soon not read either
    /// (backpressure), so no further send would come to check the limit.
    pub(crate) fn over_output_limit(&mut self, token: Token, pending: usize) -> bool {
        let config = &self.config;
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return false;
        };
        if config.output_hard_limit > 0 && pending > config.output_hard_limit {
            return true;
        }
        if config.output_soft_limit == 0 || pending <= config.output_soft_limit {
            conn.over_soft_since = None;
            return false;
        }
        let since = *conn.over_soft_since.get_or_insert(self.now);
        if conn.soft_timer.is_none() {
            let deadline = since + config.output_soft_time;
            conn.soft_timer = Some(self.timers.insert(deadline, TimerKind::SoftLimit(token)));
        }
        self.now.saturating_duration_since(since) > config.output_soft_time
    }

    /// The soft-limit timer of `token` fired: close the connection if its
    /// output has stayed above the soft limit that long, forget the timer
    /// if it went back below, or set it again (it went below and back above
    /// since the timer was set).
    pub(crate) fn soft_limit_check(&mut self, token: Token, now: Instant) {
        let soft_time = self.config.output_soft_time;
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        conn.soft_timer = None;
        let Some(since) = conn.over_soft_since else {
            return;
        };
        let deadline = since + soft_time;
        if deadline <= now {
            self.close_with(token, CloseReason::OutputLimit);
        } else {
            conn.soft_timer = Some(self.timers.insert(deadline, TimerKind::SoftLimit(token)));
        }
    }

    /// The idle timer of `token` fired: close the connection if it has
    /// really been idle that long, or set the timer again for the deadline
    /// its last activity gives. Activity itself never touches the timer.
    pub(crate) fn idle_check(&mut self, token: Token, now: Instant) {
        let timeout = self.config.idle_timeout;
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        conn.idle_timer = None;
        let deadline = conn.last_activity + timeout;
        if deadline <= now {
            self.close_with(token, CloseReason::IdleTimeout);
        } else {
            conn.idle_timer = Some(self.timers.insert(deadline, TimerKind::Idle(token)));
        }
    }

    /// The write timer of `token` fired: close the connection if output
    /// has waited that long without the peer taking any, forget the timer
    /// if nothing is pending, or set it again.
    pub(crate) fn write_check(&mut self, token: Token, now: Instant) {
        let timeout = self.config.write_timeout;
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        conn.write_timer = None;
        if conn.pending_output() == 0 {
            return;
        }
        let deadline = conn.last_write_progress + timeout;
        if deadline <= now {
            self.close_with(token, CloseReason::WriteTimeout);
        } else {
            conn.write_timer = Some(self.timers.insert(deadline, TimerKind::Write(token)));
        }
    }

    /// Closes every connection still draining when the deadline passes.
    pub(crate) fn drain_deadline(&mut self) {
        for token in self.entries.tokens() {
            self.close_with(token, CloseReason::DrainTimeout);
        }
    }

    /// Stops accepting on `listener` after EMFILE/ENFILE/ENOMEM: a
    /// level-triggered listener with a full backlog would otherwise report
    /// readable on every wait, and every accept would fail again: a spin.
    /// Accepting resumes on a timer.
    pub(crate) fn pause_accept(&mut self, listener: Token, errno: Errno) {
        let Some(Entry::Listener(l)) = self.entries.get_mut(listener) else {
            return;
        };
        if l.paused {
            return;
        }
        let _ = self.epoll.delete(&l.fd);
        l.paused = true;
        self.stats.epoll_ctls += 1;
        self.stats.accept_pauses += 1;
        // Out of descriptors, the pause repeats every retry period: log
        // the 1st, 2nd, 4th, 8th… so the log says it without flooding.
        if self.stats.accept_pauses.is_power_of_two() {
            warn!(
                "accept failed ({}), pausing accepts for {:?} ({} pauses so far)",
                io::Error::from(errno),
                self.config.accept_retry,
                self.stats.accept_pauses
            );
        }
        let retry = Instant::now() + self.config.accept_retry;
        self.timers.insert(retry, TimerKind::ResumeAccept(listener));
    }

    /// The pause of `listener` is over: put it back in the epoll set. If
    /// the re-add fails (ENOMEM, or ENOSPC at `max_user_watches`), the
    /// listener stays paused and the re-add is tried again after another
    /// `accept_retry`, for as long as it fails: given up, the listener
    /// would be out of the epoll set for good, and the server would accept
    /// nothing more while looking alive.
    pub(crate) fn resume_accept(&mut self, listener: Token) {
        if self.state != RunState::Running {
            return;
        }
        // Descriptors may have been freed during the pause.
        self.reopen_spare_fd();
        let Some(Entry::Listener(l)) = self.entries.get_mut(listener) else {
            return;
        };
        if !l.paused {
            return;
        }
        self.stats.epoll_ctls += 1;
        match self.epoll.add(&l.fd, listener.to_u64(), l.interest()) {
            Ok(()) => {
                l.paused = false;
                if l.failed_resumes > 0 {
                    warn!(
                        "accepting again after {} failed attempts to resume",
                        l.failed_resumes
                    );
                    l.failed_resumes = 0;
                }
            }
            Err(e) => {
                l.failed_resumes += 1;
                // Logged at the 1st, 2nd, 4th… failure in a row, as pauses.
                if l.failed_resumes.is_power_of_two() {
                    warn!(
                        "cannot resume accepting ({e}), retrying in {:?} ({} failures in a row)",
                        self.config.accept_retry, l.failed_resumes
                    );
                }
                let retry = Instant::now() + self.config.accept_retry;
                self.timers.insert(retry, TimerKind::ResumeAccept(listener));
            }
        }
    }

    /// Opens the spare descriptor again if it was lost: when reopening it
    /// after an accept-and-close failed (`ENFILE`: another process took the
    /// freed slot), or it could not be opened at start-up. Called where a
    /// descriptor may have come free: a connection closed, a rejected one
    /// dropped, an accept pause ending. Costs an `open` only while the
    /// spare is missing.
    pub(crate) fn reopen_spare_fd(&mut self) {
        if self.spare_fd.is_none() {
            self.spare_fd = socket::spare_fd().ok();
            if self.spare_fd.is_some() {
                debug!("spare descriptor reopened");
            }
        }
    }

    /// Brings a connection's epoll registration in line with its state
    /// (level and one-shot modes; edge mode never changes it).
    pub(crate) fn sync_interest(&mut self, token: Token) {
        let trigger = self.config.trigger;
        if trigger == Trigger::Edge {
            return;
        }
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        let wanted = conn.interest(trigger);
        if conn.armed && wanted == conn.registered {
            return;
        }
        let result = self.epoll.modify(&conn.fd, token.to_u64(), wanted);
        self.stats.epoll_ctls += 1;
        match result {
            Ok(()) => {
                conn.registered = wanted;
                conn.armed = true;
            }
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(0);
                self.close_with(token, CloseReason::Error(errno));
            }
        }
    }

    /// Puts a connection on the ready-again list (edge mode) unless it is
    /// already there.
    pub(crate) fn push_ready(&mut self, token: Token) {
        if let Some(Entry::Conn(conn)) = self.entries.get_mut(token) {
            if conn.ready_pass == 0 {
                conn.ready_pass = self.pass;
                self.ready.push((token, self.pass));
            }
        }
    }

    fn ctl_add(&mut self, fd: &OwnedFd, token: Token, flags: EventFlags) -> io::Result<()> {
        self.stats.epoll_ctls += 1;
        self.epoll.add(fd, token.to_u64(), flags)
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;

    use super::*;
    use crate::{Handler, Reactor};

    /// Stops at the first accept, or when its one timer (the watchdog)
    /// fires.
    #[derive(Default)]
    struct FirstAccept {
        accepted: bool,
    }

    impl Handler for FirstAccept {
        fn on_accept(&mut self, io: &mut Io, _listener: Token, _conn: Token) {
            self.accepted = true;
            io.stop();
        }

        fn on_data(&mut self, _io: &mut Io, _conn: Token, data: &[u8]) -> usize {
            data.len()
        }

        fn on_timer(&mut self, io: &mut Io, _timer: TimerId, _data: u64) {
            io.stop();
        }
    }

    /// Regression (dead listener): when an accept pause ended and the
    /// listener's `EPOLL_CTL_ADD` failed, the listener was left out of the
    /// epoll set and marked as no longer paused: nothing retried, and the
    /// server accepted nothing more. The re-add is retried every
    /// `accept_retry` until it succeeds, and the client waiting in the
    /// backlog meanwhile is accepted then. (The listener is
    /// level-triggered in every mode, so one mode covers all three.)
    #[test]
    fn regression_a_failed_listener_readd_is_retried_until_it_accepts() {
        let config = Config {
            accept_retry: Duration::from_millis(10),
            ..Config::default()
        };
        let mut reactor = Reactor::new(config, FirstAccept::default()).unwrap();
        let io = reactor.io();
        let listener = io.listen("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = io.local_addr(listener).unwrap();
        io.pause_accept(listener, Errno::MFILE);
        // Three re-adds fail: the 10 ms pause ends, then two retries fail.
        io.epoll.fail_adds.set(3);
        io.add_timer(Duration::from_secs(5), 0);
        let _client = TcpStream::connect(addr).unwrap();

        reactor.run().unwrap();
        assert!(
            reactor.handler().accepted,
            "no accept within 5 s after three failed re-adds: the listener is dead"
        );
        assert_eq!(reactor.io().epoll.fail_adds.get(), 0);
        let Some(Entry::Listener(l)) = reactor.io().entries.get(listener) else {
            panic!("listener gone");
        };
        assert!(!l.paused && l.failed_resumes == 0);
    }
}
