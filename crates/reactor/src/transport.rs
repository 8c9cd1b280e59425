//! The transport hook: a layer between a connection's socket and its
//! protocol, such as TLS. The reactor still reads and writes the socket,
//! with its budgets, watermarks, limits and timers; a transport only turns
//! the wire bytes it reads into the plaintext the protocol gets, and the
//! plaintext the protocol sends into wire bytes. The reactor knows no
//! transport protocol: `crates/tls` implements this trait with rustls.
//!
//! Output is queued as plaintext (copied, shared and file segments as for
//! a plain connection) and sealed a bounded chunk at a time, only once the
//! transport has written what it sealed before: memory stays flat for a
//! large file or a slow reader, the output limits apply to the plaintext
//! queue as they do without a transport, and a message shared by many
//! connections is sealed for each, from the one copy.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// What a transport made of wire bytes it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// The handshake finished with these bytes: application data may flow
    /// (the reactor calls `Handler::on_established`).
    pub established: bool,
    /// The peer closed the transport's session (a TLS `close_notify`):
    /// treated as the end of the stream, as a TCP FIN.
    pub peer_closed: bool,
}

/// The peer's bytes broke the transport's protocol (a failed handshake, a
/// corrupt record). The transport may have queued a message saying so (a
/// TLS alert), which the reactor tries once to write before it closes the
/// connection with [`CloseReason::Transport`](crate::CloseReason::Transport).
#[derive(Debug)]
pub struct TransportError(pub String);

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One connection's transport (e.g. a TLS session). `Send`, as a
/// reactor may be built on one thread and run on another.
pub trait Transport: Send {
    /// Wire bytes read from the socket: every byte is taken, and the
    /// plaintext they complete is appended to `plain`. Plaintext the
    /// transport decrypted must all be handed out here, never held: the
    /// reactor learns of readable data only from the socket, and in edge
    /// mode no new edge would report plaintext left inside the transport.
    ///
    /// # Errors
    /// The bytes broke the protocol; the connection is closed.
    fn receive(&mut self, wire: &[u8], plain: &mut Vec<u8>) -> Result<Received, TransportError>;

    /// The handshake is done: [`seal`](Transport::seal) may be called.
    fn is_established(&self) -> bool;

    /// Seals plaintext from the front of `data` into wire bytes the
    /// transport holds until [`write_wire`](Transport::write_wire). Returns
    /// how many bytes it took: fewer than offered (even 0) when its own
    /// buffer is full, and the rest is offered again once the wire bytes
    /// were written.
    fn seal(&mut self, data: &[u8]) -> usize;

    /// Wire bytes are waiting to be written. (Whether, not how many:
    /// rustls does not say. The reactor counts them as one byte of pending
    /// output; they are at most one seal chunk, 64 KiB plus record
    /// overhead.)
    fn wants_write(&self) -> bool;

    /// Writes waiting wire bytes to `socket` with one write call, returning
    /// the bytes written. `WouldBlock` means the socket is full.
    ///
    /// # Errors
    /// Those of the socket.
    fn write_wire(&mut self, socket: &mut dyn io::Write) -> io::Result<usize>;

    /// Queues the message that ends the session cleanly (a TLS
    /// `close_notify`); the reactor writes it before a graceful close.
    fn close(&mut self);

    /// The client's address as this layer learned it, when the socket's
    /// peer is not the client (the PROXY protocol's source address, from a
    /// balancer in front). The reactor keeps it for
    /// [`Io::client_addr`](crate::Io::client_addr).
    fn client_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// This layer has done its work (a preamble such as a PROXY protocol
    /// header was read) and the connection goes on with the layer it
    /// wrapped, or plain: the reactor then swaps it for
    /// [`into_inner`](Transport::into_inner), after taking its
    /// [`client_addr`](Transport::client_addr). A plain connection so gets
    /// its zero-copy paths (`sendfile`) back.
    fn is_spent(&self) -> bool {
        false
    }

    /// The layer this one wrapped, once it [is spent](Transport::is_spent).
    fn into_inner(self: Box<Self>) -> Option<Box<dyn Transport>> {
        None
    }
}

/// Makes the transport of each inbound connection (accepted or adopted) of
/// a reactor; one is shared by every reactor of a server, through
/// [`Config::transport`](crate::Config::transport), so that they share
/// its state (for TLS: the certificate, the session cache and the ticket
/// keys).
pub trait TransportFactory: fmt::Debug + Send + Sync {
    /// The transport of a new inbound connection.
    fn new_transport(&self) -> Box<dyn Transport>;

    /// Its handshake counters so far, over every connection it made, for
    /// a server's statistics (`--stats`, the summary, `/metrics`) to show
    /// without knowing the protocol. `None` (the default): it keeps none.
    /// Handshakes that timed out are the reactor's to count
    /// ([`CloseCounts::handshake_timeout`](crate::CloseCounts::handshake_timeout)).
    fn counts(&self) -> Option<TransportCounts> {
        None
    }

    /// The counters of a preamble layer it puts in front (a PROXY protocol
    /// header), for the same readers; `None` (the default): it has none.
    /// A factory that wraps another gives the inner one's
    /// [`counts`](TransportFactory::counts) and its own preamble's here.
    fn preamble_counts(&self) -> Option<PreambleCounts> {
        None
    }
}

/// A preamble's counters: a layer that reads a header naming the client
/// and is then [spent](Transport::is_spent) (the PROXY protocol is the one
/// there is). Totals since the factory was made, over every reactor.
/// Connections that sent no complete header in time are the reactor's to
/// count ([`CloseCounts::handshake_timeout`](crate::CloseCounts::handshake_timeout)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreambleCounts {
    /// The protocol, in lower case with underscores (`proxy_protocol`):
    /// the readers name their figures after it.
    pub protocol: &'static str,
    /// Headers read that named the client.
    pub with_client: u64,
    /// Headers read that named none (a balancer's health check, an
    /// unknown address family): the socket's peer stands for the client.
    pub without_client: u64,
    /// Connections refused: their first bytes were not a valid header.
    pub refused: u64,
}

impl PreambleCounts {
    /// Headers read, naming the client or not.
    pub fn read(&self) -> u64 {
        self.with_client + self.without_client
    }

    /// The counts accumulated since `earlier` (a reading of the same
    /// factory).
    pub fn since(&self, earlier: &PreambleCounts) -> PreambleCounts {
        PreambleCounts {
            protocol: self.protocol,
            with_client: self.with_client.saturating_sub(earlier.with_client),
            without_client: self.without_client.saturating_sub(earlier.without_client),
            refused: self.refused.saturating_sub(earlier.refused),
        }
    }
}

/// A transport's handshake counters, in terms any transport with a
/// handshake has (TLS is the one there is). Totals since the factory was
/// made; one reading for all the reactors that share it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportCounts {
    /// The protocol, in lower case (`tls`): the readers name their
    /// figures after it (`tenk_tls_handshakes_total`, `tls:` in a summary).
    pub protocol: &'static str,
    /// Handshakes completed in full (new keys, the certificate sent).
    pub full: u64,
    /// Handshakes completed by resuming an earlier session (cheaper: no
    /// certificate, no signature).
    pub resumed: u64,
    /// Handshakes refused because the peer broke the protocol (bytes that
    /// are not the protocol, no common version or cipher).
    pub failed: u64,
    /// Completed handshakes (full and resumed) by the protocol version
    /// negotiated, as `(version, count)`: every version the transport
    /// can negotiate, in a fixed order, zeros included (`("1.2", 0)`).
    pub versions: Vec<(&'static str, u64)>,
}

impl TransportCounts {
    /// Handshakes completed, full and resumed.
    pub fn completed(&self) -> u64 {
        self.full + self.resumed
    }

    /// The counts accumulated since `earlier` (a reading of the same
    /// transport); a version `earlier` lacks counts from zero.
    pub fn since(&self, earlier: &TransportCounts) -> TransportCounts {
        let before = |version: &str| {
            earlier
                .versions
                .iter()
                .find(|(v, _)| *v == version)
                .map_or(0, |(_, n)| *n)
        };
        TransportCounts {
            protocol: self.protocol,
            full: self.full.saturating_sub(earlier.full),
            resumed: self.resumed.saturating_sub(earlier.resumed),
            failed: self.failed.saturating_sub(earlier.failed),
            versions: self
                .versions
                .iter()
                .map(|&(v, n)| (v, n.saturating_sub(before(v))))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_subtracts_every_counter_and_matches_versions_by_name() {
        let earlier = TransportCounts {
            protocol: "tls",
            full: 2,
            resumed: 1,
            failed: 1,
            versions: vec![("1.3", 3)],
        };
        let now = TransportCounts {
            protocol: "tls",
            full: 5,
            resumed: 4,
            failed: 1,
            versions: vec![("1.2", 1), ("1.3", 8)],
        };
        let delta = now.since(&earlier);
        assert_eq!((delta.full, delta.resumed, delta.failed), (3, 3, 0));
        assert_eq!(delta.versions, vec![("1.2", 1), ("1.3", 5)]);
        assert_eq!(delta.completed(), 6);
        assert_eq!(delta.protocol, "tls");
    }
}
