//! A connection's life as the worker sees it — connecting, the TLS
//! handshake, carrying requests, and (with `--new-conn-per-request`) its
//! end after one answer — and what each step counts.
//!
//! With TLS, a connection carries requests only once its handshake is
//! done (`on_established`, not `on_connect`): request latency never
//! includes the handshake, which is timed on its own, from the connect's
//! start (what a user waits for before the first byte of a request).

use std::sync::atomic::Ordering;
use std::time::Instant;

use reactor::{CloseReason, Io, Token};

use super::{conn_mut, Worker};
use crate::client::Client;

/// Where a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Link {
    /// The TCP connect is in progress.
    Connecting,
    /// Connected; the TLS handshake is in progress.
    Handshaking,
    /// Requests flow.
    Up,
    /// `--new-conn-per-request`: its request was answered, it is closing,
    /// and another connection was opened in its place already.
    Spent,
}

impl Link {
    /// Still connecting or handshaking: `--connect-timeout` applies.
    pub(super) fn is_opening(self) -> bool {
        matches!(self, Link::Connecting | Link::Handshaking)
    }
}

impl<C: Client> Worker<C> {
    /// The TCP connect completed: a plain connection is up, a TLS one
    /// starts its handshake (the reactor sends the ClientHello).
    pub(super) fn connected(&mut self, io: &mut Io, token: Token) {
        let tls = self.spec().tls.is_some();
        let Some(conn) = conn_mut(&mut self.conns, token) else {
            return;
        };
        if tls {
            conn.link = Link::Handshaking;
        } else {
            self.established(io, token);
        }
    }

    /// The connection can carry requests: the client says hello, the
    /// pipeline fills.
    pub(super) fn established(&mut self, io: &mut Io, token: Token) {
        let tls = self.spec().tls.is_some();
        let recording = self.window.is_recording();
        let Some(conn) = conn_mut(&mut self.conns, token) else {
            return;
        };
        let now = Instant::now();
        conn.link = Link::Up;
        conn.in_flight.progress(now);
        if tls {
            self.result
                .handshakes
                .record(now.saturating_duration_since(conn.opened_at));
        }
        self.out.clear();
        let ready = conn.client.on_connected(&mut self.out);
        let sends = conn.client.sends();
        self.connecting -= 1;
        self.open += 1;
        self.result.connects += 1;
        if recording {
            self.result.window_connects += 1;
        }
        self.result.peak_open = self.result.peak_open.max(self.open);
        self.live().open.store(self.open, Ordering::Relaxed);
        if !self.out.is_empty() {
            io.send(token, &self.out);
        }
        if ready {
            if sends {
                self.ready.push(token);
            }
        } else {
            self.joining += 1;
        }
        self.fill_pipeline(io, token);
        self.open_more(io);
        self.check_connected(io);
    }

    /// `--new-conn-per-request`: the connection's request is answered; it
    /// closes (a TLS one with close_notify) and another opens now, not
    /// when the close is reported.
    pub(super) fn recycle(&mut self, io: &mut Io, token: Token) {
        let Some(conn) = conn_mut(&mut self.conns, token) else {
            return;
        };
        conn.link = Link::Spent;
        self.open -= 1;
        self.live().open.store(self.open, Ordering::Relaxed);
        if let Some(i) = self.ready.iter().position(|&t| t == token) {
            self.ready.swap_remove(i);
        }
        io.close_when_flushed(token);
        if !self.requests_exhausted {
            self.to_open += 1;
        }
        self.open_more(io);
    }

    /// The server closed a connection during its TLS handshake: a
    /// failed connect.
    pub(super) fn closed_in_handshake(&mut self, io: &mut Io, token: Token) {
        tracing::debug!(?token, "closed by the server during the TLS handshake");
        self.result.handshakes.closed += 1;
        self.error(|e| e.connect_failures += 1);
        io.close(token);
    }

    /// Counts why a connection that was not up yet closed. It is not
    /// replaced: a connect that failed is not retried.
    pub(super) fn count_failed_open(&mut self, reason: CloseReason) {
        match reason {
            CloseReason::ConnectFailed(errno) => {
                tracing::debug!(
                    "connect failed: {}",
                    std::io::Error::from_raw_os_error(errno)
                );
                self.error(|e| e.connect_failures += 1);
            }
            // rustls refused the server's handshake; why is kept by the
            // run's TlsStats, for the report.
            CloseReason::Transport => self.error(|e| e.connect_failures += 1),
            CloseReason::HandshakeTimeout => {
                self.result.handshakes.timeouts += 1;
                self.error(|e| e.timeouts += 1);
            }
            CloseReason::Reset | CloseReason::Error(_) => self.error(|e| e.resets += 1),
            // Closed by us after counting why (a timeout, a server that
            // closed mid-handshake), or the run is ending.
            _ => {}
        }
    }
}
