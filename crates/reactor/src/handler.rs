//! The callbacks a protocol implements.

use std::os::fd::OwnedFd;
use std::process::ExitStatus;

use crate::close_reason::CloseReason;
use crate::io::Io;
use crate::timer::TimerId;
use crate::token::Token;

/// A protocol on the reactor. Every callback gets the reactor's [`Io`] to
/// send, close, connect and schedule timers.
///
/// Callbacks run on the reactor thread and must not block. Only `on_data`
/// is required; the defaults do what a simple protocol wants.
pub trait Handler {
    /// A connection was accepted on `listener`, before it is registered.
    /// Return it to have this reactor serve it (the default), or keep it
    /// and return `None` to serve it elsewhere: an acceptor thread hands
    /// connections to worker reactors this way, which take them with
    /// [`Io::adopt`].
    fn on_accepted_fd(&mut self, io: &mut Io, listener: Token, fd: OwnedFd) -> Option<OwnedFd> {
        let _ = (io, listener);
        Some(fd)
    }

    /// A connection was accepted on `listener` and registered. (For one
    /// taken over with [`Io::adopt`], the caller decides what `listener`
    /// is; `tenk`'s servers pass the connection's own token.)
    fn on_accept(&mut self, io: &mut Io, listener: Token, conn: Token) {
        let _ = (io, listener, conn);
    }

    /// An outbound connection made with [`Io::connect`] completed. A failed
    /// connect is reported by `on_close` with
    /// [`CloseReason::ConnectFailed`] instead.
    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        let _ = (io, conn);
    }

    /// The connection's transport finished its handshake (connections
    /// with a [`Transport`](crate::Transport) only): application data now
    /// flows. Output sent before it waited, queued, and is sent now.
    fn on_established(&mut self, io: &mut Io, conn: Token) {
        let _ = (io, conn);
    }

    /// Bytes arrived. `data` is everything not yet consumed: bytes left
    /// over from earlier calls followed by the new ones. Return how many
    /// bytes were consumed; the rest is kept (in a pooled buffer) and
    /// offered again, with more, on the next call.
    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize;

    /// The peer closed its sending side (`read` returned 0) after every
    /// byte before it was delivered to `on_data`. By default the
    /// connection closes once its pending output is flushed.
    fn on_eof(&mut self, io: &mut Io, conn: Token) {
        io.close_when_flushed(conn);
    }

    /// Output that had to be buffered has now all been written.
    fn on_flushed(&mut self, io: &mut Io, conn: Token) {
        let _ = (io, conn);
    }

    /// The connection is closed and deregistered; its token is now stale.
    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        let _ = (io, conn, reason);
    }

    /// A timer set with [`Io::add_timer`] expired.
    fn on_timer(&mut self, io: &mut Io, timer: TimerId, data: u64) {
        let _ = (io, timer, data);
    }

    /// A signal watched with [`Io::watch_signals`] arrived. By default
    /// the first starts a graceful shutdown and the second stops at once.
    fn on_signal(&mut self, io: &mut Io, signal: i32) {
        let _ = signal;
        io.shutdown();
    }

    /// A server built on this handler is about to start a graceful
    /// shutdown (called by `server::serve` before [`Io::shutdown`]): last
    /// words queued now on outbound connections are flushed by the drain
    /// (chat's Redis links free this node's nicks).
    fn on_shutdown(&mut self, io: &mut Io) {
        let _ = io;
    }

    /// A child watched with [`Io::watch_child`] ended, and was reaped:
    /// `status` says how (exit code, or the signal that killed it).
    fn on_child_exit(&mut self, io: &mut Io, pid: u32, status: ExitStatus) {
        let _ = (io, pid, status);
    }

    /// A [`Waker`](crate::Waker) was woken.
    fn on_wake(&mut self, io: &mut Io) {
        let _ = io;
    }
}
