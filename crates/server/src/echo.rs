//! The echo protocol: every byte received is sent back, in order.

use reactor::{Handler, Io, TimerId, Token};

use crate::stats_line::StatsTicker;

/// Echoes everything; optionally reports statistics once a second.
#[derive(Default)]
pub struct Echo {
    pub(crate) ticker: Option<StatsTicker>,
}

impl Handler for Echo {
    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        // Written straight from the reactor's scratch buffer: only what the
        // kernel does not take is copied, into the connection's output.
        io.send(conn, data);
        data.len()
    }

    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, _data: u64) {
        if let Some(ticker) = &mut self.ticker {
            ticker.tick(io);
        }
    }
}
