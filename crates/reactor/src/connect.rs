//! Registering connections with the loop: outbound connects
//! (`Io::connect`, `Io::connect_with`) and the one registration every
//! connection goes through, inbound (accepted, adopted) or outbound, with
//! its transport and its first deadlines.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::conn::{Conn, Entry};
use crate::io::{Io, TimerKind};
use crate::sys::socket;
use crate::token::Token;
use crate::transport::Transport;

impl Io {
    /// Starts a non-blocking connect to `addr`, optionally from source
    /// address `source` (which lets a load generator use more than one
    /// source address's worth of ephemeral ports).
    ///
    /// The connection is registered at once; completion is reported by
    /// [`Handler::on_connect`](crate::Handler::on_connect), failure by
    /// `on_close` with [`CloseReason::ConnectFailed`](crate::CloseReason::ConnectFailed). Data sent before the
    /// connect completes is buffered.
    ///
    /// # Errors
    /// Immediate failures of `socket`, `bind` or `connect` (e.g.
    /// `ENETUNREACH`, `EADDRNOTAVAIL`).
    pub fn connect(&mut self, addr: SocketAddr, source: Option<IpAddr>) -> io::Result<Token> {
        self.connect_with(addr, source, None)
    }

    /// [`connect`](Io::connect) with a transport (e.g. a TLS client
    /// session): its handshake starts when the connect completes, after
    /// `Handler::on_connect`, and `Handler::on_established` follows when
    /// it is done. Data sent before then is queued.
    ///
    /// # Errors
    /// Those of [`connect`](Io::connect).
    pub fn connect_with(
        &mut self,
        addr: SocketAddr,
        source: Option<IpAddr>,
        transport: Option<Box<dyn Transport>>,
    ) -> io::Result<Token> {
        let fd = socket::connect(addr, source)?;
        let _ = socket::set_nodelay(&fd);
        self.register_conn(fd, true, false, transport)
    }

    /// The transport of a new inbound connection, from
    /// `Config::transport`.
    pub(crate) fn inbound_transport(&self) -> Option<Box<dyn Transport>> {
        self.config.transport.as_ref().map(|f| f.new_transport())
    }

    /// Registers a connection. `counted`: it is already in the shared
    /// connection count (handed over by an acceptor, which counted it).
    pub(crate) fn register_conn(
        &mut self,
        fd: OwnedFd,
        connecting: bool,
        counted: bool,
        transport: Option<Box<dyn Transport>>,
    ) -> io::Result<Token> {
        let now = Instant::now();
        let mut conn = Conn::new(fd, connecting, now);
        conn.transport = transport;
        let flags = conn.interest(self.config.trigger);
        let token = self.entries.next_token();
        self.ctl_add(&conn.fd, token, flags)?;
        conn.registered = flags;
        conn.armed = true;
        if !self.config.idle_timeout.is_zero() {
            let deadline = now + self.config.idle_timeout;
            conn.idle_timer = Some(self.timers.insert(deadline, TimerKind::Idle(token)));
        }
        if conn.transport.is_some() && !self.config.handshake_timeout.is_zero() {
            let deadline = now + self.config.handshake_timeout;
            conn.handshake_timer = Some(self.timers.insert(deadline, TimerKind::Handshake(token)));
        }
        let inserted = self.entries.insert(Entry::Conn(conn));
        debug_assert_eq!(inserted, token);
        self.conns += 1;
        if let (Some(shared), false) = (&self.config.shared_conns, counted) {
            shared.fetch_add(1, Ordering::Relaxed);
        }
        Ok(token)
    }
}
