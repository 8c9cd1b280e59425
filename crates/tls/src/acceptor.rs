//! The server side: one [`TlsAcceptor`] per server, shared by every
//! worker reactor through `reactor::Config::transport`, so that all of
//! them use one `ServerConfig` (certificate, session cache, ticket keys)
//! and a session resumes whichever worker the connection lands on.

use std::sync::Arc;

use reactor::{Transport, TransportCounts, TransportFactory};
use rustls::{ServerConfig, ServerConnection};

use crate::session::TlsSession;
use crate::stats::TlsStats;

/// Makes a TLS server session for every inbound connection.
#[derive(Debug)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    stats: Arc<TlsStats>,
}

impl TlsAcceptor {
    /// An acceptor serving with `config`.
    ///
    /// # Errors
    /// A configuration rustls refuses to start a session with (checked
    /// here once, so that no connection meets it later).
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsAcceptor, rustls::Error> {
        ServerConnection::new(config.clone())?;
        Ok(TlsAcceptor {
            config,
            stats: Arc::default(),
        })
    }

    /// The handshake counters of every connection it made.
    pub fn stats(&self) -> &Arc<TlsStats> {
        &self.stats
    }
}

impl TransportFactory for TlsAcceptor {
    fn new_transport(&self) -> Box<dyn Transport> {
        // `new` made a session with this very config: it cannot fail now.
        let conn =
            ServerConnection::new(self.config.clone()).expect("config checked by TlsAcceptor::new");
        Box::new(TlsSession::new(conn, self.stats.clone()))
    }

    fn counts(&self) -> Option<TransportCounts> {
        let c = self.stats.counts();
        Some(TransportCounts {
            protocol: "tls",
            full: c.full,
            resumed: c.resumed,
            failed: c.failed,
            versions: vec![("1.2", c.tls12), ("1.3", c.tls13)],
        })
    }
}
