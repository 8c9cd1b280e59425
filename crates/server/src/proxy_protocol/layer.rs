//! The PROXY protocol header as a preamble transport: it buffers the
//! connection's first bytes until the header is complete, keeps the
//! client address the header names, hands the bytes after it on — to the
//! layer it wraps (TLS, whose ClientHello follows the header) or out as
//! plaintext — and is then spent: the reactor takes the address and goes
//! on with the inner layer, or none (the connection is then plain, with
//! its zero-copy paths).
//!
//! It never writes: nothing may reach a client before its header was
//! read, and a connection whose first bytes are not a header is refused
//! without a byte sent (it queues no alert, so the reactor's error path
//! has nothing to write). The reactor seals only once a transport is
//! established, which this layer is not before the header was read.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use reactor::{
    PreambleCounts, Received, Transport, TransportCounts, TransportError, TransportFactory,
};

use super::parse::{parse, Parsed};

/// The name the figures go by (`tenk_proxy_protocol_…` in `/metrics`).
const PROTOCOL: &str = "proxy_protocol";

/// One connection's PROXY protocol layer.
pub struct ProxyProtocolLayer {
    inner: Option<Box<dyn Transport>>,
    state: State,
    counters: Arc<Counters>,
}

enum State {
    /// Waiting for the header: the bytes so far when it came in pieces
    /// (fewer than a header's maximum: the parser refuses beyond).
    Reading(Vec<u8>),
    /// The header was read; the client it named, if any.
    Read(Option<SocketAddr>),
}

/// Every connection's counts, shared with the factory.
#[derive(Debug, Default)]
struct Counters {
    with_client: AtomicU64,
    without_client: AtomicU64,
    refused: AtomicU64,
}

impl ProxyProtocolLayer {
    fn new(inner: Option<Box<dyn Transport>>, counters: Arc<Counters>) -> ProxyProtocolLayer {
        ProxyProtocolLayer {
            inner,
            state: State::Reading(Vec::new()),
            counters,
        }
    }

    /// The header is complete in `bytes`, or not yet, or never will be.
    fn read_header(
        &mut self,
        bytes: &[u8],
        plain: &mut Vec<u8>,
    ) -> Result<Received, TransportError> {
        match parse(bytes) {
            Parsed::Incomplete => {
                self.state = State::Reading(bytes.to_vec());
                Ok(Received::default())
            }
            Parsed::Invalid(why) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                Err(TransportError(format!("PROXY protocol: {why}")))
            }
            Parsed::Header { len, source } => {
                let counter = match source {
                    Some(_) => &self.counters.with_client,
                    None => &self.counters.without_client,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.state = State::Read(source);
                let rest = &bytes[len..];
                match self.inner.as_mut() {
                    None => {
                        plain.extend_from_slice(rest);
                        Ok(Received {
                            established: true,
                            peer_closed: false,
                        })
                    }
                    Some(_) if rest.is_empty() => Ok(Received::default()),
                    Some(inner) => inner.receive(rest, plain),
                }
            }
        }
    }

    fn read(&self) -> bool {
        matches!(self.state, State::Read(_))
    }

    /// The inner layer, once the header was read: before, no one may
    /// write.
    fn after_header(&mut self) -> Option<&mut Box<dyn Transport>> {
        match self.state {
            State::Read(_) => self.inner.as_mut(),
            State::Reading(_) => None,
        }
    }
}

/// Before the header was read, nothing is sealed or written; after, the
/// inner layer does it all. (Once read, the reactor swaps this layer for
/// the inner one at its next step; until then — the rest of the read that
/// completed the header — this one stands in for it, so that a TLS alert
/// the inner layer queued on bad bytes after the header is still sent.)
impl Transport for ProxyProtocolLayer {
    fn receive(&mut self, wire: &[u8], plain: &mut Vec<u8>) -> Result<Received, TransportError> {
        let State::Reading(pending) = &mut self.state else {
            return match self.inner.as_mut() {
                Some(inner) => inner.receive(wire, plain),
                None => {
                    plain.extend_from_slice(wire);
                    Ok(Received::default())
                }
            };
        };
        let mut buffered = mem::take(pending);
        // The whole header in one read (the usual case) is parsed in place.
        let bytes = if buffered.is_empty() {
            wire
        } else {
            buffered.extend_from_slice(wire);
            &buffered
        };
        self.read_header(bytes, plain)
    }

    fn is_established(&self) -> bool {
        self.read()
            && self
                .inner
                .as_ref()
                .is_none_or(|inner| inner.is_established())
    }

    fn seal(&mut self, data: &[u8]) -> usize {
        self.after_header().map_or(0, |inner| inner.seal(data))
    }

    fn wants_write(&self) -> bool {
        self.read() && self.inner.as_ref().is_some_and(|inner| inner.wants_write())
    }

    fn write_wire(&mut self, socket: &mut dyn io::Write) -> io::Result<usize> {
        self.after_header()
            .map_or(Ok(0), |inner| inner.write_wire(socket))
    }

    fn close(&mut self) {
        if let Some(inner) = self.after_header() {
            inner.close();
        }
    }

    fn client_addr(&self) -> Option<SocketAddr> {
        match self.state {
            State::Read(source) => source,
            State::Reading(_) => None,
        }
    }

    fn is_spent(&self) -> bool {
        self.read()
    }

    fn into_inner(self: Box<Self>) -> Option<Box<dyn Transport>> {
        self.inner
    }
}

/// Makes a [`ProxyProtocolLayer`] for every inbound connection, around
/// the inner factory's transport when there is one (TLS); one shared by
/// every worker, so its counts are the process's.
#[derive(Debug)]
pub struct ProxyProtocolFactory {
    inner: Option<Arc<dyn TransportFactory>>,
    counters: Arc<Counters>,
}

impl ProxyProtocolFactory {
    /// Requires a PROXY protocol header on every connection, before
    /// `inner`'s protocol (TLS) if there is one, else before plaintext.
    pub fn new(inner: Option<Arc<dyn TransportFactory>>) -> ProxyProtocolFactory {
        ProxyProtocolFactory {
            inner,
            counters: Arc::default(),
        }
    }
}

impl TransportFactory for ProxyProtocolFactory {
    fn new_transport(&self) -> Box<dyn Transport> {
        let inner = self.inner.as_ref().map(|factory| factory.new_transport());
        Box::new(ProxyProtocolLayer::new(inner, self.counters.clone()))
    }

    /// The inner layer's handshakes (TLS), so that they still reach
    /// `--stats` and `/metrics`; the header's own are
    /// [`preamble_counts`](TransportFactory::preamble_counts).
    fn counts(&self) -> Option<TransportCounts> {
        self.inner.as_ref()?.counts()
    }

    fn preamble_counts(&self) -> Option<PreambleCounts> {
        let c = &self.counters;
        Some(PreambleCounts {
            protocol: PROTOCOL,
            with_client: c.with_client.load(Ordering::Relaxed),
            without_client: c.without_client.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests;
