//! One connection's TLS session as a reactor transport: rustls' buffered
//! API (`read_tls`, `process_new_packets`, the plaintext reader and
//! writer, `write_tls`) driven by the reactor's reads and writes, never by
//! a socket of its own, so it never blocks and never decides when to read.

use std::io::{self, Read, Write};
use std::sync::Arc;

use reactor::{Received, Transport, TransportError};
use rustls::Connection;

use crate::stats::TlsStats;

/// A TLS session (server or client side) on a reactor connection.
pub struct TlsSession {
    conn: Connection,
    stats: Arc<TlsStats>,
}

impl TlsSession {
    /// Wraps a rustls connection; `stats` counts its handshake.
    pub fn new(conn: impl Into<Connection>, stats: Arc<TlsStats>) -> TlsSession {
        TlsSession {
            conn: conn.into(),
            stats,
        }
    }
}

impl Transport for TlsSession {
    fn receive(
        &mut self,
        mut wire: &[u8],
        plain: &mut Vec<u8>,
    ) -> Result<Received, TransportError> {
        let handshaking = self.conn.is_handshaking();
        let mut received = Received::default();
        while !wire.is_empty() {
            // rustls takes at most what its record buffer holds per call;
            // the loop feeds it all, draining the plaintext each time (it
            // refuses more while its plaintext buffer is full).
            self.conn
                .read_tls(&mut wire)
                .map_err(|e| TransportError(e.to_string()))?;
            let state = self.conn.process_new_packets().map_err(|e| {
                if self.conn.is_handshaking() {
                    self.stats.handshake_failed(&e);
                }
                TransportError(e.to_string())
            })?;
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                self.conn
                    .reader()
                    .read_exact(&mut plain[start..])
                    .map_err(|e| TransportError(e.to_string()))?;
            }
            if state.peer_has_closed() {
                // Bytes after close_notify are not part of the session.
                received.peer_closed = true;
                break;
            }
        }
        if handshaking && !self.conn.is_handshaking() {
            received.established = true;
            self.stats.handshake_done(&self.conn);
        }
        Ok(received)
    }

    fn is_established(&self) -> bool {
        !self.conn.is_handshaking()
    }

    fn seal(&mut self, data: &[u8]) -> usize {
        // rustls' writer does not fail for a live session; it takes fewer
        // bytes (even 0) when its buffer of sealed records is full.
        self.conn.writer().write(data).unwrap_or(0)
    }

    fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    fn write_wire(&mut self, socket: &mut dyn io::Write) -> io::Result<usize> {
        self.conn.write_tls(socket)
    }

    fn close(&mut self) {
        self.conn.send_close_notify();
    }
}
