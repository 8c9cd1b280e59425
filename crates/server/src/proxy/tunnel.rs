//! Tunnels: a request that asked to upgrade (a WebSocket handshake) and
//! was answered `101 Switching Protocols` turns its client connection and
//! its upstream connection into one byte pipe, both ways, until either
//! side closes or it is idle for `--upstream-timeout`.
//!
//! Each direction has the flow control of a body: when the receiving
//! side's pending output passes the reactor's high watermark, the sending
//! side is no longer read (`Io::pause_reading`) until the receiver has
//! taken it all (`on_flushed`), so a slow reader holds the bytes in the
//! kernel's buffers and the sender's window, not in the proxy.
//!
//! The reactor has no half-close for a handler, so an end of stream from
//! either side ends the tunnel: each side gets what was already read for
//! it, then is closed. The upstream connection is never pooled: after a
//! 101 it no longer speaks HTTP.

use std::time::Instant;

use reactor::{Io, Token};

use super::handler::{Armed, Proxy, Timer, UpState};

/// A client connection's tunnel.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tunnel {
    /// The upstream connection at the other end.
    pub conn: Token,
    pub upstream: usize,
    /// The last byte either way (the idle timeout runs from it).
    pub last: Instant,
    pub timer: Armed,
}

/// How a tunnel ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// One side closed its end: what was read for the other is flushed
    /// first.
    Flush,
    /// Idle past the timeout: both are closed at once.
    Cut,
}

impl Proxy {
    /// `client`'s exchange was answered 101 on `conn` (the 101 head is
    /// queued for the client already): from now on the two connections
    /// are a tunnel. `rest` is what the upstream sent after the head, in
    /// the new protocol.
    pub(super) fn open_tunnel(&mut self, io: &mut Io, conn: Token, client: Token, rest: &[u8]) {
        let Some(upstream) = self.conns.get(&conn).map(|u| u.upstream) else {
            return;
        };
        let Some(ex) = self.clients.get_mut(&client).and_then(|c| c.ex.take()) else {
            return;
        };
        if let Some(timer) = ex.timer {
            self.cancel_timer(io, timer);
        }
        let timer = self.add_timer(io, self.config.upstream_timeout, Timer::Tunnel(client));
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        c.tunnel = Some(Tunnel {
            conn,
            upstream,
            last: io.now(),
            timer,
        });
        // Bytes the client sent after its handshake were kept as if they
        // were a pipelined request: they are the new protocol's.
        let ahead = std::mem::take(&mut c.ahead);
        let eof = c.eof;
        if c.held {
            c.held = false;
            io.resume_reading(client);
        }
        if let Some(u) = self.conns.get_mut(&conn) {
            u.state = UpState::Tunnel(client);
        }
        self.stats.responses += 1;
        self.stats.tunnels += 1;
        self.stats.tunnels_open += 1;
        if !rest.is_empty() {
            self.tunnel_down(io, conn, client, rest);
        }
        if !ahead.is_empty() {
            self.tunnel_up(io, client, &ahead);
        }
        if eof {
            self.end_tunnel(io, client, End::Flush);
        }
    }

    /// Bytes from a tunnelled client, to its upstream.
    pub(super) fn tunnel_up(&mut self, io: &mut Io, client: Token, data: &[u8]) -> usize {
        let now = io.now();
        let Some(c) = self.clients.get_mut(&client) else {
            return data.len();
        };
        let Some(t) = c.tunnel.as_mut() else {
            return data.len();
        };
        t.last = now;
        let conn = t.conn;
        io.send(conn, data);
        self.stats.tunnel_bytes_up += data.len() as u64;
        if io.pending_output(conn) > io.config().high_watermark && !c.held {
            c.held = true;
            io.pause_reading(client);
        }
        data.len()
    }

    /// Bytes from a tunnelled upstream connection, to its client.
    pub(super) fn tunnel_down(
        &mut self,
        io: &mut Io,
        conn: Token,
        client: Token,
        data: &[u8],
    ) -> usize {
        let now = io.now();
        if let Some(t) = self
            .clients
            .get_mut(&client)
            .and_then(|c| c.tunnel.as_mut())
        {
            t.last = now;
        }
        io.send(client, data);
        self.stats.tunnel_bytes_down += data.len() as u64;
        if io.pending_output(client) > io.config().high_watermark {
            if let Some(u) = self.conns.get_mut(&conn) {
                if !u.held {
                    u.held = true;
                    io.pause_reading(conn);
                }
            }
        }
        data.len()
    }

    /// `client` took everything it was sent: its upstream is read again.
    pub(super) fn tunnel_client_flushed(&mut self, io: &mut Io, client: Token) {
        let Some(t) = self.clients.get(&client).and_then(|c| c.tunnel) else {
            return;
        };
        if let Some(u) = self.conns.get_mut(&t.conn) {
            if u.held {
                u.held = false;
                io.resume_reading(t.conn);
            }
        }
    }

    /// The upstream took everything it was sent: its client is read again.
    pub(super) fn tunnel_upstream_flushed(&mut self, io: &mut Io, client: Token) {
        if let Some(c) = self.clients.get_mut(&client) {
            if c.held {
                c.held = false;
                io.resume_reading(client);
            }
        }
    }

    /// Either side of `client`'s tunnel closed its end (or the upstream
    /// failed: it is out of `conns` already): both go, each once what was
    /// read for it is flushed.
    pub(super) fn tunnel_peer_closed(&mut self, io: &mut Io, client: Token) {
        self.end_tunnel(io, client, End::Flush);
    }

    /// A tunnelled client connection closed: its upstream goes too.
    pub(super) fn tunnel_client_closed(&mut self, io: &mut Io, tunnel: Tunnel) {
        self.tunnel_ended(io, tunnel);
        io.close(tunnel.conn);
    }

    /// The tunnel's idle timer: lazy, it moves with every byte. A tunnel
    /// held by a slow reader is not idle (the write timeout of the
    /// reactor watches the reader).
    pub(super) fn on_tunnel_timer(&mut self, io: &mut Io, client: Token) {
        let Some(c) = self.clients.get(&client) else {
            return;
        };
        let Some(t) = c.tunnel else {
            return;
        };
        let held = c.held || self.conns.get(&t.conn).is_some_and(|u| u.held);
        let due = t.last + self.config.upstream_timeout;
        if held || io.now() < due {
            let after = if held {
                self.config.upstream_timeout
            } else {
                due - io.now()
            };
            let timer = self.add_timer(io, after, Timer::Tunnel(client));
            if let Some(t) = self
                .clients
                .get_mut(&client)
                .and_then(|c| c.tunnel.as_mut())
            {
                t.timer = timer;
            }
            return;
        }
        self.stats.tunnel_timeouts += 1;
        self.end_tunnel(io, client, End::Cut);
    }

    fn end_tunnel(&mut self, io: &mut Io, client: Token, end: End) {
        let Some(t) = self.clients.get_mut(&client).and_then(|c| c.tunnel.take()) else {
            return;
        };
        self.tunnel_ended(io, t);
        match end {
            End::Flush => {
                io.close_when_flushed(t.conn);
                io.close_when_flushed(client);
            }
            End::Cut => {
                io.close(t.conn);
                io.close(client);
            }
        }
    }

    /// The bookkeeping of a tunnel's end; its connections are closed by
    /// the caller.
    fn tunnel_ended(&mut self, io: &mut Io, t: Tunnel) {
        self.cancel_timer(io, t.timer);
        self.conns.remove(&t.conn);
        self.stats.tunnels_open = self.stats.tunnels_open.saturating_sub(1);
        let u = &mut self.upstreams[t.upstream];
        u.active = u.active.saturating_sub(1);
    }
}
