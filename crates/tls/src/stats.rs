//! Handshake counters shared by every worker of a server (a handshake is
//! rare next to the records that follow it, so one atomic add each costs
//! nothing that shows).

use std::sync::atomic::{AtomicU64, Ordering};

use rustls::{Connection, HandshakeKind, ProtocolVersion};

/// TLS handshakes by outcome, kind and protocol version.
#[derive(Debug, Default)]
pub struct TlsStats {
    full: AtomicU64,
    resumed: AtomicU64,
    failed: AtomicU64,
    tls12: AtomicU64,
    tls13: AtomicU64,
}

/// A reading of [`TlsStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsCounts {
    /// Full handshakes completed (a HelloRetryRequest included).
    pub full: u64,
    /// Resumed handshakes completed (a session ticket or the session cache).
    pub resumed: u64,
    /// Handshakes the peer failed (a protocol error, no common version or
    /// cipher suite, a certificate refused). Handshakes that timed out are
    /// counted by the reactor (`CloseCounts::handshake_timeout`).
    pub failed: u64,
    /// Completed handshakes that negotiated TLS 1.2.
    pub tls12: u64,
    /// Completed handshakes that negotiated TLS 1.3.
    pub tls13: u64,
}

impl TlsCounts {
    /// Handshakes completed, full and resumed.
    pub fn completed(&self) -> u64 {
        self.full + self.resumed
    }
}

impl TlsStats {
    pub(crate) fn handshake_done(&self, conn: &Connection) {
        let kind = match conn {
            Connection::Client(c) => c.handshake_kind(),
            Connection::Server(s) => s.handshake_kind(),
        };
        match kind {
            Some(HandshakeKind::Resumed) => &self.resumed,
            _ => &self.full,
        }
        .fetch_add(1, Ordering::Relaxed);
        match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_2) => {
                self.tls12.fetch_add(1, Ordering::Relaxed);
            }
            Some(ProtocolVersion::TLSv1_3) => {
                self.tls13.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    pub(crate) fn handshake_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn counts(&self) -> TlsCounts {
        TlsCounts {
            full: self.full.load(Ordering::Relaxed),
            resumed: self.resumed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            tls12: self.tls12.load(Ordering::Relaxed),
            tls13: self.tls13.load(Ordering::Relaxed),
        }
    }
}
