//! The read side of one epoll event of a connection: `on_event` → `read`
//! (through `sys/socket.rs`) → `deliver` to the handler, then `finish`,
//! which syncs the connection's epoll interest once and reports closes.
//! What the handler sends goes to `write.rs`; so does an `EPOLLOUT`.

use std::mem;

use rustix::event::epoll::EventFlags;
use rustix::io::Errno;

use tracing::debug;

use super::sealed::write_wire;
use super::write::{flush, flush_pending, has_output};
use crate::close_reason::CloseReason;
use crate::config::Trigger;
use crate::conn::Entry;
use crate::handler::Handler;
use crate::io::Io;
use crate::sys::socket;
use crate::token::Token;
use crate::transport::Received;

/// Handles one epoll event of a connection. While it runs, the connection
/// is the one being dispatched (`Io::dispatching`): sends and closes on it
/// leave its interest alone, and `finish` syncs it once at the end.
#[inline]
pub(crate) fn on_event<H: Handler>(io: &mut Io, handler: &mut H, token: Token, flags: EventFlags) {
    handle_event(io, handler, token, flags);
    finish(io, handler, token);
}

#[inline]
fn handle_event<H: Handler>(io: &mut Io, handler: &mut H, token: Token, flags: EventFlags) {
    let Some(Entry::Conn(conn)) = io.entries.get_mut(token) else {
        return;
    };
    // After the look-up: no store between it and `Io::target`'s lets the
    // compiler use that one (8 instructions per event).
    io.dispatching = Some(token);
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
    } else if flags.contains(EventFlags::OUT) && has_output(conn) {
        flush_pending(io, handler, token);
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
/// budgets in one pass. (Taken off at every turn of the loop, which
/// goes on reading: a look-up of its own before the loop cost about 10
/// instructions per request.)
pub(crate) fn read<H: Handler>(io: &mut Io, handler: &mut H, token: Token) {
    let mut budget = io.config.read_budget.max(1);
    loop {
        let Some(Entry::Conn(conn)) = io.entries.get_mut(token) else {
            return;
        };
        conn.ready_pass = 0;
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
                // One call site of `deliver` for plain and transport
                // connections alike: with two, the compiler stopped
                // inlining the handler into it (+20 instructions per echo).
                let transport = conn.transport.is_some();
                let mut fresh = n;
                let mut received = Received::default();
                if transport {
                    match open(io, handler, token, n) {
                        Some((plain, opened)) => (fresh, received) = (plain, opened),
                        None => return,
                    }
                }
                if fresh > 0 {
                    deliver(io, handler, token, fresh);
                }
                if transport && !after_open(io, handler, token, received) {
                    return;
                }
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

/// Hands `n` wire bytes just read (in the scratch buffer) to the
/// connection's transport, and leaves the plaintext they complete at the
/// front of the scratch buffer for `deliver` (the wire bytes there are
/// spent; the buffers trade places until `after_open`). Returns the
/// plaintext's length, or `None` when the connection was closed (a
/// transport error).
#[inline(never)]
fn open<H: Handler>(
    io: &mut Io,
    handler: &mut H,
    token: Token,
    n: usize,
) -> Option<(usize, Received)> {
    let Some(Entry::Conn(conn)) = io.entries.get_mut(token) else {
        return None;
    };
    let transport = conn.transport.as_mut()?;
    io.plain.clear();
    let received = match transport.receive(&io.scratch[..n], &mut io.plain) {
        Ok(received) => received,
        Err(error) => {
            debug!(?token, %error, "transport error");
            // The alert that says why, if the transport queued one.
            let _ = write_wire(&conn.fd, transport.as_mut(), &mut io.stats);
            io.close_with(token, CloseReason::Transport);
            return None;
        }
    };
    if transport.is_spent() {
        if let Some(addr) = transport.client_addr() {
            conn.client_addr = Some(Box::new(addr));
        }
        conn.transport = conn.transport.take().and_then(|spent| spent.into_inner());
    }
    if received.established {
        io.stats.handshakes += 1;
        if let Some(timer) = conn.handshake_timer.take() {
            io.timers.cancel(timer);
        }
        handler.on_established(io, token);
    }
    mem::swap(&mut io.scratch, &mut io.plain);
    Some((io.scratch.len(), received))
}

/// After the plaintext of `open` was delivered: the scratch buffer is put
/// back, the transport's replies (handshake messages) and output queued
/// while the handshake ran are written, and a peer that ended the session
/// gets the EOF. Returns `false` when reading this connection must stop.
#[inline(never)]
fn after_open<H: Handler>(io: &mut Io, handler: &mut H, token: Token, received: Received) -> bool {
    mem::swap(&mut io.scratch, &mut io.plain);
    flush(io, handler, token);
    if received.peer_closed {
        let Some(Entry::Conn(conn)) = io.entries.get_mut(token) else {
            return false;
        };
        conn.peer_eof = true;
        handler.on_eof(io, token);
        return false;
    }
    io.entries.get(token).is_some()
}

/// Hands `n` freshly read bytes (in the scratch buffer) to the handler,
/// after any bytes it left unconsumed before. Only what it leaves
/// unconsumed now is copied into the connection's own buffer.
///
/// Inlined: it is the hot path of every request, and a call here cost
/// about 15 instructions per echo.
#[inline(always)]
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
///
/// Inline, the check alone: it runs at the end of every dispatch, most
/// close nothing, and a call only to find that out cost about 15
/// instructions per event.
#[inline]
pub(crate) fn report_closes<H: Handler>(io: &mut Io, handler: &mut H) {
    if !io.closed.is_empty() {
        report_closes_now(io, handler);
    }
}

#[inline(never)]
fn report_closes_now<H: Handler>(io: &mut Io, handler: &mut H) {
    while !io.closed.is_empty() {
        let closed = mem::take(&mut io.closed);
        for &(token, reason) in &closed {
            handler.on_close(io, token, reason);
        }
    }
}

impl Io {
    /// Brings a connection's epoll registration in line with its state
    /// (level and one-shot modes; edge mode never changes it).
    ///
    /// Inline, the edge-mode check alone: it runs at the end of every
    /// dispatch, and in edge mode a call only to return cost more than
    /// the check.
    #[inline]
    pub(crate) fn sync_interest(&mut self, token: Token) {
        if self.config.trigger != Trigger::Edge {
            self.sync_registration(token);
        }
    }

    #[inline(never)]
    fn sync_registration(&mut self, token: Token) {
        let trigger = self.config.trigger;
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
