//! The echo protocol: every byte received is sent back, in order.

use reactor::{Handler, Io, Token};

/// Echoes everything.
#[derive(Default)]
pub struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        // Written straight from the reactor's scratch buffer: only what the
        // kernel does not take is copied, into the connection's output.
        io.send(conn, data);
        data.len()
    }
}
