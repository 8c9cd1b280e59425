//! The event loop: wait, dispatch, serve the ready-again list, fire timers.

use std::io::{self, IoSlice};
use std::mem;
use std::time::{Duration, Instant};

use rustix::event::epoll::{Event, EventFlags};
use rustix::io::Errno;
use tracing::{error, warn};

use crate::config::{Config, Trigger};
use crate::conn::Entry;
use crate::handler::{CloseReason, Handler};
use crate::io::{Exit, Io, RunState, TimerKind, EVENTFD_DATA, SIGNALFD_DATA, TIMERFD_DATA};
use crate::output::{Front, MAX_GATHER};

/// Bytes handed to one `sendfile`: large enough to fill a socket buffer,
/// small enough that one connection's big file does not hold the loop.
const SENDFILE_CHUNK: u64 = 1 << 20;
use crate::sys::socket;
use crate::token::Token;

/// A single-threaded epoll reactor running one [`Handler`].
///
/// # Examples
/// An echo server in a dozen lines (see `examples/` for a fuller protocol):
/// ```no_run
/// use reactor::{Config, Handler, Io, Reactor, Token};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
///         io.send(conn, data);
///         data.len()
///     }
/// }
///
/// let mut reactor = Reactor::new(Config::default(), Echo)?;
/// reactor.io().listen("127.0.0.1:7000".parse().unwrap(), 4096)?;
/// reactor.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Reactor<H> {
    io: Io,
    handler: H,
    events: Vec<Event>,
}

impl<H: Handler> Reactor<H> {
    /// Creates the epoll instance, its timerfd and eventfd.
    ///
    /// # Errors
    /// Those of `epoll_create1`, `timerfd_create`, `eventfd` and
    /// `epoll_ctl`, e.g. EMFILE.
    pub fn new(config: Config, handler: H) -> io::Result<Reactor<H>> {
        let events = Vec::with_capacity(config.max_events.max(1));
        Ok(Reactor {
            io: Io::new(config)?,
            handler,
            events,
        })
    }

    /// The reactor's [`Io`], to listen, connect or set timers before
    /// [`Reactor::run`].
    pub fn io(&mut self) -> &mut Io {
        &mut self.io
    }

    /// The handler, to read its state after `run` returns.
    pub fn handler(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The handler and the `Io` together, to start work from the handler
    /// (connect, set timers) before [`Reactor::run`].
    pub fn parts(&mut self) -> (&mut H, &mut Io) {
        (&mut self.handler, &mut self.io)
    }

    /// Consumes the reactor (closing every descriptor it holds) and
    /// returns the handler, to collect what it gathered.
    pub fn into_handler(self) -> H {
        self.handler
    }

    /// Runs the loop until a shutdown completes or [`Io::stop`] is called.
    ///
    /// `epoll_wait` blocks indefinitely unless the ready-again list has
    /// work, so an idle reactor makes no wake-ups at all; timers wake it
    /// through the timerfd only when one is due.
    ///
    /// # Errors
    /// An `epoll_wait` failure other than `EINTR` (which is retried), or a
    /// `timerfd_settime` failure when arming the timer descriptor: either
    /// means the reactor's own descriptors are broken (no event or no
    /// deadline could be relied on), and the caller should report it and
    /// exit.
    pub fn run(&mut self) -> io::Result<Exit> {
        // Closes made through `Reactor::io` before `run` (a close, or a
        // shutdown that closed idle connections at once) were queued with
        // no callback to report them after.
        self.report_closes();
        loop {
            if let RunState::Stopped(exit) = self.io.state {
                return Ok(exit);
            }
            if self.io.state == RunState::Draining && self.io.conns == 0 {
                self.io.state = RunState::Stopped(Exit::Graceful);
                continue;
            }
            self.turn()?;
        }
    }

    /// One pass: wait for events (without blocking if the ready-again list
    /// has work), dispatch them, serve the ready-again list, fire due timers.
    fn turn(&mut self) -> io::Result<()> {
        self.arm_timerfd()?;
        let timeout = if self.io.ready.is_empty() && self.io.unflushed.is_empty() {
            None
        } else {
            Some(Duration::ZERO)
        };
        match self.io.epoll.wait(&mut self.events, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => {
                error!("epoll_wait failed: {e}");
                return Err(io::Error::new(e.kind(), format!("epoll_wait failed: {e}")));
            }
        }
        // The wake-up time serves both as the pass's clock and as the start
        // of its busy interval (closed at the end of `turn`).
        let woke = Instant::now();
        self.io.now = woke;
        self.io.stats.epoll_waits += 1;
        self.io.stats.events += self.events.len() as u64;
        self.io.pass += 1;

        let events = mem::take(&mut self.events);
        for event in &events {
            self.dispatch(event.data.u64(), event.flags);
            if matches!(self.io.state, RunState::Stopped(_)) {
                break;
            }
        }
        self.events = events;

        // `stop` takes effect after the current callback: the rest of the
        // pass (ready-again list, due timers) must not run after it.
        if !self.stopped() {
            self.serve_ready_again();
        }
        if !self.stopped() {
            self.fire_due_timers();
        }
        if !self.stopped() {
            self.flush_unflushed();
        }
        // Busy time: this pass, wake-up to here. Re-arming the timerfd before
        // the next wait is left out, to keep to one extra clock read a pass.
        let busy = woke.elapsed().as_nanos();
        self.io.stats.busy_ns += u64::try_from(busy).unwrap_or(u64::MAX);
        Ok(())
    }

    fn stopped(&self) -> bool {
        matches!(self.io.state, RunState::Stopped(_))
    }

    fn dispatch(&mut self, data: u64, flags: EventFlags) {
        match data {
            TIMERFD_DATA => {
                let _ = self.io.timerfd.drain();
                self.io.timer_armed = None;
                // Due timers are fired at the end of every pass.
            }
            SIGNALFD_DATA => self.on_signals(),
            EVENTFD_DATA => {
                let _ = self.io.eventfd.drain();
                self.handler.on_wake(&mut self.io);
                self.report_closes();
            }
            _ => {
                let token = Token::from_u64(data);
                match self.io.entries.get(token) {
                    Some(Entry::Listener(_)) => self.on_acceptable(token),
                    Some(Entry::Conn(_)) => self.on_conn_event(token, flags),
                    None => self.io.stats.stale_events += 1,
                }
            }
        }
    }

    fn on_signals(&mut self) {
        loop {
            let Some(signalfd) = &self.io.signalfd else {
                return;
            };
            match signalfd.read() {
                Ok(Some(signal)) => {
                    self.handler.on_signal(&mut self.io, signal);
                    self.report_closes();
                }
                Ok(None) => return,
                Err(e) => {
                    warn!("signalfd read failed: {e}");
                    return;
                }
            }
        }
    }

    /// Accepts up to `accept_batch` connections. The listener is
    /// level-triggered, so connections left in the backlog are reported
    /// again on the next wait, after every other ready fd had its turn.
    fn on_acceptable(&mut self, listener: Token) {
        for _ in 0..self.io.config.accept_batch {
            let Some(Entry::Listener(l)) = self.io.entries.get(listener) else {
                return;
            };
            match socket::accept(&l.fd) {
                Ok(fd) => {
                    if self.io.at_capacity() {
                        // Accept-and-close: the client gets a prompt close
                        // instead of a connection left in the backlog to
                        // time out.
                        self.io.stats.rejected += 1;
                        drop(fd);
                        self.io.reopen_spare_fd();
                        continue;
                    }
                    let _ = socket::set_nodelay(&fd);
                    if let Some(k) = self.io.config.keepalive {
                        // Serve it anyway: only dead-peer detection is lost.
                        if let Err(e) = socket::set_keepalive(&fd, k.idle, k.interval, k.count) {
                            warn!("cannot set TCP keepalive on an accepted connection: {e}");
                        }
                    }
                    let Some(fd) = self.handler.on_accepted_fd(&mut self.io, listener, fd) else {
                        // Handed to another reactor, which adopts it
                        // uncounted: count it now, so the shared cap
                        // holds while it is in flight.
                        if let Some(shared) = &self.io.config.shared_conns {
                            shared.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        continue;
                    };
                    match self.io.register_conn(fd, false, false) {
                        Ok(conn) => {
                            self.io.stats.accepted += 1;
                            self.handler.on_accept(&mut self.io, listener, conn);
                            self.report_closes();
                        }
                        Err(e) => warn!("cannot register accepted connection: {e}"),
                    }
                }
                Err(Errno::AGAIN) => return,
                // The connection died in the backlog, or a signal, or (per
                // accept(2)) a network error already pending on the new
                // socket: none is the listener's fault.
                Err(
                    Errno::INTR
                    | Errno::CONNABORTED
                    | Errno::PROTO
                    | Errno::NETDOWN
                    | Errno::NOPROTOOPT
                    | Errno::HOSTDOWN
                    | Errno::NONET
                    | Errno::HOSTUNREACH
                    | Errno::OPNOTSUPP
                    | Errno::NETUNREACH
                    | Errno::PERM,
                ) => continue,
                Err(errno @ (Errno::MFILE | Errno::NFILE)) if self.io.at_capacity() => {
                    // At the cap and at the descriptor limit: give up the
                    // spare descriptor for a moment to accept and close,
                    // so the client learns at once instead of waiting in
                    // the backlog.
                    if !self.reject_with_spare_fd(listener) {
                        self.io.pause_accept(listener, errno);
                        return;
                    }
                }
                Err(errno @ (Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)) => {
                    self.io.pause_accept(listener, errno);
                    return;
                }
                Err(errno) => {
                    error!("accept failed: {}", io::Error::from(errno));
                    self.io.pause_accept(listener, errno);
                    return;
                }
            }
        }
    }

    /// Closes the spare descriptor, accepts one connection into its place
    /// and closes it, then takes the spare back. False if there was no
    /// spare or nothing to accept.
    ///
    /// Under `ENFILE` another process can take the freed slot before the
    /// spare is reopened. The spare is then missing, and
    /// `Io::reopen_spare_fd` tries again wherever a descriptor may come
    /// free (a close, an accept pause ending), so that later rejections
    /// work again instead of leaving clients in the backlog.
    fn reject_with_spare_fd(&mut self, listener: Token) -> bool {
        if self.io.spare_fd.take().is_none() {
            return false;
        }
        let accepted = match self.io.entries.get(listener) {
            Some(Entry::Listener(l)) => socket::accept(&l.fd).ok(),
            _ => None,
        };
        let rejected = accepted.is_some();
        if rejected {
            self.io.stats.rejected += 1;
        }
        drop(accepted);
        match socket::spare_fd() {
            Ok(fd) => self.io.spare_fd = Some(fd),
            Err(e) => {
                warn!("cannot reopen the spare descriptor ({e}); retried as descriptors come free")
            }
        }
        rejected
    }

    fn on_conn_event(&mut self, token: Token, flags: EventFlags) {
        self.io.dispatching = Some(token);
        self.handle_conn_event(token, flags);
        self.finish_dispatch(token);
    }

    fn handle_conn_event(&mut self, token: Token, flags: EventFlags) {
        let Some(Entry::Conn(conn)) = self.io.entries.get_mut(token) else {
            return;
        };
        // One-shot: the kernel disarmed the registration by reporting it.
        // (Only one-shot: clearing it in level mode would cost an
        // EPOLL_CTL_MOD with unchanged flags after every event.)
        if self.io.config.trigger == Trigger::OneShot {
            conn.armed = false;
        }
        if flags.intersects(EventFlags::RDHUP | EventFlags::HUP) {
            conn.hangup = true;
        }

        if conn.connecting {
            if !flags.intersects(EventFlags::OUT | EventFlags::ERR | EventFlags::HUP) {
                return;
            }
            if let Err(errno) = socket::socket_error(&conn.fd) {
                let errno = errno.raw_os_error();
                self.io.close_with(token, CloseReason::ConnectFailed(errno));
                return;
            }
            conn.connecting = false;
            self.io.stats.connected += 1;
            self.handler.on_connect(&mut self.io, token);
            // Data sent before the connect completed is flushed below.
            self.flush(token);
        } else if flags.contains(EventFlags::ERR) {
            let reason = match socket::socket_error(&conn.fd) {
                Err(errno) => CloseReason::from_errno(errno),
                Ok(()) => CloseReason::Error(0),
            };
            self.io.close_with(token, reason);
            return;
        } else if flags.contains(EventFlags::OUT) {
            self.flush(token);
        }

        if flags.intersects(EventFlags::IN | EventFlags::RDHUP | EventFlags::HUP) {
            self.read(token);
        }
    }

    /// Reads until EAGAIN, a short read, EOF or the per-pass budget.
    ///
    /// A short read (fewer bytes than asked) means the socket was drained
    /// at that moment (epoll(7) allows stopping there), which saves one
    /// failing `read` per request. A connection stopped by the budget in
    /// edge mode goes on the ready-again list; in level and one-shot modes
    /// the kernel reports it again by itself.
    ///
    /// Once RDHUP or HUP has been reported (`Conn::hangup`), a short read
    /// is no proof of a drained socket: the FIN behind the data must be
    /// read too, and no further edge will report it. That holds on the
    /// ready-again list as well, which is served without an event.
    ///
    /// Any read takes the connection off the ready-again list: it does what
    /// the list owed, and one stopped by the budget again goes back on,
    /// for the next pass. Otherwise a connection on the list that also got
    /// an event would be read for the event and again from the list, two
    /// budgets in one pass.
    fn read(&mut self, token: Token) {
        if let Some(Entry::Conn(conn)) = self.io.entries.get_mut(token) {
            conn.ready_pass = 0;
        }
        let mut budget = self.io.config.read_budget.max(1);
        loop {
            let io = &mut self.io;
            let Some(Entry::Conn(conn)) = io.entries.get_mut(token) else {
                return;
            };
            if !conn.wants_read() {
                conn.read_missed |= conn.read_paused;
                return;
            }
            if budget == 0 {
                io.stats.budget_stops += 1;
                if io.config.trigger == Trigger::Edge {
                    io.push_ready(token);
                }
                return;
            }
            let hangup = conn.hangup;
            let want = budget.min(io.scratch.len());
            let result = socket::read(&conn.fd, &mut io.scratch[..want]);
            io.stats.reads += 1;
            match result {
                Ok(0) => {
                    conn.peer_eof = true;
                    if conn.lingering {
                        let reason = conn.closing.unwrap_or(CloseReason::Local);
                        io.close_with(token, reason);
                        return;
                    }
                    self.handler.on_eof(&mut self.io, token);
                    return;
                }
                Ok(n) if conn.lingering => {
                    // A lingering close discards input until the peer's FIN.
                    io.stats.bytes_in += n as u64;
                    budget -= n;
                }
                Ok(n) => {
                    io.stats.bytes_in += n as u64;
                    conn.last_activity = io.now;
                    budget -= n;
                    self.deliver(token, n);
                    if n < want && !hangup {
                        return;
                    }
                }
                Err(Errno::AGAIN) => return,
                Err(Errno::INTR) => continue,
                Err(errno) => {
                    io.close_with(token, CloseReason::from_errno(errno));
                    return;
                }
            }
        }
    }

    /// Hands `n` freshly read bytes (in the scratch buffer) to the handler,
    /// after any bytes it left unconsumed before. Only what it leaves
    /// unconsumed now is copied into the connection's own buffer.
    fn deliver(&mut self, token: Token, n: usize) {
        let scratch = mem::take(&mut self.io.scratch);
        let fresh = &scratch[..n];
        let leftover = match self.io.entries.get_mut(token) {
            Some(Entry::Conn(conn)) => conn.input.take(),
            _ => None,
        };
        let unconsumed = match leftover {
            None => {
                let consumed = self.handler.on_data(&mut self.io, token, fresh);
                let rest = &fresh[consumed.min(n)..];
                if rest.is_empty() {
                    None
                } else {
                    let mut buffer = self.io.pool.take();
                    buffer.extend(rest);
                    Some(buffer)
                }
            }
            Some(mut buffer) => {
                buffer.extend(fresh);
                let consumed = self.handler.on_data(&mut self.io, token, buffer.as_slice());
                buffer.consume(consumed.min(buffer.len()));
                Some(buffer)
            }
        };
        self.io.scratch = scratch;

        let Some(buffer) = unconsumed else { return };
        match self.io.entries.get_mut(token) {
            Some(Entry::Conn(conn)) if !buffer.is_empty() => {
                let over = buffer.len() > self.io.config.max_input;
                conn.input = Some(buffer);
                if over {
                    self.io.close_with(token, CloseReason::InputLimit);
                }
            }
            _ => self.io.pool.give(buffer),
        }
    }

    /// Writes pending output until it is gone or the socket is full, then
    /// resumes reading below the low watermark and completes a close that
    /// was waiting for the flush.
    fn flush(&mut self, token: Token) {
        let io = &mut self.io;
        let Some(Entry::Conn(conn)) = io.entries.get_mut(token) else {
            return;
        };
        conn.unflushed = false;
        if conn.output.is_empty() {
            return;
        }
        while !conn.output.is_empty() {
            // One gather write for the in-memory segments (up to
            // MAX_GATHER), or sendfile for a file range at the front.
            let result = {
                let mut slices = [IoSlice::new(&[]); MAX_GATHER];
                match conn.output.front(&mut slices) {
                    Front::Empty => break,
                    Front::Bytes(n, more) => {
                        let total: usize = slices[..n].iter().map(|s| s.len()).sum();
                        let result = if n == 1 && !more {
                            socket::send(&conn.fd, &slices[0])
                        } else {
                            socket::send_vectored(&conn.fd, &slices[..n], more)
                        };
                        result.map(|written| (written, total))
                    }
                    Front::File { fd, offset, len } => {
                        let chunk = len.min(SENDFILE_CHUNK) as usize;
                        match socket::send_file(&conn.fd, fd, offset, chunk) {
                            // The file ended before the range did: it
                            // shrank under us. The response can never be
                            // completed; looping would spin.
                            Ok(0) => Err(Errno::IO),
                            // A short sendfile proves nothing: the socket
                            // may be full, or the file may have ended
                            // (shrunk) with room left in the socket. Only
                            // a full socket arms the next EPOLLOUT (the
                            // kernel wakes writers only after a send hit
                            // no space, SOCK_NOSPACE), so in edge mode
                            // waiting after an end-of-file short count
                            // would stall until the write timeout. Try
                            // again: EAGAIN (full, EPOLLOUT will come), 0
                            // (shrunk) or more bytes settle it.
                            other => other.map(|written| (written, written)),
                        }
                    }
                }
            };
            io.stats.writes += 1;
            match result {
                Ok((n, total)) => {
                    io.stats.bytes_out += n as u64;
                    conn.last_activity = io.now;
                    conn.last_write_progress = io.now;
                    conn.output.consume(n, &mut io.pool);
                    if n < total {
                        // The send buffer is full.
                        break;
                    }
                }
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => continue,
                Err(errno) => {
                    io.close_with(token, CloseReason::from_errno(errno));
                    return;
                }
            }
        }
        let pending = conn.output.len();
        if conn.output.memory() <= io.config.output_soft_limit {
            conn.over_soft_since = None;
        }
        let mut resume_edge = false;
        if conn.read_paused && pending <= io.config.low_watermark {
            conn.read_paused = false;
            // Bytes that arrived while paused raised their edge already;
            // in edge mode nothing will report them again, so the
            // connection is served on the next pass. If reading was never
            // turned away (a response read whole, then sent), there is
            // nothing to serve: a large file sent in one pass costs no
            // extra pass and no read that finds EAGAIN.
            let missed = mem::take(&mut conn.read_missed);
            resume_edge = io.config.trigger == Trigger::Edge && conn.wants_read() && missed;
        }
        let closing = conn.closing;
        if resume_edge {
            io.push_ready(token);
        }
        if pending == 0 {
            match closing {
                Some(reason) => io.finish_close(token, reason),
                None => self.handler.on_flushed(&mut self.io, token),
            }
        }
    }

    /// Writes the connections that were given shared messages this pass:
    /// one gather write each, however many messages they got. Messages
    /// queued by callbacks of these flushes wait for the next pass (which
    /// then does not block).
    fn flush_unflushed(&mut self) {
        let tokens = mem::take(&mut self.io.unflushed);
        for &token in &tokens {
            self.io.dispatching = Some(token);
            self.flush(token);
            self.finish_dispatch(token);
            if self.stopped() {
                break;
            }
        }
        if self.io.unflushed.is_empty() {
            let mut tokens = tokens;
            tokens.clear();
            self.io.unflushed = tokens;
        }
    }

    fn finish_dispatch(&mut self, token: Token) {
        self.io.dispatching = None;
        self.io.sync_interest(token);
        self.report_closes();
    }

    /// Serves, once, the connections queued on the ready-again list in an
    /// earlier pass. One queued during this very pass (its event came in
    /// this batch) keeps its place and is served on the next pass:
    /// dropping it would lose its edge for good. An entry whose connection
    /// was read since it was queued (an event came) is dropped: that read
    /// did what the entry owed, and queued the connection anew if it
    /// stopped at the budget again.
    fn serve_ready_again(&mut self) {
        if self.io.ready.is_empty() {
            return;
        }
        let mut ready = mem::take(&mut self.io.ready);
        let mut deferred = Vec::new();
        for &(token, queued) in &ready {
            let Some(Entry::Conn(conn)) = self.io.entries.get_mut(token) else {
                continue;
            };
            if conn.ready_pass != queued {
                continue;
            }
            if queued >= self.io.pass {
                deferred.push((token, queued));
                continue;
            }
            self.io.dispatching = Some(token);
            self.read(token);
            self.finish_dispatch(token);
            if self.stopped() {
                break;
            }
        }
        // Connections re-queued while serving join the deferred ones; the
        // larger allocation is kept for the next pass.
        ready.clear();
        ready.extend(deferred);
        ready.append(&mut self.io.ready);
        self.io.ready = ready;
    }

    fn fire_due_timers(&mut self) {
        if self.io.timers.len() == 0 {
            return;
        }
        let now = Instant::now();
        while !self.stopped() {
            let Some((id, kind)) = self.io.timers.pop_expired(now) else {
                break;
            };
            match kind {
                TimerKind::User(data) => self.handler.on_timer(&mut self.io, id, data),
                TimerKind::ResumeAccept(listener) => self.io.resume_accept(listener),
                TimerKind::DrainDeadline => self.io.drain_deadline(),
                TimerKind::Idle(token) => self.io.idle_check(token, now),
                TimerKind::Write(token) => self.io.write_check(token, now),
                TimerKind::Linger(token) => self.io.linger_expired(token),
                TimerKind::SoftLimit(token) => self.io.soft_limit_check(token, now),
            }
            self.report_closes();
        }
    }

    /// Arms the timerfd for the earliest deadline, unless it is already
    /// armed for that deadline or an earlier one (an early expiry costs one
    /// wake-up that re-arms; re-arming on every timer change would cost a
    /// syscall each).
    fn arm_timerfd(&mut self) -> io::Result<()> {
        let io = &mut self.io;
        match io.timers.next_deadline() {
            None => {
                if io.timer_armed.take().is_some() {
                    io.stats.timer_arms += 1;
                    io.timerfd.disarm()?;
                }
            }
            Some(deadline) => {
                if io.timer_armed.is_none_or(|armed| deadline < armed) {
                    io.stats.timer_arms += 1;
                    io.timerfd
                        .arm(deadline.saturating_duration_since(Instant::now()))?;
                    io.timer_armed = Some(deadline);
                }
            }
        }
        Ok(())
    }

    /// Reports closes to the handler, including closes its `on_close`
    /// causes in turn.
    fn report_closes(&mut self) {
        while !self.io.closed.is_empty() {
            let closed = mem::take(&mut self.io.closed);
            for &(token, reason) in &closed {
                self.handler.on_close(&mut self.io, token, reason);
            }
        }
    }
}
