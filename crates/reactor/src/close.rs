//! Closing a connection: at once, once flushed, or lingering. Every close
//! goes through `Io::close_with`, which deregisters, frees and counts it,
//! and queues the report that `Handler::on_close` gets after the current
//! callback.

use std::sync::atomic::Ordering;

use tracing::debug;

use crate::close_reason::CloseReason;
use crate::config::Trigger;
use crate::conn::Entry;
use crate::conn_io::write_wire;
use crate::io::{Io, TimerKind};
use crate::sys::socket;
use crate::token::Token;

impl Io {
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
        // A connection still in its transport's handshake has exchanged
        // no application data: output queued for after the handshake is
        // not worth waiting for it (and reads stop now, so it would never
        // finish).
        let handshaking = conn.transport.as_ref().is_some_and(|t| !t.is_established());
        if conn.pending_output() == 0 || handshaking {
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
                conn.handshake_timer,
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
        if let Some(transport) = conn.transport.as_mut() {
            // The transport's goodbye (TLS close_notify), so the peer can
            // tell the end from a truncation. The output was just flushed,
            // so the socket has room; if not, the close goes on without it.
            if transport.is_established() {
                transport.close();
                let _ = write_wire(&conn.fd, transport.as_mut(), &mut self.stats);
            }
        }
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
}
