//! A server's handler with the `--stats` ticker beside it.

use reactor::{CloseReason, Handler, Io, TimerId, Token};

use crate::stats_line::StatsTicker;

/// Forwards every callback to `inner`, except the ticker's own timer.
pub struct Serving<H> {
    pub inner: H,
    pub ticker: Option<StatsTicker>,
}

impl<H: Handler> Handler for Serving<H> {
    fn on_accept(&mut self, io: &mut Io, listener: Token, conn: Token) {
        self.inner.on_accept(io, listener, conn);
    }

    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        self.inner.on_connect(io, conn);
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        self.inner.on_data(io, conn, data)
    }

    fn on_eof(&mut self, io: &mut Io, conn: Token) {
        self.inner.on_eof(io, conn);
    }

    fn on_flushed(&mut self, io: &mut Io, conn: Token) {
        self.inner.on_flushed(io, conn);
    }

    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        self.inner.on_close(io, conn, reason);
    }

    fn on_timer(&mut self, io: &mut Io, timer: TimerId, data: u64) {
        match &mut self.ticker {
            Some(ticker) if ticker.owns(timer) => ticker.tick(io),
            _ => self.inner.on_timer(io, timer, data),
        }
    }

    fn on_signal(&mut self, io: &mut Io, signal: i32) {
        self.inner.on_signal(io, signal);
    }

    fn on_wake(&mut self, io: &mut Io) {
        self.inner.on_wake(io);
    }
}
