//! The write side of a connection: what a handler sends (`Io::send`,
//! `send_shared`, `send_file`), the queue and its bookkeeping, `flush`
//! (on `EPOLLOUT` and at the end of a pass), and the one write loop that
//! `Io::send` and `flush` both go through.

use std::io::IoSlice;
use std::mem;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use rustix::io::Errno;

use super::sealed::{flush_sealed, send_sealed};
use crate::buffer::BufferPool;
use crate::close_reason::CloseReason;
use crate::config::Trigger;
use crate::conn::{Conn, Entry};
use crate::handler::Handler;
use crate::io::{Io, TimerKind};
use crate::output::{Front, Output, MAX_GATHER};
use crate::stats::Stats;
use crate::sys::socket;
use crate::token::Token;

/// Bytes handed to one `sendfile`: large enough to fill a socket buffer,
/// small enough that one connection's big file does not hold the loop.
const SENDFILE_CHUNK: u64 = 1 << 20;

/// Writes pending output until it is gone or the socket is full, then
/// resumes reading below the low watermark and completes a close that
/// was waiting for the flush.
///
/// Inline, the check for nothing pending alone (`has_output`): an
/// EPOLLOUT with nothing pending comes with most reads in edge mode, and
/// a call only to find that out cost about 30 instructions per echo
/// (`bench/instructions.sh`); an event's dispatch checks the connection
/// it holds already, without this look-up.
#[inline]
pub(crate) fn flush<H: Handler>(io: &mut Io, handler: &mut H, token: Token) {
    let Some(Entry::Conn(conn)) = io.entries.get_mut(token) else {
        return;
    };
    if has_output(conn) {
        flush_pending(io, handler, token);
    }
}

/// The start of every flush: the connection leaves the unflushed list,
/// and whether anything is pending (queued bytes, or a transport's own
/// records to write). For a caller that holds `conn` already, to skip
/// a look-up per event.
#[inline(always)]
pub(crate) fn has_output(conn: &mut Conn) -> bool {
    conn.unflushed = false;
    !conn.output.is_empty() || conn.transport.as_ref().is_some_and(|t| t.wants_write())
}

/// `flush` with something pending (`has_output`).
#[inline(never)]
pub(crate) fn flush_pending<H: Handler>(io: &mut Io, handler: &mut H, token: Token) {
    let Some(Entry::Conn(conn)) = io.entries.get_mut(token) else {
        return;
    };
    let before = conn.pending_output();
    let written = match &mut conn.transport {
        None => write_loop(&conn.fd, &mut conn.output, &mut io.stats, &mut io.pool),
        Some(transport) => flush_sealed(
            &conn.fd,
            transport.as_mut(),
            &mut conn.output,
            &mut io.stats,
            &mut io.pool,
            &mut io.file_buf,
        ),
    };
    if let Err(errno) = written {
        io.close_with(token, CloseReason::from_errno(errno));
        return;
    }
    let pending = conn.pending_output();
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
    /// Every attempt offers all that is left, so a write the kernel takes
    /// whole leaves the source empty, and the loop ends without asking.
    const OFFERS_ALL: bool;
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
    const OFFERS_ALL: bool = true;

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
    // More segments than one gather write takes, or a file larger than a
    // chunk, remain after a whole write.
    const OFFERS_ALL: bool = false;

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
fn write_loop<S: Source>(
    fd: &OwnedFd,
    source: &mut S,
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
                if n < offered || S::OFFERS_ALL {
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
        if conn.transport.is_some() {
            return self.send_with_transport(token, data);
        }
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

    /// `send` on a connection with a transport: sealed and written at once
    /// if the handshake is done and nothing is queued before it; what is
    /// not sealed is queued as plaintext, sealed as the socket drains.
    #[inline(never)]
    fn send_with_transport(&mut self, token: Token, data: &[u8]) -> bool {
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return false;
        };
        let was_empty = conn.pending_output() == 0;
        let Some(transport) = conn.transport.as_mut() else {
            return false;
        };
        let mut sealed = 0;
        if conn.output.is_empty() && !conn.connecting && transport.is_established() {
            match send_sealed(&conn.fd, transport.as_mut(), data, &mut self.stats) {
                Ok(n) => sealed = n,
                Err(errno) => {
                    self.close_with(token, CloseReason::from_errno(errno));
                    return false;
                }
            }
            if sealed > 0 {
                conn.last_activity = self.now;
            }
            if sealed == data.len() && !transport.wants_write() {
                return true;
            }
        }
        conn.output.push_bytes(&data[sealed..], &mut self.pool);
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
        let was_empty = conn.pending_output() == 0;
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
        let was_empty = conn.pending_output() == 0;
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
        let pending = conn.pending_output();
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
}
