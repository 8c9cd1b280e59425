//! Connection I/O: one event of a connection from start to finish (read,
//! deliver to the handler, send, queue, flush), with the one write loop
//! that both `Io::send` and `flush` go through.
//!
//! The echo byte's whole path after `epoll_wait` stays in this file (plus
//! the syscall wrappers in `sys/socket.rs` and the handler): `on_event` →
//! `read` → `deliver` → `Handler::on_data` → `Io::send` → `write_loop`,
//! then `finish` syncs the interest and reports closes, all before control
//! goes back to the loop in `reactor.rs`. See `docs/architecture.md`.
//!
//! (Slightly over the crate's ~500-line guide: read, deliver, send, queue
//! and flush are one concept, kept in one file so that the path above
//! never leaves it except for the handler and the syscalls.)

use std::io::IoSlice;
use std::mem;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use rustix::event::epoll::EventFlags;
use rustix::io::Errno;

use crate::buffer::BufferPool;
use crate::close_reason::CloseReason;
use crate::config::Trigger;
use crate::conn::Entry;
use crate::handler::Handler;
use crate::io::{Io, TimerKind};
use crate::output::{Front, Output, MAX_GATHER};
use crate::stats::Stats;
use crate::sys::socket;
use crate::token::Token;

/// Bytes handed to one `sendfile`: large enough to fill a socket buffer,
/// small enough that one connection's big file does not hold the loop.
const SENDFILE_CHUNK: u64 = 1 << 20;

/// Handles one epoll event of a connection. While it runs, the connection
/// is the one being dispatched (`Io::dispatching`): sends and closes on it
/// leave its interest alone, and `finish` syncs it once at the end.
#[inline]
pub(crate) fn on_event<H: Handler>(io: &mut Io, handler: &mut H, token: Token, flags: EventFlags) {
    io.dispatching = Some(token);
    handle_event(io, handler, token, flags);
    finish(io, handler, token);
}

#[inline]
fn handle_event<H: Handler>(io: &mut Io, handler: &mut H, token: Token, flags: EventFlags) {
    let Some(Entry::Conn(conn)) = io.entries.get_mut(token) else {
        return;
    };
    // One-shot: the kernel disarmed the registration by reporting it.
    // (Only one-shot: clearing it in level mode would cost an
    // EPOLL_CTL_MOD with unchanged flags after every event.)
    if io.config.trigger == Trigger::OneShot {
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
            io.close_with(token, CloseReason::ConnectFailed(errno));
            return;
        }
        conn.connecting = false;
        io.stats.connected += 1;
        handler.on_connect(io, token);
        // Data sent before the connect completed is flushed below.
        flush(io, handler, token);
    } else if flags.contains(EventFlags::ERR) {
        let reason = match socket::socket_error(&conn.fd) {
            Err(errno) => CloseReason::from_errno(errno),
            Ok(()) => CloseReason::Error(0),
        };
        io.close_with(token, reason);
        return;
    } else if flags.contains(EventFlags::OUT) {
        flush(io, handler, token);
    }

    if flags.intersects(EventFlags::IN | EventFlags::RDHUP | EventFlags::HUP) {
        read(io, handler, token);
    }
}

/// Ends the dispatch of `token`: its interest is synced once, and closes
/// made meanwhile are reported.
#[inline]
pub(crate) fn finish<H: Handler>(io: &mut Io, handler: &mut H, token: Token) {
    io.dispatching = None;
    io.sync_interest(token);
    report_closes(io, handler);
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
pub(crate) fn read<H: Handler>(io: &mut Io, handler: &mut H, token: Token) {
    if let Some(Entry::Conn(conn)) = io.entries.get_mut(token) {
        conn.ready_pass = 0;
    }
    let mut budget = io.config.read_budget.max(1);
    loop {
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
                handler.on_eof(io, token);
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
                deliver(io, handler, token, n);
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
fn deliver<H: Handler>(io: &mut Io, handler: &mut H, token: Token, n: usize) {
    let scratch = mem::take(&mut io.scratch);
    let fresh = &scratch[..n];
    let leftover = match io.entries.get_mut(token) {
        Some(Entry::Conn(conn)) => conn.input.take(),
        _ => None,
    };
    let unconsumed = match leftover {
        None => {
            let consumed = handler.on_data(io, token, fresh);
            let rest = &fresh[consumed.min(n)..];
            if rest.is_empty() {
                None
            } else {
                let mut buffer = io.pool.take();
                buffer.extend(rest);
                Some(buffer)
            }
        }
        Some(mut buffer) => {
            buffer.extend(fresh);
            let consumed = handler.on_data(io, token, buffer.as_slice());
            buffer.consume(consumed.min(buffer.len()));
            Some(buffer)
        }
    };
    io.scratch = scratch;

    let Some(buffer) = unconsumed else { return };
    match io.entries.get_mut(token) {
        Some(Entry::Conn(conn)) if !buffer.is_empty() => {
            let over = buffer.len() > io.config.max_input;
            conn.input = Some(buffer);
            if over {
                io.close_with(token, CloseReason::InputLimit);
            }
        }
        _ => io.pool.give(buffer),
    }
}

/// Reports closes to the handler, including closes its `on_close`
/// causes in turn.
pub(crate) fn report_closes<H: Handler>(io: &mut Io, handler: &mut H) {
    while !io.closed.is_empty() {
        let closed = mem::take(&mut io.closed);
        for &(token, reason) in &closed {
            handler.on_close(io, token, reason);
        }
    }
}

/// Writes pending output until it is gone or the socket is full, then
/// resumes reading below the low watermark and completes a close that
/// was waiting for the flush.
pub(crate) fn flush<H: Handler>(io: &mut Io, handler: &mut H, token: Token) {
    let Some(Entry::Conn(conn)) = io.entries.get_mut(token) else {
        return;
    };
    conn.unflushed = false;
    if conn.output.is_empty() {
        return;
    }
    let before = conn.output.len();
    if let Err(errno) = write_loop(&conn.fd, &mut conn.output, &mut io.stats, &mut io.pool) {
        io.close_with(token, CloseReason::from_errno(errno));
        return;
    }
    let pending = conn.output.len();
    if pending < before {
        conn.last_activity = io.now;
        conn.last_write_progress = io.now;
    }
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
            None => handler.on_flushed(io, token),
        }
    }
}

/// What the write loop writes from: the bytes of one `Io::send` with
/// nothing queued before them, or a connection's queued output.
trait Source {
    /// Nothing is left to write.
    fn is_empty(&self) -> bool;
    /// One write attempt (the source is not empty): the bytes the kernel
    /// took and the bytes offered.
    fn attempt(&mut self, fd: &OwnedFd) -> Result<(usize, usize), Errno>;
    /// Drops the `n` bytes just written.
    fn advance(&mut self, n: usize, pool: &mut BufferPool);
}

/// The bytes of one `Io::send`, written straight from the caller's slice.
struct Unqueued<'a> {
    data: &'a [u8],
    written: usize,
}

impl Source for Unqueued<'_> {
    #[inline]
    fn is_empty(&self) -> bool {
        self.written >= self.data.len()
    }

    #[inline]
    fn attempt(&mut self, fd: &OwnedFd) -> Result<(usize, usize), Errno> {
        let rest = &self.data[self.written..];
        socket::send(fd, rest).map(|n| (n, rest.len()))
    }

    #[inline]
    fn advance(&mut self, n: usize, _pool: &mut BufferPool) {
        self.written += n;
    }
}

impl Source for Output {
    fn is_empty(&self) -> bool {
        Output::is_empty(self)
    }

    /// One gather write for the in-memory segments (up to MAX_GATHER), or
    /// sendfile for a file range at the front.
    fn attempt(&mut self, fd: &OwnedFd) -> Result<(usize, usize), Errno> {
        let mut slices = [IoSlice::new(&[]); MAX_GATHER];
        match self.front(&mut slices) {
            // Not reached: the loop checks `is_empty` first. As a full
            // socket, it would end the loop.
            Front::Empty => Err(Errno::AGAIN),
            Front::Bytes(n, more) => {
                let total: usize = slices[..n].iter().map(|s| s.len()).sum();
                let result = if n == 1 && !more {
                    socket::send(fd, &slices[0])
                } else {
                    socket::send_vectored(fd, &slices[..n], more)
                };
                result.map(|written| (written, total))
            }
            Front::File {
                fd: file,
                offset,
                len,
            } => {
                let chunk = len.min(SENDFILE_CHUNK) as usize;
                match socket::send_file(fd, file, offset, chunk) {
                    // The file ended before the range did: it shrank under
                    // us. The response can never be completed; looping
                    // would spin.
                    Ok(0) => Err(Errno::IO),
                    // A short sendfile proves nothing: the socket may be
                    // full, or the file may have ended (shrunk) with room
                    // left in the socket. Only a full socket arms the next
                    // EPOLLOUT (the kernel wakes writers only after a send
                    // hit no space, SOCK_NOSPACE), so in edge mode waiting
                    // after an end-of-file short count would stall until
                    // the write timeout. Try again: EAGAIN (full, EPOLLOUT
                    // will come), 0 (shrunk) or more bytes settle it.
                    other => other.map(|written| (written, written)),
                }
            }
        }
    }

    fn advance(&mut self, n: usize, pool: &mut BufferPool) {
        self.consume(n, pool);
    }
}

/// The one write loop: writes `source` until it is empty or the socket is
/// full. An error other than EAGAIN or EINTR is returned for the caller to
/// close the connection with; the caller stamps the activity clocks if
/// bytes went out.
#[inline(always)]
fn write_loop(
    fd: &OwnedFd,
    source: &mut impl Source,
    stats: &mut Stats,
    pool: &mut BufferPool,
) -> Result<(), Errno> {
    while !source.is_empty() {
        let result = source.attempt(fd);
        stats.writes += 1;
        match result {
            Ok((n, offered)) => {
                stats.bytes_out += n as u64;
                source.advance(n, pool);
                // A short write means the send buffer is full; the next
                // call would only return EAGAIN.
                if n < offered {
                    break;
                }
            }
            Err(Errno::AGAIN) => break,
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

impl Io {
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
        let mut unqueued = Unqueued { data, written: 0 };
        if conn.output.is_empty() && !conn.connecting {
            if let Err(errno) = write_loop(&conn.fd, &mut unqueued, &mut self.stats, &mut self.pool)
            {
                self.close_with(token, CloseReason::from_errno(errno));
                return false;
            }
            if unqueued.written > 0 {
                // Nothing was pending, so the write clock has not started:
                // only the idle clock moves.
                conn.last_activity = self.now;
            }
            if unqueued.written == data.len() {
                return true;
            }
        }
        let was_empty = conn.output.is_empty();
        conn.output
            .push_bytes(&data[unqueued.written..], &mut self.pool);
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

    /// Bytes buffered for a connection that the kernel has not taken yet.
    pub fn pending_output(&self, token: Token) -> usize {
        match self.entries.get(token) {
            Some(Entry::Conn(conn)) => conn.pending_output(),
            _ => 0,
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
}
